"""Memory layouts of activations (fixedpoint/kernels/layout.py, csrc/kernels/layout.hpp): the compiled
batched transposes against numpy, and the pixel-major pooling kernels (NCHW planes in chunks, NHWC
images) against an explicit window loop, on plane counts that cross the SIMD widths (16, 32 bytes) and
the chunk size, with windows clipped at every edge.
"""
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint import _kernels, kernels
from fixedpoint.kernels import layout
from fixedpoint.kernels import litert

from kernel_paths import restore_settings  # noqa: F401  (autouse)

DTYPES = (np.int8, np.uint8, np.int16, np.int32, np.float32, np.float64, np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 16, 8, 8), (3, 5, 7, 9), (2, 1, 4, 4), (2, 3, 1, 1), (1, 24, 9, 17),
                                   (0, 3, 4, 4), (2, 33, 3, 11)])
def test_contiguous_of_transposed_views_equals_numpy(dtype, shape):
    rng = np.random.default_rng(1)
    x = rng.integers(-100, 100, shape).astype(dtype)
    nhwc_memory = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for view in (x.transpose(0, 2, 3, 1), x.transpose(0, 3, 1, 2), nhwc_memory.transpose(0, 3, 1, 2), x,
                 x[:, ::2], x.transpose(0, 1, 3, 2)):
        got = layout.contiguous(view)
        assert got.flags.c_contiguous and got.dtype == view.dtype and got.shape == view.shape
        np.testing.assert_array_equal(got, view)
    np.testing.assert_array_equal(layout.nchw(nhwc_memory.transpose(0, 3, 1, 2)), x)
    np.testing.assert_array_equal(layout.nhwc(x), nhwc_memory)
    assert layout.nhwc(nhwc_memory.transpose(0, 3, 1, 2)).base is not None   # a view, no copy


def test_channels_last_detection():
    x = np.zeros((2, 3, 4, 5), np.int8)
    assert not layout.channels_last(x)
    assert layout.channels_last(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2))
    assert not layout.channels_last(np.zeros((2, 1, 4, 5)).transpose(0, 1, 2, 3))   # C = 1: both layouts
    assert not layout.channels_last(np.zeros((2, 3, 4)))


def test_transpose_batched_checks_its_argument():
    with pytest.raises(ValueError, match="3-D"):
        _kernels.transpose_batched(np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="C-contiguous"):
        _kernels.transpose_batched(np.zeros((2, 3, 4), np.int8).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="byte"):
        _kernels.transpose_batched(np.zeros((2, 3, 4), np.dtype("V3")))


