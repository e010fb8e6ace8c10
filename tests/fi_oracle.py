"""An exact reference for `fi` arithmetic, written for the tests only.

It follows the written contract (spec Part A) as literally as possible, with `fractions.Fraction`
and Python ints, one element at a time: slow and obvious on purpose, so that a disagreement with the
library points at one of the two rules. It must never import `fixedpoint`.

Types are `T(signed, w, f)` (binary-point scaling, V = Q * 2^-f); fimath settings are `M(...)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

ROUNDING_METHODS = ("Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero")
OVERFLOW_ACTIONS = ("Saturate", "Wrap")
MODES = ("FullPrecision", "KeepLSB", "KeepMSB", "SpecifyPrecision")


@dataclass(frozen=True)
class T:
    """A binary-point numerictype: signedness, word length, fraction length."""

    signed: bool
    w: int
    f: int

    @property
    def lo(self) -> int:
        return -(1 << (self.w - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.w - 1)) - 1 if self.signed else (1 << self.w) - 1

    @property
    def integer_length(self) -> int:
        return self.w - self.f

    def value(self, q: int) -> Fraction:
        return Fraction(q) * Fraction(2) ** -self.f

    def __str__(self):
        return f"{'s' if self.signed else 'u'}{self.w},{self.f}"


@dataclass(frozen=True)
class M:
    """The fimath settings the result-type rules read (spec A.7 defaults)."""

    rounding: str = "Nearest"
    overflow: str = "Saturate"
    product_mode: str = "FullPrecision"
    product_word_length: int = 32
    product_fraction_length: int = 30
    sum_mode: str = "FullPrecision"
    sum_word_length: int = 32
    sum_fraction_length: int = 30
    cast_before_sum: bool = True


# --- rounding and overflow (A.5, A.6) ------------------------------------------------------------

def round_to_integer(x: Fraction, method: str) -> int:
    """The integer the rounding method picks for the exact rational x (spec A.5 table)."""
    x = Fraction(x)
    low = math.floor(x)
    if method == "Floor":
        return low
    if method == "Ceiling":
        return math.ceil(x)
    if method == "Zero":
        return math.trunc(x)
    frac = x - low
    if frac != Fraction(1, 2):
        return low + (1 if frac > Fraction(1, 2) else 0)
    # an exact tie between low and low + 1
    if method == "Nearest":
        return low + 1
    if method == "Round":
        return low + 1 if x > 0 else low
    if method == "Convergent":
        return low if low % 2 == 0 else low + 1
    raise ValueError(f"unknown rounding method {method!r}")


def overflow(q: int, t: T, action: str) -> int:
    """Saturate clamps to [lo, hi]; Wrap is two's-complement modulo 2^w (spec A.6)."""
    if t.lo <= q <= t.hi:
        return q
    if action == "Saturate":
        return t.hi if q > t.hi else t.lo
    if action == "Wrap":
        return (q - t.lo) % (1 << t.w) + t.lo
    raise ValueError(f"unknown overflow action {action!r}")


def overflows(q: int, t: T) -> bool:
    return not t.lo <= q <= t.hi


def scaled(x, f: int) -> Fraction:
    """x * 2^f exactly; floats are taken at their exact binary value."""
    return Fraction(x) * Fraction(2) ** f


def quantize(x, t: T, rounding: str = "Nearest", action: str = "Saturate") -> int:
    """Stored integer of the real x cast into t (spec A.4), NaN/Inf per A.2 rule 5."""
    if isinstance(x, float) and math.isnan(x):
        return 0
    if isinstance(x, float) and math.isinf(x):
        if action == "Wrap":
            return 0
        return t.hi if x > 0 else t.lo
    return overflow(round_to_integer(scaled(x, t.f), rounding), t, action)


def quantize_slope_bias(x, signed: bool, w: int, slope, bias, rounding="Nearest",
                        action="Saturate") -> int:
    """Q = overflow(round((V - B) / S)) for slope-bias scaling (spec A.4)."""
    t = T(signed, w, 0)
    return overflow(round_to_integer((Fraction(x) - Fraction(bias)) / Fraction(slope), rounding),
                    t, action)


