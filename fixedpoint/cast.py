"""Quantisation into a numerictype, and the public casts built on it.

Every fi value that is produced goes through `requantize` (exact stored integers Q·2^-f_in into a
binary-point type) or `quantize_doubles` (float64 values). Both send words of up to 64 bits to the
compiled core and wider ones to the exact object-array path of `wide`; slope-bias types go through
exact fractions.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import _core, wide
from .types import OverflowAction, RoundingMethod, default_fimath, fimath, numerictype

__all__ = ["cast", "floor", "ceil", "fix", "round", "nearest", "convergent", "reinterpretcast",
           "removefimath", "setfimath", "requantize", "quantize_doubles", "storage_dtype", "round_doubles",
           "core_input", "from_core",
           "scaled_doubles"]


def storage_dtype(nt: numerictype):
    """The dtype of a fi's stored integers (see wide.storage_dtype)."""
    return wide.storage_dtype(nt.word_length, nt.signed)


def core_input(q: np.ndarray):
    """Stored integers as the compiled core takes them: (int64 array or bit pattern, is_uint64),
    or None for object arrays (the exact path)."""
    if q.dtype == np.uint64:
        return q.view(np.int64), True
    if q.dtype.kind in "iu":
        return q.astype(np.int64, copy=False), False
    return None


def requantize(q: np.ndarray, f_in: int, nt: numerictype, rounding: RoundingMethod,
               overflow: OverflowAction):
    """Exact values q·2^-f_in into the type nt: (stored integers, n_overflow, n_underflow)."""
    if not nt.is_binary_point:
        return _quantize_fractions(_fractions(q, f_in), nt, rounding, overflow)
    w, s, shift = nt.word_length, nt.signed, f_in - nt.fraction_length
    q = np.asarray(q)
    core = core_input(q) if w <= 64 else None
    if core is not None:
        out, n_ov, n_un = _core.requantize(core[0], core[1], shift, w, s, rounding.value, overflow.value)
        return from_core(out, w, s), n_ov, n_un
    x = wide.as_exact(q)
    y = wide.round_shift(x, shift, rounding)
    n_un = int(np.count_nonzero((y == 0) & (x != 0))) if shift > 0 else 0
    y, n_ov = wide.overflow(y, w, s, overflow)
    return wide.storage(y, w, s), n_ov, n_un


def quantize_doubles(v: np.ndarray, nt: numerictype, rounding: RoundingMethod, overflow: OverflowAction):
    """float64 values into the type nt: (stored integers, n_overflow, n_underflow).

    NaN becomes 0; ±Inf saturate to the bounds (Saturate) or become 0 (Wrap).
    """
    v = np.asarray(v, dtype=np.float64)
    w, s = nt.word_length, nt.signed
    if nt.is_binary_point and w <= 64:
        out, n_ov, n_un = _core.cast_double(v, w, s, nt.fraction_length, rounding.value, overflow.value)
        return from_core(out, w, s), n_ov, n_un
    finite = np.isfinite(v)
    safe = np.where(finite, v, 0.0)
    if not nt.is_binary_point:
        q, n_ov, n_un = _quantize_fractions(np.array([Fraction(x) for x in safe.ravel()], dtype=object)
                                            .reshape(v.shape), nt, rounding, overflow)
        q = wide.as_exact(q)
    else:
        m, e = wide.exact_doubles(safe)
        x = wide.round_shift(m, -(e + nt.fraction_length), rounding)
        n_un = int(np.count_nonzero((x == 0) & (safe != 0)))
        q, n_ov = wide.overflow(x, w, s, overflow)
    if not finite.all():
        lo, hi = _limits(nt)
        infinite = np.isinf(v)
        n_ov += int(np.count_nonzero(infinite))
        if overflow is OverflowAction.Saturate:
            q = np.where(v == np.inf, hi, np.where(v == -np.inf, lo, q))
        q = np.where(finite, q, np.where(infinite & (overflow is OverflowAction.Saturate), q, 0))
        q = np.asarray(q, dtype=object)
    return wide.storage(q, w, s), n_ov, n_un


