"""The convolution the affine layers bind (`_kernels.conv2d_gemm`): its depthwise kernel vectorised over
channels (csrc/kernels/conv_dw_nhwc.cpp, AVX2; the portable path runs the planar kernel) against an
independent int64 reference, and NCHW / NHWC memory in and out against the NCHW call.

Depthwise cases cross the 16-channel blocks (1 .. 40 channels, depth multiplier 1 and 2; one input
channel with groups 1, as an image network's stem, multiplier 5 and 16), odd and even
tap counts, strides, dilations and padding on every side, int8 / uint8 images and weights with scalar
and per-channel weight zero points, and every requantizer form: int32 out, fp32 (ONNX Runtime /
XNNPACK, fused into the store; uint8, int8 and int16 words, per tensor and per channel) and the
integer modes (gemmlowp, ruy) applied per channel plane.
"""
import numpy as np
import pytest

from fixedpoint import _kernels, kernels
from fixedpoint.kernels import Requantizer
from fixedpoint.kernels.accumulation import ACCUMULATION_KINDS, K_ORDERS

from kernel_paths import restore_settings  # noqa: F401  (autouse)


def reference(x, w, *, pads, stride, dilation, groups, zx, zw, bias):
    """int64: pad with zx, subtract it; per output channel, its group's window by (w - zw)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    top, left, bottom, right = pads
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (0, 0), (top, bottom), (left, right)))
    wz = w.astype(np.int64) - np.asarray(zw, np.int64).reshape(-1, 1, 1, 1)
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            r, s = i * stride[0], j * stride[1]
            win = xp[:, :, r:r + dilation[0] * (kh - 1) + 1:dilation[0], s:s + dilation[1] * (kw - 1) + 1:dilation[1]]
            for g in range(groups):
                out[:, g * og:(g + 1) * og, i, j] = np.einsum("nckl,ockl->no", win[:, g * cg:(g + 1) * cg],
                                                              wz[g * og:(g + 1) * og])
    return out + bias.astype(np.int64)[None, :, None, None]


def wrap32(v):
    return ((v + 2**31) % 2**32 - 2**31).astype(np.int32)


def call(x, w, *, groups, zx, zw, bias, stride, dilation, pads, rq=None, x_last=False, out_last=False, acc="exact"):
    handle = kernels.pack_weights(w, groups=groups).conv_gemm(K_ORDERS.index("hwc"), ACCUMULATION_KINDS.index(acc))
    zwa = np.ascontiguousarray(np.asarray(zw, np.int32).reshape(-1))
    xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x_last else x
    y = _kernels.conv2d_gemm(xin, handle, zx, zwa, stride, dilation, pads, bias, None if rq is None else rq.to_params(),
                             0, x_last, out_last)
    return y.transpose(0, 3, 1, 2) if out_last else y


DEPTHWISE = [  # (n, c, mult, h, w, kh, kw, stride, dilation, pads)
    (2, 16, 1, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
    (3, 16, 1, 8, 8, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    (1, 1, 1, 5, 7, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
    (2, 5, 2, 6, 9, 2, 3, (1, 2), (1, 1), (0, 2, 1, 0)),
    (1, 40, 1, 7, 5, 5, 5, (1, 1), (2, 1), (4, 2, 3, 2)),
    (2, 17, 2, 4, 4, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),
    (1, 33, 1, 9, 10, 3, 2, (3, 1), (1, 2), (2, 1, 0, 3)),
    (3, 1, 16, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),    # one input channel, groups 1: a stem
    (2, 1, 5, 7, 6, 2, 3, (2, 1), (1, 1), (0, 1, 1, 0)),
]


@pytest.mark.parametrize("path", ["auto", "portable"])
@pytest.mark.parametrize("xdt, wdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
@pytest.mark.parametrize("case", range(len(DEPTHWISE)))
def test_depthwise_int32_against_reference(case, xdt, wdt, path):
    n, c, mult, h, wd, kh, kw, stride, dilation, pads = DEPTHWISE[case]
    kernels.set_kernel_path(path)
    rng = np.random.default_rng(case)
    xi, wi = np.iinfo(xdt), np.iinfo(wdt)
    x = rng.integers(xi.min, xi.max, (n, c, h, wd), endpoint=True).astype(xdt)
    x[0, 0] = xi.max   # extreme values: |x - zx| and |w - zw| reach 255
    w = rng.integers(wi.min, wi.max, (c * mult, 1, kh, kw), endpoint=True).astype(wdt)
    w[0] = wi.min
    zx = int(xi.min) if case % 2 else int(rng.integers(xi.min, xi.max))
    zw = rng.integers(wi.min, wi.max, c * mult) if case % 3 else [int(wi.max) if wdt == np.uint8 else 0]
    bias = rng.integers(-2**31, 2**31, c * mult, dtype=np.int64).astype(np.int32)
    got = call(x, w, groups=c, zx=zx, zw=zw, bias=bias, stride=stride, dilation=dilation, pads=pads)
    want = wrap32(reference(x, w, pads=pads, stride=stride, dilation=dilation, groups=c, zx=zx, zw=zw, bias=bias))
    np.testing.assert_array_equal(got, want)
    for x_last in (False, True):
        for out_last in (False, True):
            np.testing.assert_array_equal(call(x, w, groups=c, zx=zx, zw=zw, bias=bias, stride=stride, dilation=dilation,
                                               pads=pads, x_last=x_last, out_last=out_last), want)


def requantizers(rng, channels):
    scales = rng.uniform(1e-4, 3e-3, channels).astype(np.float32)
    return {
        "fp32 uint8": Requantizer.fp32(scales, zero_point=7, dtype=np.uint8),
        "fp32 int8 clamp": Requantizer.fp32(scales, zero_point=-3, dtype=np.int8, clamp=(-20, 90)),
        "fp32 int16": Requantizer.fp32(scales * 100, zero_point=11, dtype=np.int16),
        "fp32 per tensor": Requantizer.fp32(scales[:1], zero_point=0, dtype=np.int8),
        "gemmlowp": Requantizer.gemmlowp(scales.astype(np.float64), zero_point=5, dtype=np.int8),
        "ruy": Requantizer.ruy(scales.astype(np.float64), zero_point=-9, dtype=np.int8, clamp=(-9, 100)),
    }


@pytest.mark.parametrize("path", ["auto", "portable"])
@pytest.mark.parametrize("case", [0, 1, 3, 4, 7])
def test_depthwise_requantized_equals_requantizing_the_sums(case, path):
    n, c, mult, h, wd, kh, kw, stride, dilation, pads = DEPTHWISE[case]
    kernels.set_kernel_path(path)
    rng = np.random.default_rng(100 + case)
    x = rng.integers(0, 256, (n, c, h, wd)).astype(np.uint8)
    w = rng.integers(-128, 128, (c * mult, 1, kh, kw)).astype(np.int8)
    bias = rng.integers(-5000, 5000, c * mult).astype(np.int32)
    geo = dict(groups=c, zx=131, zw=[0], bias=bias, stride=stride, dilation=dilation, pads=pads)
    sums = call(x, w, **geo)
    for name, rq in requantizers(rng, c * mult).items():
        want = rq(sums, channel_axis=1)
        for x_last in (False, True):
            for out_last in (False, True):
                got = call(x, w, rq=rq, x_last=x_last, out_last=out_last, **geo)
                assert got.dtype == want.dtype, name
                np.testing.assert_array_equal(got, want, err_msg=f"{name} x_last={x_last} out_last={out_last}")


@pytest.mark.parametrize("acc", ["exact", "int16_pairs"])
@pytest.mark.parametrize("groups, c, o, kh, stride, pads", [(1, 1, 16, 3, (1, 1), (1, 1, 1, 1)), (1, 16, 32, 1, (1, 1), (0, 0, 0, 0)),
                                                           (2, 8, 6, 3, (2, 1), (1, 0, 2, 1)), (1, 5, 7, 2, (1, 2), (0, 1, 1, 0))])
def test_gemm_route_layouts_equal_nchw(groups, c, o, kh, stride, pads, acc):
    rng = np.random.default_rng(groups * c + o)
    x = rng.integers(0, 256, (3, c, 6, 7)).astype(np.uint8)
    w = rng.integers(-128, 128, (o, c // groups, kh, kh)).astype(np.int8)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    rq = Requantizer.fp32(rng.uniform(1e-4, 3e-3, o).astype(np.float32), zero_point=7, dtype=np.uint8)
    geo = dict(groups=groups, zx=120, zw=[0], bias=bias, stride=stride, dilation=(1, 1), pads=pads, acc=acc)
    for requantizer in (None, rq):
        want = call(x, w, rq=requantizer, **geo)
        if requantizer is None and acc == "exact":
            np.testing.assert_array_equal(want, wrap32(reference(x, w, pads=pads, stride=stride, dilation=(1, 1),
                                                                 groups=groups, zx=120, zw=[0], bias=bias)))
        for x_last, out_last in ((True, False), (False, True), (True, True)):
            np.testing.assert_array_equal(call(x, w, rq=requantizer, x_last=x_last, out_last=out_last, **geo), want)


def test_channels_last_shapes_are_checked():
    w = np.zeros((4, 2, 3, 3), np.int8)
    handle = kernels.pack_weights(w).conv_gemm(1, 0)
    x = np.zeros((1, 5, 5, 3), np.uint8)   # NHWC with 3 channels, weights expect 2
    with pytest.raises(ValueError, match="channels"):
        _kernels.conv2d_gemm(x, handle, 0, np.zeros(1, np.int32), (1, 1), (1, 1), (0, 0, 0, 0), None, None, 0, True, False)
