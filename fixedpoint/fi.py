"""The fi array: stored integers of one numerictype, an optional local fimath, numpy-like shape.

Storage (`_q`): the smallest signed integer class that holds the word (int8 ... int64; a u8 word in
int16), uint64 for unsigned 64-bit words, an object array of exact Python ints above 64 bits, float64
under a data-type override. Construction quantises with Nearest/Saturate unless a fimath (object or
properties) is given (spec A.2).

A complex fi (spec A.2 rule 6) keeps its imaginary stored integers in `_im`, in the same numerictype
and storage dtype as the real ones in `_q`; `_im` is None for a real fi, so the real path pays only
that one check.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import fi_logging
from .cast import (best_precision_fraction_length, convert, quantize_doubles, real_fractions,
                   requantize, scaled_doubles, storage_dtype)
from .types import default_fimath, fimath, numerictype

__all__ = ["fi", "concatenate", "isreal", "complex"]

_NT_KEYS = ("signed", "word_length", "fraction_length", "slope", "bias", "slope_adjustment_factor",
            "fixed_exponent", "data_type")
_CONSTRUCTION = fimath()  # Nearest / Saturate
# numerictype data types that hold doubles, and the data-type override mode that builds each
_OVERRIDE_OF = {"double": "TrueDoubles", "single": "TrueDoubles", "ScaledDouble": "ScaledDoubles"}


def _exact_ints(arr: np.ndarray) -> np.ndarray:
    """Python ints as int64 when they fit, else an object array of exact ints."""
    try:
        return np.asarray(arr, dtype=np.int64)
    except OverflowError:
        return np.asarray(arr, dtype=object)


def _classify(value):
    """(kind, data, own type): kind 'fi', 'int' (exact integers, own type or None) or 'float'."""
    if isinstance(value, fi):
        return "fi", value, value._nt
    if isinstance(value, (bool, np.bool_)):
        return "int", np.asarray(int(value), dtype=np.int64), numerictype(False, 1, 0)
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind == "b":
            return "int", arr.astype(np.int64), numerictype(False, 1, 0)
        if arr.dtype.kind in "iu":
            bits = arr.dtype.itemsize * 8
            own = numerictype(arr.dtype.kind == "i", bits, 0)
            return "int", (arr if arr.dtype == np.uint64 else arr.astype(np.int64)), own
        if arr.dtype.kind == "f":
            return "float", np.asarray(arr, dtype=np.float64), None
        if arr.dtype.kind == "c":
            return "complex", arr.astype(np.complex128), None
        if arr.dtype == object:
            return _classify_python(arr)
        raise TypeError(f"fi: cannot build from an array of dtype {arr.dtype}")
    return _classify_python(value)


def _classify_python(value):
    if isinstance(value, builtins.complex):
        return "complex", np.asarray(value, dtype=np.complex128), None
    if isinstance(value, int):
        return "int", _exact_ints(value), None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fi: cannot build from {type(value).__name__}: {exc}") from None
    if arr.dtype.kind == "b":
        return "int", arr.astype(np.int64), numerictype(False, 1, 0)
    if arr.dtype.kind in "iu":  # Python int literals: real values (like MATLAB doubles), exact
        return "int", arr.astype(np.int64) if arr.dtype.kind == "i" else _exact_ints(arr.astype(object)), None
    if arr.dtype.kind == "f":
        return "float", arr.astype(np.float64), None
    if arr.dtype.kind == "c":
        return "complex", arr.astype(np.complex128), None
    if arr.dtype == object:
        flat = arr.ravel().tolist()
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in flat):
            return "int", _exact_ints(np.array([int(x) for x in flat] + [None], dtype=object)[:-1]
                                      .reshape(arr.shape)), None
        if all(isinstance(x, (int, float, np.integer, np.floating)) for x in flat):
            return "float", arr.astype(np.float64), None
        if all(isinstance(x, (int, float, builtins.complex, np.number)) for x in flat):
            return "complex", arr.astype(np.complex128), None
        if all(isinstance(x, fi) for x in flat):
            raise TypeError("fi: build arrays of fi with fp.concatenate")
    raise TypeError(f"fi: cannot build from {type(value).__name__} of dtype {arr.dtype}")


def _pattern_to_stored(patterns, w: int, signed: bool, base: int, what: str) -> np.ndarray:
    """Two's-complement bit/hex strings (one per element) to stored integers."""
    values = []
    for text in patterns:
        try:
            u = int(text, base)
        except ValueError:
            raise ValueError(f"fi: {what} {text!r} is not a valid base-{base} pattern") from None
        if u >= 1 << w or u < 0:
            raise ValueError(f"fi: {what} {text!r} does not fit a {w}-bit word")
        if signed and u >> (w - 1):
            u -= 1 << w
        values.append(u)
    return np.array(values + [None], dtype=object)[:-1]