def from_core(out: np.ndarray, w: int, signed: bool) -> np.ndarray:
    """int64 results of the core (uint64 words as bit patterns) in the fi storage dtype."""
    if w == 64 and not signed:
        return out.view(np.uint64)
    return out.astype(wide.storage_dtype(w, signed), copy=False)


def round_doubles(y: np.ndarray, rounding: RoundingMethod) -> np.ndarray:
    """float64 values rounded to integers (as float64) by `rounding`, exactly.

    n = rint(y) (ties to even) and d = y - n are exact (|d| <= 1/2), so each method is n plus a
    correction decided on exact values; y + 0.5 would not be exact just below a tie. Values of 2^52
    and above are integers already; NaN and ±Inf pass through.
    """
    y = np.asarray(y, dtype=np.float64)
    n = np.rint(y)
    with np.errstate(invalid="ignore"):
        d = y - n
        if rounding is RoundingMethod.Floor:
            return n - (d < 0)
        if rounding is RoundingMethod.Ceiling:
            return n + (d > 0)
        if rounding is RoundingMethod.Zero:
            return n - ((d < 0) & (y > 0)) + ((d > 0) & (y < 0))
        if rounding is RoundingMethod.Nearest:
            return n + (d == 0.5)
        if rounding is RoundingMethod.Round:
            return n + ((d == 0.5) & (y > 0)) - ((d == -0.5) & (y < 0))
    return n  # Convergent


def scaled_doubles(values, nt: numerictype, rounding: RoundingMethod):
    """The ScaledDoubles data-type override (A.13, our answer to Q10): float64 values rounded to the
    LSB of nt's binary-point scaling but never overflowed, so a computation shows where it would
    leave the type. Returns (values, n_overflow, n_underflow); the counts feed logging."""
    v = np.asarray(values, dtype=np.float64)
    f = nt.fraction_length
    q = round_doubles(np.ldexp(v, f), rounding)
    lo, hi = _limits(nt) if nt.word_length < 1000 else (-np.inf, np.inf)  # beyond: every double fits
    with np.errstate(invalid="ignore"):
        n_ov = int(np.count_nonzero((q < float(lo)) | (q > float(hi))))
        n_un = int(np.count_nonzero((q == 0) & (v != 0)))
    return np.ldexp(q, -f), n_ov, n_un


def _limits(nt: numerictype):
    w = nt.word_length
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if nt.signed else (0, (1 << w) - 1)


def _fractions(q, f_in: int) -> np.ndarray:
    scale = Fraction(2) ** -f_in
    return np.array([Fraction(int(x)) * scale for x in np.asarray(q).ravel()], dtype=object).reshape(np.shape(q))


def round_fraction(x: Fraction, rounding: RoundingMethod) -> int:
    """An exact rational rounded to an integer with the tie rules of rounding.hpp."""
    n, d = x.numerator, x.denominator
    fl = n // d
    rem2 = 2 * (n - fl * d)  # twice the remainder, compared against d
    if rounding is RoundingMethod.Floor or rem2 == 0:
        return fl
    if rounding is RoundingMethod.Ceiling:
        return fl + 1
    if rounding is RoundingMethod.Zero:
        return fl + (n < 0)
    if rounding is RoundingMethod.Nearest:
        return fl + (rem2 >= d)
    if rounding is RoundingMethod.Round:
        return fl + (rem2 > d or (rem2 == d and n >= 0))
    return fl + (rem2 > d or (rem2 == d and fl % 2 == 1))


def _quantize_fractions(values: np.ndarray, nt: numerictype, rounding, overflow):
    """Exact rationals into any type, slope-bias included: Q = overflow(round((V - B) / S))."""
    slope, bias = nt.slope, nt.bias
    flat = [round_fraction((Fraction(x) - bias) / slope, rounding) for x in np.asarray(values).ravel()]
    x = np.array(flat + [None], dtype=object)[:-1].reshape(np.shape(values))
    n_un = sum(1 for v, r in zip(np.asarray(values).ravel(), flat) if r == 0 and v != bias)
    y, n_ov = wide.overflow(x, nt.word_length, nt.signed, overflow)
    return wide.storage(y, nt.word_length, nt.signed), n_ov, n_un


