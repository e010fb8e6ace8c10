"""Affine quantized networks (scales and zero points) and runtime profiles: the shared machinery.

`QuantParams` against independent float32 / Fraction arithmetic; a hand-built affine network
(QuantizeLinear -> QLinearConv per channel -> QGemm -> DequantizeLinear) against ONNX Runtime with
`session.x64quantprecision=1`, which makes ORT's accumulation exact on every x86 CPU (the
onnxruntime-vnni semantics); `runtime=` errors; files.
"""
from fractions import Fraction

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.quantization.layers import AffineLayer
from fixedpoint.quantization.qnetwork import QTensor
from fixedpoint.quantization.targets import get_target
from fixedpoint.runtime import RUNTIMES

P = fp.QuantParams


# --- QuantParams --------------------------------------------------------------------------------
def test_dequantize_is_one_float32_rounding_of_the_exact_product():
    rng = np.random.default_rng(1)
    scale = np.float32(0.0123456)
    q = rng.integers(0, 256, 1000).astype(np.uint8)
    got = P(np.uint8, scale, 131).dequantize(q)
    exact = [Fraction(int(v) - 131) * Fraction(float(scale)) for v in q]
    assert got.dtype == np.float32
    assert np.array_equal(got, np.array([float(e) for e in exact], np.float64).astype(np.float32))


def test_per_channel_dequantize_follows_the_axis():
    scales = np.array([0.5, 0.25, 2.0], np.float32)
    p = P(np.int8, scales, [0, 1, -2], axis=1)
    q = np.arange(-6, 6, dtype=np.int8).reshape(2, 3, 2)
    expected = (q.astype(np.int32) - np.array([0, 1, -2]).reshape(1, 3, 1)) * scales.reshape(1, 3, 1)
    assert np.array_equal(p.dequantize(q), expected.astype(np.float32))


def test_numerictype_holds_scale_and_zero_point_exactly():
    p = P(np.uint8, np.float32(0.0123456), 131)
    T = p.numerictype()
    assert T.slope == Fraction(float(np.float32(0.0123456)))
    assert T.bias == -T.slope * 131
    value = fp.fi._from_stored(np.array([0, 131, 255], np.int64), T)
    assert [Fraction(v) for v in value.double()] == [T.slope * (q - 131) for q in (0, 131, 255)]
    assert P.pow2(5).numerictype() == fp.numerictype(1, 8, 5)
    assert P.pow2(-2).numerictype() == fp.numerictype(1, 8, -2)


def test_pow2_detection_and_config_round_trip():
    assert P.pow2(7).fraction_length == 7 and P.pow2(7).is_pow2
    assert P(np.int8, 0.125, 0).fraction_length == 3
    assert P(np.int8, 0.125, 1).fraction_length is None
    assert P(np.int8, 0.1, 0).fraction_length is None
    for p in (P.pow2(3), P(np.uint8, 0.02, 7), P(np.int8, [0.1, 0.2], 0, axis=0)):
        assert P.from_config(p.to_config()) == p


@pytest.mark.parametrize("args, message", [
    ((np.float32, 0.1, 0), "dtype"),
    ((np.int8, 0.0, 0), "scale"),
    ((np.int8, np.nan, 0), "scale"),
    ((np.int8, 1e-50, 0), "float32"),
    ((np.int8, 0.1, 128), "zero_point"),
    ((np.uint8, 0.1, -1), "zero_point"),
    ((np.int8, [0.1, 0.2], [0, 0, 0], 0), "entries"),
    ((np.int8, [0.1, 0.2], 0), "axis"),
])
def test_quant_params_reject_bad_values(args, message):
    with pytest.raises(ValueError, match=message):
        P(*args)


# --- a hand-built affine network against ONNX Runtime --------------------------------------------
N, C, H, W, O, K = 4, 3, 8, 8, 6, 10


def _parameters(seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        w=rng.integers(-127, 128, (O, C, 3, 3)).astype(np.int8),
        ws=(rng.random(O) * 0.02 + 0.001).astype(np.float32),
        b=rng.integers(-2000, 2000, O).astype(np.int32),
        w2=rng.integers(-127, 128, (K, O * H * W)).astype(np.int8),
        ws2=(rng.random(K) * 0.01 + 0.001).astype(np.float32),
        b2=rng.integers(-5000, 5000, K).astype(np.int32),
        sx=np.float32(0.02), zx=3, sy=np.float32(0.05), zy=100, sz=np.float32(0.1), zz=128,
        x=(rng.random((N, C, H, W)) * 3 - 1).astype(np.float32))


def _network(p):
    net = fp.Network([fp.ImageInputLayer("x", (C, H, W)),
                      fp.Convolution2DLayer("conv", p["w"] * p["ws"][:, None, None, None], padding=1),
                      fp.FullyConnectedLayer("fc", p["w2"] * p["ws2"][:, None])],
                     [("x", "conv"), ("conv", "fc")])
    layers = {
        "conv": AffineLayer(net.layer("conv"), [P(np.uint8, p["sx"], p["zx"])], P(np.uint8, p["sy"], p["zy"]),
                            weights=p["w"], weight_params=P(np.int8, p["ws"], 0, axis=0), bias=p["b"]),
        "fc": AffineLayer(net.layer("fc"), [P(np.uint8, p["sy"], p["zy"])], P(np.uint8, p["sz"], p["zz"]),
                          weights=p["w2"], weight_params=P(np.int8, p["ws2"], 0, axis=0), bias=p["b2"]),
    }
    return fp.QuantizedNetwork(net, layers, None, get_target("ONNXRuntime"))