def _split_patterns(text):
    if isinstance(text, str):
        return text.split()
    return [str(t) for t in np.asarray(text).ravel()]


class fi:
    """A fixed-point array (MATLAB's fi): exact stored integers, a numerictype and an optional fimath.

    fi(v), fi(v, s), fi(v, s, w), fi(v, s, w, f), fi(v, s, w, slope, bias), fi(v, s, w, F, E, bias),
    fi(v, T), fi(..., F) and keywords (numerictype/fimath properties, int=, bin=, hex=).
    """

    __slots__ = ("_q", "_im", "_nt", "_fm", "_log", "__weakref__")
    __array_ufunc__ = None  # numpy operands defer to fi's operators

    def __init__(self, value=None, *args, **kwargs):
        self._im = None
        T, F, nt_props, fm_props, stored, pattern = self._parse(args, kwargs)
        if F is not None or fm_props:
            F = (F or fimath()).replace(**fm_props) if fm_props else F
        quantiser = F or _CONSTRUCTION
        if pattern is not None or stored is not None:
            self._init_stored(T, F, nt_props, stored, pattern)
            return
        kind, data, own = _classify([] if value is None else value)
        if kind == "complex" or (kind == "fi" and data._im is not None):
            self._init_complex(T, F, nt_props, kind, data, quantiser)
            return
        if kind == "float" and not np.isfinite(data).all():
            given = self._full_type(T, nt_props)
            if given is None or given.scaling == "Unspecified":  # spec A.2 rule 5
                bad = data[~np.isfinite(data)].ravel()[0]
                raise ValueError(f"fi: {bad} needs a fully specified type (signedness, word length and "
                                 "fraction length or a numerictype): best precision cannot be computed "
                                 "from NaN or Inf")
        nt = self._resolve_type(T, nt_props, kind, data, own)
        override = fi_logging.datatype_override()
        if nt.data_type == "Fixed" and override != "ForceOff":
            self._init_override(override, kind, data, nt, F, quantiser)
            return
        if nt.data_type in _OVERRIDE_OF:  # a double or scaled-double type, given or inherited
            self._init_override(_OVERRIDE_OF[nt.data_type], kind, data, nt, F, quantiser)
            return
        if kind == "fi":
            q, n_ov, n_un = convert(data, nt, quantiser.rounding_method, quantiser.overflow_action)
            F = F if F is not None else data._fm
        elif kind == "int":
            q, n_ov, n_un = requantize(data, 0, nt, quantiser.rounding_method, quantiser.overflow_action)
        else:
            q, n_ov, n_un = quantize_doubles(data, nt, quantiser.rounding_method, quantiser.overflow_action)
        self._q, self._nt, self._fm = _stored(q, nt), nt, F
        fi_logging.record(self, n_ov, n_un, "assignment")

    # ----------------------------------------------------------------- construction helpers
    @staticmethod
    def _parse(args, kwargs):
        T, F, numbers = None, None, []
        for arg in args:
            if isinstance(arg, numerictype):
                T = arg
            elif isinstance(arg, fimath):
                F = arg
            elif T is None and F is None:
                numbers.append(arg)
            else:
                raise TypeError(f"fi: unexpected positional argument {arg!r} after a numerictype/fimath")
        if len(numbers) > 5:
            raise TypeError(f"fi: at most 5 numeric type arguments (s, w, F, E, bias), got {len(numbers)}")
        names = {1: ("signed",), 2: ("signed", "word_length"),
                 3: ("signed", "word_length", "fraction_length"),
                 4: ("signed", "word_length", "slope", "bias"),
                 5: ("signed", "word_length", "slope_adjustment_factor", "fixed_exponent", "bias")}
        nt_props = dict(zip(names.get(len(numbers), ()), numbers))
        fm_props = {}
        stored = pattern = None
        for key, val in kwargs.items():
            if key == "numerictype":
                T = val
            elif key == "fimath":
                F = val
            elif key in _NT_KEYS:
                if key in nt_props:
                    raise TypeError(f"fi: {key} given both positionally and by keyword")
                nt_props[key] = val
            elif key in fimath.PROPERTIES:
                fm_props[key] = val
            elif key in ("int", "stored_integer"):
                stored = val
            elif key in ("bin", "hex"):
                pattern = (key, val)
            else:
                raise TypeError(f"fi: unknown keyword argument {key!r}")
        if T is not None and not isinstance(T, numerictype):
            raise TypeError(f"fi: numerictype must be a numerictype, got {type(T).__name__}")
        if F is not None and not isinstance(F, fimath):
            raise TypeError(f"fi: fimath must be a fimath, got {type(F).__name__}")
        return T, F, nt_props, fm_props, stored, pattern

    @staticmethod
    def _full_type(T, nt_props):
        """The numerictype from T and/or properties (None when only s/w are known)."""
        if T is not None:
            if not nt_props:
                return T
            base = {"signed": T.signed, "word_length": T.word_length, "data_type": T.data_type}
            if T.scaling != "Unspecified" and not ({"fraction_length", "slope", "fixed_exponent",
                                                     "slope_adjustment_factor", "bias"} & set(nt_props)):
                base.update(slope=T.slope, bias=T.bias) if T.scaling == "SlopeBias" else \
                    base.update(fraction_length=T.fraction_length)
            base.update(nt_props)
            return numerictype(**base)
        if {"fraction_length", "slope", "fixed_exponent", "slope_adjustment_factor", "bias"} & set(nt_props):
            return numerictype(**nt_props)
        return None

    def _resolve_type(self, T, nt_props, kind, data, own):
        nt = self._full_type(T, nt_props)
        if nt is not None and nt.scaling != "Unspecified":
            return nt
        if nt is None and not nt_props and own is not None:
            return own  # integer dtypes, bools and fi keep their type (A.2 rule 4)
        base = nt if nt is not None else numerictype(**{"signed": True, "word_length": 16, **nt_props})
        s, w = base.signed, base.word_length
        values = data.double() if kind == "fi" else data
        f = best_precision_fraction_length(values, w, s)
        return numerictype(s, w, f, data_type=base.data_type)

    def _init_stored(self, T, F, nt_props, stored, pattern):
        nt = self._full_type(T, nt_props)
        if pattern is not None:
            key, text = pattern
            parts = _split_patterns(text)
            if nt is None:
                bits = max((len(p) for p in parts), default=1) * (1 if key == "bin" else 4)
                props = {"signed": True, "word_length": bits, "fraction_length": 0, **nt_props}
                nt = numerictype(**props)
            q = _pattern_to_stored(parts, nt.word_length, nt.signed, 2 if key == "bin" else 16, key)
            if not isinstance(text, str):
                q = q.reshape(np.shape(text))
            elif len(parts) == 1:
                q = q.reshape(())
        else:
            if nt is None:
                raise ValueError("fi: int=/stored_integer= needs a full type (signed, word_length and "
                                 "fraction_length, or a numerictype)")
            kind, data, _ = _classify(stored)
            if kind != "int":
                raise ValueError(f"fi: stored integers must be integers, got {stored!r}")
            x = np.asarray(data, dtype=object)
            lo, hi = (-(1 << (nt.word_length - 1)), (1 << (nt.word_length - 1)) - 1) if nt.signed \
                else (0, (1 << nt.word_length) - 1)
            if x.size and ((x < lo).any() or (x > hi).any()):
                raise ValueError(f"fi: stored integers must lie in [{lo}, {hi}] for {nt!r}")
            q = x
        self._q = np.asarray(q, dtype=object).astype(storage_dtype(nt))
        self._nt, self._fm = nt, F

    def _init_override(self, mode, kind, data, nt, F, quantiser):
        """Data-type override (A.13): TrueDoubles holds the double values, ScaledDoubles holds the
        values rounded to the type's LSB without overflow handling (overflows are counted)."""
        values = data.double() if kind == "fi" else np.asarray(data, dtype=np.float64)
        data_type = "double" if mode == "TrueDoubles" else "ScaledDouble"
        self._nt = numerictype(nt.signed, nt.word_length, nt.fraction_length, data_type=data_type)
        self._fm = F
        if mode == "TrueDoubles":
            self._q, n_ov, n_un = np.array(values, dtype=np.float64), 0, 0
        else:
            self._q, n_ov, n_un = scaled_doubles(values, self._nt, quantiser.rounding_method)
        fi_logging.record(self, n_ov, n_un, "assignment")

    def _init_complex(self, T, F, nt_props, kind, data, quantiser):
        """A.2 rule 6: both parts share one numerictype (best precision over both parts when it is
        not given) and are quantised independently; overflows and underflows count over both."""
        if kind == "fi":
            parts, own = (data.real, data.imag), data._nt
            values = np.concatenate([np.ravel(p.double()) for p in parts])
            F = F if F is not None else data._fm
        else:
            parts, own = (data.real, data.imag), None
            values = np.concatenate([parts[0].ravel(), parts[1].ravel()])
            if not np.isfinite(values).all():
                given = self._full_type(T, nt_props)
                if given is None or given.scaling == "Unspecified":  # spec A.2 rule 5
                    raise ValueError("fi: a complex value with NaN or Inf parts needs a fully specified "
                                     "type: best precision cannot be computed from NaN or Inf")
        nt = self._resolve_type(T, nt_props, "float", values, own)
        if nt.data_type != "Fixed" or fi_logging.datatype_override() != "ForceOff":
            raise TypeError("fi: complex values are not supported with a double or scaled-double data "
                            "type (data-type override)")
        r, o = quantiser.rounding_method, quantiser.overflow_action
        stored, n_ov, n_un = [], 0, 0
        for part in parts:
            q, ov, un = convert(part, nt, r, o) if kind == "fi" else quantize_doubles(part, nt, r, o)
            stored.append(_stored(q, nt))
            n_ov, n_un = n_ov + ov, n_un + un
        self._q, self._im, self._nt, self._fm = stored[0], stored[1], nt, F
        fi_logging.record(self, n_ov, n_un, "assignment")

    @classmethod
    def _from_stored(cls, q, nt: numerictype, fm: fimath | None = None) -> "fi":
        """Wrap stored integers that already fit nt (no re-quantisation; the dtype is normalised)."""
        obj = object.__new__(cls)
        obj._q, obj._im, obj._nt, obj._fm = _stored(q, nt), None, nt, fm
        return obj

    @classmethod
    def _complex(cls, q_re, q_im, nt: numerictype, fm: fimath | None = None) -> "fi":
        """A complex fi from the stored integers of both parts (already in nt)."""
        obj = cls._from_stored(q_re, nt, fm)
        obj._im = _stored(q_im, nt)
        if np.shape(obj._im) != np.shape(obj._q):
            obj._q, obj._im = (np.ascontiguousarray(x) for x in np.broadcast_arrays(obj._q, obj._im))
        return obj

    def _map(self, op) -> "fi":
        """op (a shape operation) applied to the stored integers of every part."""
        if self._im is None:
            return self._like(op(self._q))
        return fi._complex(op(self._q), op(self._im), self._nt, self._fm)

    def _real_only(self, what: str, hint: str = ""):
        if self._im is not None:
            raise TypeError(f"{what} is not supported for a complex fi{hint}")

    # ----------------------------------------------------------------- complex parts
    @property
    def real(self) -> "fi":
        """The real part (a real fi of the same type and fimath; a real fi is its own real part)."""
        return self if self._im is None else self._like(self._q)

    @property
    def imag(self) -> "fi":
        """The imaginary part (zeros of the same type for a real fi)."""
        if self._im is None:
            return self._like(np.zeros(np.shape(self._q), dtype=np.asarray(self._q).dtype))
        return self._like(self._im)

    def isreal(self) -> bool:
        """False for a complex fi, even when every imaginary part is zero (MATLAB's isreal)."""
        return self._im is None

    # ----------------------------------------------------------------- type and fimath
    @property
    def numerictype(self) -> numerictype:
        return self._nt

    @property
    def fimath(self) -> fimath:
        """The local fimath, or the default one when there is none."""
        return self._fm if self._fm is not None else default_fimath()

    @fimath.setter
    def fimath(self, F):
        """Attach (or with None remove) a local fimath; never re-quantises (A.2 rule 3)."""
        if F is not None and not isinstance(F, fimath):
            raise TypeError(f"fimath must be a fimath or None, got {type(F).__name__}")
        self._fm = F

    @property
    def has_local_fimath(self) -> bool:
        return self._fm is not None

    signed = property(lambda self: self._nt.signed)
    word_length = property(lambda self: self._nt.word_length)
    fraction_length = property(lambda self: self._nt.fraction_length)

    # ----------------------------------------------------------------- shape
    shape = property(lambda self: np.shape(self._q))
    ndim = property(lambda self: np.ndim(self._q))
    size = property(lambda self: int(np.size(self._q)))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d fi")
        return self.shape[0]

    def _like(self, q) -> "fi":
        return fi._from_stored(q, self._nt, self._fm)

    def __getitem__(self, index):
        if isinstance(index, fi):
            index = np.asarray(index)
        if self._im is not None:
            return self._map(lambda q: np.asarray(q[index]))
        return self._like(np.asarray(self._q[index]))

    def __setitem__(self, index, value):
        """Cast `value` into this array's type with its fimath, then store it (never retypes)."""
        if self._im is not None:
            self._set_complex(index, value)
            return
        F = self.fimath
        if self._nt.data_type in _OVERRIDE_OF:  # doubles stay doubles (scaled: rounded to the LSB)
            values = value.double() if isinstance(value, fi) else np.asarray(value, dtype=np.float64)
            if self._nt.data_type == "ScaledDouble":
                q, n_ov, n_un = scaled_doubles(values, self._nt, F.rounding_method)
            else:
                q, n_ov, n_un = values, 0, 0
        elif isinstance(value, fi):
            if value._im is not None:
                raise TypeError("cannot assign complex values into a real fi; build a complex fi instead")
            q, n_ov, n_un = convert(value, self._nt, F.rounding_method, F.overflow_action)
        else:
            kind, data, _ = _classify(value)
            if kind == "complex":
                raise TypeError("cannot assign complex values into a real fi; build a complex fi instead")
            if kind == "int":
                q, n_ov, n_un = requantize(data, 0, self._nt, F.rounding_method, F.overflow_action)
            else:
                q, n_ov, n_un = quantize_doubles(data, self._nt, F.rounding_method, F.overflow_action)
        if not isinstance(self._q, np.ndarray) or self._q.ndim == 0 and not self._q.flags.writeable:
            self._q = np.array(self._q)
        self._q[index] = q
        fi_logging.record(self, n_ov, n_un, "assignment")

    def _set_complex(self, index, value):
        """Assignment into a complex fi: each part cast into the type with the fimath."""
        F = self.fimath
        r, o = F.rounding_method, F.overflow_action
        if isinstance(value, fi):
            parts = (value.real, value.imag)
        else:
            kind, data, _ = _classify(value)
            parts = (np.real(data), np.imag(data)) if kind == "complex" else (data, None)
        stored, n_ov, n_un = [], 0, 0
        for part in parts:
            if part is None:
                q, ov, un = 0, 0, 0
            elif isinstance(part, fi):
                q, ov, un = convert(part, self._nt, r, o)
            elif np.asarray(part).dtype.kind in "iuO":
                q, ov, un = requantize(part, 0, self._nt, r, o)
            else:
                q, ov, un = quantize_doubles(part, self._nt, r, o)
            stored.append(q)
            n_ov, n_un = n_ov + ov, n_un + un
        if not self._q.flags.writeable:
            self._q = np.array(self._q)
        if not self._im.flags.writeable:
            self._im = np.array(self._im)
        self._q[index], self._im[index] = stored
        fi_logging.record(self, n_ov, n_un, "assignment")

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d fi")
        for i in range(self.shape[0]):
            yield self[i]

    def reshape(self, *shape) -> "fi":
        shape = shape[0] if len(shape) == 1 else shape
        if self._im is not None:
            return self._map(lambda q: np.reshape(q, shape))
        return self._like(np.reshape(self._q, shape))

    def transpose(self, *axes) -> "fi":
        if self._im is not None:
            return self._map(lambda q: np.transpose(q, axes or None))
        return self._like(np.transpose(self._q, axes or None))

    T = property(lambda self: self.transpose())

    def flatten(self) -> "fi":
        if self._im is not None:
            return self._map(lambda q: np.asarray(q).flatten())
        return self._like(np.asarray(self._q).flatten())

    ravel = flatten

    def copy(self) -> "fi":
        if self._im is not None:
            return self._map(lambda q: np.array(q, copy=True))
        return self._like(np.array(self._q, copy=True))

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    # ----------------------------------------------------------------- values
    @property
    def stored_integer(self) -> np.ndarray:
        """Stored integers in the smallest numpy integer dtype of the word (exact ints above 64)."""
        if self._im is not None:
            raise TypeError("stored_integer of a complex fi: read a.real.stored_integer and "
                            "a.imag.stored_integer (each exact at any word length)")
        w = self._nt.word_length
        if self._nt.data_type != "Fixed":
            raise TypeError(f"stored_integer needs a fixed-point fi, this one holds {self._nt.data_type} values")
        if w > 64:
            return np.array(self._q, dtype=object)
        bits = next(b for b in (8, 16, 32, 64) if w <= b)
        return np.asarray(self._q).astype(f"{'int' if self._nt.signed else 'uint'}{bits}")

    @property
    def int(self):
        return self.stored_integer

    @int.setter
    def int(self, values):
        """Set the stored integers directly (A.2 rule 7); they must fit the word."""
        self._real_only("setting int (the stored integers)")
        replacement = fi(None, self._nt, stored_integer=values)
        self._q = np.broadcast_to(replacement._q, self.shape).copy() if self.shape else replacement._q

    def double(self) -> np.ndarray:
        """Real-world values as float64 (complex128 for a complex fi), the nearest double of each
        exact value (of each part)."""
        if self._im is not None:
            return self.real.double() + 1j * self.imag.double()
        nt, q = self._nt, np.asarray(self._q)
        if nt.data_type != "Fixed":
            return q.astype(np.float64)
        if nt.is_binary_point and q.dtype != object:
            return np.ldexp(q.astype(np.float64), -nt.fraction_length)
        return np.array([float(x) for x in real_fractions(self).ravel()], dtype=np.float64).reshape(q.shape)

    def __array__(self, dtype=None, copy=None):
        values = self.double()
        return values if dtype is None else values.astype(dtype)

    def __float__(self):
        self._real_only("float()")
        if self.size != 1:
            raise TypeError(f"only a single-element fi converts to float, this one has shape {self.shape}")
        return float(self.double().ravel()[0])

    def __complex__(self):
        if self.size != 1:
            raise TypeError(f"only a single-element fi converts to complex, this one has shape {self.shape}")
        return builtins.complex(self.double().ravel()[0])

    def __bool__(self):
        if self.size != 1:
            raise ValueError("the truth value of a fi with more than one element is ambiguous")
        if self._im is not None:
            return bool(self.real) or bool(self.imag)
        return bool(np.asarray(self._q).ravel()[0] != 0 or self._nt.bias != 0)

    def tolist(self):
        return self.double().tolist()

    def _patterns(self):
        w = self._nt.word_length
        mask = (1 << w) - 1
        return [int(x) & mask for x in np.asarray(self._q).ravel()]

    def _format(self, fmt) -> str:
        self._real_only("bin / hex / oct", ": read them from a.real and a.imag")
        texts = [fmt(p) for p in self._patterns()]
        return "   ".join(texts) if self.ndim else texts[0]

    @property
    def bin(self) -> str:
        """Two's-complement bit patterns (w characters each, MSB first), space separated."""
        w = self._nt.word_length
        return self._format(lambda p: format(p, f"0{w}b"))

    @property
    def hex(self) -> str:
        """Two's-complement patterns as ceil(w/4) upper-case hex digits."""
        digits = -(-self._nt.word_length // 4)
        return self._format(lambda p: format(p, f"0{digits}X"))

    @property
    def oct(self) -> str:
        """Two's-complement patterns as ceil(w/3) octal digits."""
        digits = -(-self._nt.word_length // 3)
        return self._format(lambda p: format(p, f"0{digits}o"))

    @property
    def dec(self) -> str:
        """Stored integers in decimal (signed), space separated."""
        self._real_only("dec", ": read it from a.real and a.imag")
        texts = [str(int(x)) for x in np.asarray(self._q).ravel()]
        return "   ".join(texts) if self.ndim else texts[0]

    def __repr__(self):
        values = np.array2string(self.double(), separator=", ", precision=15) if self.size else "[]"
        local = f", {self._fm!r}" if self._fm is not None else ""
        return f"fi({values}, {self._nt!r}{local})"

    __str__ = __repr__

    # ----------------------------------------------------------------- arithmetic (spec A.8)
    def __add__(self, other):
        return _arith.binary("plus", self, other)

    def __radd__(self, other):
        return _arith.binary("plus", other, self)

    def __sub__(self, other):
        return _arith.binary("minus", self, other)

    def __rsub__(self, other):
        return _arith.binary("minus", other, self)

    def __mul__(self, other):
        return _arith.binary("times", self, other)

    def __rmul__(self, other):
        return _arith.binary("times", other, self)

    def __matmul__(self, other):
        return _arith.matmul(self, other)

    def __rmatmul__(self, other):
        return _arith.matmul(other, self)

    def __truediv__(self, other):
        return _arith.divide_default(self, other)

    def __rtruediv__(self, other):
        return _arith.divide_default(other, self)

    def __neg__(self):
        return _arith.negate(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _arith.absolute(self)

    def __eq__(self, other):
        return _arith.compare(self, other, np.equal)

    def __ne__(self, other):
        return _arith.compare(self, other, np.not_equal)

    def __lt__(self, other):
        return _arith.compare(self, other, np.less)

    def __le__(self, other):
        return _arith.compare(self, other, np.less_equal)

    def __gt__(self, other):
        return _arith.compare(self, other, np.greater)

    def __ge__(self, other):
        return _arith.compare(self, other, np.greater_equal)

    __hash__ = None

    def sum(self, axis=None):
        return _arith.sum(self, axis)

    def cumsum(self, axis=None):
        return _arith.cumsum(self, axis)

    def prod(self, axis=None):
        return _arith.prod(self, axis)

    def __lshift__(self, k):
        from .bits import bitsll
        return bitsll(self, k)

    def __rshift__(self, k):
        from .bits import bitsra
        return bitsra(self, k)


def _stored(q, nt: numerictype):
    """Stored integers in nt's storage dtype (doubles of an overridden type are kept as they are)."""
    q = np.asarray(q)
    if nt.data_type not in ("Fixed", "boolean"):
        return q
    dtype = storage_dtype(nt)
    return q if q.dtype == dtype else q.astype(dtype)


def _limits(nt: numerictype):
    w = nt.word_length
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if nt.signed else (0, (1 << w) - 1)


def isreal(a) -> bool:
    """False for a complex fi (even with zero imaginary parts); numpy's rule for anything else."""
    if isinstance(a, fi):
        return a.isreal()
    return not np.iscomplexobj(a)


def complex(re, im) -> fi:
    """A complex fi from its parts (MATLAB's complex(a, b)), exact at any word length: the stored
    integers are kept as they are. A non-fi part is cast into the fi part's type (Nearest /
    Saturate, like construction); two fi parts must share one numerictype. The fimath is re's (or
    im's when re has none)."""
    if not isinstance(re, fi) and not isinstance(im, fi):
        raise TypeError("complex: at least one part must be a fi (build complex values with fi(v, ...))")
    if not isinstance(re, fi):
        re = fi(re, im._nt)
    if not isinstance(im, fi):
        im = fi(im, re._nt)
    if re._im is not None or im._im is not None:
        raise TypeError("complex: both parts must be real fi")
    if re._nt != im._nt:
        raise ValueError(f"complex needs parts of one numerictype; got {re._nt!r} and {im._nt!r}")
    try:
        shape = np.broadcast_shapes(np.shape(re._q), np.shape(im._q))
    except ValueError:
        raise ValueError(f"complex: part shapes {np.shape(re._q)} and {np.shape(im._q)} do not "
                         "broadcast") from None
    return fi._complex(np.broadcast_to(re._q, shape).copy(), np.broadcast_to(im._q, shape).copy(), re._nt,
                       re._fm if re._fm is not None else im._fm)


def concatenate(arrays, axis=0) -> fi:
    """Join fi arrays of one numerictype along an axis (the first array's fimath is kept); the
    result is complex when any input is."""
    arrays = list(arrays)
    if not arrays or not all(isinstance(a, fi) for a in arrays):
        raise TypeError("concatenate needs a non-empty sequence of fi")
    nt = arrays[0]._nt
    for a in arrays[1:]:
        if a._nt != nt:
            raise ValueError(f"concatenate needs one numerictype; got {nt!r} and {a._nt!r}")
    if any(a._im is not None for a in arrays):
        return fi._complex(np.concatenate([np.asarray(a.real._q) for a in arrays], axis=axis),
                           np.concatenate([np.asarray(a.imag._q) for a in arrays], axis=axis), nt, arrays[0]._fm)
    return fi._from_stored(np.concatenate([np.asarray(a._q) for a in arrays], axis=axis), nt, arrays[0]._fm)


from . import arith as _arith  # noqa: E402  (arith builds on the fi class defined above)
