"""The compiled float32 convolution (fixedpoint.kernels.conv_float) against an independent float64
reference that loops over kernel offsets: random geometries (hypothesis), every activation, the
portable and AVX2 paths, 1 vs 2 threads (bit-identical), bad arguments, and its use by
`functional.conv2d`."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fixedpoint import _kernels
from fixedpoint.kernels import conv2d_float, get_num_threads, pack_float_conv, set_kernel_path, set_num_threads
from fixedpoint.nn import functional as F
from fixedpoint.nn.layers import make_layer

ACTIVATIONS = [None, "relu", ("clip", -0.25, 0.5), ("clip", 0.0, 6.0), ("leaky", 0.1)]
PATHS = ["auto", "portable"]
RTOL = 1e-5


def reference(x, w, bias, stride, pads, dilation, groups):
    """(float64 convolution, float64 convolution of |x| and |w| + |bias|, the error scale)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    top, left, bottom, right = pads
    xp = np.zeros((n, c, h + top + bottom, wd + left + right))
    xp[:, :, top:top + h, left:left + wd] = x
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out, scale = np.zeros((n, o, oh, ow)), np.zeros((n, o, oh, ow))
    og = o // groups
    for g, i, j in itertools.product(range(groups), range(kh), range(kw)):
        patch = xp[:, g * cg:(g + 1) * cg,
                   i * dilation[0]:i * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                   j * dilation[1]:j * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
        wg = w[g * og:(g + 1) * og, :, i, j]
        out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg)
        scale[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", np.abs(patch), np.abs(wg))
    if bias is not None:
        out += bias.astype(np.float64)[None, :, None, None]
        scale += np.abs(bias.astype(np.float64))[None, :, None, None]
    return out, scale


def activate(v, activation):
    if activation is None:
        return v
    name, *params = (activation,) if isinstance(activation, str) else activation
    if name == "relu":
        return np.maximum(v, 0)
    if name == "clip":
        return np.clip(v, params[0], params[1])
    return np.where(v < 0, params[0] * v, v)


def check(got, x, w, bias, stride, pads, dilation, groups, activation):
    ref, scale = reference(x, w, bias, stride, pads, dilation, groups)
    assert got.dtype == np.float32 and got.shape == ref.shape
    # the activations are 1-Lipschitz, so the bound on the sum carries over
    error = np.abs(got.astype(np.float64) - activate(ref, activation))
    assert np.all(error <= RTOL * scale + 1e-30), float(np.max(error / (scale + 1e-30)))


@pytest.fixture
def path():
    yield
    set_kernel_path("auto")


@st.composite
def geometries(draw):
    groups = draw(st.sampled_from([1, 2, 3, 9]))
    cg, og = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3, 5, 8, 9, 16, 20, 33]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    assume(h + pads[0] + pads[2] >= dilation[0] * (kh - 1) + 1)
    assume(w + pads[1] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return draw(st.integers(1, 3)), groups, cg, og, (kh, kw), (h, w), stride, dilation, pads


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometry=geometries(), activation=st.sampled_from(ACTIVATIONS), kernel_path=st.sampled_from(PATHS),
       with_bias=st.booleans(), with_affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matches_float64_reference(path, geometry, activation, kernel_path, with_bias, with_affine, seed):
    n, groups, cg, og, (kh, kw), (h, w), stride, dilation, pads = geometry
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, groups * cg, h, w)).astype(np.float32)
    weights = rng.normal(size=(groups * og, cg, kh, kw)).astype(np.float32)
    bias = rng.normal(size=groups * og).astype(np.float32) if with_bias else None
    scale = rng.uniform(-2, 2, groups * og).astype(np.float32) if with_affine else None
    shift = rng.normal(size=groups * og).astype(np.float32) if with_affine else None
    set_kernel_path(kernel_path)
    got = conv2d_float(x, pack_float_conv(weights, groups), bias, stride, pads, dilation, activation,
                       scale, shift)
    if not with_affine:
        check(got, x, weights, bias, stride, pads, dilation, groups, activation)
        return
    ref, magnitude = reference(x, weights, bias, stride, pads, dilation, groups)
    view = (1, -1, 1, 1)
    ref = ref * scale.reshape(view) + shift.reshape(view)
    magnitude = magnitude * np.abs(scale).reshape(view) + np.abs(shift).reshape(view)
    error = np.abs(got.astype(np.float64) - activate(ref, activation))
    assert np.all(error <= RTOL * magnitude + 1e-30)


