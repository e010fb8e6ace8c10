"""Dynamic quantization and integer products with a float output, imported with `fp.import_onnx` and run as
ONNX Runtime 1.32 runs them, bit for bit (`np.array_equal` of ORT's float32 outputs):

* models made here by onnxruntime.quantization.quantize_dynamic from the bundled digits networks
  (DynamicQuantizeLinear -> ConvInteger / MatMulInteger -> Cast -> Mul -> Add; ORT fuses the MatMul group
  into DynamicQuantizeMatMul), in batches of 64 (DynamicQuantizeLinear's scale depends on the batch);
* hand-made graphs: QuantizeLinear -> MatMulInteger / ConvInteger -> Cast -> Mul -> Add with every
  activation x weight type (ConvInteger int8 x uint8 saturates on AVX2 with the weight as the unsigned
  operand), a DynamicQuantizeLinear shared by two MatMulIntegers (ORT: MatMulIntegerToFloat), com.microsoft
  QGemm without y_scale, DynamicQuantizeMatMul and MatMulIntegerToFloat nodes, and the refusals.

Profiles: the host's ("onnxruntime") against ORT's default session, "onnxruntime-reference" against
ORT_DISABLE_ALL and, on an AVX2 host, "onnxruntime-avx2-precise" against session.x64quantprecision = 1.
"""
from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fixedpoint as fp  # noqa: E402
from fixedpoint.onnx import OnnxImportError  # noqa: E402
from fixedpoint.quantization.details import quantization_details  # noqa: E402
from fixedpoint.quantization.qnetwork import load_quantized_network  # noqa: E402
from fixedpoint.runtime import RuntimeNotSupportedError  # noqa: E402

from test_onnx_quantized_import import AVX2_HOST, _quantization, _session  # noqa: E402

helper, numpy_helper, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto

# (network, prepared, weight type, per channel): both networks, as trained (float batch norms) and prepared,
# int8 weights per channel (U8S8: saturates on AVX2) and uint8 weights per tensor (U8U8: exact)
VARIANTS = [(net, prepared, weight, pc) for net in ("cnn", "mobilenet") for prepared in (True, False)
            for weight, pc in (("QInt8", True), ("QUInt8", False))]


def _label(v):
    return f"{v[0]}{'-prep' if v[1] else ''}-{v[2]}-{'pc' if v[3] else 'pt'}"


@pytest.fixture(scope="module")
def inputs():
    """The 1258 validation images and 256 uniform ones over [-0.3, 1.3] (past the calibrated range)."""
    _, (x_val, _) = fp.examples.digits_data()
    rng = np.random.default_rng(31)
    return np.concatenate([x_val, rng.uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])


@pytest.fixture(scope="module")
def dynamic_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dynamic")
    cache = {}

    def get(variant):
        if variant not in cache:
            net, prepared, weight, pc = variant
            source = directory / f"{net}{prepared}.onnx"
            if not source.exists():
                network = getattr(fp.examples, f"digits_{net}")()
                onnx.save(fp.export_onnx(fp.prepare_network(network) if prepared else network), str(source))
            quantization = _quantization()
            path = directory / f"{_label(variant)}.onnx"
            quantization.quantize_dynamic(str(source), str(path), weight_type=getattr(quantization.QuantType, weight),
                                          per_channel=pc)
            cache[variant] = str(path)
        return cache[variant]
    return get


def _batched(function, x, batch=64):
    """Outputs for x in batches (the last one shorter): DynamicQuantizeLinear quantizes each batch alone."""
    return np.concatenate([function(x[i:i + batch]) for i in range(0, len(x), batch)])


def _ort(session, x, batch=64):
    feed = session.get_inputs()[0].name
    return _batched(lambda b: session.run(None, {feed: b})[0], x, batch)