def requantize(q: int, source: T, target: T, rounding: str, action: str) -> int:
    """Cast a stored integer of one type into another type."""
    return quantize(source.value(q), target, rounding, action)


# --- best precision (A.3) ------------------------------------------------------------------------

def floor_log2(x: Fraction) -> int:
    """floor(log2 x) for a positive rational, exactly."""
    x = Fraction(x)
    k = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** k > x:
        k -= 1
    while Fraction(2) ** (k + 1) <= x:
        k += 1
    return k


def ceil_log2(x: Fraction) -> int:
    k = floor_log2(x)
    return k if Fraction(2) ** k == Fraction(x) else k + 1


def best_fraction_length(values, signed: bool, w: int) -> int:
    """Largest f at which every finite value fits w bits (spec A.3, minimum rule)."""
    needs = []
    for v in values:
        x = Fraction(v)
        if x > 0:
            needs.append(floor_log2(x) + 1 + int(signed))
        elif x < 0 and signed:          # an unsigned type ignores negatives (they saturate to 0)
            needs.append(ceil_log2(-x) + 1)
    return w - max(needs) if needs else w - int(signed)


# --- bit patterns (A.9) --------------------------------------------------------------------------

def bits(q: int, w: int) -> str:
    """w-character two's-complement pattern, MSB first."""
    return format(q % (1 << w), f"0{w}b")


def hex_digits(q: int, w: int) -> str:
    """ceil(w/4) upper-case hex digits of the two's-complement pattern."""
    return format(q % (1 << w), f"0{-(-w // 4)}X")


def from_pattern(pattern: int, t: T) -> int:
    """The stored integer of t whose w-bit pattern is `pattern`."""
    pattern %= 1 << t.w
    return pattern - (1 << t.w) if t.signed and pattern >> (t.w - 1) else pattern


# --- result types (A.8) --------------------------------------------------------------------------

def sum_full_type(ta: T, tb: T) -> T:
    """FullPrecision a + b: f = max, IL = max IL + 1 (+1 more when signedness differs)."""
    f = max(ta.f, tb.f)
    il = max(ta.integer_length, tb.integer_length) + 1 + int(ta.signed != tb.signed)
    return T(ta.signed or tb.signed, il + f, f)


def sum_type_from_full(full: T, m: M) -> T:
    """The sum type for the sum mode, given the FullPrecision sum type (A.8.1)."""
    if m.sum_mode == "FullPrecision":
        return full
    if m.sum_mode == "KeepLSB":
        return T(full.signed, m.sum_word_length, full.f)
    if m.sum_mode == "KeepMSB":
        return T(full.signed, m.sum_word_length, m.sum_word_length - full.integer_length)
    if m.sum_mode == "SpecifyPrecision":
        return T(full.signed, m.sum_word_length, m.sum_fraction_length)
    raise ValueError(f"unknown sum mode {m.sum_mode!r}")


def product_type(ta: T, tb: T, m: M) -> T:
    """Product type for the product mode (A.8.2)."""
    signed = ta.signed or tb.signed
    w, f = ta.w + tb.w, ta.f + tb.f
    if m.product_mode == "FullPrecision":
        return T(signed, w, f)
    pwl = m.product_word_length
    if m.product_mode == "KeepLSB":
        return T(signed, pwl, f)
    if m.product_mode == "KeepMSB":
        return T(signed, pwl, pwl - (w - f))
    if m.product_mode == "SpecifyPrecision":
        return T(signed, pwl, m.product_fraction_length)
    raise ValueError(f"unknown product mode {m.product_mode!r}")


def accumulator_growth(n: int) -> int:
    """ceil(log2 n) extra bits for an n-term FullPrecision sum (sum, and @ per Q4)."""
    return (n - 1).bit_length() if n > 1 else 0


def sum_n_type(t: T, n: int, m: M) -> T:
    """Type of sum() over n elements of type t (A.8.1)."""
    return sum_type_from_full(T(t.signed, t.w + accumulator_growth(n), t.f), m)


# --- arithmetic ----------------------------------------------------------------------------------

