"""Bit operations on the w-bit two's-complement pattern of a fi's stored integers (spec A.10).

Every operation maps the stored integers to their w-bit pattern (an unsigned value in [0, 2^w)),
works on the patterns with numpy bitwise ufuncs, and maps the result back to stored integers of the
output type. Patterns of up to 64 bits live in uint64 arrays, so nothing loops in Python; wider
patterns live in object arrays of Python ints, which are exact at any width. The same expressions
serve both, with the constants held as np.uint64 or as Python int respectively.
"""
from __future__ import annotations

import operator

import numpy as np

from . import fi_logging
from .fi import fi
from .types import numerictype

__all__ = [
    "bitand", "bitor", "bitxor", "bitcmp", "bitshift", "bitsll", "bitsra", "bitsrl", "bitrol",
    "bitror", "bitget", "bitset", "bitconcat", "bitsliceget", "bitandreduce", "bitorreduce",
    "bitxorreduce", "getmsb", "getlsb", "bitreplicate",
]


class Word:
    """The w-bit two's-complement view of stored integers of one signedness."""

    __slots__ = ("width", "signed", "wide", "mask", "sign_bit")

    def __init__(self, width: int, signed: bool):
        self.width, self.signed = int(width), bool(signed)
        self.wide = self.width > 64
        const = int if self.wide else np.uint64
        self.mask = const((1 << self.width) - 1)
        self.sign_bit = const(1 << (self.width - 1))

    @property
    def limits(self):
        """(smallest, largest) stored integer as Python ints."""
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return 0, (1 << self.width) - 1

    def const(self, value: int):
        """A constant in this word's arithmetic (np.uint64 or Python int)."""
        return int(value) if self.wide else np.uint64(value)

    def pattern(self, q):
        """Stored integers → w-bit patterns (at least 1-d, so numpy never falls back to scalars)."""
        if self.wide:
            return np.array(np.asarray(q).astype(object), dtype=object, ndmin=1) & self.mask
        return np.array(q, ndmin=1).astype(np.uint64) & self.mask  # casting wraps modulo 2^64

    def stored(self, p, shape):
        """w-bit patterns → stored integers in the fi storage dtype, reshaped to `shape`."""
        if self.signed:
            p = (p ^ self.sign_bit) - self.sign_bit  # sign extension; wraps modulo 2^64 when narrow
            if not self.wide:
                p = p.view(np.int64)
        elif not self.wide and self.width < 64:
            p = p.view(np.int64)
        return p.reshape(shape)

    def array(self, values, shape=()):
        """Python-int stored integers → an array in the fi storage dtype."""
        if self.wide:
            return np.array(values, dtype=object).reshape(shape)
        dtype = np.uint64 if (not self.signed and self.width == 64) else np.int64
        return np.array(values, dtype=dtype).reshape(shape)

    def shift_left(self, p, k: int):
        """Logical left shift of patterns; bits beyond w are lost."""
        if k >= self.width:
            return p & self.const(0)
        return (p << self.const(k)) & self.mask

    def shift_right(self, p, k: int):
        """Logical right shift of patterns; zeros come in."""
        if k >= self.width:
            return p & self.const(0)
        return p >> self.const(k)


def _word(a: fi) -> Word:
    if a._im is not None:
        raise TypeError("bit operations are not supported for a complex fi (apply them to a.real "
                        "and a.imag)")
    nt = a._nt
    if getattr(nt, "data_type", "Fixed") != "Fixed":
        raise TypeError(f"bit operations need a fixed-point fi; this one has data type "
                        f"{nt.data_type!r} (built under a data-type override)")
    return Word(nt.word_length, nt.signed)


def _require_fi(a, name: str) -> fi:
    if not isinstance(a, fi):
        raise TypeError(f"{name} must be a fi, got {type(a).__name__}")
    return a


def _count(k, name: str, minimum=None) -> int:
    """A shift count or bit index as a Python int."""
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {k!r}") from None
    if minimum is not None and k < minimum:
        raise ValueError(f"{name} = {k} must be at least {minimum}")
    return k