# the digits models' shapes: both kernels (wide groups and depthwise), strided, 1x1
SHAPES = [  # (n, c, h, out, k, groups, stride, pad)
    (5, 1, 8, 16, 3, 1, 1, 1), (3, 16, 8, 32, 3, 1, 1, 1), (4, 32, 4, 32, 3, 1, 1, 1),
    (3, 16, 8, 16, 3, 16, 1, 1), (2, 32, 8, 32, 3, 32, 2, 1), (3, 16, 8, 32, 1, 1, 1, 0),
    (2, 8, 7, 40, 3, 1, 2, 0), (2, 6, 9, 12, 3, 2, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_model_shapes_both_paths(path, shape, activation):
    n, c, h, o, k, groups, stride, pad = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=(n, c, h, h)).astype(np.float32)
    w = rng.normal(size=(o, c // groups, k, k)).astype(np.float32)
    b = rng.normal(size=o).astype(np.float32)
    args = ((stride, stride), (pad,) * 4, (1, 1), activation)
    packed = pack_float_conv(w, groups)
    outs = {}
    for kernel_path in PATHS:
        set_kernel_path(kernel_path)
        outs[kernel_path] = conv2d_float(x, packed, b, *args)
        check(outs[kernel_path], x, w, b, (stride, stride), (pad,) * 4, (1, 1), groups, activation)
    if _kernels.cpu_has_avx2():   # fused multiply-adds round once per term, the portable path twice
        assert not np.array_equal(outs["auto"], outs["portable"]) or k * k * c // groups == 1


@pytest.mark.parametrize("shape", [(16, 16, 8, 32, 3, 1, 1, 1), (16, 32, 8, 32, 3, 32, 1, 1),
                                   (16, 32, 8, 32, 3, 32, 2, 1), (32, 32, 4, 32, 3, 1, 2, 1)])
@pytest.mark.parametrize("kernel_path", PATHS)
def test_thread_count_does_not_change_bits(path, shape, kernel_path):
    n, c, h, o, k, groups, stride, pad = shape
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, c, h, h)).astype(np.float32)
    packed = pack_float_conv(rng.normal(size=(o, c // groups, k, k)).astype(np.float32), groups)
    b = rng.normal(size=o).astype(np.float32)
    set_kernel_path(kernel_path)
    before = get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            set_num_threads(threads)
            outs.append(conv2d_float(x, packed, b, (stride, stride), (pad,) * 4, (1, 1), "relu"))
    finally:
        set_num_threads(before)
    assert outs[0].tobytes() == outs[1].tobytes()


def test_non_contiguous_input_and_no_bias():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 6, 12)).astype(np.float32)[:, :, :, ::2]
    w = rng.normal(size=(9, 8, 3, 3)).astype(np.float32)
    got = conv2d_float(x, pack_float_conv(w), None, (1, 1), (1, 1, 1, 1))
    check(got, x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None)


@pytest.mark.parametrize("call, message", [
    (lambda x, p, b: conv2d_float(x.astype(np.float64), p, b), "x must be a float32"),
    (lambda x, p, b: conv2d_float(x[:, :3], p, b), "channels but w expects"),
    (lambda x, p, b: conv2d_float(x[0], p, b), "x must be 4-D"),
    (lambda x, p, b: conv2d_float(x, p, b[:3]), "bias has 3 entries, expected 8"),
    (lambda x, p, b: conv2d_float(x, p, b.astype(np.float64)), "bias must be float32"),
    (lambda x, p, b: conv2d_float(x, p, b, stride=(0, 1)), "stride must be >= 1"),
    (lambda x, p, b: conv2d_float(x, p, b, dilation=(1, 0)), "dilation must be >= 1"),
    (lambda x, p, b: conv2d_float(x, p, b, pads=(0, -1, 0, 0)), "padding must be >= 0"),
    (lambda x, p, b: conv2d_float(x, p, b, dilation=(4, 1)), "does not fit"),
    (lambda x, p, b: conv2d_float(x, p, b, activation="gelu"), "activation must be"),
    (lambda x, p, b: conv2d_float(x, p, b, activation=("clip", 1.0, 0.0)), "lo <= hi"),
    (lambda x, p, b: conv2d_float(x, "weights", b), "packed must come from pack_float_conv"),
    (lambda x, p, b: conv2d_float(x, p, b, scale=b), "scale and shift must be given together"),
    (lambda x, p, b: conv2d_float(x, p, b, scale=b[:2], shift=b), "scale has 2 entries, expected 8"),
    (lambda x, p, b: pack_float_conv(np.zeros((8, 4, 3, 3), np.float32), groups=3), "must divide"),
    (lambda x, p, b: pack_float_conv(np.zeros((8, 4, 3), np.float32)), "w must be 4-D"),
    (lambda x, p, b: pack_float_conv(np.zeros((8, 4, 3, 3)), 1), "weights must be a float32"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    x = np.zeros((1, 4, 5, 5), np.float32)
    packed = pack_float_conv(np.zeros((8, 4, 3, 3), np.float32))
    with pytest.raises((ValueError, TypeError), match=message):
        call(x, packed, np.zeros(8, np.float32))


# ---- functional.conv2d: routes and fused activations ----------------------------------------------

@pytest.mark.parametrize("shape", SHAPES + [(2, 3, 20, 8, 3, 1, 1, 1)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_functional_conv2d_routes_agree(shape, activation):
    """Whatever route conv2d takes (compiled or BLAS, by size), it computes the same function."""
    n, c, h, o, k, groups, stride, pad = shape
    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, c, h, h)).astype(np.float32)
    w = rng.normal(size=(o, c // groups, k, k)).astype(np.float32)
    b = rng.normal(size=o).astype(np.float32)
    geometry = ((stride, stride), (pad,) * 4, (1, 1), groups)
    got = F.conv2d(x, w, b, *geometry[:3], groups, activation=activation)
    check(got, x, w, b, *geometry, activation)
    blas = F.apply_activation(F._conv2d_blas(x, w, b, *geometry), activation)
    check(blas, x, w, b, *geometry, activation)


def test_packed_weights_are_cached_per_read_only_array():
    w = np.ones((8, 2, 3, 3), np.float32)
    w.flags.writeable = False
    first = F.packed_float_weights(w, 1)
    assert F.packed_float_weights(w, 1) is first
    assert F.packed_float_weights(w.copy(), 1) is not first
    ro = np.ones((8, 1, 3, 3), np.float32)
    ro.flags.writeable = False
    assert F.packed_float_weights(ro, 2) is not first
    writeable = np.ones((8, 2, 3, 3), np.float32)
    assert F.packed_float_weights(writeable, 1) is not F.packed_float_weights(writeable, 1)   # never cached: it may change


def test_predict_never_uses_stale_convolution_weights():
    """A layer's weights cannot change in place under the packed copy; a replaced array is used."""
    rng = np.random.default_rng(5)
    layer = make_layer("Convolution2D", "conv", weights=rng.normal(size=(4, 2, 3, 3)), padding=1)
    x = rng.normal(size=(1, 2, 6, 6)).astype(np.float32)
    before = layer.forward(x)
    with pytest.raises(ValueError, match="read-only"):
        layer.weights[...] *= 2
    doubled = layer.weights * 2
    layer.learnables["Weights"] = doubled          # a writeable replacement: packed on every call
    np.testing.assert_allclose(layer.forward(x) - layer.bias[None, :, None, None],
                               2 * (before - layer.bias[None, :, None, None]), rtol=1e-5, atol=1e-5)
    doubled[...] = 0                               # changed in place after a call: still seen
    np.testing.assert_array_equal(layer.forward(x), np.broadcast_to(layer.bias[None, :, None, None], before.shape))


# ---- Network: a convolution applies the activation after it ---------------------------------------

def conv_act_net():
    """conv -> ReLU, conv -> clipped ReLU, conv -> leaky ReLU, and a convolution read twice."""
    import fixedpoint as fp
    rng = np.random.default_rng(5)

    def conv(name, o, c, k=3, **options):
        return fp.Convolution2DLayer(name, rng.normal(size=(o, c // options.get("groups", 1), k, k)),
                                     rng.normal(size=o), padding=k // 2, **options)

    layers = [fp.ImageInputLayer("input", (3, 8, 8)), conv("c1", 16, 3), fp.ReLULayer("r1"),
              conv("c2", 16, 16, groups=16), fp.ClippedReLULayer("r2", 1.5),
              conv("c3", 8, 16, k=1), fp.LeakyReLULayer("r3", 0.2),
              conv("c4", 8, 8), fp.ReLULayer("r4"), fp.AdditionLayer("add")]
    connections = [("input", "c1"), ("c1", "r1"), ("r1", "c2"), ("c2", "r2"), ("r2", "c3"),
                   ("c3", "r3"), ("r3", "c4"), ("c4", "r4"), ("r4", "add/in1"), ("c4", "add/in2")]
    return fp.Network(layers, connections)


def test_fused_activations_give_the_unfused_bits():
    net = conv_act_net()
    x = np.random.default_rng(6).normal(size=(4, 3, 8, 8)).astype(np.float32)
    fused = net.predict(x)
    chains = [(e[0], e[5].norm, e[5].activation) for e in net._plan(("add",), False, True)
              if e[5] is not None]
    assert chains == [("r1", None, "relu"), ("r2", None, ("clip", 0.0, 1.5)),
                      ("r3", None, ("leaky", 0.2)), ("c4", None, None)]   # c4: two readers
    assert [e[0] for e in net._plan(("add",), False, True)] == ["input", "r1", "r2", "r3", "c4",
                                                                 "r4", "add"]
    net.fuse_activations = False
    assert net.predict(x).tobytes() == fused.tobytes()


def test_fusion_never_hides_a_requested_or_observed_output():
    net = conv_act_net()
    x = np.random.default_rng(6).normal(size=(2, 3, 8, 8)).astype(np.float32)
    c1, r1, out = net.predict(x, outputs=["c1", "r1", "add"])
    assert c1.min() < 0 and r1.min() >= 0     # the convolution's own output, before the ReLU
    np.testing.assert_array_equal(r1, np.maximum(c1, 0))
    seen = {}
    net.run({"input": x}, observe=lambda layer, value: seen.setdefault(layer.name, value.copy()))
    np.testing.assert_array_equal(seen["c1"], c1)
    np.testing.assert_array_equal(seen["add"], out)


@pytest.mark.parametrize("kernel_path", PATHS)
@pytest.mark.parametrize("activation, want", [("relu", [np.nan, 0.0, 2.0]), (("clip", 0.0, 1.0), [np.nan, 0.0, 1.0]),
                                              (("leaky", 0.5), [np.nan, -1.0, 2.0])])
def test_activations_keep_nan(path, kernel_path, activation, want):
    """NaN stays NaN through every activation, as in the NumPy layers."""
    set_kernel_path(kernel_path)
    x = np.array([np.nan, -2.0, 2.0], np.float32).reshape(1, 1, 1, 3)
    for o in (1, 8):   # both kernels
        got = conv2d_float(x, pack_float_conv(np.ones((o, 1, 1, 1), np.float32)), None, activation=activation)
        np.testing.assert_array_equal(got[0, :, 0], np.tile(want, (o, 1)))


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("model", ["digits_cnn", "digits_mobilenet"])
def test_conv_batchnorm_activation_fusion_gives_the_unfused_bits(model, batch):
    """The bundled models (conv -> BN -> ReLU / ReLU6 blocks): fused and layer-by-layer predict
    agree bit for bit, on the compiled routes and the BLAS ones alike."""
    import fixedpoint as fp
    net = getattr(fp.examples, model)()
    x = fp.examples.digits_data()[1][0][:batch]
    fused_plan = net._plan(tuple(net.output_names), False, True)
    assert any(e[5] is not None and e[5].norm is not None for e in fused_plan)
    fused = net.predict(x)
    net.fuse_activations = False
    assert net.predict(x).tobytes() == fused.tobytes()


def test_conv_with_affine_matches_batchnorm_layer_bits():
    """conv2d's affine epilogue is the batch normalization layer's arithmetic, on every kernel."""
    import fixedpoint as fp
    rng = np.random.default_rng(9)
    for shape in SHAPES:
        n, c, h, o, k, groups, stride, pad = shape
        x = rng.normal(size=(n, c, h, h)).astype(np.float32)
        w = rng.normal(size=(o, c // groups, k, k)).astype(np.float32)
        b = rng.normal(size=o).astype(np.float32)
        bn = fp.BatchNormalizationLayer("bn", scale=rng.uniform(0.5, 2, o), offset=rng.normal(size=o),
                                        mean=rng.normal(size=o), variance=rng.uniform(0.5, 2, o))
        gain, shift = bn.folded()
        geometry = ((stride, stride), (pad,) * 4, (1, 1), groups)
        plain = F.conv2d(x, w, b, *geometry)
        for kernel_path in PATHS:
            set_kernel_path(kernel_path)
            try:
                fused = F.conv2d(x, w, b, *geometry, affine=(gain, shift))
                plain = F.conv2d(x, w, b, *geometry)
            finally:
                set_kernel_path("auto")
            assert fused.tobytes() == bn.forward(plain).tobytes(), (shape, kernel_path)


@pytest.mark.parametrize("kernel_path", PATHS)
def test_float_epilogue_is_the_layers_arithmetic(path, kernel_path):
    """The in-place epilogue of BLAS-route convolutions: bias, batch normalization and activation
    with the layers' roundings, on vectors of 8 and the tail of a 21-value plane."""
    import fixedpoint as fp
    from fixedpoint.kernels.conv_float import activation_code
    from fixedpoint.kernels.threads import path_code
    rng = np.random.default_rng(12)
    sums = rng.normal(size=(3, 5, 7, 3)).astype(np.float32)
    sums[0, 0, 0, :2] = [np.nan, -np.inf]
    bias = rng.normal(size=5).astype(np.float32)
    bn = fp.BatchNormalizationLayer("bn", scale=rng.uniform(0.5, 2, 5), offset=rng.normal(size=5),
                                    mean=rng.normal(size=5), variance=rng.uniform(0.5, 2, 5))
    set_kernel_path(kernel_path)
    for activation in (None, "relu", ("clip", 0.0, 1.5), ("leaky", 0.1)):
        for b, affine in ((bias, False), (None, True), (bias, True)):
            got = sums.copy()
            _kernels.float_epilogue(got, b, *(bn.folded() if affine else (None, None)),
                                    *activation_code(activation), path_code())
            want = sums + bias.reshape(1, -1, 1, 1) if b is not None else sums.copy()
            want = bn.forward(want) if affine else want
            want = F.apply_activation(want, activation)
            assert got.tobytes() == want.tobytes(), (activation, b is not None, affine)
    with pytest.raises(ValueError, match="writeable float32"):
        _kernels.float_epilogue(sums.astype(np.float64), None, None, None, 0, 0.0, 0.0, 0.0, 0)
    with pytest.raises(ValueError, match="bias has 4 entries, expected 5"):
        _kernels.float_epilogue(sums, bias[:4], None, None, 0, 0.0, 0.0, 0.0, 0)


def test_blas_route_with_batch_normalization_gives_the_layers_bits():
    """A 1x1 convolution of a large batch runs on BLAS; its fused epilogue matches the layers."""
    import fixedpoint as fp
    rng = np.random.default_rng(13)
    x = rng.normal(size=(64, 16, 8, 8)).astype(np.float32)
    w = rng.normal(size=(32, 16, 1, 1)).astype(np.float32)
    w.flags.writeable = False
    b = rng.normal(size=32).astype(np.float32)
    assert not F.conv2d_route(x.shape, w.shape, (1, 1), (0, 0, 0, 0), (1, 1), 1)[1]
    bn = fp.BatchNormalizationLayer("bn", scale=rng.uniform(0.5, 2, 32), offset=rng.normal(size=32),
                                    mean=rng.normal(size=32), variance=rng.uniform(0.5, 2, 32))
    plain = F.conv2d(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    fused = F.conv2d(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, activation=("clip", 0.0, 6.0),
                     affine=bn.folded())
    assert fused.tobytes() == np.clip(bn.forward(plain), 0, 6).tobytes()