def _partial_sums(terms, term_type: T, out: T, m: M) -> list:
    """Running sums of terms (stored integers of term_type) in `out`, the n-term sum type.

    FullPrecision is exact. Otherwise the spec defines only a + b (A.8.1), so an n-term sum is
    read as the fold of that rule in the sum type: the first term is cast into `out`, and every
    further term is added to the running sum as one a + b whose result type is `out` (CastBeforeSum
    true: the term is cast first; false: the exact partial sum is cast), so rounding and overflow
    happen at every step.
    """
    if m.sum_mode == "FullPrecision":              # same fraction length, enough bits: exact
        running, out_q = 0, []
        for q in terms:
            running += q
            out_q.append(running)
        return out_q
    step = M(rounding=m.rounding, overflow=m.overflow, sum_mode="SpecifyPrecision",
             sum_word_length=out.w, sum_fraction_length=out.f, cast_before_sum=m.cast_before_sum)
    sums = [requantize(terms[0], term_type, out, m.rounding, m.overflow)]
    for q in terms[1:]:
        sums.append(add(sums[-1], out, q, term_type, step)[0])
    return sums


def add(qa: int, ta: T, qb: int, tb: T, m: M, subtract: bool = False):
    """(stored, type) of a + b or a - b."""
    out = sum_type_from_full(sum_full_type(ta, tb), m)
    if m.sum_mode == "FullPrecision" or not m.cast_before_sum:
        ideal = ta.value(qa) + (-tb.value(qb) if subtract else tb.value(qb))
        return quantize(ideal, out, m.rounding, m.overflow), out
    ca = requantize(qa, ta, out, m.rounding, m.overflow)
    cb = requantize(qb, tb, out, m.rounding, m.overflow)
    return overflow(ca - cb if subtract else ca + cb, out, m.overflow), out


def multiply(qa: int, ta: T, qb: int, tb: T, m: M):
    """(stored, type) of the element-wise product."""
    out = product_type(ta, tb, m)
    return quantize(ta.value(qa) * tb.value(qb), out, m.rounding, m.overflow), out


def total(qs, t: T, m: M):
    """(stored, type) of sum() over the stored integers qs of type t."""
    out = sum_n_type(t, len(qs), m)
    return _partial_sums(list(qs), t, out, m)[-1], out


def running_totals(qs, t: T, m: M):
    """(stored list, type) of cumsum() over qs: every running sum in the type of sum(qs)."""
    out = sum_n_type(t, len(qs), m)
    return _partial_sums(list(qs), t, out, m), out


def dot(qa, ta: T, qb, tb: T, m: M):
    """(stored, type) of one element of A @ B: products per product mode, accumulated per sum mode."""
    pt = product_type(ta, tb, m)
    products = [multiply(x, ta, y, tb, m)[0] for x, y in zip(qa, qb)]
    out = sum_type_from_full(T(pt.signed, pt.w + accumulator_growth(len(products)), pt.f), m)
    return _partial_sums(products, pt, out, m)[-1], out


def divide(qa: int, ta: T, qb: int, tb: T, m: M):
    """(stored, type) of a ./ b (A.8.4): w = max, f = fa - fb, rounded with the fimath."""
    out = T(ta.signed or tb.signed, max(ta.w, tb.w), ta.f - tb.f)
    return quantize(ta.value(qa) / tb.value(qb), out, m.rounding, m.overflow), out


def negate(q: int, t: T, m: M) -> int:
    """-a keeps the type; overflow per the fimath (A.8.5)."""
    return overflow(-q, t, m.overflow)


def absolute(q: int, t: T, m: M) -> int:
    return overflow(abs(q), t, m.overflow)


# --- reading a fi through its public attributes (duck-typed: no import of the library) -----------

def stored_of(a) -> list:
    """The stored integers of a fi, flattened, as Python ints."""
    import numpy as np
    return [int(q) for q in np.ravel(np.asarray(a.stored_integer, dtype=object))]


def type_of(a) -> T:
    nt = a.numerictype
    return T(bool(nt.signed), int(nt.word_length), int(nt.fraction_length))
