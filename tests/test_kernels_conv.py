"""Exact 2-D convolution (NCHW x OIHW) against an independent numpy int64 reference that loops over
kernel offsets, on every code path and thread count."""
import itertools

import numpy as np
import pytest

from fixedpoint.kernels import Requantizer, conv2d, pack_weights

# "auto" is "vnni" on a CPU with AVX-512 VNNI and "avx2" otherwise; "vnni" falls back to "avx2" without it.
from kernel_paths import ALL_PATHS as PATHS, on_every_path, restore_settings  # noqa: F401 (autouse fixture)


def reference(x, w, *, pads, stride, dilation, groups, zp, bias=None):
    """Explicit zero-point padding, then one strided slice per kernel offset (int64)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    top, left, bottom, right = pads
    xp = np.full((n, c, h + top + bottom, wd + left + right), zp, np.int64)
    xp[:, :, top:top + h, left:left + wd] = x
    xp -= zp
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for g, i, j in itertools.product(range(groups), range(kh), range(kw)):
        patch = xp[:, g * cg:(g + 1) * cg, i * dilation[0]:i * dilation[0] + stride[0] * (oh - 1) + 1:stride[0],
                   j * dilation[1]:j * dilation[1] + stride[1] * (ow - 1) + 1:stride[1]]
        out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j].astype(np.int64))
    if bias is not None:
        out += bias.astype(np.int64)[None, :, None, None]
    return out


PADDINGS = [(0, (0, 0, 0, 0)), (1, (1, 1, 1, 1)), ((2, 0), (2, 0, 2, 0)), ((0, 1, 2, 3), (0, 1, 2, 3))]
GROUPINGS = [("dense", 4, 6, 1), ("grouped", 4, 6, 2), ("depthwise", 4, 4, 4), ("depthwise_x2", 3, 6, 3)]


@pytest.mark.parametrize("padding, pads", PADDINGS)
@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("dilation", [1, (2, 1)])
@pytest.mark.parametrize("name, c, o, groups", GROUPINGS)
def test_geometry_combinations(padding, pads, stride, dilation, name, c, o, groups):
    rng = np.random.default_rng(hash((str(padding), str(stride), str(dilation), name)) % 2**32)
    x = rng.integers(0, 256, (2, c, 7, 9)).astype(np.uint8)
    w = rng.integers(-128, 128, (o, c // groups, 3, 2)).astype(np.int8)
    bias = rng.integers(-10**6, 10**6, o).astype(np.int32)
    zp = int(rng.integers(0, 256))
    st = (stride, stride) if isinstance(stride, int) else stride
    dl = (dilation, dilation) if isinstance(dilation, int) else dilation
    out = on_every_path(lambda: conv2d(x, w, bias=bias, stride=stride, padding=padding, dilation=dilation,
                                       groups=groups, x_zero_point=zp))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, reference(x, w, pads=pads, stride=st, dilation=dl, groups=groups, zp=zp, bias=bias))


@pytest.mark.parametrize("mode", ["same", "same_lower"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(5, 6), (8, 7)])
def test_same_padding_follows_onnx(mode, stride, size):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 3) + size).astype(np.int8)
    w = rng.integers(-128, 128, (5, 3, 4, 3)).astype(np.int8)
    out = conv2d(x, w, stride=stride, padding=mode, x_zero_point=-7)
    assert out.shape[2:] == tuple(-(-s // stride) for s in size)  # ceil(H / stride)
    pads = []
    for s, k in zip(size, (4, 3)):
        total = max((-(-s // stride) - 1) * stride + k - s, 0)
        small = total // 2
        pads.append((small, total - small) if mode == "same" else (total - small, small))
    expected = reference(x, w, pads=(pads[0][0], pads[1][0], pads[0][1], pads[1][1]), stride=(stride, stride),
                         dilation=(1, 1), groups=1, zp=-7)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("groups, o", [(1, 16), (16, 16), (16, 32)])
@pytest.mark.parametrize("data", ["int8", "nonneg_int8", "uint8_small"])
def test_realistic_3x3_on_all_paths(groups, o, data):
    rng = np.random.default_rng(groups + o)
    lo, hi, dt = {"int8": (-128, 128, np.int8), "nonneg_int8": (0, 128, np.int8), "uint8_small": (0, 128, np.uint8)}[data]
    x = rng.integers(lo, hi, (2, 16, 13, 17)).astype(dt)
    w = rng.integers(-128, 128, (o, 16 // groups, 3, 3)).astype(np.int8)
    zp = 5
    out = on_every_path(lambda: conv2d(x, w, padding=1, groups=groups, x_zero_point=zp))
    np.testing.assert_array_equal(out, reference(x, w, pads=(1, 1, 1, 1), stride=(1, 1), dilation=(1, 1),
                                                 groups=groups, zp=zp))


@pytest.mark.parametrize("xv, wv", [(-128, -128), (127, 127), (-128, 127)])
@pytest.mark.parametrize("groups", [1, 8])
def test_extreme_values(xv, wv, groups):
    x = np.full((1, 8, 6, 6), xv, np.int8)
    w = np.full((8, 8 // groups, 3, 3), wv, np.int8)
    out = on_every_path(lambda: conv2d(x, w, groups=groups))
    np.testing.assert_array_equal(out, np.full((1, 8, 4, 4), xv * wv * 9 * (8 // groups), np.int32))


@pytest.mark.parametrize("xv, wv, zp", [(127, -128, 0), (127, 127, 0), (0, -128, 127), (127, -128, 127)])
def test_extreme_non_negative_inputs_over_several_k_blocks(xv, wv, zp):
    """Inputs <= 127 take the quad kernels (VNNI or vpmaddubsw); K = 128 * 9 spans two K blocks and the
    work is large enough for 2 threads."""
    x = np.full((1, 128, 20, 21), xv, np.int8)
    x[0, ::3, ::2] = 0
    w = np.full((32, 128, 3, 3), wv, np.int8)
    w[::5] = 1
    out = on_every_path(lambda: conv2d(x, w, padding=1, x_zero_point=zp))
    np.testing.assert_array_equal(out, reference(x, w, pads=(1, 1, 1, 1), stride=(1, 1), dilation=(1, 1), groups=1,
                                                 zp=zp))


@pytest.mark.parametrize("dtype, zp", [(np.int8, -128), (np.int8, 127), (np.int8, 0), (np.uint8, 0), (np.uint8, 255),
                                       (np.uint8, 128)])
@pytest.mark.parametrize("stride", [1, 2])
def test_full_range_images_over_several_k_blocks(dtype, zp, stride):
    """Full-range bytes and extreme zero points: on a VNNI CPU int8 images run as x + 128 against
    zp + 128 and uint8 images as they are (vpdpbusd); K = 128 * 9 spans two K blocks, the padding
    is the zero point, and the raw sums of the flipped form exceed the int32 range."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(zp + 300 * stride)
    x = rng.integers(info.min, info.max + 1, (1, 128, 19, 21)).astype(dtype)
    x[0, ::4] = info.max
    x[0, 1::4] = info.min
    w = rng.integers(-128, 128, (24, 128, 3, 3)).astype(np.int8)
    w[::3] = -128
    w[1::3] = 127
    out = on_every_path(lambda: conv2d(x, w, padding=1, stride=stride, x_zero_point=zp))
    expected = reference(x, w, pads=(1, 1, 1, 1), stride=(stride, stride), dilation=(1, 1), groups=1, zp=zp)
    np.testing.assert_array_equal(out, (expected + 2**31) % 2**32 - 2**31)