def _check(qnet, path, x, batch=64):
    """The host, reference and (AVX2 host) precise profiles against ORT; the number of differing inputs."""
    runs = [("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))]
    if AVX2_HOST:
        try:
            runs.append(("onnxruntime-avx2-precise", _session(path, precise=True)))
        except Exception:   # ORT has no int8 x uint8 kernel after converting the weights: the profile says so
            with pytest.raises(RuntimeNotSupportedError, match="x64quantprecision"):
                qnet.predict(x[:1], runtime="onnxruntime-avx2-precise")
    for runtime, session in runs:
        expected = _ort(session, x, batch)
        got = _batched(lambda b: qnet.predict(b, runtime=runtime), x, batch)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        bad = (got != expected).reshape(len(x), -1).any(axis=1)
        assert not bad.any(), f"{runtime}: {int(bad.sum())} of {len(x)} inputs differ"


def _ort_ops(path, tmp_path):
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    wanted = {"DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger", "ConvInteger"}
    return Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node if n.op_type in wanted)


def _our_ops(qnet):
    return Counter(ql.ort_op for ql in qnet.qlayers.values() if getattr(ql, "ort_op", "") in
                   {"DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger", "ConvInteger"})


@pytest.mark.parametrize("variant", VARIANTS, ids=_label)
def test_quantize_dynamic_digits(variant, dynamic_models, inputs, tmp_path):
    """quantize_dynamic on the digits networks: 1514 inputs in 24 batches, every profile equal to ORT; the
    operators ORT runs (ConvInteger as written, the MatMul group fused into DynamicQuantizeMatMul) as the
    importer says. With int8 weights the AVX2 profile differs from the VNNI one (DynamicQuantizeMatMul is
    U8S8: int16 pairs saturate), so the comparison can fail; with uint8 weights (U8U8) they agree."""
    path = dynamic_models(variant)
    qnet = fp.import_onnx(path)
    assert qnet.qlayers and all(ql.input_params == [None] and ql.output_params is None for ql in qnet.qlayers.values())
    assert _our_ops(qnet) == _ort_ops(path, tmp_path)
    _check(qnet, path, inputs)
    avx2 = _batched(lambda b: qnet.predict(b, runtime="onnxruntime-avx2"), inputs)
    vnni = _batched(lambda b: qnet.predict(b, runtime="onnxruntime-vnni"), inputs)
    assert (avx2 != vnni).any(axis=1).any() == (variant[2] == "QInt8")


def test_dynamic_network_save_load_summary(dynamic_models, inputs, tmp_path):
    """A dynamic network saved and loaded computes the same bits; summary and quantization_details list
    the float ports."""
    qnet = fp.import_onnx(dynamic_models(VARIANTS[0]))
    qnet.save(tmp_path / "dyn.npz")
    loaded = load_quantized_network(tmp_path / "dyn.npz")
    for runtime in ("onnxruntime", "onnxruntime-vnni", "onnxruntime-reference"):
        assert np.array_equal(loaded.predict(inputs[:64], runtime=runtime), qnet.predict(inputs[:64], runtime=runtime))
    table = qnet.summary(print_table=False)
    assert set(table.loc[table["Quantized"] == "yes", "Output type"]) == {"single"}
    details = quantization_details(qnet)
    assert details.is_quantized and len(details.quantized_layer_names) == len(qnet.qlayers)
    assert {"Input", "Activations"}.isdisjoint(set(details.parameters["Tensor"]))


def test_dynamic_quantization_depends_on_the_batch(dynamic_models, inputs):
    """The same image in two batches of different range gives different outputs, as in ORT (a property of
    dynamic quantization the emulation keeps: each call quantizes its own input)."""
    path = dynamic_models(VARIANTS[1])
    qnet, session = fp.import_onnx(path), _session(path)
    feed = session.get_inputs()[0].name
    alone, mixed = inputs[:1], np.concatenate([inputs[:1], inputs[-1:] * 4])
    assert np.array_equal(qnet.predict(alone), session.run(None, {feed: alone})[0])
    assert np.array_equal(qnet.predict(mixed), session.run(None, {feed: mixed})[0])
    assert not np.array_equal(qnet.predict(mixed)[:1], qnet.predict(alone))


# --- hand-made graphs --------------------------------------------------------------------------------------
def _integer_chain(op, x_type, w_type, bias=True, rng_seed=0):
    """x -> QuantizeLinear(x_type) -> MatMulInteger / ConvInteger (w_type, full-range weights) -> Cast ->
    Mul(per-channel constant) [-> Add(bias)]."""
    rng = np.random.default_rng(rng_seed)
    conv = op == "ConvInteger"
    lo, hi = (-128, 128) if w_type == np.int8 else (0, 256)
    w = rng.integers(lo, hi, (8, 4, 3, 3) if conv else (64, 10)).astype(w_type)
    outputs = 8 if conv else 10
    init = [numpy_helper.from_array(v, n) for v, n in [
        (np.array(0.02, np.float32), "xs"), (np.array(3 if x_type == np.uint8 else -5, x_type), "xz"), (w, "w"),
        (np.array(1 if w_type == np.int8 else 130, w_type), "wz"),
        (rng.uniform(1e-4, 1e-3, (1, outputs, 1, 1) if conv else outputs).astype(np.float32), "s"),
        (rng.normal(0, 1, (1, outputs, 1, 1) if conv else outputs).astype(np.float32), "b")]]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node(op, ["xq", "w", "xz", "wz"], ["acc"], name="product", **({"pads": [1, 1, 1, 1]} if conv else {})),
             helper.make_node("Cast", ["acc"], ["f"], to=TP.FLOAT), helper.make_node("Mul", ["f", "s"], ["m"])]
    y = "m"
    if bias:
        nodes.append(helper.make_node("Add", ["m", "b"], ["y"]))
        y = "y"
    source = "x"
    if not conv:
        nodes.insert(0, helper.make_node("Flatten", ["image"], ["x"]))
        source = "image"
    shape = [None, 4, 8, 8] if conv else [None, 1, 8, 8]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(source, TP.FLOAT, shape)],
                              [helper.make_tensor_value_info(y, TP.FLOAT, [None, 8, 8, 8] if conv else [None, 10])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("op", ["ConvInteger", "MatMulInteger"])
@pytest.mark.parametrize("x_type, w_type", [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8),
                                            (np.int8, np.int8)], ids=["u8s8", "u8u8", "s8u8", "s8s8"])