# ---- pooling ------------------------------------------------------------------------------------------
def windows(h, w, kernel, stride, pads, dilation):
    """{(oy, ox): [(y, x) taps inside the input]} of a pooling geometry (explicit loops)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, left, bottom, right = pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    return {(i, j): [(i * sh - top + r * dh, j * sw - left + q * dw) for r in range(kh) for q in range(kw)
                     if 0 <= i * sh - top + r * dh < h and 0 <= j * sw - left + q * dw < w]
            for i in range(oh) for j in range(ow)}, (oh, ow)


def round_half_away(f: Fraction) -> int:
    n = abs(f.numerator) * 2 + f.denominator
    r = n // (2 * f.denominator)
    return r if f >= 0 else -r


# (shape NCHW, kernel, stride, pads, dilation): plane counts below, at and past 16 / 32 and the chunk of
# planes; edge windows clipped on every side; a dilated window
POOLS = [
    ((2, 40, 9, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((64, 16, 8, 8), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((3, 11, 10, 9), (3, 2), (1, 3), (2, 1, 0, 1), (1, 1)),
    ((1, 1000, 5, 6), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 33, 8, 9), (3, 3), (2, 1), (2, 0, 2, 2), (2, 2)),
    ((1, 600, 40, 40), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),   # several chunks of planes
]


def pool_loop(x, kernel, stride, pads, dilation, op):
    win, (oh, ow) = windows(*x.shape[2:], kernel, stride, pads, dilation)
    out = np.zeros(x.shape[:2] + (oh, ow), np.int64)
    for (i, j), taps in win.items():
        vals = np.stack([x[:, :, r, q].astype(np.int64) for r, q in taps], -1)
        out[:, :, i, j] = vals.max(-1) if op == "max" else vals.sum(-1)
    return out, win


@pytest.mark.parametrize("dtype", (np.int8, np.uint8, np.int16, np.int32))
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_max_pool2d_pixel_major_against_loops(case, dtype):
    shape, kernel, stride, pads, dilation = POOLS[case]
    info = np.iinfo(dtype)
    x = np.random.default_rng(case).integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    x[0, 0] = info.min
    want, _ = pool_loop(x, kernel, stride, pads, dilation, "max")
    np.testing.assert_array_equal(kernels.max_pool2d(x, kernel, stride, pads, dilation), want)


@pytest.mark.parametrize("case", [c for c in range(len(POOLS)) if POOLS[c][4] == (1, 1)])
def test_avg_pool2d_pixel_major_against_loops(case):
    shape, kernel, stride, pads, _ = POOLS[case]
    x = np.random.default_rng(10 + case).integers(-128, 128, shape).astype(np.int8)
    sums, win = pool_loop(x, kernel, stride, pads, (1, 1), "sum")
    counts = np.array([[len(win[i, j]) for j in range(sums.shape[3])] for i in range(sums.shape[2])])
    want = np.vectorize(lambda s, c: round_half_away(Fraction(int(s), int(c))))(sums, counts[None, None])
    np.testing.assert_array_equal(kernels.avg_pool2d(x, kernel, stride, pads), want)


@pytest.mark.parametrize("path", ["auto", "portable"])
@pytest.mark.parametrize("op", ["max", "average"])
@pytest.mark.parametrize("case", [c for c in range(len(POOLS)) if POOLS[c][4] == (1, 1) and POOLS[c][1] != (3, 2)])
def test_litert_pooling_layouts_against_loops(case, op, path):
    """LiteRT's pools (VALID / SAME windows clipped to the input, the average rounded half away from
    zero, the activation clamp) on NCHW memory and on NHWC memory (a LiteRT result), both code paths."""
    shape, kernel, stride, pads, _ = POOLS[case]
    kernels.set_kernel_path(path)
    rng = np.random.default_rng(20 + case)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    x[0, :, 0, 0] = -128
    padding = "VALID" if pads == (0, 0, 0, 0) else "SAME"
    h, w = shape[2:]
    if padding == "SAME":   # TFLite's SAME: the odd padding pixel after
        total = [max((-(-n // s) - 1) * s + k - n, 0) for n, k, s in zip((h, w), kernel, stride)]
        pads = (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
    sums, win = pool_loop(x, kernel, stride, pads, (1, 1), "max" if op == "max" else "sum")
    if op == "average":
        counts = np.array([[len(win[i, j]) for j in range(sums.shape[3])] for i in range(sums.shape[2])])
        sums = np.vectorize(lambda s, c: round_half_away(Fraction(int(s), int(c))))(sums, counts[None, None])
    s, z = 0.05, 10   # RELU clamps at the zero point: values below 10 become 10
    want = np.maximum(sums, z)
    fn = litert.max_pool2d if op == "max" else litert.average_pool2d
    kw = dict(filter_size=kernel, stride=stride, padding=padding, activation="RELU", output_scale=s,
              output_zero_point=z, resolver="reference")
    nchw_memory = fn(x, **kw)
    nhwc_memory = fn(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), **kw)
    assert nchw_memory.flags.c_contiguous and layout.channels_last(nhwc_memory) or nhwc_memory.shape[1] == 1
    np.testing.assert_array_equal(nchw_memory, want)
    np.testing.assert_array_equal(nhwc_memory, want)
