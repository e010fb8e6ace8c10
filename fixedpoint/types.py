"""numerictype and fimath: immutable descriptions of a fixed-point type and of how arithmetic rounds.

Both are plain hashable values so they can key caches and be compared; a fi holds one of each.
The enum values of RoundingMethod / OverflowAction are the codes of csrc/fixed/rounding.hpp.
"""
from __future__ import annotations

import contextlib
import contextvars
import enum
import math
from fractions import Fraction

__all__ = ["numerictype", "fimath", "RoundingMethod", "OverflowAction", "ArithMode", "fimath_context",
           "default_fimath", "MAX_WORD_LENGTH"]

MAX_WORD_LENGTH = 65535


class RoundingMethod(enum.Enum):
    Ceiling = 0
    Convergent = 1
    Floor = 2
    Nearest = 3
    Round = 4
    Zero = 5


class OverflowAction(enum.Enum):
    Saturate = 0
    Wrap = 1


class ArithMode(enum.Enum):
    FullPrecision = "FullPrecision"
    KeepLSB = "KeepLSB"
    KeepMSB = "KeepMSB"
    SpecifyPrecision = "SpecifyPrecision"


# MATLAB's legacy lower-case RoundMode names map onto the same methods.
_ROUNDING_ALIASES = {"ceil": "Ceiling", "fix": "Zero", "floor": "Floor", "round": "Round",
                     "nearest": "Nearest", "convergent": "Convergent"}


def _enum_value(kind, value, what: str, aliases=None):
    """Accept an enum member or a case-insensitive name (or alias); reject anything else by name."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        for member in kind:
            if member.name.lower() == key:
                return member
        if aliases and key in aliases:
            return kind[aliases[key]]
    names = ", ".join(m.name for m in kind)
    raise ValueError(f"{what} must be one of {names}; got {value!r}")


def check_word_length(value, what: str = "word_length") -> int:
    """An int in 1..65535 (bools and floats are rejected: a word length is a count of bits)."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            hasattr(value, "__index__") and not isinstance(value, float)):
        raise ValueError(f"{what} must be an integer in 1..{MAX_WORD_LENGTH}, got {value!r}")
    w = int(value.__index__())
    if not 1 <= w <= MAX_WORD_LENGTH:
        raise ValueError(f"{what} must be an integer in 1..{MAX_WORD_LENGTH}, got {w}")
    return w


def _check_int(value, what: str) -> int:
    if isinstance(value, bool) or isinstance(value, float) or not hasattr(value, "__index__"):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value.__index__())


def _split_slope(slope: Fraction):
    """slope = F * 2^E with 1 <= F < 2."""
    e = math.floor(math.log2(slope)) if slope > 0 else 0
    while Fraction(2) ** e > slope:
        e -= 1
    while Fraction(2) ** (e + 1) <= slope:
        e += 1
    return slope / Fraction(2) ** e, e