def test_integer_product_chains(tmp_path, op, x_type, w_type):
    """Every activation x weight type of a statically quantized chain, on inputs past the quantizer's range
    with full-range weights: ConvInteger u8 x s8 is exact (MLAS S8U8 with the weights as A), s8 x u8
    saturates (U8S8 with the weight as the unsigned operand); MatMulInteger u8 x s8 saturates."""
    model = _integer_chain(op, x_type, w_type)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    qnet = fp.import_onnx(path)
    layer = qnet.qlayers["product"]
    assert layer.output_params is None and layer.input_params[0].dtype == x_type
    x = np.random.default_rng(1).uniform(-3, 6, (256, 4, 8, 8) if op == "ConvInteger" else (256, 1, 8, 8)).astype(np.float32)
    _check(qnet, path, x)
    saturating = (op, x_type, w_type) in (("ConvInteger", np.int8, np.uint8), ("MatMulInteger", np.uint8, np.int8))
    assert (qnet.predict(x, runtime="onnxruntime-avx2") != qnet.predict(x, runtime="onnxruntime-vnni")).any() == saturating


def test_chain_without_bias(tmp_path):
    path = str(tmp_path / "m.onnx")
    onnx.save(_integer_chain("ConvInteger", np.uint8, np.int8, bias=False), path)
    qnet = fp.import_onnx(path)
    assert getattr(qnet.qlayers["product"], "float_bias", None) is None
    _check(qnet, path, np.random.default_rng(2).uniform(-3, 6, (64, 4, 8, 8)).astype(np.float32))