def real_fractions(a) -> np.ndarray:
    """The exact real-world values of a fi as an object array of Fractions."""
    nt = a._nt
    q = np.asarray(a._q)
    if nt.data_type in ("double", "single", "ScaledDouble"):
        return np.array([Fraction(float(x)) for x in q.ravel()] + [None], dtype=object)[:-1].reshape(q.shape)
    slope, bias = nt.slope, nt.bias
    return np.array([slope * int(x) + bias for x in q.ravel()] + [None], dtype=object)[:-1].reshape(q.shape)


# ----------------------------------------------------------------------------------------------
# Public casts

def _fi():
    from .fi import fi  # fi is built on this module's quantisers
    return fi


def _require_real(a, operation: str):
    if a._im is not None:
        raise TypeError(f"{operation}: complex fi is not supported here (complex fi supports +, -, *, "
                        "unary minus, ==, !=, conj, real, imag and shape operations)")


def _record(result, n_ov, n_un, operation):
    from . import fi_logging
    fi_logging.record(result, n_ov, n_un, operation)


def cast(a, T: numerictype, F: fimath | None = None):
    """Quantise a fi, float or integer array into the type T with the rounding/overflow of F.

    F defaults to a's fimath (a fi) or the default fimath; the result carries F as its local fimath
    only when F is given.
    """
    fi = _fi()
    if not isinstance(T, numerictype):
        raise TypeError(f"cast: T must be a numerictype, got {type(T).__name__}")
    if F is not None and not isinstance(F, fimath):
        raise TypeError(f"cast: F must be a fimath or None, got {type(F).__name__}")
    if not isinstance(a, fi):
        result = fi(a, T, F if F is not None else default_fimath())
        return result if F is not None else removefimath(result)
    _require_real(a, "cast")
    fm = F if F is not None else a.fimath
    q, n_ov, n_un = convert(a, T, fm.rounding_method, fm.overflow_action)
    result = fi._from_stored(q, T, F)
    _record(result, n_ov, n_un, "cast")
    return result


def convert(a, T: numerictype, rounding: RoundingMethod, overflow: OverflowAction):
    """The stored integers of fi `a` requantised into T: (q, n_overflow, n_underflow)."""
    if a._nt.data_type != "Fixed" and a._nt.data_type != "boolean":
        return quantize_doubles(np.asarray(a._q, dtype=np.float64), T, rounding, overflow)
    if not a._nt.is_binary_point:
        return _quantize_fractions(real_fractions(a), T, rounding, overflow)
    return requantize(a._q, a._nt.fraction_length, T, rounding, overflow)


def _rounded_type(nt: numerictype) -> numerictype:
    """A.5: f <= 0 keeps the type; else f = 0 and w = w - f + 1 (at least 2 signed / 1 unsigned)."""
    f = nt.fraction_length
    if f <= 0:
        return nt
    w = max(nt.word_length - f + 1, 2 if nt.signed else 1)
    return numerictype(nt.signed, w, 0)


def _round_with(method: RoundingMethod):
    def rounder(a):
        fi = _fi()
        if not isinstance(a, fi):
            raise TypeError(f"{method.name.lower()}: expected a fi, got {type(a).__name__}")
        _require_real(a, method.name.lower())
        if a._nt.data_type in ("double", "single", "ScaledDouble"):  # data-type override: doubles
            values = round_doubles(a.double(), method)
            nt = a._nt
            if nt.data_type == "ScaledDouble":
                T = _rounded_type(numerictype(nt.signed, nt.word_length, nt.fraction_length))
                nt = numerictype(T.signed, T.word_length, T.fraction_length, data_type="ScaledDouble")
            return fi._from_stored(values, nt, a._fm)
        if not a._nt.is_binary_point:
            raise ValueError(f"{method.name.lower()} needs a binary-point fi, got {a._nt!r}")
        T = _rounded_type(a._nt)
        q, n_ov, n_un = requantize(a._q, a._nt.fraction_length, T, method, OverflowAction.Saturate)
        result = fi._from_stored(q, T, a._fm)
        _record(result, n_ov, n_un, method.name.lower())
        return result
    rounder.__doc__ = (f"Round a fi to an integer with {method.name} rounding; the result type follows "
                       "spec A.5 (f <= 0 unchanged, else f = 0 and w - f + 1 bits), so it never overflows.")
    return rounder


