"""The independent affine reference (fixedpoint/quantization/reference_affine/) against
`QuantizedNetwork.predict`, layer by layer, on the other ONNX models the suite builds:
quantize_dynamic's digits networks and the hand-made integer chains (DynamicQuantizeLinear,
ConvInteger / MatMulInteger -> Cast -> Mul -> Add, MatMulIntegerToFloat, DynamicQuantizeMatMul, QGemm
without y_scale), the operator zoo of tests/test_onnx_quantized_graphs.py in every format and type, the
hand-made QDQ Conv graphs (a float Conv left by ORT: MLAS's SGEMM order), Add / Mul with constant
operands (ORT's broadcasting operand swap), QDQ MatMul, and nearest and linear Resize. Every ORT profile;
where `predict` refuses a profile (ORT cannot create the session), the reference refuses too.
Inputs: validation digits and uniform values past the calibrated range, batches of 6 (3 for the wide float
Convs) and 1. Where a family has many variants the tests take a sample; docs/reference-affine.md reports the
survey over all of them."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import fixedpoint as fp  # noqa: E402
from fixedpoint.quantization.reference import predict_reference  # noqa: E402
from fixedpoint.quantization.reference_affine import ReferenceNotSupportedError, reference_coverage  # noqa: E402
from fixedpoint.runtime import RUNTIMES, RuntimeNotSupportedError  # noqa: E402

from test_quant_reference_affine import assert_same_layer_by_layer  # noqa: E402

G = pytest.importorskip("test_onnx_quantized_graphs")
D = pytest.importorskip("test_onnx_quantized_dynamic")

ORT_PROFILES = [name for name, p in RUNTIMES.items() if p.family == "onnxruntime"]


@pytest.fixture(scope="module")
def digits():
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    return x_cal, x_val


def _batches(x_val, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    wide = rng.uniform(-0.3, 1.3, (6 if channels == 1 else 3, channels, 8, 8)).astype(np.float32)
    if channels == 1:
        return np.concatenate([x_val[:3], wide[:3]]), x_val[3:4]
    return wide, wide[:1] * 1.5


def check_every_profile(qnet, batches, uncovered=()) -> int:
    """Layer by layer under each ORT profile (`uncovered`: the layers reference_coverage must name; every
    other layer output, integer or float, is compared); the number of profiles compared."""
    compared = 0
    for runtime in ORT_PROFILES:
        try:
            qnet.predict(batches[0][:1], runtime=runtime)
        except RuntimeNotSupportedError:
            with pytest.raises(ReferenceNotSupportedError, match=runtime):
                predict_reference(qnet, batches[0][:1], runtime=runtime)
            continue
        assert sorted(n for n, why in reference_coverage(qnet, runtime).items() if why) == sorted(uncovered)
        for x in batches:
            assert_same_layer_by_layer(qnet, x, runtime)
        compared += 1
    return compared


# --- dynamic quantization -----------------------------------------------------------------------------------
# both networks, prepared and as trained, each weight type twice (the survey in docs/reference-affine.md ran all 8)
DYNAMIC = [("cnn", True, "QInt8", True), ("cnn", False, "QUInt8", False), ("mobilenet", True, "QUInt8", False),
           ("mobilenet", False, "QInt8", True)]


@pytest.mark.parametrize("variant", DYNAMIC, ids=D._label)
def test_quantize_dynamic_models(variant, tmp_path, digits):
    quantization = pytest.importorskip("onnxruntime.quantization")
    net, prepared, weight, pc = variant
    source, path = tmp_path / "f.onnx", tmp_path / "q.onnx"
    network = getattr(fp.examples, f"digits_{net}")()
    onnx.save(fp.export_onnx(fp.prepare_network(network) if prepared else network), str(source))
    quantization.quantize_dynamic(str(source), str(path), weight_type=getattr(quantization.QuantType, weight),
                                  per_channel=pc)
    qnet = fp.import_onnx(str(path))
    assert check_every_profile(qnet, _batches(digits[1])) > 0


@pytest.mark.parametrize("op", ["ConvInteger", "MatMulInteger"])
@pytest.mark.parametrize("x_type, w_type", [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8),
                                            (np.int8, np.int8)], ids=["u8s8", "u8u8", "s8u8", "s8s8"])
def test_integer_product_chains(op, x_type, w_type):
    """QuantizeLinear -> ConvInteger / MatMulInteger -> Cast -> Mul -> Add with full-range weights (the
    AVX2 pair sums saturate for ConvInteger s8 x u8 and MatMulInteger u8 x s8)."""
    qnet = fp.import_onnx(D._integer_chain(op, x_type, w_type))
    shape = (6, 4, 8, 8) if op == "ConvInteger" else (6, 1, 8, 8)
    x = np.random.default_rng(1).uniform(-3, 6, shape).astype(np.float32)
    assert check_every_profile(qnet, (x, x[:1])) > 0
    without_bias = fp.import_onnx(D._integer_chain(op, x_type, w_type, bias=False))
    assert check_every_profile(without_bias, (x,)) > 0


@pytest.mark.parametrize("op", ["DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm"])
def test_com_microsoft_float_output_nodes(op, digits):
    rng = np.random.default_rng(5)
    h, nh = onnx.helper, onnx.numpy_helper
    if op == "QGemm":
        node = h.make_node(op, ["xq", "xs", "xz", "b", "bs", "bz", "c"], ["y"], domain="com.microsoft", transB=1,
                           name="fused")
        b = rng.integers(-128, 128, (10, 64)).astype(np.int8)
    elif op == "DynamicQuantizeMatMul":
        node = h.make_node(op, ["x", "b", "bs", "bz", "bias"], ["y"], domain="com.microsoft", name="fused")
        b = rng.integers(-128, 128, (64, 10)).astype(np.int8)
    else:
        node = h.make_node(op, ["xq", "b", "xs", "bs", "xz", "bz", "bias"], ["y"], domain="com.microsoft", name="fused")
        b = rng.integers(-128, 128, (64, 10)).astype(np.int8)
    model = D._qoperator_model(node)
    model.graph.initializer.extend([nh.from_array(b, "b"),
                                    nh.from_array(rng.uniform(1e-3, 5e-3, 10).astype(np.float32), "bs"),
                                    nh.from_array(np.zeros(10, np.int8), "bz"),
                                    nh.from_array(rng.normal(0, 1, 10).astype(np.float32), "bias"),
                                    nh.from_array(rng.integers(-5000, 5000, 10).astype(np.int32), "c")])
    if op == "DynamicQuantizeMatMul":   # the QuantizeLinear is unused
        del model.graph.node[1]
    qnet = fp.import_onnx(model)
    assert check_every_profile(qnet, _batches(digits[1])) > 0


# --- quantize_static graphs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zoo_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "zoo.onnx"
    onnx.save(fp.export_onnx(G.zoo()), str(path))
    return path


@pytest.mark.parametrize("fmt, types, per_channel", [
    ("QDQ", "U8S8", True), ("QDQ", "U8U8", False), ("QDQ", "S8S8", True),
    ("QOperator", "U8S8", False), ("QOperator", "U8U8", True), ("QOperator", "S8S8", False)])
def test_operator_zoo(zoo_source, tmp_path, digits, fmt, types, per_channel):
    """Conv (3x3, 1x1, depthwise), LeakyRelu, AveragePool, Sigmoid, Tanh, Concat, Mul, MaxPool, Relu,
    GlobalAveragePool, Flatten, Gemm, Softmax: fused or left in float as ORT decides per graph."""
    path = G.quantize(zoo_source, tmp_path / "q.onnx", digits[0], fmt, types, per_channel)
    assert check_every_profile(fp.import_onnx(path), _batches(digits[1])) > 0


@pytest.mark.parametrize("activation, clip_max, zero", [("Relu", 6.0, 0), ("Relu", 6.0, 20), ("Clip", 6.0, 0),
                                                        ("Clip", 8.0, 0), (None, 6.0, 7)])
def test_qdq_conv_graphs(digits, activation, clip_max, zero):
    """A Relu / Clip between Conv and Q: redundant ones fuse into QLinearConv, the others leave the Conv in
    float (MLAS's SGEMM of the dequantized weights)."""
    qnet = fp.import_onnx(G._qdq_conv_model(activation, clip_max, zero))
    assert check_every_profile(qnet, _batches(digits[1])) > 0


@pytest.mark.parametrize("channels", [(8, 16), (64, 64), (4, 12)])
def test_float_conv_left_by_ort(digits, channels):
    """Float Convs of several shapes (MlasConv's algorithms and K blocks) between DQ and Q."""
    qnet = fp.import_onnx(G._qdq_conv_model("Relu", zero=20, channels=channels, out_scale=0.25))
    assert qnet.qlayers["conv"].ort_op == ""
    assert check_every_profile(qnet, _batches(digits[1], channels[0], seed=channels[1])) > 0


def test_integer_graph_output(digits):
    qnet = fp.import_onnx(G._qdq_conv_model("Relu", final_dq=False))
    assert qnet.integer_outputs
    x = _batches(digits[1])[0]
    for runtime in ORT_PROFILES:
        got = predict_reference(qnet, x, runtime=runtime)
        assert got.dtype == np.uint8 and np.array_equal(got, qnet.predict(x, runtime=runtime))


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("types", ["U8S8", "S8S8"])
@pytest.mark.parametrize("first", [False, True], ids=["x-first", "constant-first"])
def test_constant_operands(tmp_path, digits, fmt, types, first):
    """Add of a per-channel constant and Mul of a scalar one: QLinearAdd / QLinearMul broadcasting (ORT
    swaps the operands when input 0 is the scalar of a span) or float Add / Mul."""
    source = tmp_path / "c.onnx"
    onnx.save(G._constant_operand_model(first), str(source))
    path = G.quantize(source, tmp_path / "q.onnx", digits[0], fmt, types, True)
    assert check_every_profile(fp.import_onnx(path), _batches(digits[1])) > 0


def test_qdq_matmul(tmp_path, digits):
    h, nh, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(2)
    init = [nh.from_array(rng.normal(0, 0.3, (64, 10)).astype(np.float32), "w"),
            nh.from_array(rng.normal(0, 0.5, 10).astype(np.float32), "bias")]
    nodes = [h.make_node("Flatten", ["x"], ["f"]), h.make_node("MatMul", ["f", "w"], ["y0"], name="mm"),
             h.make_node("Add", ["y0", "bias"], ["y"], name="add")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, [None, 1, 8, 8])],
                         [h.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    source = tmp_path / "mm.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]), str(source))
    for fmt in ("QDQ", "QOperator"):
        path = G.quantize(source, tmp_path / f"mm_{fmt}.onnx", digits[0], fmt, "U8S8", True)
        assert check_every_profile(fp.import_onnx(path), _batches(digits[1])) > 0


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("transform, nearest", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor")])
def test_nearest_resize(tmp_path, digits, fmt, transform, nearest):
    source = tmp_path / "resize.onnx"
    onnx.save(G._resize_model(transform, nearest), str(source))
    path = G.quantize(source, tmp_path / "q.onnx", digits[0], fmt, "U8S8", True)
    assert check_every_profile(fp.import_onnx(path), _batches(digits[1])) > 0


@pytest.mark.parametrize("fmt, transform, scales", [
    ("QDQ", "asymmetric", (1, 1, 3, 1.5)), ("QOperator", "half_pixel", (1, 1, 3, 1.5)),
    ("QDQ", "align_corners", (1, 1, 2, 2)), ("QOperator", "pytorch_half_pixel", (1, 1, 2, 2)),
    ("QOperator", "align_corners", (1, 1, 3, 1.5))])
def test_linear_resize(tmp_path, digits, fmt, transform, scales):
    """QDQ: a float Resize between DQ and Q; QOperator: ResizeNHWC's 10-bit integer weights (optimized
    graph) or the NCHW float formula truncated (as written)."""
    source = tmp_path / "resize.onnx"
    onnx.save(G._linear_resize_model(transform, scales), str(source))
    path = G.quantize(source, tmp_path / "q.onnx", digits[0], fmt, "U8S8", True)
    assert check_every_profile(fp.import_onnx(path), _batches(digits[1])) > 0


# --- float layers ORT rewrites to NCHWc (MLAS's NCHWc kernels in the reference) --------------------------------
NCHWC_PROFILES = tuple(p for p in ORT_PROFILES   # float-layout nchwc8 / 16
                       if RUNTIMES[p].ops["Convolution2D"].get("float-layout", "nchw") != "nchw")


def _check_nchwc(qnet, x, refused=()):
    """Every layer covered and equal to predict under every ORT profile, but `refused` (the importer's
    "refuse" hints) under the NCHWc profiles: reference_coverage names them, and predict and the
    reference both refuse the network."""
    for runtime in ORT_PROFILES:
        coverage = reference_coverage(qnet, runtime)
        named = {n for n, why in coverage.items() if why}
        if refused and runtime in NCHWC_PROFILES:
            assert named == set(refused) and all("NchwcTransformer" in coverage[n] for n in named), runtime
            with pytest.raises(RuntimeNotSupportedError):
                qnet.predict(x, runtime=runtime)
            with pytest.raises(ReferenceNotSupportedError, match=f"'{refused[0]}'.*NchwcTransformer"):
                predict_reference(qnet, x, runtime=runtime)
            continue
        assert named == set(), runtime
        assert_same_layer_by_layer(qnet, x, runtime)


@pytest.mark.parametrize("exclude", [("conv1", "conv2"), ("conv2", "relu2", "maxpool", "conv3", "relu3", "gap")])
def test_nchwc_float_layers_of_a_qdq_model(tmp_path, digits, exclude):
    """quantize_static(..., nodes_to_exclude) of the prepared digits CNN (tests/test_ort_nchwc.py): the float
    Convs (and the GlobalAveragePool after an NCHWc Conv) run in NCHWc in ORT's optimized graph (block 8 for
    the AVX2 profiles, 16 for the VNNI one), in NCHW as written."""
    source = tmp_path / "cnn.onnx"
    onnx.save(fp.export_onnx(fp.prepare_network(fp.examples.digits_cnn())), str(source))
    path = str(tmp_path / "q.onnx")
    quantization = pytest.importorskip("onnxruntime.quantization")
    feed = onnx.load(str(source)).graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{feed: digits[0][i:i + 64]} for i in range(0, 256, 64)])

        def get_next(self):
            return next(self.batches, None)
    quantization.quantize_static(str(source), path, Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8, nodes_to_exclude=list(exclude))
    _check_nchwc(fp.import_onnx(path), _batches(digits[1])[0])