class numerictype:
    """A fixed-point (or override) data type: signedness, word length and scaling.

    Binary-point scaling V = Q * 2^-f; slope-bias scaling V = S*Q + B with S = F * 2^E.
    `numerictype(s, w)` leaves the scaling unspecified: a fi built from it chooses the
    best-precision fraction length for its value.
    """

    __slots__ = ("signed", "word_length", "fixed_exponent", "slope_adjustment_factor", "bias",
                 "scaling", "data_type", "_hash")

    def __init__(self, *args, signed=None, word_length=None, fraction_length=None, slope=None,
                 bias=None, slope_adjustment_factor=None, fixed_exponent=None, data_type="Fixed"):
        if len(args) > 5:
            raise TypeError(f"numerictype takes at most 5 positional arguments, got {len(args)}")
        pos = dict(zip(("signed", "word_length"), args[:2]))
        rest = args[2:]
        if len(rest) == 1:
            pos["fraction_length"] = rest[0]
        elif len(rest) == 2:
            pos["slope"], pos["bias"] = rest
        elif len(rest) == 3:
            pos["slope_adjustment_factor"], pos["fixed_exponent"], pos["bias"] = rest
        given = dict(signed=signed, word_length=word_length, fraction_length=fraction_length,
                     slope=slope, bias=bias, slope_adjustment_factor=slope_adjustment_factor,
                     fixed_exponent=fixed_exponent)
        for name, value in pos.items():
            if given[name] is not None:
                raise TypeError(f"numerictype got {name} both positionally and by keyword")
            given[name] = value
        unspecified = (len(args) == 2 and all(given[k] is None for k in
                       ("fraction_length", "slope", "bias", "slope_adjustment_factor", "fixed_exponent")))
        s = True if given["signed"] is None else given["signed"]
        if isinstance(s, str):
            s = {"signed": True, "unsigned": False}.get(s.lower(), s)
        if not isinstance(s, (bool, int)) or isinstance(s, int) and not isinstance(s, bool) and s not in (0, 1):
            raise ValueError(f"signed must be True/False, 1/0 or 'Signed'/'Unsigned', got {s!r}")
        w = check_word_length(16 if given["word_length"] is None else given["word_length"])
        dt = {"fixed": "Fixed", "scaleddouble": "ScaledDouble", "double": "double", "single": "single",
              "boolean": "boolean"}.get(str(data_type).lower())
        if dt is None:
            raise ValueError(f"data_type must be Fixed, ScaledDouble, double, single or boolean; got {data_type!r}")
        b = Fraction(0) if given["bias"] is None else _exact(given["bias"], "bias")
        if given["slope"] is not None:
            if given["fraction_length"] is not None or given["fixed_exponent"] is not None:
                raise ValueError("give either slope or fraction_length/fixed_exponent, not both")
            sl = _exact(given["slope"], "slope")
            if sl <= 0:
                raise ValueError(f"slope must be positive, got {given['slope']!r}")
            F, E = _split_slope(sl)
        else:
            F = Fraction(1) if given["slope_adjustment_factor"] is None else _exact(
                given["slope_adjustment_factor"], "slope_adjustment_factor")
            if not 1 <= F < 2:
                raise ValueError(f"slope_adjustment_factor must be in [1, 2), got {given['slope_adjustment_factor']!r}")
            if given["fixed_exponent"] is not None:
                if given["fraction_length"] is not None and -_check_int(given["fraction_length"], "fraction_length") != \
                        _check_int(given["fixed_exponent"], "fixed_exponent"):
                    raise ValueError("fixed_exponent must equal -fraction_length")
                E = _check_int(given["fixed_exponent"], "fixed_exponent")
            else:
                fl = given["fraction_length"]
                E = -15 if fl is None else -_check_int(fl, "fraction_length")
        set_ = object.__setattr__
        set_(self, "signed", bool(s))
        set_(self, "word_length", w)
        set_(self, "fixed_exponent", E)
        set_(self, "slope_adjustment_factor", F)
        set_(self, "bias", b)
        scaling = "Unspecified" if unspecified else ("BinaryPoint" if F == 1 and b == 0 else "SlopeBias")
        set_(self, "scaling", scaling)
        set_(self, "data_type", dt)
        set_(self, "_hash", hash((self.signed, w, E, F, b, scaling, dt)))

    def __setattr__(self, name, value):
        raise AttributeError("numerictype is immutable; build a new one")

    @property
    def fraction_length(self) -> int:
        return -self.fixed_exponent

    @property
    def slope(self) -> Fraction:
        return self.slope_adjustment_factor * Fraction(2) ** self.fixed_exponent

    @property
    def is_binary_point(self) -> bool:
        return self.scaling == "BinaryPoint"

    @property
    def data_type_mode(self) -> str:
        if self.data_type in ("double", "single", "boolean"):
            return self.data_type.capitalize()
        head = "Fixed-point" if self.data_type == "Fixed" else "Scaled double"
        tail = {"BinaryPoint": "binary point scaling", "SlopeBias": "slope and bias scaling",
                "Unspecified": "unspecified scaling"}[self.scaling]
        return f"{head}: {tail}"

    def with_fraction_length(self, f: int) -> "numerictype":
        """The binary-point type of this signedness and word length with fraction length f."""
        return numerictype(self.signed, self.word_length, int(f), data_type=self.data_type)

    def _key(self):
        return (self.signed, self.word_length, self.fixed_exponent, self.slope_adjustment_factor,
                self.bias, self.scaling, self.data_type)

    def __eq__(self, other):
        return isinstance(other, numerictype) and self._key() == other._key()

    def __hash__(self):
        return self._hash

    def __repr__(self):
        extra = "" if self.data_type == "Fixed" else f", data_type={self.data_type!r}"
        if self.scaling == "Unspecified":
            return f"numerictype(signed={self.signed}, word_length={self.word_length}{extra})"
        if self.scaling == "BinaryPoint":
            return (f"numerictype(signed={self.signed}, word_length={self.word_length}, "
                    f"fraction_length={self.fraction_length}{extra})")
        return (f"numerictype(signed={self.signed}, word_length={self.word_length}, "
                f"slope={_fmt(self.slope)}, bias={_fmt(self.bias)}{extra})")


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else repr(float(x)) if float(x) == x else str(x)