def _ort_model(p):
    onnx = pytest.importorskip("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    consts = [numpy_helper.from_array(v, n) for v, n in [
        (np.array(p["sx"]), "sx"), (np.array(p["zx"], np.uint8), "zx"), (p["w"], "w"), (p["ws"], "ws"),
        (np.zeros(O, np.int8), "zw"), (np.array(p["sy"]), "sy"), (np.array(p["zy"], np.uint8), "zy"),
        (p["b"], "b"), (p["w2"], "w2"), (p["ws2"], "ws2"), (np.zeros(K, np.int8), "zw2"), (p["b2"], "b2"),
        (np.array(p["sz"]), "sz"), (np.array(p["zz"], np.uint8), "zz")]]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "sx", "zx", "w", "ws", "zw", "sy", "zy", "b"], ["yq"],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["yq"], ["fq"]),
        helper.make_node("QGemm", ["fq", "sy", "zy", "w2", "ws2", "zw2", "b2", "sz", "zz"], ["zq"],
                         domain="com.microsoft", transB=1),
        helper.make_node("DequantizeLinear", ["zq", "sz", "zz"], ["out"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, C, H, W])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [None, K])], consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid("com.microsoft", 1)])


def test_affine_network_equals_onnxruntime_with_exact_accumulation():
    ort = pytest.importorskip("onnxruntime")
    p = _parameters()
    options = ort.SessionOptions()
    options.add_session_config_entry("session.x64quantprecision", "1")   # exact u8 weights on AVX2 too
    session = ort.InferenceSession(_ort_model(p).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": p["x"]})[0]
    got = _network(p).predict(p["x"], runtime="onnxruntime-vnni")
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_layer_outputs_are_integers_with_their_parameters():
    p = _parameters()
    qnet = _network(p)
    values = qnet.run({"x": p["x"]}, outputs=["conv"], runtime="onnxruntime-vnni")
    conv = values["conv"]
    assert isinstance(conv, QTensor) and conv.q.dtype == np.uint8 and conv.params == P(np.uint8, p["sy"], p["zy"])
    as_fi = qnet.predict(p["x"], outputs="conv", runtime="onnxruntime-vnni")
    assert np.array_equal(np.asarray(as_fi.stored_integer), conv.q)


def test_save_and_load_keep_every_bit(tmp_path):
    p = _parameters(3)
    qnet = _network(p)
    path = tmp_path / "affine.npz"
    qnet.save(path)
    loaded = fp.load_quantized_network(path)
    assert loaded.scheme == "affine" and loaded.default_runtime == "onnxruntime"
    assert loaded.qlayers["conv"].weight_params == qnet.qlayers["conv"].weight_params
    assert np.array_equal(loaded.predict(p["x"], runtime="onnxruntime-vnni"),
                          qnet.predict(p["x"], runtime="onnxruntime-vnni"))


def test_integer_inputs_and_outputs():
    p = _parameters(4)
    base = _network(p)
    net = base.network
    qnet = fp.QuantizedNetwork(net, base.qlayers, None, get_target("ONNXRuntime"),
                               input_params={"x": P(np.uint8, p["sx"], p["zx"])}, integer_outputs=True)
    xq = np.random.default_rng(5).integers(0, 256, (N, C, H, W)).astype(np.uint8)
    got = qnet.predict(xq, runtime="onnxruntime-vnni")
    assert got.dtype == np.uint8 and got.shape == (N, K)
    floats = base.predict(P(np.uint8, p["sx"], p["zx"]).dequantize(xq), runtime="onnxruntime-vnni")
    assert np.array_equal(P(np.uint8, p["sz"], p["zz"]).dequantize(got), floats)
    with pytest.raises(ValueError, match="takes uint8 integers"):
        qnet.predict(xq.astype(np.float32), runtime="onnxruntime-vnni")


# --- runtime selection errors --------------------------------------------------------------------
def test_runtime_errors_name_the_problem():
    p = _parameters()
    qnet = _network(p)
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        qnet.predict(p["x"], runtime="tensorrt")
    with pytest.raises(ValueError, match="emulates litert models"):
        qnet.predict(p["x"], runtime="litert-reference")
    cnn = fp.examples.digits_cnn()
    q = fp.dlquantizer(cnn, "MATLAB")
    q.calibrate(np.zeros((2, 1, 8, 8), np.float32), progress=False)
    with pytest.raises(ValueError, match="power-of-two scaling"):
        q.quantize().predict(np.zeros((1, 1, 8, 8), np.float32), runtime="onnxruntime")


def test_a_layer_type_a_profile_does_not_run_is_named():
    p = _parameters()
    net = _network(p)
    bare = fp.runtime.RuntimeProfile("bare", "onnxruntime", "test profile", RUNTIMES["onnxruntime-vnni"].quantize,
                                     {"FullyConnected": RUNTIMES["onnxruntime-vnni"].ops["FullyConnected"]})
    with pytest.raises(fp.RuntimeNotSupportedError, match="layer 'conv'.*no emulation of Convolution2D"):
        net.predict(p["x"], runtime=bare)


def test_every_recipe_cites_its_source():
    for profile in RUNTIMES.values():
        assert "source" in profile.quantize
        for kind, recipe in profile.ops.items():
            assert recipe["source"], (profile.name, kind)
    table = fp.runtimes()
    assert table["Runtime"].iloc[0] == "onnxruntime" and set(RUNTIMES) <= set(table["Runtime"])