def test_shared_dynamic_quantize_linear(tmp_path, inputs):
    """One DynamicQuantizeLinear read by two MatMulIntegers: ORT fuses each into MatMulIntegerToFloat (not
    DynamicQuantizeMatMul: the quantizer's outputs have two readers each); the sum of both, in float. (Each
    MatMulInteger has its own weight zero point initializer: with one shared, ORT 1.32's optimizer fails to
    create the session, "Attempt to replace the existing tensor".)"""
    rng = np.random.default_rng(3)
    init = [numpy_helper.from_array(v, n) for v, n in [
        (rng.integers(-128, 128, (64, 10)).astype(np.int8), "w1"), (rng.integers(-128, 128, (64, 10)).astype(np.int8), "w2"),
        (np.array(0, np.int8), "z1"), (np.array(0, np.int8), "z2"), (np.float32(0.004) * np.ones(10, np.float32), "s1"), (np.array(0.003, np.float32), "s2"),
        (rng.normal(0, 1, 10).astype(np.float32), "b1")]]
    nodes = [helper.make_node("Flatten", ["image"], ["x"]),
             helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="dql")]
    for k in (1, 2):
        nodes += [helper.make_node("Mul", ["xs", f"s{k}"], [f"scale{k}"]),
                  helper.make_node("MatMulInteger", ["xq", f"w{k}", "xz", f"z{k}"], [f"acc{k}"], name=f"mm{k}"),
                  helper.make_node("Cast", [f"acc{k}"], [f"f{k}"], to=TP.FLOAT),
                  helper.make_node("Mul", [f"f{k}", f"scale{k}"], [f"m{k}"])]
    nodes += [helper.make_node("Add", ["m1", "b1"], ["y1"]), helper.make_node("Add", ["y1", "m2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    path = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    qnet = fp.import_onnx(path)
    assert _our_ops(qnet) == _ort_ops(path, tmp_path) == Counter({"MatMulIntegerToFloat": 2})
    _check(qnet, path, inputs)


def _qoperator_model(node, a_type=np.uint8):
    """x -> QuantizeLinear (a_type) -> `node` (reads "xq", "xs", "xz") -> float output y (N, 10)."""
    init = [numpy_helper.from_array(np.array(0.01, np.float32), "xs"),
            numpy_helper.from_array(np.array(7 if a_type == np.uint8 else -3, a_type), "xz")]
    nodes = [helper.make_node("Flatten", ["image"], ["x"]), helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             node]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])


@pytest.mark.parametrize("a_type, trans_b", [(np.uint8, 0), (np.uint8, 1), (np.int8, 1)], ids=["u8s8", "u8s8-transB", "s8s8"])
def test_qgemm_float_output(tmp_path, inputs, a_type, trans_b):
    """com.microsoft QGemm without y_scale: float(acc + C) * float32(a_scale * b_scale) (per-column b scales)."""
    rng = np.random.default_rng(4)
    b = rng.integers(-128, 128, (10, 64) if trans_b else (64, 10)).astype(np.int8)
    model = _qoperator_model(helper.make_node(
        "QGemm", ["xq", "xs", "xz", "b", "bs", "bz", "c"], ["y"], domain="com.microsoft", transB=trans_b, name="qgemm"),
        a_type)
    model.graph.initializer.extend([numpy_helper.from_array(b, "b"),
                                    numpy_helper.from_array(rng.uniform(1e-3, 5e-3, 10).astype(np.float32), "bs"),
                                    numpy_helper.from_array(np.zeros(10, np.int8), "bz"),
                                    numpy_helper.from_array(rng.integers(-5000, 5000, 10).astype(np.int32), "c")])
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    qnet = fp.import_onnx(path)
    assert qnet.qlayers["qgemm"].output_params is None
    _check(qnet, path, inputs)


@pytest.mark.parametrize("op", ["DynamicQuantizeMatMul", "MatMulIntegerToFloat"])
def test_com_microsoft_float_output_nodes(tmp_path, inputs, op):
    """The fused nodes ORT writes into an optimized model, imported as they are."""
    rng = np.random.default_rng(5)
    if op == "DynamicQuantizeMatMul":
        node = helper.make_node(op, ["x", "b", "bs", "bz", "bias"], ["y"], domain="com.microsoft", name="fused")
    else:
        node = helper.make_node(op, ["xq", "b", "xs", "bs", "xz", "bz", "bias"], ["y"], domain="com.microsoft", name="fused")
    model = _qoperator_model(node)
    model.graph.initializer.extend([numpy_helper.from_array(rng.integers(-128, 128, (64, 10)).astype(np.int8), "b"),
                                    numpy_helper.from_array(rng.uniform(1e-3, 5e-3, 10).astype(np.float32), "bs"),
                                    numpy_helper.from_array(np.zeros(10, np.int8), "bz"),
                                    numpy_helper.from_array(rng.normal(0, 1, 10).astype(np.float32), "bias")])
    if op == "DynamicQuantizeMatMul":   # the QuantizeLinear is unused: drop it
        del model.graph.node[1]
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    qnet = fp.import_onnx(path)
    assert qnet.qlayers["fused"].ort_op == op
    _check(qnet, path, inputs)


# --- refusals ------------------------------------------------------------------------------------------------
def test_dynamic_quantize_linear_read_by_another_op_is_refused():
    model = _integer_chain("MatMulInteger", np.uint8, np.int8)
    model.graph.node[1].op_type = "DynamicQuantizeLinear"
    del model.graph.node[1].input[1:]
    model.graph.node[1].output.extend(["xs2", "xz2"])
    model.graph.node.insert(2, helper.make_node("Relu", ["xq"], ["r"], name="relu"))
    with pytest.raises(OnnxImportError, match="relu.*reads the DynamicQuantizeLinear output"):
        fp.import_onnx(model)


def test_int32_graph_output_is_refused():
    model = _integer_chain("MatMulInteger", np.uint8, np.int8)
    model.graph.output.append(helper.make_tensor_value_info("acc", TP.INT32, [None, 10]))
    with pytest.raises(OnnxImportError, match="graph output|only the chain"):
        fp.import_onnx(model)


def test_two_step_scaling_is_refused():
    """Mul(float(acc), x_scale) then Mul(., w_scale) rounds twice: not the chain ORT fuses; refused."""
    model = _integer_chain("MatMulInteger", np.uint8, np.int8)
    nodes = model.graph.node
    nodes[1].op_type = "DynamicQuantizeLinear"
    del nodes[1].input[1:]
    nodes[1].output.extend(["dxs", "dxz"])
    nodes[2].input[2] = "dxz"
    nodes[4].input[1] = "dxs"
    with pytest.raises(OnnxImportError, match="Mul\\(x_scale, w_scale\\)"):
        fp.import_onnx(model)
