"""Depthwise convolution (groups == channels) bit-exact on every code path and thread count.

"auto" runs the byte kernel (vpdpbusd over a zero-point-padded uint8 plane) on CPUs with AVX-512
VNNI and VBMI when the geometry fits it, "exact16" the AVX2 int16-pair kernel, "portable" plain C++.
The reference is an independent int64 numpy computation, one output pixel window at a time."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fixedpoint.kernels import Requantizer, conv2d, pack_weights

from kernel_paths import on_every_path as on_paths, restore_settings  # noqa: F401 (autouse fixture)

PATHS = ("auto", "exact16", "portable")


def on_every_path(fn):
    return on_paths(fn, PATHS)


def reference(x, w, *, pads, stride, dilation, zp, bias=None):
    """int64: pad with the zero point, subtract it, then sum each dilated window of each channel."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    mult = o // c
    top, left, bottom, right = pads
    xp = np.pad(x.astype(np.int64) - zp, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            r, s = i * stride[0], j * stride[1]
            window = xp[:, :, r:r + dilation[0] * (kh - 1) + 1:dilation[0], s:s + dilation[1] * (kw - 1) + 1:dilation[1]]
            window = np.repeat(window, mult, axis=1)  # output channel oc reads input channel oc // mult
            out[:, :, i, j] = np.einsum("nokl,okl->no", window, w[:, 0].astype(np.int64))
    if bias is not None:
        out += bias.astype(np.int64)[None, :, None, None]
    return out


@st.composite
def geometries(draw):
    c = draw(st.integers(2, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    stride = (draw(st.integers(1, 3)), draw(st.sampled_from([1, 1, 2, 3, 5])))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h, w = draw(st.integers(1, 12)), draw(st.sampled_from([1, 2, 5, 15, 16, 17, 33, 64, 70]))
    assume(h + pads[0] + pads[2] >= dilation[0] * (kh - 1) + 1)
    assume(w + pads[1] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return dict(n=draw(st.integers(1, 2)), c=c, mult=draw(st.sampled_from([1, 1, 2])), h=h, w=w, kh=kh, kw=kw,
                stride=stride, dilation=dilation, pads=pads, signed=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries())
def test_random_geometries_match_int64_reference(geo):
    rng = np.random.default_rng(geo["seed"])
    lo, hi, dt = (-128, 128, np.int8) if geo["signed"] else (0, 256, np.uint8)
    x = rng.integers(lo, hi, (geo["n"], geo["c"], geo["h"], geo["w"])).astype(dt)
    o = geo["c"] * geo["mult"]
    w = rng.integers(-128, 128, (o, 1, geo["kh"], geo["kw"])).astype(np.int8)
    bias = rng.integers(-10**6, 10**6, o).astype(np.int32)
    zp = int(rng.integers(lo, hi))
    out = on_every_path(lambda: conv2d(x, w, bias=bias, stride=geo["stride"], padding=geo["pads"],
                                       dilation=geo["dilation"], groups=geo["c"], x_zero_point=zp))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, reference(x, w, pads=geo["pads"], stride=geo["stride"], dilation=geo["dilation"],
                                                 zp=zp, bias=bias))


@pytest.mark.parametrize("dtype, xv, zp", [(np.uint8, 255, 0), (np.uint8, 0, 255), (np.int8, -128, 127),
                                           (np.int8, 127, -128)])
@pytest.mark.parametrize("wv", [-128, 127])
def test_extreme_values_with_padding(dtype, xv, zp, wv):
    """|x - zp| = 255 against |w| = 128 in every tap; padded taps contribute exactly 0."""
    x = np.full((1, 3, 5, 40), xv, dtype)
    w = np.full((3, 1, 3, 3), wv, np.int8)
    out = on_every_path(lambda: conv2d(x, w, padding=1, groups=3, x_zero_point=zp))
    np.testing.assert_array_equal(out, reference(x, w, pads=(1, 1, 1, 1), stride=(1, 1), dilation=(1, 1), zp=zp))
    assert out[0, 0, 2, 20] == (xv - zp) * wv * 9


def test_mobilenet_shape_batch_and_strides():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 32, 28, 28)).astype(np.uint8)
    w = rng.integers(-128, 128, (32, 1, 3, 3)).astype(np.int8)
    packed = pack_weights(w, groups=32)
    for stride in (1, 2):
        out = on_every_path(lambda: conv2d(x, packed, padding=1, stride=stride, groups=32, x_zero_point=128))
        np.testing.assert_array_equal(out, reference(x, w, pads=(1, 1, 1, 1), stride=(stride, stride), dilation=(1, 1),
                                                     zp=128))


REQUANTIZERS = {
    "fp32_uint8": lambda o: Requantizer.fp32(np.linspace(2e-4, 4e-3, o), zero_point=128, dtype=np.uint8),
    "fp32_int8_relu": lambda o: Requantizer.fp32(np.float32(1e-3), zero_point=-5, dtype=np.int8, clamp=(-5, 127)),
    "fp32_int16": lambda o: Requantizer.fp32(np.linspace(0.01, 0.3, o), zero_point=7, dtype=np.int16),
    "fp32_int32": lambda o: Requantizer.fp32(np.float32(0.5), dtype=np.int32),
    "shift_int8": lambda o: Requantizer.pow2_shift(np.arange(o) % 8 + 4, dtype=np.int8),
    "gemmlowp_int8": lambda o: Requantizer.gemmlowp(np.float32(3e-3), zero_point=3, dtype=np.int8),
}


def fp32_by_hand(acc, scale, zp, lo, hi, dtype):
    """ONNX Runtime's formula in numpy: RNE(clip(float32(acc) * scale, lo - zp, hi - zp)) + zp."""
    scale = np.broadcast_to(np.asarray(scale, np.float32), (acc.shape[1],))[None, :, None, None]
    y = np.clip(acc.astype(np.float32) * scale, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(y).astype(np.int64) + zp).astype(dtype)


@pytest.mark.parametrize("name", REQUANTIZERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("width", [38, 65, 70])  # output widths 37, 64, 69: blocks of 16 and of 64 outputs, tails
@pytest.mark.parametrize("stride", [1, 2])  # 2: the pair rows split into stride phases
def test_fused_requantization_equals_requantizing_the_int32_result(name, dtype, width, stride):
    rng = np.random.default_rng(width)
    lo, hi = (0, 256) if dtype == np.uint8 else (-128, 128)
    x = rng.integers(lo, hi, (2, 6, 9, width)).astype(dtype)
    w = rng.integers(-128, 128, (12, 1, 3, 3)).astype(np.int8)  # channel multiplier 2
    bias = rng.integers(-5000, 5000, 12).astype(np.int32)
    rq = REQUANTIZERS[name](12)
    zp = int(rng.integers(lo, hi))
    fused = on_every_path(lambda: conv2d(x, w, bias=bias, padding=(1, 0, 2, 1), stride=stride, groups=6, x_zero_point=zp,
                                         requantizer=rq))
    acc = reference(x, w, pads=(1, 0, 2, 1), stride=(stride, stride), dilation=(1, 1), zp=zp, bias=bias).astype(np.int32)
    np.testing.assert_array_equal(fused, rq(acc))
    assert fused.dtype == rq(acc).dtype
    if name == "fp32_uint8":
        np.testing.assert_array_equal(fused, fp32_by_hand(acc, np.linspace(2e-4, 4e-3, 12), 128, 0, 255, np.uint8))
    if name == "fp32_int8_relu":
        np.testing.assert_array_equal(fused, fp32_by_hand(acc, 1e-3, -5, -5, 127, np.int8))
