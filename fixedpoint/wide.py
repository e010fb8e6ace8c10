"""The exact path for any word length: stored integers as Python ints in numpy object arrays.

Words above 64 bits (and intermediates that could exceed 127 bits) take this path; it is also the
reference the compiled core is cross-checked against. The rules are those of
csrc/fixed/rounding.hpp, written with numpy object-array operations so no Python loop runs over
elements.
"""
from __future__ import annotations

import numpy as np

from .types import OverflowAction, RoundingMethod

__all__ = ["as_exact", "round_shift", "round_divide", "overflow", "exact_doubles", "storage", "storage_dtype"]


def as_exact(q) -> np.ndarray:
    """Stored integers of any dtype as an object array of Python ints."""
    q = np.asarray(q)
    if q.dtype == object:
        return q
    return q.astype(object)


def _bits(mask) -> np.ndarray:
    return np.asarray(mask).astype(np.int64).astype(object)


def round_shift(x: np.ndarray, s, rounding: RoundingMethod) -> np.ndarray:
    """x * 2^-s rounded by `rounding` (s an int or an array of ints, any sign)."""
    x = as_exact(x)
    s_arr = np.asarray(s, dtype=object) if np.ndim(s) else s
    if np.ndim(s) == 0:
        s = int(s)
        if s <= 0:
            return x * (1 << -s) if s else x.copy()
        half = 1 << (s - 1)
    else:
        s_arr = np.broadcast_to(s_arr, x.shape)
        left = np.asarray(s_arr <= 0, dtype=bool)
        if left.any():
            out = np.empty(x.shape, dtype=object)
            out[left] = x[left] * np.left_shift(1, -s_arr[left].astype(object))
            right = ~left
            out[right] = round_shift(x[right], s_arr[right], rounding)
            return out
        s = s_arr
        half = np.left_shift(1, s - 1)
    q = x >> s
    rem = x - (q << s)
    if rounding is RoundingMethod.Floor:
        return q
    if rounding is RoundingMethod.Ceiling:
        up = rem != 0
    elif rounding is RoundingMethod.Zero:
        up = (rem != 0) & (x < 0)
    elif rounding is RoundingMethod.Nearest:
        up = rem >= half
    elif rounding is RoundingMethod.Round:
        up = (rem > half) | ((rem == half) & (x >= 0))
    else:  # Convergent: ties to the even neighbour
        up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + _bits(up)


def round_divide(n: np.ndarray, d: np.ndarray, rounding: RoundingMethod) -> np.ndarray:
    """n / d rounded by `rounding`, for object arrays of ints with every d > 0."""
    q = n // d
    rem2 = 2 * (n - q * d)  # twice the remainder in [0, 2d), compared against d
    if rounding is RoundingMethod.Floor:
        return q
    if rounding is RoundingMethod.Ceiling:
        up = rem2 != 0
    elif rounding is RoundingMethod.Zero:
        up = (rem2 != 0) & (n < 0)
    elif rounding is RoundingMethod.Nearest:
        up = rem2 >= d
    elif rounding is RoundingMethod.Round:
        up = (rem2 > d) | ((rem2 == d) & (n >= 0))
    else:
        up = (rem2 > d) | ((rem2 == d) & ((q & 1) == 1))
    return q + _bits(up)


def overflow(x: np.ndarray, w: int, signed: bool, action: OverflowAction):
    """Fit exact integers into a w-bit word: (fitted object array, number that overflowed)."""
    x = np.asarray(x, dtype=object)  # 0-d object arithmetic decays to Python ints; keep arrays
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    low, high = x < lo, x > hi
    n = int(np.count_nonzero(low) + np.count_nonzero(high))
    if not n:
        return x, 0
    if action is OverflowAction.Saturate:
        x = np.where(low, np.asarray(lo, dtype=object), np.where(high, np.asarray(hi, dtype=object), x))
    else:
        x = ((x - lo) & ((1 << w) - 1)) + lo
    return np.asarray(x, dtype=object), n


def exact_doubles(v: np.ndarray):
    """Finite doubles as (mantissa, exponent) object arrays with v = m * 2^e exactly, |m| < 2^53."""
    m, e = np.frexp(np.asarray(v, dtype=np.float64))
    mi = np.ldexp(m, 53).astype(np.int64)
    return mi.astype(object), (e.astype(np.int64) - 53).astype(object)


def storage_dtype(w: int, signed: bool) -> np.dtype:
    """The fi storage dtype of a (w, signed) word: the smallest signed integer class that holds
    every stored integer (a u8 word needs int16), uint64 for unsigned 64-bit words, Python-int
    objects above 64 bits. Small storage is what makes whole-array arithmetic fast: it is bound by
    the bytes it moves."""
    if w > 64:
        return np.dtype(object)
    if w == 64 and not signed:
        return np.dtype(np.uint64)
    bits = w if signed else w + 1
    return np.dtype(next(t for b, t in ((8, np.int8), (16, np.int16), (32, np.int32), (64, np.int64))
                         if bits <= b))


def storage(x: np.ndarray, w: int, signed: bool) -> np.ndarray:
    """Exact in-range stored integers in the fi storage dtype of a (w, signed) word."""
    return np.asarray(x).astype(storage_dtype(w, signed), copy=False)
