"""The quantized importer's graph side: which node groups ONNX Runtime fuses (against the optimized
graph the installed onnxruntime writes), every operator of the scope in one network (made here and
quantized with quantize_static), hand-made QDQ graphs (Relu / Clip between an op and its Q, an
integer graph output, a QDQ MatMul), and the errors for what is not supported.
"""
from collections import Counter

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fixedpoint as fp  # noqa: E402
from fixedpoint.nn import Network  # noqa: E402
from fixedpoint.nn.layers.base import make_layer as L  # noqa: E402
from fixedpoint.onnx import OnnxImportError  # noqa: E402
from fixedpoint.runtime import RuntimeNotSupportedError  # noqa: E402

from test_onnx_quantized_import import AVX2_HOST, TYPES, _quantization, _session  # noqa: E402

helper, numpy_helper, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto

# ORT operators that stand for a fused or a float node group, by our name for them
FUSED = {"QLinearConv", "QGemm", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearConcat",
         "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearLeakyRelu", "QLinearSigmoid",
         "QLinearSoftmax"}
FLOAT = {"Conv": "Conv", "FusedConv": "Conv", "Gemm": "Gemm", "FusedGemm": "Gemm", "MatMul": "MatMul",
         "Add": "Add", "Mul": "Mul", "Concat": "Concat", "AveragePool": "AveragePool",
         "GlobalAveragePool": "GlobalAveragePool", "LeakyRelu": "LeakyRelu", "Sigmoid": "Sigmoid",
         "Softmax": "Softmax", "BatchNormalization": "BatchNormalization", "Tanh": "Tanh"}


def zoo(seed=0):
    """Every layer type the quantizer handles: Conv (3x3, 1x1, depthwise), LeakyRelu, AveragePool, Sigmoid,
    Tanh, Concat, Mul, MaxPool, Relu, GlobalAveragePool, Flatten, Gemm, Softmax."""
    rng = np.random.default_rng(seed)

    def conv(name, out, inp, k=3, **kw):
        return L("Convolution2D", name, weights=rng.normal(0, 0.4, (out, inp, k, k)).astype(np.float32),
                 bias=rng.normal(0, 0.2, out).astype(np.float32), padding=k // 2, **kw)
    layers = [L("ImageInput", "x", input_size=(1, 8, 8)), conv("conv1", 4, 1),
              L("LeakyReLU", "leaky", scale=0.1), L("AveragePooling2D", "avg", pool_size=3, stride=1, padding=1),
              conv("conv2", 4, 4), L("Sigmoid", "sig"), conv("conv3", 4, 4), L("Tanh", "tanh"),
              L("Concatenation", "cat", axis=1, num_inputs=2), conv("conv4", 8, 8, k=1),
              L("Multiplication", "mul", num_inputs=2), L("MaxPooling2D", "max", pool_size=2, stride=2),
              conv("dw", 8, 1, groups=8), L("ReLU", "relu"), L("GlobalAveragePooling2D", "gap"),
              L("Flatten", "flat"),
              L("FullyConnected", "fc", weights=rng.normal(0, 0.5, (10, 8)).astype(np.float32),
                bias=rng.normal(0, 0.1, 10).astype(np.float32)),
              L("Softmax", "soft")]
    chain = ["x", "conv1", "leaky", "avg"]
    connections = list(zip(chain[:-1], chain[1:])) + [
        ("avg", "conv2"), ("conv2", "sig"), ("avg", "conv3"), ("conv3", "tanh"), ("sig", "cat/in1"),
        ("tanh", "cat/in2"), ("cat", "conv4"), ("conv4", "mul/in1"), ("cat", "mul/in2"), ("mul", "max"),
        ("max", "dw"), ("dw", "relu"), ("relu", "gap"), ("gap", "flat"), ("flat", "fc"), ("fc", "soft")]
    return Network(layers, connections)


@pytest.fixture(scope="module")
def digits():
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    return x_cal, x_val


def quantize(source, path, x_cal, fmt, types, per_channel, **extra_options):
    quantization = _quantization()
    feed = onnx.load(str(source)).graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{feed: x_cal[i:i + 64]} for i in range(0, 256, 64)])

        def get_next(self):
            return next(self.batches, None)
    act, weight = TYPES[types]
    quantization.quantize_static(str(source), str(path), Reader(),
                                 quant_format=getattr(quantization.QuantFormat, fmt),
                                 activation_type=getattr(quantization.QuantType, act),
                                 weight_type=getattr(quantization.QuantType, weight), per_channel=per_channel,
                                 extra_options=extra_options)
    return str(path)