def _positions(n, word: Word, name: str):
    """Zero-based bit positions from 1-based ones (1 = LSB), each checked against 1..w."""
    n = np.asarray(n)
    if not np.issubdtype(n.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got {n.tolist()!r}")
    bad = n[(n < 1) | (n > word.width)]
    if bad.size:
        raise ValueError(f"{name} = {bad.ravel()[0]} is outside 1..{word.width} (the word length)")
    dtype = object if word.wide else np.uint64
    return np.asarray(n.astype(dtype) - word.const(1), dtype=dtype)  # 0-d object ops give scalars


def _same_type(a, b, name: str):
    """Two operands of one numerictype; a built-in operand is cast to the fi operand's type."""
    if not isinstance(a, fi):
        a, b = b, a
    _require_fi(a, f"{name}: one operand")
    if not isinstance(b, fi):
        b = fi(b, a._nt)
    if b._nt != a._nt:
        raise ValueError(f"{name} needs operands of one numerictype; got {a._nt!r} and {b._nt!r}")
    return a, b


def _unary(a: fi, op) -> fi:
    """A same-type result from `op(word, pattern)`, keeping a's local fimath."""
    word = _word(a)
    return fi._from_stored(word.stored(op(word, word.pattern(a._q)), np.shape(a._q)), a._nt, a._fm)


def _binary(a, b, name: str, op) -> fi:
    a, b = _same_type(a, b, name)
    word = _word(a)
    pa, pb = np.broadcast_arrays(word.pattern(a._q), word.pattern(b._q))
    shape = np.broadcast_shapes(np.shape(a._q), np.shape(b._q))
    return fi._from_stored(word.stored(op(pa, pb), shape), a._nt, a._fm)


def bitand(a, b) -> fi:
    """Bitwise AND of the w-bit patterns; result in the fi operand's type."""
    return _binary(a, b, "bitand", np.bitwise_and)


def bitor(a, b) -> fi:
    """Bitwise OR of the w-bit patterns; result in the fi operand's type."""
    return _binary(a, b, "bitor", np.bitwise_or)


def bitxor(a, b) -> fi:
    """Bitwise XOR of the w-bit patterns; result in the fi operand's type."""
    return _binary(a, b, "bitxor", np.bitwise_xor)


def bitcmp(a) -> fi:
    """Invert all w bits: bitcmp(fi(5,1,4,0)) is 1010 = -6."""
    return _unary(_require_fi(a, "bitcmp: a"), lambda word, p: p ^ word.mask)


def bitsll(a, k) -> fi:
    """Logical left shift by k ≥ 0, zeros in, ignoring the fimath (k ≥ w gives 0)."""
    k = _count(k, "bitsll: k", 0)
    return _unary(_require_fi(a, "bitsll: a"), lambda word, p: word.shift_left(p, k))


def bitsrl(a, k) -> fi:
    """Logical right shift by k ≥ 0, zeros in even for signed types."""
    k = _count(k, "bitsrl: k", 0)
    return _unary(_require_fi(a, "bitsrl: a"), lambda word, p: word.shift_right(p, k))


def _arithmetic_shift(a: fi, k: int) -> fi:
    """Right shift by k ≥ 0 rounding toward -inf: signed words copy the MSB in, unsigned ones zeros.
    A shift by w − 1 already leaves only sign bits, so larger counts are clamped there."""
    word = _word(a)
    if word.signed:
        q = np.asarray(np.asarray(a._q) >> min(k, word.width - 1))
    else:
        q = word.stored(word.shift_right(word.pattern(a._q), k), np.shape(a._q))
    return fi._from_stored(q, a._nt, a._fm)


def bitsra(a, k) -> fi:
    """Arithmetic right shift by k ≥ 0, ignoring the fimath: bitsra(fi(-8,1,4,0),1) is -4."""
    return _arithmetic_shift(_require_fi(a, "bitsra: a"), _count(k, "bitsra: k", 0))


def _rotate(word: Word, p, k: int):
    k %= word.width
    if k == 0:
        return p
    return word.shift_left(p, k) | word.shift_right(p, word.width - k)


def bitrol(a, k) -> fi:
    """Rotate the w-bit pattern left by k ≥ 0 (k is taken modulo w)."""
    k = _count(k, "bitrol: k", 0)
    return _unary(_require_fi(a, "bitrol: a"), lambda word, p: _rotate(word, p, k))


def bitror(a, k) -> fi:
    """Rotate the w-bit pattern right by k ≥ 0 (k is taken modulo w)."""
    k = _count(k, "bitror: k", 0)
    return _unary(_require_fi(a, "bitror: a"), lambda word, p: _rotate(word, p, -k))


def _overflow_wraps(a: fi) -> bool:
    action = a.fimath.overflow_action
    return str(getattr(action, "name", action)).lower() == "wrap"


def bitshift(a, k) -> fi:
    """a·2^k cast back into a's type: left for k > 0 with a's OverflowAction, right for k < 0
    always with Floor rounding (an arithmetic shift)."""
    a, k = _require_fi(a, "bitshift: a"), _count(k, "bitshift: k")
    if k <= 0:
        return _arithmetic_shift(a, -k)
    word = _word(a)
    shifted = word.stored(word.shift_left(word.pattern(a._q), k), np.shape(a._q))
    qmin, qmax = word.limits
    q = np.asarray(a._q)
    above, below = q > (qmax >> k), q < -((-qmin) >> k)  # values whose exact a·2^k leaves the type
    n_overflow = int(np.count_nonzero(above) + np.count_nonzero(below))
    if not _overflow_wraps(a) and n_overflow:
        shifted = np.where(above, word.array(qmax), np.where(below, word.array(qmin), shifted))
        shifted = shifted.astype(word.array(0).dtype)
    result = fi._from_stored(shifted, a._nt, a._fm)
    fi_logging.record(result, n_overflow, 0, operation="bitshift")
    return result


def _bit_result(bits, shape) -> fi:
    """0/1 values as a u1,0 fi."""
    return fi._from_stored(np.asarray(bits).astype(np.int64).reshape(shape),
                           numerictype(False, 1, 0))


def bitget(a, n) -> fi:
    """Bit n (1 = LSB) of each element, as u1,0; n may be an array broadcast against a."""
    a = _require_fi(a, "bitget: a")
    word = _word(a)
    p, shift = np.broadcast_arrays(word.pattern(a._q), _positions(n, word, "bitget: n"))
    shape = np.broadcast_shapes(np.shape(a._q), np.shape(n))
    return _bit_result((p >> shift) & word.const(1), shape)


def bitset(a, n, v=1) -> fi:
    """Set bit n (1 = LSB) to v (0 or 1, default 1); n and v broadcast against a; type kept."""
    a = _require_fi(a, "bitset: a")
    word = _word(a)
    v = np.asarray(v)
    if not np.isin(v, (0, 1)).all():
        raise ValueError(f"bitset: v must be 0 or 1, got {v.tolist()!r}")
    bit = np.asarray(word.const(1) << _positions(n, word, "bitset: n"), dtype=word.pattern(0).dtype)
    p, bit, v = np.broadcast_arrays(word.pattern(a._q), bit, v.astype(bool))
    shape = np.broadcast_shapes(np.shape(a._q), np.shape(n), v.shape)
    out = np.where(v, p | bit, p & (word.mask ^ bit))
    return fi._from_stored(word.stored(out.astype(p.dtype), shape), a._nt, a._fm)


def bitconcat(*parts) -> fi:
    """Concatenate bit patterns, the first argument in the MSBs: unsigned, w = Σw, f = 0.

    `bitconcat(a, b, ...)` works elementwise (operands broadcast); `bitconcat(vector)` joins the
    elements of one 1-d fi.
    """
    if not parts:
        raise TypeError("bitconcat needs at least one fi")
    for i, part in enumerate(parts):
        _require_fi(part, f"bitconcat: argument {i}")
    if len(parts) == 1:  # the elements of one vector, first element in the MSBs
        vector, word = parts[0], _word(parts[0])
        if np.ndim(vector._q) > 1:
            raise ValueError(f"bitconcat(vector) needs a 1-d fi, got shape {np.shape(vector._q)}")
        p = word.pattern(vector._q)
        pieces, shape = [(word, p[i:i + 1]) for i in range(p.size)], ()
    else:
        words = [_word(part) for part in parts]
        patterns = np.broadcast_arrays(*(word.pattern(part._q) for word, part in zip(words, parts)))
        pieces = list(zip(words, patterns))
        shape = np.broadcast_shapes(*(np.shape(part._q) for part in parts))
    out = Word(sum(word.width for word, _ in pieces), False)
    acc = None
    for word, p in pieces:
        p = p.astype(object) if out.wide else p
        acc = p if acc is None else (acc << out.const(word.width)) | p
    return fi._from_stored(out.stored(acc, shape), numerictype(False, out.width, 0))


def bitreplicate(a, n) -> fi:
    """The w-bit pattern of each element repeated n ≥ 1 times: unsigned, w = n·w_a, f = 0.

    The result type is that of bitconcat(a, a, ..., a): a replication is a concatenation, so the
    two must agree (bitreplicate(a, 1) is bitconcat(a), a's pattern as an unsigned integer).
    """
    a = _require_fi(a, "bitreplicate: a")
    n = _count(n, "bitreplicate: n", 1)
    word = _word(a)
    out = Word(n * word.width, False)
    p = word.pattern(a._q)
    p = p.astype(object) if out.wide else p
    acc = p
    for _ in range(n - 1):  # n - 1 whole-array shift-and-or steps, never a loop over elements
        acc = (acc << out.const(word.width)) | p
    return fi._from_stored(out.stored(acc, np.shape(a._q)), numerictype(False, out.width, 0))


def _slice_bounds(word: Word, lidx, ridx, name: str):
    lidx = word.width if lidx is None else _count(lidx, f"{name}: lidx")
    ridx = 1 if ridx is None else _count(ridx, f"{name}: ridx")
    if not word.width >= lidx >= ridx >= 1:
        raise ValueError(f"{name}: need w >= lidx >= ridx >= 1, got w={word.width}, "
                         f"lidx={lidx}, ridx={ridx}")
    return lidx, ridx


def _slice(a, lidx, ridx, name: str):
    """Bits lidx..ridx of a's patterns, as (word of the slice width, patterns in that word)."""
    a = _require_fi(a, f"{name}: a")
    word = _word(a)
    lidx, ridx = _slice_bounds(word, lidx, ridx, name)
    out = Word(lidx - ridx + 1, False)
    p = word.shift_right(word.pattern(a._q), ridx - 1) & word.const(int(out.mask))
    return out, (p if out.wide == word.wide else p.astype(np.uint64))


def bitsliceget(a, lidx=None, ridx=None) -> fi:
    """Bits lidx..ridx (defaults w and 1) as an unsigned fi of width lidx−ridx+1, f = 0."""
    out, p = _slice(a, lidx, ridx, "bitsliceget")
    return fi._from_stored(out.stored(p, np.shape(a._q)), numerictype(False, out.width, 0))


def bitandreduce(a, lidx=None, ridx=None) -> fi:
    """1 where every bit of lidx..ridx is set, as u1,0."""
    out, p = _slice(a, lidx, ridx, "bitandreduce")
    return _bit_result(p == out.mask, np.shape(a._q))


def bitorreduce(a, lidx=None, ridx=None) -> fi:
    """1 where any bit of lidx..ridx is set, as u1,0."""
    _, p = _slice(a, lidx, ridx, "bitorreduce")
    return _bit_result(p != 0, np.shape(a._q))


_parity_of_int = np.frompyfunc(lambda x: x.bit_count() & 1, 1, 1)


def bitxorreduce(a, lidx=None, ridx=None) -> fi:
    """Parity (XOR of all bits) of lidx..ridx, as u1,0."""
    _, p = _slice(a, lidx, ridx, "bitxorreduce")
    parity = _parity_of_int(p) if p.dtype == object else np.bitwise_count(p) & 1
    return _bit_result(parity, np.shape(a._q))


def getmsb(a) -> fi:
    """The most significant bit of each element, as u1,0."""
    a = _require_fi(a, "getmsb: a")
    return bitget(a, a._nt.word_length)


def getlsb(a) -> fi:
    """The least significant bit of each element, as u1,0."""
    return bitget(_require_fi(a, "getlsb: a"), 1)


# Python's shift operators on fi mean MATLAB's bitsll / bitsra.
fi.__lshift__ = bitsll
fi.__rshift__ = bitsra