floor = _round_with(RoundingMethod.Floor)
ceil = _round_with(RoundingMethod.Ceiling)
fix = _round_with(RoundingMethod.Zero)
round = _round_with(RoundingMethod.Round)
nearest = _round_with(RoundingMethod.Nearest)
convergent = _round_with(RoundingMethod.Convergent)
floor.__name__, ceil.__name__, fix.__name__ = "floor", "ceil", "fix"
round.__name__, nearest.__name__, convergent.__name__ = "round", "nearest", "convergent"


def reinterpretcast(a, T: numerictype):
    """Keep the bit pattern, change the type (word lengths must agree)."""
    fi = _fi()
    if not isinstance(a, fi):
        raise TypeError(f"reinterpretcast: expected a fi, got {type(a).__name__}")
    if not isinstance(T, numerictype):
        raise TypeError(f"reinterpretcast: T must be a numerictype, got {type(T).__name__}")
    _require_real(a, "reinterpretcast")
    w = a._nt.word_length
    if T.word_length != w:
        raise ValueError(f"reinterpretcast needs equal word lengths: the fi has {w} bits, "
                         f"T has {T.word_length}")
    # at least 1-d: numpy warns about wrap-around only for scalars, and here the wrap is intended
    x = wide.as_exact(a._q) if w > 64 else np.array(a._q, ndmin=1).astype(np.uint64)
    mask = (1 << w) - 1 if w > 64 else np.uint64((1 << w) - 1)
    pattern = x & mask
    if T.signed:
        sign = (1 << (w - 1)) if w > 64 else np.uint64(1 << (w - 1))
        pattern = (pattern ^ sign) - sign
        if w <= 64:
            pattern = pattern.view(np.int64)
    elif w < 64:
        pattern = pattern.view(np.int64)
    return fi._from_stored(np.asarray(pattern).reshape(np.shape(a._q)), T, a._fm)


def removefimath(a):
    """The same fi without a local fimath (arithmetic then uses the default fimath)."""
    fi = _fi()
    if not isinstance(a, fi):
        return a
    if a._im is not None:
        return fi._complex(a._q, a._im, a._nt, None)
    return fi._from_stored(a._q, a._nt, None)


def setfimath(a, F: fimath):
    """The same stored values with F as local fimath (never re-quantises)."""
    fi = _fi()
    if not isinstance(F, fimath):
        raise TypeError(f"setfimath: F must be a fimath, got {type(F).__name__}")
    if not isinstance(a, fi):
        return a
    if a._im is not None:
        return fi._complex(a._q, a._im, a._nt, F)
    return fi._from_stored(a._q, a._nt, F)


def best_precision_fraction_length(v: np.ndarray, w: int, signed: bool) -> int:
    """Spec A.3: the largest f for which every finite element fits w bits (min over elements)."""
    v = np.asarray(v)
    if v.dtype == object:
        need = [_need_bits_int(int(x), signed) for x in v.ravel() if x != 0]
    else:
        x = np.asarray(v, dtype=np.float64).ravel()
        x = x[np.isfinite(x) & (x != 0)]
        if signed is False:
            x = x[x > 0]
        if x.size == 0:
            need = []
        else:
            m, e = np.frexp(x)
            pos = x > 0
            neg_pow2 = (~pos) & (m == -0.5)
            # x > 0: floor(log2 x) + 1 + s = e + s;  x < 0: ceil(log2|x|) + 1 = e + 1 (e for -2^k)
            need_arr = np.where(pos, e + int(signed), np.where(neg_pow2, e, e + 1))
            need = [int(need_arr.max())]
    if not need:
        return w - int(signed)
    return w - max(need)


def _need_bits_int(x: int, signed: bool) -> int:
    if x > 0:
        return x.bit_length() + int(signed)
    if not signed:
        return -10**9
    mag = -x
    ceil_log2 = mag.bit_length() - 1 if mag & (mag - 1) == 0 else mag.bit_length()
    return ceil_log2 + 1