def _exact(value, what: str) -> Fraction:
    try:
        r = Fraction(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a finite real number, got {value!r}") from None
    return r


class fimath:
    """How arithmetic rounds, overflows and sizes its products and sums (MATLAB's fimath)."""

    __slots__ = ("rounding_method", "overflow_action", "product_mode", "product_word_length",
                 "product_fraction_length", "sum_mode", "sum_word_length", "sum_fraction_length",
                 "cast_before_sum", "max_product_word_length", "max_sum_word_length", "_hash")

    def __init__(self, rounding_method="Nearest", overflow_action="Saturate", product_mode="FullPrecision",
                 product_word_length=32, product_fraction_length=30, sum_mode="FullPrecision",
                 sum_word_length=32, sum_fraction_length=30, cast_before_sum=True,
                 max_product_word_length=MAX_WORD_LENGTH, max_sum_word_length=MAX_WORD_LENGTH):
        set_ = object.__setattr__
        set_(self, "rounding_method", _enum_value(RoundingMethod, rounding_method, "rounding_method",
                                                  _ROUNDING_ALIASES))
        set_(self, "overflow_action", _enum_value(OverflowAction, overflow_action, "overflow_action"))
        set_(self, "product_mode", _enum_value(ArithMode, product_mode, "product_mode"))
        set_(self, "sum_mode", _enum_value(ArithMode, sum_mode, "sum_mode"))
        set_(self, "product_word_length", check_word_length(product_word_length, "product_word_length"))
        set_(self, "sum_word_length", check_word_length(sum_word_length, "sum_word_length"))
        set_(self, "product_fraction_length", _check_int(product_fraction_length, "product_fraction_length"))
        set_(self, "sum_fraction_length", _check_int(sum_fraction_length, "sum_fraction_length"))
        if not isinstance(cast_before_sum, (bool, int)) or cast_before_sum not in (0, 1):
            raise ValueError(f"cast_before_sum must be True or False, got {cast_before_sum!r}")
        set_(self, "cast_before_sum", bool(cast_before_sum))
        set_(self, "max_product_word_length", check_word_length(max_product_word_length, "max_product_word_length"))
        set_(self, "max_sum_word_length", check_word_length(max_sum_word_length, "max_sum_word_length"))
        set_(self, "_hash", hash(self._key()))

    PROPERTIES = ("rounding_method", "overflow_action", "product_mode", "product_word_length",
                  "product_fraction_length", "sum_mode", "sum_word_length", "sum_fraction_length",
                  "cast_before_sum", "max_product_word_length", "max_sum_word_length")

    def _key(self):
        return tuple(getattr(self, name) for name in self.PROPERTIES)

    def replace(self, **changes) -> "fimath":
        """A copy with some properties changed."""
        props = {name: getattr(self, name) for name in self.PROPERTIES}
        unknown = set(changes) - set(props)
        if unknown:
            raise TypeError(f"unknown fimath properties: {', '.join(sorted(unknown))}")
        props.update(changes)
        return fimath(**props)

    @property
    def product_type_spec(self):
        return self.product_word_length, self.product_fraction_length

    def __setattr__(self, name, value):
        raise AttributeError("fimath is immutable; use fimath.replace(...)")

    def __eq__(self, other):
        return isinstance(other, fimath) and self._key() == other._key()

    def __hash__(self):
        return self._hash

    def __repr__(self):
        parts = []
        for name in self.PROPERTIES:
            value = getattr(self, name)
            parts.append(f"{name}={value.name!r}" if isinstance(value, enum.Enum) else f"{name}={value!r}")
        return "fimath(" + ", ".join(parts) + ")"


_DEFAULT = fimath()
_default_fimath = contextvars.ContextVar("fixedpoint_default_fimath", default=_DEFAULT)


def default_fimath() -> fimath:
    """The fimath that arithmetic uses for operands without a local fimath."""
    return _default_fimath.get()


@contextlib.contextmanager
def fimath_context(F: fimath):
    """Make F the default fimath inside a `with` block (per thread / asyncio task)."""
    if not isinstance(F, fimath):
        raise TypeError(f"fimath_context needs a fimath, got {type(F).__name__}")
    token = _default_fimath.set(F)
    try:
        yield F
    finally:
        _default_fimath.reset(token)
