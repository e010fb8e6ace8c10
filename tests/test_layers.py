"""Each layer's float forward against an independent reference (float64 loops / formulas, or torch),
its shape rule, its serialisation and its error messages."""
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp
from fixedpoint.nn import functional as F
from fixedpoint.nn.layers import LAYER_REGISTRY, make_layer

from float_references import conv_reference
from fixedpoint.nn.layers import Resize2DLayer

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def rel_err(got, want):
    want = np.asarray(want, np.float64)
    return np.abs(np.asarray(got, np.float64) - want).max() / max(np.abs(want).max(), 1e-30)


# --- independent float64 references ------------------------------------------------------------
def pool_reference(x, mode, k, s, pads, ceil_mode, include_pad):
    """Window loops (float64) following the documented rules."""
    n, c, h, w = x.shape
    oh, ow = (F.output_size(h, k[0], s[0], pads[0], pads[2], 1, ceil_mode),
              F.output_size(w, k[1], s[1], pads[1], pads[3], 1, ceil_mode))
    out = np.zeros((n, c, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, c0 = i * s[0] - pads[0], j * s[1] - pads[1]
        r1, c1 = min(r0 + k[0], h + pads[2]), min(c0 + k[1], w + pads[3])
        window = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)].astype(np.float64)
        if mode == "max":
            out[:, :, i, j] = window.max(axis=(2, 3))
        else:
            count = (r1 - r0) * (c1 - c0) if include_pad else window.shape[2] * window.shape[3]
            out[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return out


CONV_CASES = [  # channels, filters, groups, kernel, stride, padding, dilation
    (3, 4, 1, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
    (4, 6, 1, (3, 2), (2, 1), (1, 0, 2, 1), (1, 1)),
    (6, 6, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),       # depthwise
    (4, 8, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),       # depthwise, multiplier 2
    (6, 9, 3, (3, 3), (1, 2), (2, 2, 2, 2), (2, 2)),       # grouped + dilated
    (5, 7, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),       # pointwise fast path
    (5, 7, 1, (1, 1), (2, 2), (1, 0, 0, 1), (1, 1)),
    (4, 4, 2, (5, 5), (2, 2), "same", (1, 1)),
    (4, 4, 1, (4, 4), (3, 3), "same_lower", (1, 1)),
    (3, 5, 1, (2, 3), (1, 1), "same", (2, 1)),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_convolution_matches_direct_loops(case):
    c, o, groups, k, stride, padding, dilation = case
    x, w, b = randn(2, c, 9, 8), randn(o, c // groups, *k), randn(o)
    layer = fp.Convolution2DLayer("conv", w, b, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups)
    y = layer.forward(x)
    pads = F.resolve_padding(layer.padding, (9, 8), k, stride, dilation)
    assert y.dtype == np.float32
    assert rel_err(y, conv_reference(x, w, b, stride, pads, dilation, groups)) < 1e-5
    assert layer.output_shape(x.shape) == y.shape
    assert layer.is_depthwise == (groups == c)


def test_same_padding_conventions():
    # 'same' puts the odd extra padding at the end (MATLAB 'same', ONNX SAME_UPPER)
    assert F.resolve_padding("same", (10, 7), (4, 3), (1, 2), (1, 1)) == (1, 1, 2, 1)
    assert F.resolve_padding("same_lower", (10, 7), (4, 3), (1, 2), (1, 1)) == (2, 1, 1, 1)
    assert F.resolve_padding("same", (5, 5), (1, 1), (2, 2), (1, 1)) == (0, 0, 0, 0)


def test_convolution_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = randn(2, 8, 13, 11), randn(8, 2, 3, 3), randn(8)
    layer = fp.Convolution2DLayer("c", w, b, stride=2, padding=1, dilation=2, groups=4)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2,
                                      padding=1, dilation=2, groups=4).numpy()
    assert rel_err(layer.forward(x), want) < 1e-5


POOL_CASES = [  # kernel, stride, padding, ceil_mode
    ((2, 2), (2, 2), (0, 0, 0, 0), False),
    ((3, 3), (2, 2), (1, 1, 1, 1), False),
    ((3, 3), (2, 2), (1, 1, 1, 1), True),
    ((3, 2), (2, 3), (0, 1, 2, 0), True),
    ((3, 3), (1, 1), (0, 0, 0, 0), False),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("include_pad", [False, True])
def test_pooling_matches_window_loops(case, include_pad):
    k, s, pads, ceil_mode = case
    x = randn(2, 3, 9, 10)
    avg = fp.AveragePooling2DLayer("a", k, s, pads, ceil_mode, count_include_pad=include_pad)
    mx = fp.MaxPooling2DLayer("m", k, s, pads, ceil_mode)
    for layer, mode in ((avg, "average"), (mx, "max")):
        y = layer.forward(x)
        assert y.dtype == np.float32 and layer.output_shape(x.shape) == y.shape
        assert rel_err(y, pool_reference(x, mode, k, s, pads, ceil_mode, include_pad)) < 1e-6


def test_pooling_matches_torch_ceil_mode():
    torch = pytest.importorskip("torch")
    x = randn(1, 2, 10, 10)
    for include in (False, True):
        want = torch.nn.functional.avg_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True,
                                              count_include_pad=include).numpy()
        got = fp.AveragePooling2DLayer("a", 3, 2, 1, True, include).forward(x)
        assert got.shape == want.shape and rel_err(got, want) < 1e-6
    want = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True).numpy()
    np.testing.assert_array_equal(fp.MaxPooling2DLayer("m", 3, 2, 1, True).forward(x), want)


def test_pooling_same_padding():
    x = randn(1, 2, 7, 6)
    layer = fp.MaxPooling2DLayer("m", 3, 2, "same")
    y = layer.forward(x)
    assert y.shape == (1, 2, 4, 3) == layer.output_shape(x.shape)
    pads = F.resolve_padding("same", (7, 6), (3, 3), (2, 2), (1, 1))
    assert pads == (1, 0, 1, 1)
    assert rel_err(y, pool_reference(x, "max", (3, 3), (2, 2), pads, False, False)) == 0


def test_global_pooling():
    x = randn(2, 3, 5, 4)
    np.testing.assert_allclose(fp.GlobalAveragePooling2DLayer("g").forward(x),
                               x.astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(fp.GlobalMaxPooling2DLayer("g").forward(x),
                                  x.max(axis=(2, 3), keepdims=True))


def test_fully_connected_flattens_images():
    x, w, b = randn(3, 2, 3, 4), randn(5, 24), randn(5)
    y = fp.FullyConnectedLayer("fc", w, b).forward(x)
    want = x.reshape(3, -1).astype(np.float64) @ w.T.astype(np.float64) + b
    assert y.shape == (3, 5) and rel_err(y, want) < 1e-6


def test_batch_normalization_formula():
    x = randn(2, 3, 4, 5)
    scale, offset, mean, var = randn(3), randn(3), randn(3), np.abs(randn(3)) + 0.1
    layer = fp.BatchNormalizationLayer("bn", scale, offset, mean, var, epsilon=1e-3)
    v = lambda a: a.astype(np.float64).reshape(1, 3, 1, 1)  # noqa: E731
    want = v(scale) * (x - v(mean)) / np.sqrt(v(var) + 1e-3) + v(offset)
    assert rel_err(layer.forward(x), want) < 1e-6
    assert rel_err(layer.forward(x[:, :, 0, 0]), want[:, :, 0, 0]) < 1e-6   # NC input
    gain, shift = layer.affine()
    assert rel_err(gain[None, :, None, None] * x + shift[None, :, None, None], want) < 1e-6


def test_activations():
    x = randn(4, 6) * 4
    x[0, 0], x[0, 1] = -100.0, 100.0
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(fp.ReLULayer("r").forward(x), np.where(x > 0, x, 0))
    np.testing.assert_allclose(fp.LeakyReLULayer("l", 0.2).forward(x),
                               np.where(x64 >= 0, x64, 0.2 * x64), rtol=1e-6)
    np.testing.assert_array_equal(fp.ClippedReLULayer("c", 6).forward(x), np.clip(x, 0, 6))
    with np.errstate(over="raise", invalid="raise"):
        sig = fp.SigmoidLayer("s").forward(x)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-x64)), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(fp.TanhLayer("t").forward(x), np.tanh(x64), rtol=1e-6)


def test_softmax_is_stable_and_exact():
    x = randn(3, 5, 2)
    x[0] += 1000.0          # would overflow without subtracting the maximum
    for axis in (1, 2, -1):
        e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
        y = fp.SoftmaxLayer("s", axis=axis).forward(x)
        assert np.isfinite(y).all()
        np.testing.assert_allclose(y, e / e.sum(axis=axis, keepdims=True), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_cross_channel_normalization(size):
    x = randn(2, 7, 3, 2)
    layer = fp.CrossChannelNormalizationLayer("lrn", size, alpha=2e-2, beta=0.75, k=1.5)
    x64 = x.astype(np.float64)
    want = np.empty_like(x64)
    for c in range(7):
        lo, hi = max(0, c - (size - 1) // 2), min(7, c + size - 1 - (size - 1) // 2 + 1)
        want[:, c] = x64[:, c] / (1.5 + 2e-2 / size * (x64[:, lo:hi] ** 2).sum(axis=1)) ** 0.75
    assert rel_err(layer.forward(x), want) < 1e-5


def test_combination_layers_broadcast():
    a, b, c = randn(2, 3, 4, 4), randn(2, 3, 1, 1), randn(2, 3, 4, 4)
    np.testing.assert_allclose(fp.AdditionLayer("add", 3).forward(a, b, c), a + b + c, rtol=1e-6)
    np.testing.assert_allclose(fp.MultiplicationLayer("mul").forward(a, b), a * b, rtol=1e-6)
    np.testing.assert_array_equal(fp.ConcatenationLayer("cat", 1, 2).forward(a, c),
                                  np.concatenate([a, c], axis=1))
    with pytest.raises(ValueError, match="'add'.*do not broadcast"):
        fp.AdditionLayer("add").forward(a, randn(2, 4, 4, 4))
    with pytest.raises(ValueError, match="'cat'.*do not match"):
        fp.ConcatenationLayer("cat").forward(a, randn(2, 3, 5, 4))
    with pytest.raises(ValueError, match="takes 3 inputs, got 2"):
        fp.AdditionLayer("add", 3).forward(a, c)


def test_reshape_transpose_flatten():
    x = randn(2, 6, 4, 5)
    shuffle = fp.ReshapeLayer("r1", (2, 3, 4, -1)).forward(x)
    assert fp.ReshapeLayer("r0", (0, -1)).forward(x).shape == (2, 6, 20)   # 0 copies a dimension
    assert shuffle.shape == (2, 2, 3, 4, 5)
    swapped = fp.TransposeLayer("t", (0, 2, 1, 3, 4)).forward(shuffle)
    np.testing.assert_array_equal(swapped, x.reshape(2, 2, 3, 4, 5).transpose(0, 2, 1, 3, 4))
    np.testing.assert_array_equal(fp.FlattenLayer("f").forward(x), x.reshape(2, 120))
    with pytest.raises(ValueError, match="'r'.*cannot reshape"):
        fp.ReshapeLayer("r", (7, -1)).forward(x)
    with pytest.raises(ValueError, match="axis 0 first"):
        fp.TransposeLayer("t", (1, 0, 2))
    assert fp.DropoutLayer("d", 0.3).forward(x) is x and fp.IdentityLayer("i").forward(x) is x


@pytest.mark.parametrize("normalization, stats, expected", [
    ("none", {}, lambda x: x),
    ("zerocenter", {"mean": [1.0, 2.0]}, lambda x: x - [[1.0], [2.0]]),
    ("zscore", {"mean": [1.0, 2.0], "std": [2.0, 4.0]},
     lambda x: (x - [[1.0], [2.0]]) / [[2.0], [4.0]]),
    ("rescale-zero-one", {"min": -2.0, "max": 6.0}, lambda x: (x + 2) / 8),
    ("rescale-symmetric", {"min": -2.0, "max": 6.0}, lambda x: (x + 2) / 4 - 1),
])
def test_input_normalization(normalization, stats, expected):
    x = randn(3, 2, 4, 1)
    stats_img = {k: np.reshape(v, (-1, 1, 1)) for k, v in stats.items()}
    image = fp.ImageInputLayer("img", (2, 4, None), normalization, **stats_img)
    np.testing.assert_allclose(image.forward(x), expected(x.astype(np.float64)[..., 0])[..., None],
                               rtol=1e-6, atol=1e-7)
    feature = fp.FeatureInputLayer("feat", 2, normalization, **stats)
    xf = x[:, :, 0, 0]
    np.testing.assert_allclose(feature.forward(xf), expected(xf.astype(np.float64).T).T,
                               rtol=1e-6, atol=1e-7)


def test_input_layer_errors_name_layer_and_shapes():
    layer = fp.ImageInputLayer("data", (3, 8, 8))
    with pytest.raises(ValueError, match=r"'data'.*\(any, 3, 8, 8\).*\(1, 3, 8, 9\)"):
        layer.forward(np.zeros((1, 3, 8, 9)))
    with pytest.raises(ValueError, match=r"'data'.*\(1, 2, 8, 8\)"):
        layer.forward(np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"'data'.*\(3, 8, 8\)"):
        layer.forward(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="'data' expects numeric data"):
        layer.forward(np.full((1, 3, 8, 8), "a"))
    assert layer.forward(np.zeros((2, 3, 8, 8), np.int16)).dtype == np.float32
    with pytest.raises(ValueError, match="needs mean"):
        fp.FeatureInputLayer("f", 3, "zscore", std=[1, 1, 1])
    with pytest.raises(ValueError, match="max != min"):
        fp.FeatureInputLayer("f", 1, "rescale-zero-one", min=1.0, max=1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        fp.FeatureInputLayer("f", 3, "zerocenter", mean=[1.0, 2.0])
    with pytest.raises(ValueError, match="normalization must be one of"):
        fp.FeatureInputLayer("f", 3, "minmax")


def test_constructor_errors_name_the_layer():
    with pytest.raises(ValueError, match="'c'.*OIHW"):
        fp.Convolution2DLayer("c", randn(3, 3, 3))
    with pytest.raises(ValueError, match="'c'.*groups=2"):
        fp.Convolution2DLayer("c", randn(3, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match="'c'.*bias must have 3"):
        fp.Convolution2DLayer("c", randn(3, 1, 3, 3), randn(4))
    with pytest.raises(ValueError, match="'c' expects \\(N, 2, H, W\\)"):
        fp.Convolution2DLayer("c", randn(4, 1, 3, 3), groups=2).forward(randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="'c' padding"):
        fp.Convolution2DLayer("c", randn(3, 1, 3, 3), padding="valid")
    with pytest.raises(ValueError, match="'fc' expects 6 features"):
        fp.FullyConnectedLayer("fc", randn(2, 6)).forward(randn(2, 5))
    with pytest.raises(ValueError, match="'bn' expects 3 channels"):
        fp.BatchNormalizationLayer("bn", *[np.ones(3)] * 4).forward(randn(1, 4, 2, 2))
    with pytest.raises(ValueError, match="'p'.*smaller than the pool size"):
        fp.MaxPooling2DLayer("p", 2, padding=2)
    with pytest.raises(TypeError, match="'fc' weights must be numeric"):
        fp.FullyConnectedLayer("fc", np.array([["a"]]))
    with pytest.raises(ValueError, match="layer name"):
        fp.ReLULayer("")
    with pytest.raises(ValueError, match="unknown layer type 'Relu'.*ReLU"):
        make_layer("Relu", "r")


# --- every registered layer: shape rule and serialisation --------------------------------------
EXAMPLES = {
    "ImageInput": (lambda: fp.ImageInputLayer("l", (3, 6, None), "zscore", mean=randn(3, 1, 1),
                                              std=np.ones((3, 1, 1))), [(2, 3, 6, 5)]),
    "FeatureInput": (lambda: fp.FeatureInputLayer("l", 4, "rescale-symmetric", min=-1.0,
                                                  max=randn(4) ** 2 + 1), [(2, 4)]),
    "Convolution2D": (lambda: fp.Convolution2DLayer("l", randn(4, 1, 3, 3), randn(4), 2, "same",
                                                    1, 3 - 2), [(2, 1, 7, 6)]),
    "FullyConnected": (lambda: fp.FullyConnectedLayer("l", randn(3, 12), randn(3)), [(2, 3, 2, 2)]),
    "BatchNormalization": (lambda: fp.BatchNormalizationLayer(
        "l", randn(3), randn(3), randn(3), np.ones(3), 1e-3), [(2, 3, 4, 4)]),
    "ReLU": (lambda: fp.ReLULayer("l"), [(2, 3)]),
    "LeakyReLU": (lambda: fp.LeakyReLULayer("l", 0.1), [(2, 3, 2, 2)]),
    "ClippedReLU": (lambda: fp.ClippedReLULayer("l", 6), [(2, 3)]),
    "Sigmoid": (lambda: fp.SigmoidLayer("l"), [(2, 3)]),
    "Tanh": (lambda: fp.TanhLayer("l"), [(2, 3)]),
    "Softmax": (lambda: fp.SoftmaxLayer("l", 1), [(2, 5)]),
    "MaxPooling2D": (lambda: fp.MaxPooling2DLayer("l", 3, 2, (1, 0, 1, 0), True), [(1, 2, 8, 7)]),
    "AveragePooling2D": (lambda: fp.AveragePooling2DLayer("l", 2, 2, 1, False, True),
                         [(1, 2, 8, 7)]),
    "GlobalAveragePooling2D": (lambda: fp.GlobalAveragePooling2DLayer("l"), [(2, 3, 4, 5)]),
    "GlobalMaxPooling2D": (lambda: fp.GlobalMaxPooling2DLayer("l"), [(2, 3, 4, 5)]),
    "Addition": (lambda: fp.AdditionLayer("l", 3), [(2, 3, 4, 4), (2, 3, 1, 1), (1, 3, 4, 4)]),
    "Concatenation": (lambda: fp.ConcatenationLayer("l", 1, 2), [(2, 3, 4, 4), (2, 1, 4, 4)]),
    "Multiplication": (lambda: fp.MultiplicationLayer("l"), [(2, 3, 4, 4), (2, 3, 1, 1)]),
    "Flatten": (lambda: fp.FlattenLayer("l"), [(2, 3, 4, 4)]),
    "Reshape": (lambda: fp.ReshapeLayer("l", (-1, 4)), [(2, 3, 4, 4)]),
    "Transpose": (lambda: fp.TransposeLayer("l", (0, 2, 3, 1)), [(2, 3, 4, 5)]),
    "CrossChannelNormalization": (lambda: fp.CrossChannelNormalizationLayer("l", 3),
                                  [(2, 5, 2, 2)]),
    "Dropout": (lambda: fp.DropoutLayer("l", 0.2), [(2, 3)]),
    "Identity": (lambda: fp.IdentityLayer("l"), [(2, 3)]),
    "Resize2D": (lambda: Resize2DLayer("l", (2, 3)), [(2, 3, 4, 5)]),
    "Subtraction": (lambda: fp.nn.layers.SubtractionLayer("l"), [(2, 3, 4, 4), (2, 3, 1, 1)]),
    "HardSwish": (lambda: fp.nn.layers.HardSwishLayer("l"), [(2, 3, 2, 2)]),
    "Pad": (lambda: fp.nn.layers.PadLayer("l", [(0, 1), (2, 0), (1, 1)]), [(2, 3, 4, 4)]),
    "TensorInput": (lambda: fp.nn.layers.TensorInputLayer("l", (4, None, 3)), [(2, 4, 5, 3)]),
}


def test_every_registered_layer_has_an_example():
    assert sorted(EXAMPLES) == sorted(LAYER_REGISTRY)


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_output_shape_and_config_round_trip(type_name):
    make, shapes = EXAMPLES[type_name]
    layer = make()
    assert layer.type_name == type_name and isinstance(layer, LAYER_REGISTRY[type_name])
    inputs = [randn(*s) for s in shapes]
    y = layer.forward(*inputs)
    assert y.dtype == np.float32
    assert layer.output_shape(*shapes) == y.shape
    assert bool(layer.learnables) == layer.has_learnables
    config = json.loads(json.dumps(layer.config()))
    rebuilt = type(layer).from_config("l", config, layer.arrays())
    np.testing.assert_array_equal(rebuilt.forward(*inputs), y)
    copy = layer.copy("other")
    assert copy.name == "other"
    np.testing.assert_array_equal(copy.forward(*inputs), y)
    for key, value in layer.arrays().items():
        assert copy.arrays()[key] is not value


def test_unknown_spatial_sizes_propagate_as_none():
    conv = fp.Convolution2DLayer("c", randn(4, 3, 3, 3), stride=2, padding="same")
    assert conv.output_shape((None, 3, None, 10)) == (None, 4, None, 5)
    assert fp.FlattenLayer("f").output_shape((None, 4, None, 5)) == (None, None)


# --- ONNX Runtime as a reference for the ONNX-facing semantics ----------------------------------
def run_onnx_node(op_type, x, initializers=(), **attributes):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    inputs = ["x"] + [f"w{k}" for k in range(len(initializers))]
    graph = helper.make_graph(
        [helper.make_node(op_type, inputs, ["y"], **attributes)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, f"w{k}") for k, w in enumerate(initializers)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert onnx  # imported for the helpers above
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("case", POOL_CASES + [((2, 2), (2, 2), (0, 0, 0, 0), True),
                                               ((3, 3), (3, 3), (1, 1, 1, 1), True)])
def test_pooling_matches_onnx_runtime(case):
    k, s, pads, ceil_mode = case
    x = randn(1, 2, 10, 9)
    onnx_pads = [pads[0], pads[1], pads[2], pads[3]]
    for include in (0, 1):
        want = run_onnx_node("AveragePool", x, kernel_shape=list(k), strides=list(s),
                             pads=onnx_pads, ceil_mode=int(ceil_mode), count_include_pad=include)
        got = fp.AveragePooling2DLayer("a", k, s, pads, ceil_mode, bool(include)).forward(x)
        assert got.shape == want.shape and rel_err(got, want) < 1e-6
    want = run_onnx_node("MaxPool", x, kernel_shape=list(k), strides=list(s), pads=onnx_pads,
                         ceil_mode=int(ceil_mode))
    np.testing.assert_array_equal(fp.MaxPooling2DLayer("m", k, s, pads, ceil_mode).forward(x), want)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_same_padding_matches_onnx_runtime(auto_pad):
    x, w = randn(1, 2, 10, 9), randn(3, 2, 4, 3)
    want = run_onnx_node("Conv", x, [w], auto_pad=auto_pad, strides=[2, 1])
    padding = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower"}[auto_pad]
    got = fp.Convolution2DLayer("c", w, stride=(2, 1), padding=padding).forward(x)
    assert got.shape == want.shape and rel_err(got, want) < 1e-5


@pytest.mark.parametrize("size", [3, 5])
def test_cross_channel_normalization_matches_onnx_runtime(size):
    x = randn(2, 7, 3, 4)
    want = run_onnx_node("LRN", x, size=size, alpha=0.02, beta=0.75, bias=1.5)
    got = fp.CrossChannelNormalizationLayer("lrn", size, 0.02, 0.75, 1.5).forward(x)
    assert rel_err(got, want) < 1e-5


@pytest.mark.parametrize("type_name", sorted(t for t, c in LAYER_REGISTRY.items()
                                             if c.overwrites_input))
def test_forward_into_equals_forward(type_name):
    make, shapes = EXAMPLES[type_name]
    layer = make()
    x = randn(*shapes[0]) * 5
    buffer = x.copy()
    result = layer.forward_into(buffer)
    assert result is buffer
    np.testing.assert_array_equal(result, layer.forward(x))


def test_windows_larger_than_the_input_are_rejected():
    with pytest.raises(ValueError, match=r"convolution 'c' on input \(1, 1, 2, 5\): window of "
                                         r"extent 3 does not fit an input of size 2"):
        fp.Convolution2DLayer("c", randn(1, 1, 3, 3)).forward(randn(1, 1, 2, 5))
    with pytest.raises(ValueError, match="extent 5 does not fit"):
        fp.Convolution2DLayer("c", randn(1, 1, 3, 3), dilation=2).output_shape((1, 1, 4, 9))
    with pytest.raises(ValueError, match=r"MaxPooling2D 'p' on input \(1, 1, 4, 1\)"):
        fp.MaxPooling2DLayer("p", 2).forward(randn(1, 1, 4, 1))
    with pytest.raises(ValueError, match=r"'c' expects \(N, 1, H, W\)"):
        fp.Convolution2DLayer("c", randn(1, 1, 3, 3)).forward(randn(1, 1, 9))


# --- property tests over random window configurations -------------------------------------------


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    c_group = draw(st.integers(1, 2))
    out_group = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["same", "same_lower"]),
                             st.tuples(*[st.integers(0, 2)] * 4)))
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    size = (draw(st.integers(extent[0], 9)), draw(st.integers(extent[1], 9)))
    return groups, c_group, out_group, kernel, stride, dilation, padding, size


@settings(max_examples=40, deadline=None)
@given(conv_configs(), st.integers(0, 2 ** 32 - 1))
def test_convolution_property(config, seed):
    groups, c_group, out_group, kernel, stride, dilation, padding, size = config
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, groups * c_group, *size)).astype(np.float32)
    w = rng.normal(size=(groups * out_group, c_group, *kernel)).astype(np.float32)
    b = rng.normal(size=groups * out_group).astype(np.float32)
    layer = fp.Convolution2DLayer("c", w, b, stride, padding, dilation, groups)
    y = layer.forward(x)
    assert y.shape == layer.output_shape(x.shape)
    pads = F.resolve_padding(layer.padding, size, kernel, stride, dilation)
    if isinstance(padding, str):
        assert y.shape[2:] == tuple(-(-n // s) for n, s in zip(size, stride))
    assert rel_err(y, conv_reference(x, w, b, stride, pads, dilation, groups)) < 1e-5


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.tuples(*[st.integers(0, 3)] * 4), st.booleans(), st.booleans(), st.integers(4, 9),
       st.integers(4, 9), st.integers(0, 2 ** 32 - 1))
def test_pooling_property(kh, kw, sh, sw, pads, ceil_mode, include_pad, h, w, seed):
    pads = tuple(min(p, k - 1) for p, k in zip(pads, (kh, kw, kh, kw)))
    x = np.random.default_rng(seed).normal(size=(1, 2, h, w)).astype(np.float32)
    for layer, mode in ((fp.AveragePooling2DLayer("a", (kh, kw), (sh, sw), pads, ceil_mode,
                                                  include_pad), "average"),
                        (fp.MaxPooling2DLayer("m", (kh, kw), (sh, sw), pads, ceil_mode), "max")):
        y = layer.forward(x)
        assert y.shape == layer.output_shape(x.shape)
        want = pool_reference(x, mode, (kh, kw), (sh, sw), pads, ceil_mode, include_pad)
        assert rel_err(y, want) < 1e-6