def test_nchwc_pooling_between_dq_and_q_and_a_dequantized_conv():
    """Q -> DQ(uint8) -> AveragePool -> Q(int8, a graph output): ORT leaves the group in float and runs the
    AveragePool in NCHWc (16 channels: a multiple of both blocks). A float Conv whose weights come out of a
    DequantizeLinear stays NCHW (the importer's hint)."""
    h, nh, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(17)
    c = 16
    init = {"s1": np.float32(0.02), "z1": np.uint8(128), "s2": np.float32(0.011), "z2": np.int8(0)}
    nodes = [h.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q"]),
             h.make_node("DequantizeLinear", ["q", "s1", "z1"], ["d"]),
             h.make_node("AveragePool", ["d"], ["p"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], name="pool"),
             h.make_node("QuantizeLinear", ["p", "s2", "z2"], ["y"], name="q2")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, (None, c, 7, 7))],
                         [h.make_tensor_value_info("y", TP.INT8, (None, c, 7, 7))],
                         [nh.from_array(np.asarray(v), n) for n, v in init.items()])
    qnet = fp.import_onnx(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]))
    assert qnet.qlayers["pool"].ort_op == ""
    x = rng.uniform(-2.5, 2.5, (4, c, 7, 7)).astype(np.float32)
    _check_nchwc(qnet, x)
    init = {"Wq": rng.integers(-127, 128, (c, c, 3, 3)).astype(np.int8), "ws": np.float32(0.013), "wz": np.int8(0),
            "B": rng.normal(0, 0.2, c).astype(np.float32), "s": np.float32(0.05), "z": np.uint8(128)}
    nodes = [h.make_node("DequantizeLinear", ["Wq", "ws", "wz"], ["W"]),
             h.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             h.make_node("QuantizeLinear", ["c", "s", "z"], ["q"]), h.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, (None, c, 7, 7))],
                         [h.make_tensor_value_info("y", TP.FLOAT, (None, c, 7, 7))],
                         [nh.from_array(np.asarray(v), n) for n, v in init.items()])
    _check_nchwc(fp.import_onnx(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])), x)