@pytest.fixture(scope="module")
def zoo_models(tmp_path_factory, digits):
    directory = tmp_path_factory.mktemp("zoo")
    source = directory / "zoo.onnx"
    onnx.save(fp.export_onnx(zoo()), str(source))
    return {(fmt, types, pc): quantize(source, directory / f"zoo_{fmt}_{types}_{pc}.onnx", digits[0], fmt, types, pc)
            for fmt in ("QDQ", "QOperator") for types in TYPES for pc in (False, True)}


def ort_ops(path, tmp_path, precise=False):
    """Counter of the fused and float operators in the graph ORT optimizes `path` into."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    if precise:
        options.add_session_config_entry("session.x64quantprecision", "1")
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    return Counter(op if op in FUSED else FLOAT[op] for op in ops if op in FUSED or op in FLOAT)


def our_ops(qnet, field):
    """The same Counter from the importer's decisions (float layers and QDQ groups left unfused)."""
    names = {"Convolution2D": "Conv", "FullyConnected": "Gemm", "Addition": "Add", "Multiplication": "Mul",
             "Concatenation": "Concat", "AveragePooling2D": "AveragePool",
             "GlobalAveragePooling2D": "GlobalAveragePool", "LeakyReLU": "LeakyRelu", "Sigmoid": "Sigmoid",
             "Softmax": "Softmax", "BatchNormalization": "BatchNormalization", "Tanh": "Tanh"}
    counts = Counter()
    for layer in qnet.layers:
        ql = qnet.qlayers.get(layer.name)
        op = getattr(ql, field, "") if ql is not None else ""
        if op in FUSED:
            counts[op] += 1
        elif getattr(ql, "operand_op", None) is not None:   # an Add / Mul of a constant left in float
            counts[str(ql.operand_op)] += 1
        elif layer.type_name in names and op in ("", None):
            counts[names[layer.type_name]] += 1
    return counts


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("types", list(TYPES))
@pytest.mark.parametrize("per_channel", [False, True], ids=["pt", "pc"])
def test_zoo_fusion_decisions_and_bits(zoo_models, digits, tmp_path, fmt, types, per_channel):
    """The importer decides per node group as ORT's optimizer does (same fused and float operators), and
    the host and precise profiles equal ORT on every validation image and 256 adversarial inputs."""
    path = zoo_models[(fmt, types, per_channel)]
    qnet = fp.import_onnx(path)
    assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
    rng = np.random.default_rng(5)
    x = np.concatenate([digits[1], rng.uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    feed = "x"
    expected = _session(path).run(None, {feed: x})[0]
    assert np.array_equal(qnet.predict(x), expected)
    if AVX2_HOST and not (fmt == "QOperator" and types == "S8S8"):   # ORT has no kernel there
        assert our_ops(qnet, "ort_op_precise") == ort_ops(path, tmp_path, precise=True)
        precise = _session(path, precise=True).run(None, {feed: x})[0]
        assert np.array_equal(qnet.predict(x, runtime="onnxruntime-avx2-precise"), precise)


def test_digits_fusion_decisions(tmp_path, digits):
    """The digits networks as trained (float batch norms) and prepared, S8S8 QDQ per tensor: ORT's S8->U8
    conversion leaves some convolutions and the residual Add in float; the importer says the same."""
    for name in ("cnn", "mobilenet"):
        for prepared in (False, True):
            net = getattr(fp.examples, f"digits_{name}")()
            source = tmp_path / f"{name}{prepared}.onnx"
            onnx.save(fp.export_onnx(fp.prepare_network(net) if prepared else net), str(source))
            for types in ("S8S8", "U8S8"):
                path = quantize(source, tmp_path / f"{name}{prepared}{types}.onnx", digits[0], "QDQ", types, False)
                assert our_ops(fp.import_onnx(path), "ort_op") == ort_ops(path, tmp_path), (name, prepared, types)


@pytest.mark.parametrize("types", ["U8S8", "S8S8"])
def test_dedicated_qdq_pairs_merge_as_in_ort(tmp_path, digits, types):
    """quantize_static's DedicatedQDQPair gives each reader of a tensor its own Q -> DQ; ORT's
    ConstantSharing + CommonSubexpressionElimination merge the identical Qs again, so the producer still
    fuses (and its Q, read by two DQs, is not turned into uint8). Without that rule 808 of 1258 outputs
    of the U8S8 model differed on AVX2."""
    source = tmp_path / "mobilenet.onnx"
    onnx.save(fp.export_onnx(fp.prepare_network(fp.examples.digits_mobilenet())), str(source))
    path = quantize(source, tmp_path / f"dedicated_{types}.onnx", digits[0], "QDQ", types, True,
                    DedicatedQDQPair=True)
    qnet = fp.import_onnx(path)
    assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
    x = np.concatenate([digits[1], np.random.default_rng(9).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    assert np.array_equal(qnet.predict(x), _session(path).run(None, {"input": x})[0])
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"),
                          _session(path, disable=True).run(None, {"input": x})[0])
    if AVX2_HOST:
        assert np.array_equal(qnet.predict(x, runtime="onnxruntime-avx2-precise"),
                              _session(path, precise=True).run(None, {"input": x})[0])


@pytest.mark.parametrize("option, types", [
    ("QuantizeBias", "U8S8"), ("QuantizeBias", "S8S8"), ("AddQDQPairToWeight", "U8S8"), ("AddQDQPairToWeight", "S8S8"),
    ("ActivationSymmetric", "U8S8"), ("ActivationSymmetric", "S8S8")])
def test_quantize_static_options(tmp_path, digits, types, option):
    """Float biases (QuantizeBias=False: ORT's WeightBiasQuantization makes them int32; a group that then
    stays float, like the S8S8 stem convolution, runs with the dequantized int32 bias: 215 of 1258
    outputs differed with the original float bias), weights as Q -> DQ of float initializers, and
    symmetric activations."""
    source = tmp_path / "mobilenet.onnx"
    onnx.save(fp.export_onnx(fp.prepare_network(fp.examples.digits_mobilenet())), str(source))
    value = option != "QuantizeBias"
    path = quantize(source, tmp_path / f"{option}_{types}.onnx", digits[0], "QDQ", types, True, **{option: value})
    qnet = fp.import_onnx(path)
    x = np.concatenate([digits[1], np.random.default_rng(10).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    assert np.array_equal(qnet.predict(x), _session(path).run(None, {"input": x})[0])
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"),
                          _session(path, disable=True).run(None, {"input": x})[0])
    if AVX2_HOST:
        assert np.array_equal(qnet.predict(x, runtime="onnxruntime-avx2-precise"),
                              _session(path, precise=True).run(None, {"input": x})[0])


# --- hand-made QDQ graphs ------------------------------------------------------------------------------
def _qdq_conv_model(activation=None, clip_max=6.0, zero=0, final_dq=True, channels=(1, 4), out_scale=0.03):
    """x -> Q -> DQ -> Conv (DQ int8 weights, int32 bias) [-> Relu | Clip] -> Q [-> DQ]."""
    rng = np.random.default_rng(3)
    cin, cout = channels
    w = rng.integers(-127, 128, (cout, cin, 3, 3)).astype(np.int8)
    ws = np.float32(0.01)
    sx, sy = np.float32(1 / 255), np.float32(out_scale)
    b = rng.integers(-300, 300, cout).astype(np.int32)
    init = [numpy_helper.from_array(v, n) for v, n in [
        (np.array(sx), "sx"), (np.array(0, np.uint8), "zx"), (w, "w"), (np.array(ws), "ws"),
        (np.array(0, np.int8), "zw"), (b, "b"), (np.array(sx * ws, np.float32), "bs"), (np.array(0, np.int32), "zb"),
        (np.array(sy), "sy"), (np.array(zero, np.uint8), "zy"), (np.array(0.0, np.float32), "lo"),
        (np.array(clip_max, np.float32), "hi")]]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "zw"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "zb"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    y = "y"
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["y"], ["r"], name="act"))
        y = "r"
    elif activation == "Clip":
        nodes.append(helper.make_node("Clip", ["y", "lo", "hi"], ["r"], name="act"))
        y = "r"
    nodes.append(helper.make_node("QuantizeLinear", [y, "sy", "zy"], ["yq"], name="q"))
    outputs = [helper.make_tensor_value_info("yq", TP.UINT8, [None, cout, 8, 8])]
    if final_dq:
        nodes.append(helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["out"]))
        outputs = [helper.make_tensor_value_info("out", TP.FLOAT, [None, cout, 8, 8])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [None, cin, 8, 8])],
                              outputs, init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("activation, clip_max, zero, fused", [
    ("Relu", 6.0, 0, True),        # redundant: Q saturates at 0
    ("Relu", 6.0, 20, False),      # not redundant: zero point 20 > 0, ORT keeps Conv in float
    ("Clip", 6.0, 0, False),       # 6 < the Q's top 255 * 0.03: the Clip is not redundant
    ("Clip", 8.0, 0, True),        # 8 >= 7.65: redundant
    (None, 6.0, 7, True),
])
def test_relu_clip_before_q(tmp_path, digits, activation, clip_max, zero, fused):
    model = _qdq_conv_model(activation, clip_max, zero)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    qnet = fp.import_onnx(path)
    assert (qnet.qlayers["conv"].ort_op == "QLinearConv") == fused
    assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
    x = np.concatenate([digits[1], np.random.default_rng(1).uniform(-0.5, 1.5, (256, 1, 8, 8)).astype(np.float32)])
    for runtime, session in (("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))):
        assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), runtime


@pytest.mark.parametrize("channels", [(8, 16), (64, 64), (4, 12)])
def test_float_conv_in_the_optimized_graph(tmp_path, channels):
    """A Conv whose Relu is not redundant (zero point 20) stays float in ORT's optimized graph (FusedConv
    with its Relu; not NCHWc, whose rewrite needs initializer weights and these come through a DQ): ORT's
    MlasConv sums (conv_float), then the Q."""
    path = str(tmp_path / "m.onnx")
    onnx.save(_qdq_conv_model("Relu", zero=20, channels=channels, out_scale=0.25), path)
    qnet = fp.import_onnx(path)
    assert qnet.qlayers["conv"].ort_op == ""
    assert "Conv" in ort_ops(path, tmp_path)
    x = np.random.default_rng(8).uniform(-0.2, 1.2, (512, channels[0], 8, 8)).astype(np.float32)
    assert np.array_equal(qnet.predict(x), _session(path).run(None, {"x": x})[0])


def test_integer_graph_output(tmp_path, digits):
    """A graph ending in a QuantizeLinear returns ORT's uint8 integers."""
    path = str(tmp_path / "m.onnx")
    onnx.save(_qdq_conv_model("Relu", final_dq=False), path)
    qnet = fp.import_onnx(path)
    assert qnet.integer_outputs
    got = qnet.predict(digits[1])
    expected = _session(path).run(None, {"x": digits[1]})[0]
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_qdq_matmul(tmp_path, digits):
    """A QDQ / QOperator MatMul with a bias Add (quantize_static of Flatten -> MatMul -> Add): ORT runs
    QLinearMatMul and a QLinearAdd of the constant bias (2-D: the diagonal fully connected float layer holds
    the constant's integers)."""
    rng = np.random.default_rng(2)
    init = [numpy_helper.from_array(rng.normal(0, 0.3, (64, 10)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.normal(0, 0.5, 10).astype(np.float32), "bias")]
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y0"], name="mm"),
             helper.make_node("Add", ["y0", "bias"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    source = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(source))
    x = np.concatenate([digits[1], np.random.default_rng(7).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    for fmt in ("QDQ", "QOperator"):
        path = quantize(source, tmp_path / f"mm_{fmt}.onnx", digits[0], fmt, "U8S8", True)
        qnet = fp.import_onnx(path)
        assert qnet.qlayers["add" if fmt == "QDQ" else "add_quant"].ort_op == "QLinearAdd"
        assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
        for runtime, session in (("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))):
            assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), (fmt, runtime)


def _constant_operand_model(first):
    """x -> Conv -> Add(per-channel constant) -> Mul(scalar constant) -> Flatten -> Gemm; `first`: the
    constants are the Add's and Mul's first inputs (ORT's operand A)."""
    rng = np.random.default_rng(4)
    init = [numpy_helper.from_array(v.astype(np.float32), n) for v, n in [
        (rng.normal(0, .4, (4, 1, 3, 3)), "w1"), (rng.normal(0, .2, 4), "b1"), (rng.normal(0, .5, (4, 1, 1)), "c_add"),
        (np.array(1.7), "c_mul"), (rng.normal(0, .5, (10, 256)), "w3"), (rng.normal(0, .1, 10), "b3")]]
    pair = (lambda x, c: [c, x]) if first else (lambda x, c: [x, c])
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Add", pair("c1", "c_add"), ["a"], name="add"),
             helper.make_node("Mul", pair("a", "c_mul"), ["m"], name="mul"),
             helper.make_node("Flatten", ["m"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("types", ["U8S8", "S8S8"])
@pytest.mark.parametrize("first", [False, True], ids=["x-first", "constant-first"])
def test_qlinear_add_mul_with_a_constant(tmp_path, digits, fmt, types, first):
    """quantize_static quantizes the constant operand of an Add / Mul like an activation: QOperator writes
    QLinearAdd / QLinearMul with a constant input, ORT fuses the QDQ group alike (when the constant's type
    equals the activations' after the S8->U8 conversion; else the Add stays float). Every profile equals ORT;
    the fused and float operators equal ORT's optimized graph."""
    source = tmp_path / "c.onnx"
    onnx.save(_constant_operand_model(first), str(source))
    path = quantize(source, tmp_path / f"c_{fmt}_{types}.onnx", digits[0], fmt, types, True)
    qnet = fp.import_onnx(path)
    assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
    x = np.concatenate([digits[1], np.random.default_rng(12).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    runs = [("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))]
    if AVX2_HOST and not (fmt == "QOperator" and types == "S8S8"):   # ORT has no kernel there
        runs.append(("onnxruntime-avx2-precise", _session(path, precise=True)))
    for runtime, session in runs:
        assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), runtime


# --- errors --------------------------------------------------------------------------------------------
def test_unsupported_operator_names_node_and_list(tmp_path):
    model = _qdq_conv_model("Relu")
    model.graph.node.insert(5, helper.make_node("Erf", ["y"], ["e"], name="erf_node"))
    model.graph.node[6].input[0] = "e"
    with pytest.raises(OnnxImportError, match=r"unsupported operator 'Erf'.*'erf_node'.*Supported operators"):
        fp.import_onnx(model)


def test_unsupported_com_microsoft_operator(tmp_path):
    model = _qdq_conv_model("Relu")
    node = helper.make_node("QLinearWhere", ["xq"], ["w2"], domain="com.microsoft", name="where")
    model.graph.node.insert(1, node)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(OnnxImportError, match="QLinearWhere"):
        fp.import_onnx(model.SerializeToString())


@pytest.mark.parametrize("cut", [0.3, 0.9])
def test_truncated_file(tmp_path, cut):
    data = _qdq_conv_model("Relu").SerializeToString()
    with pytest.raises(OnnxImportError):
        fp.import_onnx(data[:int(len(data) * cut)])


def test_dq_with_other_parameters_than_its_q():
    model = _qdq_conv_model()
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "other"))
    model.graph.node[1].input[1] = "other"
    with pytest.raises(OnnxImportError, match="differ from those"):
        fp.import_onnx(model)


def test_precise_profile_refuses_what_ort_cannot_run(zoo_models):
    """ORT fails to create a session for S8S8 QOperator convolutions under x64quantprecision (no int8 x
    uint8 kernel); the profile says so instead of inventing numbers."""
    qnet = fp.import_onnx(zoo_models[("QOperator", "S8S8", True)])
    with pytest.raises(RuntimeNotSupportedError, match="x64quantprecision"):
        qnet.predict(np.zeros((1, 1, 8, 8), np.float32), runtime="onnxruntime-avx2-precise")


def test_float_model_still_imports_as_network(tmp_path):
    model = fp.export_onnx(fp.examples.digits_cnn())
    assert isinstance(fp.import_onnx(model), fp.Network)


def _resize_model(transform="asymmetric", nearest="floor"):
    """x -> Conv -> Resize(nearest, x2) -> Conv -> GlobalAveragePool -> Flatten -> Gemm, in float."""
    rng = np.random.default_rng(4)
    init = [numpy_helper.from_array(v.astype(np.float32), n) for v, n in [
        (rng.normal(0, 0.4, (4, 1, 3, 3)), "w1"), (rng.normal(0, 0.2, 4), "b1"),
        (rng.normal(0, 0.4, (4, 4, 3, 3)), "w2"), (rng.normal(0, 0.2, 4), "b2"),
        (rng.normal(0, 0.5, (10, 4)), "w3"), (rng.normal(0, 0.1, 10), "b3"),
        (np.array([1, 1, 2, 2]), "scales")]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Resize", ["c1", "", "scales"], ["r"], mode="nearest", name="resize",
                              coordinate_transformation_mode=transform, nearest_mode=nearest),
             helper.make_node("Conv", ["r", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("transform, nearest", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor")])
def test_nearest_resize(tmp_path, digits, fmt, transform, nearest):
    source = tmp_path / "resize.onnx"
    onnx.save(_resize_model(transform, nearest), str(source))
    float_net = fp.import_onnx(str(source))
    float_session = _session(str(source))
    assert np.allclose(float_net.predict(digits[1]), float_session.run(None, {"x": digits[1]})[0], atol=1e-5)
    path = quantize(source, tmp_path / f"resize_{fmt}.onnx", digits[0], fmt, "U8S8", True)
    qnet = fp.import_onnx(path)
    assert qnet.layer("resize").type_name == "Resize2D"
    x = np.concatenate([digits[1], np.random.default_rng(6).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    for runtime, session in (("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))):
        assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), runtime


def _linear_resize_model(transform, scales):
    model = _resize_model()
    resize = model.graph.node[1]
    for attribute in resize.attribute:
        if attribute.name == "mode":
            attribute.s = b"linear"
        if attribute.name == "coordinate_transformation_mode":
            attribute.s = transform.encode()
    scale = next(t for t in model.graph.initializer if t.name == "scales")
    scale.CopyFrom(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
    return model


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("transform", ["asymmetric", "half_pixel", "align_corners", "pytorch_half_pixel"])
@pytest.mark.parametrize("scales", [(1, 1, 2, 2), (1, 1, 3, 1.5)], ids=["x2", "x3-x1.5"])
def test_linear_resize(tmp_path, digits, fmt, transform, scales):
    """Linear Resize between convolutions. QDQ: ORT keeps it float between DQ and Q (on NHWC data in the
    optimized graph, which gives the same floats). QOperator: it reads the integers; the optimized graph runs it
    in NHWC between the NHWC QLinearConvs (10-bit integer weights: 195 to 783 of 1514 outputs differ from
    the NCHW float formula with these factors), ORT_DISABLE_ALL in NCHW (the float formula, truncated)."""
    source = tmp_path / "resize.onnx"
    onnx.save(_linear_resize_model(transform, scales), str(source))
    float_net = fp.import_onnx(str(source))
    assert np.allclose(float_net.predict(digits[1]), _session(str(source)).run(None, {"x": digits[1]})[0], atol=1e-5)
    path = quantize(source, tmp_path / f"resize_{fmt}.onnx", digits[0], fmt, "U8S8", True)
    qnet = fp.import_onnx(path)
    resize = qnet.layer("resize") if fmt == "QDQ" else next(l for l in qnet.layers if l.type_name == "Resize2D")
    assert resize.type_name == "Resize2D" and resize.mode == "linear"
    assert qnet.qlayers[resize.name].ort_op == ("" if fmt == "QDQ" else "ResizeNHWC")
    assert our_ops(qnet, "ort_op") == ort_ops(path, tmp_path)
    x = np.concatenate([digits[1], np.random.default_rng(6).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    runs = [("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))]
    if AVX2_HOST:
        runs.append(("onnxruntime-avx2-precise", _session(path, precise=True)))
    for runtime, session in runs:
        assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), runtime


def test_linear_resize_save_load(tmp_path, digits):
    """The linear Resize2D layer's attributes are saved with the network; the loaded one computes the same bits
    under every profile."""
    from fixedpoint.quantization.qnetwork import load_quantized_network
    source = tmp_path / "resize.onnx"
    onnx.save(_linear_resize_model("half_pixel", (1, 1, 3, 1.5)), str(source))
    qnet = fp.import_onnx(quantize(source, tmp_path / "resize_q.onnx", digits[0], "QOperator", "U8S8", True))
    qnet.save(tmp_path / "q.npz")
    loaded = load_quantized_network(tmp_path / "q.npz")
    for runtime in ("onnxruntime", "onnxruntime-reference"):
        assert np.array_equal(loaded.predict(digits[1], runtime=runtime), qnet.predict(digits[1], runtime=runtime))


def _pad_model():
    """x -> Conv -> Pad (H and W, asymmetric, zeros) -> Conv -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(13)
    init = [numpy_helper.from_array(v.astype(np.float32), n) for v, n in [
        (rng.normal(0, .4, (4, 1, 3, 3)), "w1"), (rng.normal(0, .2, 4), "b1"), (rng.normal(0, .4, (4, 4, 3, 3)), "w2"),
        (rng.normal(0, .2, 4), "b2"), (rng.normal(0, .5, (10, 4)), "w3"), (rng.normal(0, .1, 10), "b3")]]
    init.append(numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads"))
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Pad", ["c1", "pads"], ["p"], name="pad"),
             helper.make_node("Conv", ["p", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [None, 10])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("types", ["U8S8", "S8S8"])
def test_qoperator_pad_before_qlinearconv(tmp_path, digits, types):
    """quantize_static's QOperator Pad pads the integers with the zero point in front of a QLinearConv: folded
    into the convolution's padding (which takes the input zero point), equal to ORT."""
    source = tmp_path / "pad.onnx"
    onnx.save(_pad_model(), str(source))
    path = quantize(source, tmp_path / f"pad_{types}.onnx", digits[0], "QOperator", types, True)
    assert "Pad" in [n.op_type for n in onnx.load(path).graph.node]
    qnet = fp.import_onnx(path)
    x = np.concatenate([digits[1], np.random.default_rng(14).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    for runtime, session in (("onnxruntime", _session(path)), ("onnxruntime-reference", _session(path, disable=True))):
        assert np.array_equal(qnet.predict(x, runtime=runtime), session.run(None, {"x": x})[0]), runtime


def test_qdq_pad_is_refused(tmp_path, digits):
    """A QDQ Pad (DequantizeLinear -> Pad -> QuantizeLinear) is refused with the node named."""
    source = tmp_path / "pad.onnx"
    onnx.save(_pad_model(), str(source))
    path = quantize(source, tmp_path / "pad_qdq.onnx", digits[0], "QDQ", "U8S8", True)
    with pytest.raises(OnnxImportError, match="'pad' \\(Pad\\)"):
        fp.import_onnx(path)


def test_cubic_resize_is_refused():
    """ORT runs a cubic Resize on NHWC floats in the optimized graph (not the NCHW formula), not emulated."""
    model = _resize_model()
    next(a for a in model.graph.node[1].attribute if a.name == "mode").s = b"cubic"
    with pytest.raises(OnnxImportError, match="cubic"):
        fp.import_onnx(model)


def test_save_load_keeps_every_profile(zoo_models, digits, tmp_path):
    """An imported network saved and loaded computes the same bits under every ORT profile (the
    per-graph operators and the integers are plain saved data)."""
    from fixedpoint.quantization.qnetwork import load_quantized_network
    qnet = fp.import_onnx(zoo_models[("QDQ", "S8S8", True)])
    qnet.save(tmp_path / "q.npz")
    loaded = load_quantized_network(tmp_path / "q.npz")
    for runtime in ("onnxruntime", "onnxruntime-avx2", "onnxruntime-vnni", "onnxruntime-reference"):
        assert np.array_equal(loaded.predict(digits[1], runtime=runtime), qnet.predict(digits[1], runtime=runtime))
    assert loaded.qlayers["conv2"].ort_op == qnet.qlayers["conv2"].ort_op == ""


def test_dequantize_without_zero_point(tmp_path, digits):
    """DequantizeLinear without a zero point input: zero of the integers' own type (the int32 bias)."""
    model = _qdq_conv_model("Relu")
    bias_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "b")
    del bias_dq.input[2]
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    qnet = fp.import_onnx(path)
    assert qnet.qlayers["conv"].ort_op == "QLinearConv"
    assert np.array_equal(qnet.predict(digits[1]), _session(path).run(None, {"x": digits[1]})[0])


def test_float16_scale_is_refused():
    model = _qdq_conv_model()
    scale = next(t for t in model.graph.initializer if t.name == "sy")
    scale.CopyFrom(numpy_helper.from_array(np.array(0.03, np.float16), "sy"))
    with pytest.raises(OnnxImportError, match="float32"):
        fp.import_onnx(model)
