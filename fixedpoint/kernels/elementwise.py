"""Integer elementwise kernels of a quantized network: quantize, add with alignment, pooling.

Each one is exact: the only rounding is the stated one, done once (csrc/kernels/elementwise.hpp,
rules from csrc/fixed/rounding.hpp). numpy in and out, NCHW for pooling, the GIL released.
"""
import functools

import numpy as np

from .. import _requant
from .layout import contiguous
from .requantize import output_dtype, overflow_code, rounding_code

POOL_DTYPES = (np.int8, np.uint8, np.int16, np.int32)


def quantize(x, *, fraction_length=None, scale=None, zero_point=0, rounding="Nearest", overflow="Saturate",
             dtype=np.int8):
    """Float -> integer: round(x * 2^fraction_length) + zero_point, or round(x / scale) + zero_point.

    With `fraction_length` the product is exact (power of two), so the only rounding is `rounding`.
    With `scale` the quotient is formed in the input's precision (float32 / float32 as ONNX
    QuantizeLinear does, float64 otherwise) and then rounded exactly. `overflow` (Saturate/Wrap) fits
    the result into `dtype`.
    """
    if (fraction_length is None) == (scale is None):
        raise ValueError("give exactly one of fraction_length or scale")
    a = np.asarray(x)
    if a.dtype not in _FLOAT_DTYPES:
        if a.dtype.kind not in "iub":
            raise ValueError(f"x must be a float32/float64 array, got dtype {a.dtype}")
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("x contains NaN or infinity, which has no integer value")
    try:
        name, lo, hi, r, o = _quantize_codes(dtype, rounding, overflow)
    except TypeError:   # unhashable arguments: the uncached path reports what is wrong
        name, lo, hi, r, o = _quantize_codes.__wrapped__(dtype, rounding, overflow)
    if scale is not None:
        s = float(scale)
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"scale must be finite and > 0, got {scale!r}")
        by_scale, f = True, 0
    else:
        if not isinstance(fraction_length, (int, np.integer)) or not -1000 <= fraction_length <= 1000:
            raise ValueError(f"fraction_length must be an integer in [-1000, 1000], got {fraction_length!r}")
        by_scale, s, f = False, 1.0, int(fraction_length)
    zp = int(zero_point)
    if not lo <= zp <= hi:
        raise ValueError(f"zero_point {zero_point!r} outside the range of {name}")
    out = _requant.quantize(np.ascontiguousarray(a).reshape(-1), by_scale, s, f, zp, r, o, name)
    return out.reshape(a.shape)


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@functools.lru_cache(maxsize=64)
def _quantize_codes(dtype, rounding, overflow):
    """(dtype name, its min, its max, rounding code, overflow code), validated once per spelling."""
    dt = output_dtype(dtype)
    info = np.iinfo(dt)
    return dt.name, int(info.min), int(info.max), rounding_code(rounding), overflow_code(overflow)


_INTEGER_DTYPES = tuple(np.dtype(t) for t in POOL_DTYPES)


def _integer_tensor(x, arg):
    a = np.asarray(x)
    if a.dtype not in _INTEGER_DTYPES:
        raise ValueError(f"{arg} must have dtype int8, uint8, int16 or int32, got {a.dtype}")
    return a


def add_shifted(a, fa, b, fb, *, out_fraction_length, rounding="Nearest", overflow="Saturate", dtype=np.int8):
    """Saturating add of two integer tensors with different exponents: a*2^-fa + b*2^-fb -> dtype.

    The operands are aligned exactly in a wide integer, summed, then shifted once to
    out_fraction_length with `rounding` and fitted into dtype with `overflow`.
    """
    a = _integer_tensor(a, "a")
    b = _integer_tensor(b, "b")
    for name, v in (("fa", fa), ("fb", fb), ("out_fraction_length", out_fraction_length)):
        if not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if a.shape != b.shape:
        try:
            a, b = np.broadcast_arrays(a, b)
        except ValueError:
            raise ValueError(f"a of shape {a.shape} and b of shape {b.shape} do not broadcast") from None
    dt = output_dtype(dtype)
    out = _requant.add_shifted(np.ascontiguousarray(a).reshape(-1), int(fa), np.ascontiguousarray(b).reshape(-1),
                               int(fb), int(out_fraction_length), rounding_code(rounding), overflow_code(overflow),
                               dt.name)
    return out.reshape(a.shape)


def _pair(v, arg):
    if type(v) is int and v >= 1:   # the common spellings, checked without the general path
        return [v, v]
    if type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int and v[0] >= 1 \
            and v[1] >= 1:
        return list(v)
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, (int, np.integer)) and i >= 1 for i in t):
        raise ValueError(f"{arg} must be a positive integer or a pair of them, got {v!r}")
    return [int(i) for i in t]


def _pads(padding):
    """int, (pad_h, pad_w) or (top, left, bottom, right) -> [top, left, bottom, right]."""
    if type(padding) is tuple and len(padding) == 4 and all(type(i) is int and i >= 0 for i in padding):
        return list(padding)
    if isinstance(padding, (int, np.integer)):
        p = [padding] * 4
    else:
        p = list(padding)
        if len(p) == 2:
            p = p * 2
    if len(p) != 4 or not all(isinstance(i, (int, np.integer)) and i >= 0 for i in p):
        raise ValueError(f"padding must be a non-negative int, (pad_h, pad_w) or (top, left, bottom, right); "
                         f"got {padding!r}")
    return [int(i) for i in p]


def _nchw(x):
    a = _integer_tensor(x, "x")
    if a.ndim != 4:
        raise ValueError(f"x must be an NCHW tensor (4-D), got shape {a.shape}")
    return contiguous(a)


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1):
    """Max pooling on NCHW integers; padded positions are skipped, so padding never wins.

    stride defaults to kernel. Output size floor((H + pads - dilation*(k-1) - 1) / stride) + 1.
    """
    k = _pair(kernel, "kernel")
    s = k if stride is None else _pair(stride, "stride")
    return _requant.max_pool2d(_nchw(x), k, s, _pads(padding), _pair(dilation, "dilation"))


def avg_pool2d(x, kernel, stride=None, padding=0, *, count_include_pad=False, rounding="Round"):
    """Average pooling on NCHW integers: the exact int64 window sum divided by its count, rounded once.

    The divisor is the kernel area when count_include_pad, else the number of taps inside the input
    (ONNX's default). rounding defaults to "Round" (half away from zero), TFLite's integer AveragePool.
    """
    k = _pair(kernel, "kernel")
    s = k if stride is None else _pair(stride, "stride")
    return _requant.avg_pool2d(_nchw(x), k, s, _pads(padding), bool(count_include_pad), rounding_code(rounding))


def global_avg_pool(x, *, rounding="Round"):
    """Mean over H x W of each (n, c) plane, rounded once; shape (N, C, 1, 1)."""
    a = _nchw(x)
    return _requant.avg_pool2d(a, a.shape[2:4], (1, 1), (0, 0, 0, 0), False, rounding_code(rounding))


__all__ = ["quantize", "add_shifted", "max_pool2d", "avg_pool2d", "global_avg_pool"]
