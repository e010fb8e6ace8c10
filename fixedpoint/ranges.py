"""Bounds and resolution of a fixed-point type (spec A.11), for a fi or a numerictype.

Each function returns a fi built from exact stored integers, so the answer is exact at any word
length and for slope-bias scaling; `float()` or `.double()` gives the real-world value.
"""
from __future__ import annotations

from fractions import Fraction

from .bits import Word
from .fi import fi
from .types import numerictype

__all__ = ["upperbound", "lowerbound", "range", "eps", "intmax", "intmin", "realmax", "realmin",
           "real_value", "real_bounds"]


def _type_and_fimath(a):
    """The numerictype asked about, and the local fimath results should carry."""
    if isinstance(a, fi):
        nt, fm = a._nt, a._fm
    elif isinstance(a, numerictype):
        nt, fm = a, None
    else:
        raise TypeError(f"expected a fi or a numerictype, got {type(a).__name__}")
    if getattr(nt, "data_type", "Fixed") not in ("Fixed", "ScaledDouble"):
        raise TypeError(f"bounds need a fixed-point type; got data type {nt.data_type!r}")
    return nt, fm


def _retyped(nt, signed: bool, word_length: int, integer: bool = False):
    """nt with another signedness/word length; fraction length 0 when `integer`, bias kept only
    for the full type (so one stored LSB is worth exactly the slope)."""
    if integer:
        return numerictype(signed, word_length, 0)
    if nt.is_binary_point:
        return numerictype(signed, word_length, nt.fraction_length)
    return numerictype(signed, word_length, nt.slope, 0)


def _scalar(stored: list, nt, fm) -> fi:
    word = Word(nt.word_length, nt.signed)
    shape = () if len(stored) == 1 else (len(stored),)
    return fi._from_stored(word.array(stored, shape), nt, fm)


def upperbound(a) -> fi:
    """The largest representable value (Qmax·slope + bias), in a's type."""
    nt, fm = _type_and_fimath(a)
    return _scalar([Word(nt.word_length, nt.signed).limits[1]], nt, fm)


def lowerbound(a) -> fi:
    """The smallest representable value (Qmin·slope + bias), in a's type."""
    nt, fm = _type_and_fimath(a)
    return _scalar([Word(nt.word_length, nt.signed).limits[0]], nt, fm)


def range(a) -> fi:  # noqa: A001 - MATLAB's name; shadows the builtin only as fp.range
    """[lowerbound, upperbound] as a two-element fi of a's type (`lo, hi = fp.range(a)`)."""
    nt, fm = _type_and_fimath(a)
    return _scalar(list(Word(nt.word_length, nt.signed).limits), nt, fm)


def eps(a) -> fi:
    """The value of one LSB (2^-f, or the slope for slope-bias types).

    Returned with a's signedness, word length and scaling but no bias; a signed 1-bit type cannot
    hold a stored 1, so that one case is widened to 2 bits.
    """
    nt, fm = _type_and_fimath(a)
    return _scalar([1], _retyped(nt, nt.signed, max(nt.word_length, 1 + nt.signed)), fm)


realmin = eps
realmax = upperbound


def intmax(a) -> fi:
    """The largest stored integer, as a fi of a's signedness and word length with f = 0."""
    nt, fm = _type_and_fimath(a)
    out = _retyped(nt, nt.signed, nt.word_length, integer=True)
    return _scalar([Word(nt.word_length, nt.signed).limits[1]], out, fm)


def intmin(a) -> fi:
    """The smallest stored integer, as a fi of a's signedness and word length with f = 0."""
    nt, fm = _type_and_fimath(a)
    out = _retyped(nt, nt.signed, nt.word_length, integer=True)
    return _scalar([Word(nt.word_length, nt.signed).limits[0]], out, fm)


def real_value(nt, stored) -> float:
    """Real-world value of one stored integer, rounded once to float from its exact value."""
    return float(Fraction(int(stored)) * Fraction(nt.slope) + Fraction(nt.bias))


def real_bounds(a):
    """(lowerbound, upperbound) as floats."""
    nt, _ = _type_and_fimath(a)
    return tuple(real_value(nt, q) for q in Word(nt.word_length, nt.signed).limits)