def test_nchwc_refused_add_is_named():
    """An Add of two NCHWc convolutions folds into one of them (its sum input): the importer's hint refuses
    that convolution under the NCHWc profiles, and so does the reference (by name); as written it is covered."""
    h, nh, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(3)
    c = 16
    init = {"W1": rng.normal(0, 0.3, (c, c, 3, 3)).astype(np.float32), "B1": rng.normal(0, 0.3, c).astype(np.float32),
            "W2": rng.normal(0, 0.3, (c, c, 3, 3)).astype(np.float32), "B2": rng.normal(0, 0.3, c).astype(np.float32),
            "s": np.float32(0.05), "z": np.uint8(128)}
    nodes = [h.make_node("Conv", ["x", "W1", "B1"], ["c"], pads=[1, 1, 1, 1], name="conv_c"),
             h.make_node("Conv", ["x", "W2", "B2"], ["d"], pads=[1, 1, 1, 1], name="conv_d"),
             h.make_node("Add", ["c", "d"], ["a"], name="add"),
             h.make_node("QuantizeLinear", ["a", "s", "z"], ["q"]), h.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, (None, c, 6, 6))],
                         [h.make_tensor_value_info("y", TP.FLOAT, (None, c, 6, 6))],
                         [nh.from_array(np.asarray(v), n) for n, v in init.items()])
    qnet = fp.import_onnx(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]))
    _check_nchwc(qnet, rng.normal(0, 1, (2, c, 6, 6)).astype(np.float32), refused=("conv_c",))