@pytest.mark.parametrize("dtype, lo, hi", [(np.int8, -128, 128), (np.uint8, 0, 256), (np.int8, 0, 128)])
@pytest.mark.parametrize("c, kernel", [(3, (3, 3)), (3, (1, 1)), (5, (3, 1)), (7, (2, 3))])
@pytest.mark.parametrize("stride", [1, 2])
def test_k_not_a_multiple_of_four(dtype, lo, hi, c, kernel, stride):
    """K = C * kh * kw padded to whole quads (an RGB first layer has K = 27): the padding K rows of a
    panel must be zero on every path (x >= 0 also takes the AVX2 quads)."""
    rng = np.random.default_rng(c * 10 + kernel[0] + stride)
    x = rng.integers(lo, hi, (2, c, 11, 37)).astype(dtype)
    w = rng.integers(-128, 128, (10, c, *kernel)).astype(np.int8)
    zp = int(rng.integers(lo, hi))
    out = on_every_path(lambda: conv2d(x, w, padding=1, stride=stride, x_zero_point=zp))
    np.testing.assert_array_equal(out, reference(x, w, pads=(1, 1, 1, 1), stride=(stride, stride), dilation=(1, 1),
                                                 groups=1, zp=zp))


@pytest.mark.parametrize("o", [1, 5, 7, 13, 64])
@pytest.mark.parametrize("width, kernel, pad, dilation", [(16, (3, 3), 1, 1), (17, (3, 3), 1, 1), (23, (1, 1), 0, 1),
                                                          (40, (2, 3), (0, 1, 1, 2), (1, 2)), (58, (3, 3), 1, (2, 1))])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_output_rows_of_16_or_more_pixels_with_any_channel_count(o, width, kernel, pad, dilation, dtype):
    """Stride-1 outputs at least 16 pixels wide: on a VNNI + VBMI CPU the column grid is the output
    itself (a panel spans two output rows: two byte runs per K row) and every block is stored straight
    into the output, the last rows of a channel count that is not a multiple of 6 by a kernel of fewer
    rows, the last columns masked. Batch, groups, bias and K not a multiple of 4 (C = 3) included."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(o * 100 + width)
    for c, groups in ((3, 1), (4, 2)):
        if o % groups:
            continue
        x = rng.integers(info.min, info.max + 1, (2, c, 5, width)).astype(dtype)
        w = rng.integers(-128, 128, (o, c // groups, *kernel)).astype(np.int8)
        bias = rng.integers(-2**31, 2**31, o).astype(np.int32)
        zp = int(rng.integers(info.min, info.max + 1))
        out = on_every_path(lambda: conv2d(x, w, bias=bias, padding=pad, dilation=dilation, groups=groups, x_zero_point=zp))
        pads = (pad,) * 4 if isinstance(pad, int) else pad
        dl = (dilation, dilation) if isinstance(dilation, int) else dilation
        expected = reference(x, w, pads=pads, stride=(1, 1), dilation=dl, groups=groups, zp=zp, bias=bias)
        np.testing.assert_array_equal(out, (expected + 2**31) % 2**32 - 2**31)
        rq = Requantizer.fp32(np.linspace(1e-5, 1e-3, o), zero_point=3, dtype=np.uint8)
        fused = on_every_path(lambda: conv2d(x, w, bias=bias, padding=pad, dilation=dilation, groups=groups,
                                             x_zero_point=zp, requantizer=rq))
        np.testing.assert_array_equal(fused, rq(out))


def test_the_common_call_route_equals_the_reference_and_keeps_the_errors():
    """conv2d(x, packed, int stride/padding/dilation, int zero point, int32 bias) skips the general
    argument handling; anything else (and every invalid call) takes the general route."""
    rng = np.random.default_rng(13)
    x = rng.integers(0, 256, (2, 6, 9, 18)).astype(np.uint8)
    w = rng.integers(-128, 128, (8, 3, 3, 3)).astype(np.int8)
    bias = rng.integers(-2**31, 2**31, 8).astype(np.int32)
    packed = pack_weights(w, groups=2)
    for stride, padding, dilation, bias_arg in [(1, 1, 1, bias), (2, 0, 1, None), (1, 2, 2, bias.astype(np.int64)),
                                                ((1, 2), (1, 0), 1, bias)]:
        out = conv2d(x, packed, bias=bias_arg, stride=stride, padding=padding, dilation=dilation, groups=2,
                     x_zero_point=200)
        st = (stride, stride) if isinstance(stride, int) else stride
        pads = (padding,) * 4 if isinstance(padding, int) else padding * 2
        np.testing.assert_array_equal(out, reference(x, w, pads=pads, stride=st, dilation=(dilation, dilation), groups=2,
                                                     zp=200, bias=bias_arg))
    with pytest.raises(ValueError, match="x_zero_point"):
        conv2d(x, packed, groups=2, x_zero_point=256)
    with pytest.raises(ValueError, match="groups"):
        conv2d(x, packed, groups=3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(x[:, :, :2], packed, groups=2)
    with pytest.raises(ValueError, match="padding"):
        conv2d(x, packed, groups=2, padding=-1)


def test_successive_calls_with_other_zero_points_and_shapes():
    """The interleaved image buffer is kept between calls and only its padding refilled: each call
    must see its own zero point in the padding, whatever the previous call left there."""
    rng = np.random.default_rng(12)
    w = rng.integers(-128, 128, (7, 5, 3, 3)).astype(np.int8)
    for zp, dtype, width, pad in [(0, np.uint8, 20, 1), (255, np.uint8, 20, 1), (-128, np.int8, 20, 2),
                                  (127, np.int8, 18, (0, 2, 1, 0)), (9, np.uint8, 33, 1)]:
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max + 1, (1, 5, 6, width)).astype(dtype)
        pads = (pad,) * 4 if isinstance(pad, int) else pad
        out = conv2d(x, w, padding=pad, x_zero_point=zp)
        np.testing.assert_array_equal(out, reference(x, w, pads=pads, stride=(1, 1), dilation=(1, 1), groups=1, zp=zp))


@pytest.mark.parametrize("groups", [1, 4])
def test_batch_of_n_equals_each_sample_alone(groups):
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, (5, 4, 9, 8)).astype(np.int8)
    w = pack_weights(rng.integers(-128, 128, (8, 4 // groups, 3, 3)).astype(np.int8), groups=groups)
    batch = conv2d(x, w, padding=1, stride=(1, 2))
    for i in range(5):
        np.testing.assert_array_equal(batch[i:i + 1], conv2d(x[i:i + 1], w, padding=1, stride=(1, 2)))


@pytest.mark.parametrize("groups, o", [(1, 6), (3, 6)])
def test_fused_requantizer_equals_requantizing_the_int32_result(groups, o):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (2, 3, 10, 11)).astype(np.uint8)
    w = rng.integers(-128, 128, (o, 3 // groups, 3, 3)).astype(np.int8)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    rq = Requantizer.fp32(np.linspace(2e-4, 4e-3, o), zero_point=128, dtype=np.uint8, clamp=(128, 255))
    fused = on_every_path(lambda: conv2d(x, w, bias=bias, padding=1, groups=groups, x_zero_point=128, requantizer=rq))
    assert fused.dtype == np.uint8
    np.testing.assert_array_equal(fused, rq(conv2d(x, w, bias=bias, padding=1, groups=groups, x_zero_point=128)))


@pytest.mark.parametrize("c, width, stride", [(8, 20, 1), (70, 18, 1), (8, 33, 2), (8, 9, 1)])
@pytest.mark.parametrize("make", [
    lambda o: Requantizer.fp32(0.5, zero_point=-3, dtype=np.int8, clamp=(-3, 127)),  # ReLU, rounding ties
    lambda o: Requantizer.fp32(np.linspace(2e-4, 4e-3, o), zero_point=128, dtype=np.uint8),
    lambda o: Requantizer.fp32(np.linspace(0.01, 1.0, o), zero_point=7, dtype=np.int16),
])
def test_fp32_requantizer_in_the_kernel_store(c, width, stride, make):
    """On a VNNI CPU, ONNX Runtime's requantization into 8/16-bit words runs in the micro-kernel's
    store when K is one block; C = 70 (K = 630, two blocks), stride 2 (gathered columns) and a
    narrow image (padded-width grid) take the other routes. 13 output channels: a last row panel of 1."""
    rng = np.random.default_rng(c + width)
    x = rng.integers(0, 256, (2, c, 7, width)).astype(np.uint8)
    w = rng.integers(-128, 128, (13, c, 3, 3)).astype(np.int8)
    bias = rng.integers(-30000, 30000, 13).astype(np.int32)
    rq = make(13)
    fused = on_every_path(lambda: conv2d(x, w, bias=bias, padding=1, stride=stride, x_zero_point=131, requantizer=rq))
    assert fused.dtype == rq.dtype
    exact = reference(x, w, pads=(1, 1, 1, 1), stride=(stride, stride), dilation=(1, 1), groups=1, zp=131, bias=bias)
    np.testing.assert_array_equal(fused, rq(((exact + 2**31) % 2**32 - 2**31).astype(np.int32)))


def test_non_contiguous_input():
    rng = np.random.default_rng(6)
    big = rng.integers(-128, 128, (2, 6, 12, 14)).astype(np.int8)
    x = big[:, ::2, 1:, ::2]
    w = rng.integers(-128, 128, (4, 3, 2, 2)).astype(np.int8)
    np.testing.assert_array_equal(conv2d(x, w), reference(x, w, pads=(0, 0, 0, 0), stride=(1, 1), dilation=(1, 1),
                                                          groups=1, zp=0))


X = np.zeros((1, 4, 5, 5), np.int8)
W = np.zeros((4, 4, 3, 3), np.int8)


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d(X.astype(np.int16), W), "x must have dtype"),
    (lambda: conv2d(X[0], W), "x must be 4-D"),
    (lambda: conv2d(X, W.astype(np.float32)), "w must have dtype int8 or uint8"),
    (lambda: conv2d(X, W[:, :3]), "channels"),
    (lambda: conv2d(X, W, groups=3), "groups=3 must divide"),
    (lambda: conv2d(X, W[:, :1], groups=4, padding=-1), "padding must be >= 0"),
    (lambda: conv2d(X, W, padding="valid_ish"), "padding must be"),
    (lambda: conv2d(X, W, padding=(1, 2, 3)), "padding must be"),
    (lambda: conv2d(X, W, stride=0), "stride must be >= 1"),
    (lambda: conv2d(X, W, dilation=(1, 2, 3)), "dilation"),
    (lambda: conv2d(X, W, dilation=3), "larger than the padded input"),
    (lambda: conv2d(X, W, x_zero_point=128), "x_zero_point"),
    (lambda: conv2d(X, W, bias=np.zeros(5, np.int32)), "bias"),
    (lambda: conv2d(X, pack_weights(W), groups=2), "disagrees"),
    (lambda: conv2d(X, pack_weights(np.zeros((3, 4), np.int8))), "packed GEMM weights"),
])
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
