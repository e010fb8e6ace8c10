"""fi arithmetic with MATLAB's result-type rules (spec A.8).

Python decides the result numerictype and the fimath; the stored integers are computed exactly and
rounded/overflowed into the result type in one pass: by the compiled core for words up to 64 bits
whose exact intermediates fit 127 bits, by the exact object-array path otherwise.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import _core, fi_logging, wide
from .cast import (convert, core_input, from_core, real_fractions, requantize, scaled_doubles,
                   storage_dtype)
from .fi import fi
from .types import ArithMode, OverflowAction, default_fimath, fimath, numerictype

__all__ = ["add", "sub", "mpy", "divide", "accumpos", "accumneg", "sum", "cumsum", "prod", "binary",
           "matmul", "negate", "absolute", "abs", "conj", "compare", "divide_default"]


# ------------------------------------------------------------------------------ operands and fimath
def _resolve_fimath(a, b):
    """A.7: one local fimath wins and is inherited; two must agree; none → default, no local."""
    fa = a._fm if isinstance(a, fi) else None
    fb = b._fm if isinstance(b, fi) else None
    if fa is not None and fb is not None and fa != fb:
        raise ValueError(f"both operands have local fimath objects and they differ:\n  {fa!r}\n  {fb!r}")
    local = fa if fa is not None else fb
    return (local if local is not None else default_fimath()), local


def _as_operand(x, partner: fi, op: str) -> fi:
    """A.8.3: the non-fi operand becomes a fi (doubles take the partner's type for + -, the
    partner's signedness and word length with best precision for * and /; numpy integers and
    bools keep their own type)."""
    if isinstance(x, fi):
        return x
    if isinstance(x, (str, bytes)) or (isinstance(x, np.ndarray) and x.dtype.kind in "SU"):
        raise TypeError(f"unsupported operand for fi {op}: {type(x).__name__} {x!r}")
    if isinstance(x, (bool, np.bool_, np.integer)) or (isinstance(x, np.ndarray) and x.dtype.kind in "biu"):
        return fi(x)
    try:
        values = x
        if not isinstance(x, int):
            values = np.asarray(x)
            if values.dtype.kind != "c":
                values = values.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise TypeError(f"unsupported operand for fi {op}: {type(x).__name__}") from None
    nt = partner._nt
    if getattr(values, "dtype", None) is not None and values.dtype.kind == "c" and nt.data_type != "Fixed":
        raise TypeError(f"fi {op}: complex operands are not supported with a data-type override")
    if nt.data_type in ("double", "single"):  # TrueDoubles: the operand stays a double
        return fi._from_stored(np.asarray(values, dtype=np.float64), _DOUBLE)
    if op in ("plus", "minus") and nt.data_type in ("Fixed", "ScaledDouble"):
        return fi(values, nt)
    return fi(values, nt.signed, nt.word_length)


def _require_real(operation: str, *operands):
    """Complex fi support only + - * unary minus == != conj (and real/imag/shape): a clear error
    everywhere else."""
    for x in operands:
        if isinstance(x, fi) and x._im is not None:
            raise TypeError(f"{operation}: complex fi is not supported here (complex fi supports "
                            "+, -, *, unary minus, ==, !=, conj, real, imag and shape operations)")


def _check_binary_point(*operands):
    for x in operands:
        if not x._nt.is_binary_point or x._nt.data_type not in ("Fixed", "boolean"):
            raise ValueError(f"fi arithmetic on {x._nt!r} is not supported (binary-point fixed-point only)")


def _il(nt: numerictype) -> int:
    return nt.word_length - nt.fraction_length


def _check_max(w: int, limit: int, what: str):
    if w > limit:
        raise ValueError(f"the full-precision {what} word length {w} exceeds max_{what}_word_length = {limit}")


def _result(q, nt, fm_local, n_ov, n_un, operation):
    result = fi._from_stored(q, nt, fm_local)
    fi_logging.record(result, n_ov, n_un, operation)
    return result


# ------------------------------------------------------------------------------ result types
def sum_type(ta: numerictype, tb: numerictype, F: fimath) -> numerictype:
    """A.8.1: the type of a + b under F's SumMode."""
    signed = ta.signed or tb.signed
    f = max(ta.fraction_length, tb.fraction_length)
    il_full = max(_il(ta), _il(tb)) + 1 + (ta.signed != tb.signed)
    mode = F.sum_mode
    if mode is ArithMode.FullPrecision:
        w = il_full + f
        _check_max(w, F.max_sum_word_length, "sum")
        return numerictype(signed, w, f)
    w = F.sum_word_length
    if mode is ArithMode.KeepLSB:
        return numerictype(signed, w, f)
    if mode is ArithMode.KeepMSB:
        return numerictype(signed, w, w - il_full)
    return numerictype(signed, w, F.sum_fraction_length)


def product_type(ta: numerictype, tb: numerictype, F: fimath) -> numerictype:
    """A.8.2: the type of a .* b under F's ProductMode."""
    signed = ta.signed or tb.signed
    w_full, f_full = ta.word_length + tb.word_length, ta.fraction_length + tb.fraction_length
    mode = F.product_mode
    if mode is ArithMode.FullPrecision:
        _check_max(w_full, F.max_product_word_length, "product")
        return numerictype(signed, w_full, f_full)
    w = F.product_word_length
    if mode is ArithMode.KeepLSB:
        return numerictype(signed, w, f_full)
    if mode is ArithMode.KeepMSB:
        return numerictype(signed, w, w - (w_full - f_full))
    return numerictype(signed, w, F.product_fraction_length)


def accumulation_type(t: numerictype, n: int, F: fimath) -> numerictype:
    """A.8.1 sum(A) of n elements of type t: FullPrecision grows ceil(log2 n) bits."""
    if F.sum_mode is ArithMode.FullPrecision:
        w = t.word_length + (math.ceil(math.log2(n)) if n > 1 else 0)
        _check_max(w, F.max_sum_word_length, "sum")
        return numerictype(t.signed, w, t.fraction_length)
    w = F.sum_word_length
    if F.sum_mode is ArithMode.KeepLSB:
        return numerictype(t.signed, w, t.fraction_length)
    if F.sum_mode is ArithMode.KeepMSB:
        il_full = t.word_length + (math.ceil(math.log2(n)) if n > 1 else 0) - t.fraction_length
        return numerictype(t.signed, w, w - il_full)
    return numerictype(t.signed, w, F.sum_fraction_length)


# ------------------------------------------------------------------------------ exact kernels
def _broadcast(qa, qb):
    if np.shape(qa) == np.shape(qb):
        return np.asarray(qa), np.asarray(qb)
    try:
        qa, qb = np.broadcast_arrays(qa, qb)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes {np.shape(qa)} "
                         f"and {np.shape(qb)}") from None
    return np.ascontiguousarray(qa), np.ascontiguousarray(qb)


def _limits(nt: numerictype):
    w = nt.word_length
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if nt.signed else (0, (1 << w) - 1)


def _holds(T: numerictype, f: int, lo: int, hi: int) -> bool:
    """True when every exact result in [lo, hi] at fraction length f is a stored integer of T as it
    is: no rounding, no overflow (the FullPrecision case)."""
    t_lo, t_hi = _limits(T)
    return T.fraction_length == f and t_lo <= lo and hi <= t_hi


_EXACT_OPS = {"plus": 0, "minus": 1, "times": 2}


def _exact(op: str, qa, qb, T: numerictype):
    """A result T holds exactly (no rounding, no overflow), computed by the core directly in T's
    storage dtype from the operands' own storage: the small storage is what makes this fast.
    None when the operands are not plain signed integer arrays or T has no such storage."""
    if T.word_length > 64 or (T.word_length == 64 and not T.signed) or qa.dtype.kind != "i" \
            or qb.dtype.kind != "i":
        return None
    if qa.dtype != qb.dtype:
        wider = qa.dtype if qa.dtype.itemsize > qb.dtype.itemsize else qb.dtype
        qa, qb = qa.astype(wider, copy=False), qb.astype(wider, copy=False)
    qa, qb = (x if x.flags.c_contiguous else x.copy(order="C") for x in (qa, qb))  # keeps 0-d shapes
    return _core.exact(qa, qb, _EXACT_OPS[op], T.word_length, T.signed)


def _add_into(a: fi, b: fi, T: numerictype, F: fimath, subtract: bool):
    """Exact a ± b, rounded/overflowed into T: (q, n_overflow, n_underflow)."""
    qa, qb = _broadcast(a._q, b._q)
    fa, fb = a._nt.fraction_length, b._nt.fraction_length
    f = max(fa, fb)
    la, lb = f - fa, f - fb
    r, o = F.rounding_method, F.overflow_action
    (a_lo, a_hi), (b_lo, b_hi) = _limits(a._nt), _limits(b._nt)
    a_lo, a_hi, b_lo, b_hi = a_lo << la, a_hi << la, b_lo << lb, b_hi << lb
    lo, hi = (a_lo - b_hi, a_hi - b_lo) if subtract else (a_lo + b_lo, a_hi + b_hi)
    if la == 0 and lb == 0 and _holds(T, f, lo, hi):
        out = _exact("minus" if subtract else "plus", qa, qb, T)
        if out is not None:
            return out, 0, 0
    ca = core_input(qa) if T.word_length <= 64 else None
    cb = core_input(qb) if ca is not None else None
    if (cb is not None and la <= 62 and lb <= 62
            and a._nt.word_length + la <= 125 and b._nt.word_length + lb <= 125):
        out, n_ov, n_un = _core.add(ca[0], ca[1], la, cb[0], cb[1], lb, subtract, f - T.fraction_length,
                                    T.word_length, T.signed, r.value, o.value,
                                    builtins.max(a._nt.word_length + la, b._nt.word_length + lb) <= 62)
        return from_core(out, T.word_length, T.signed), n_ov, n_un
    x = wide.as_exact(qa) * (1 << la)
    y = wide.as_exact(qb) * (1 << lb)
    return requantize(x - y if subtract else x + y, f, T, r, o)


def _mul_into(a: fi, b: fi, T: numerictype, F: fimath):
    """Exact a .* b, rounded/overflowed into T."""
    qa, qb = _broadcast(a._q, b._q)
    f = a._nt.fraction_length + b._nt.fraction_length
    r, o = F.rounding_method, F.overflow_action
    corners = [x * y for x in _limits(a._nt) for y in _limits(b._nt)]
    if _holds(T, f, builtins.min(corners), builtins.max(corners)):
        out = _exact("times", qa, qb, T)
        if out is not None:
            return out, 0, 0
    ca = core_input(qa) if T.word_length <= 64 else None
    cb = core_input(qb) if ca is not None else None
    if cb is not None and a._nt.word_length + b._nt.word_length <= 127:
        out, n_ov, n_un = _core.mul(ca[0], ca[1], cb[0], cb[1], f - T.fraction_length, T.word_length, T.signed,
                                    r.value, o.value, _mul_exactness(a._nt, b._nt))
        return from_core(out, T.word_length, T.signed), n_ov, n_un
    return requantize(wide.as_exact(qa) * wide.as_exact(qb), f, T, r, o)


def _mul_exactness(ta: numerictype, tb: numerictype) -> int:
    """For _core.mul: 2 when both words fit int32 (one widening multiply), 1 when the exact product
    fits int64, 0 otherwise (128-bit path)."""
    if ta.word_length + tb.word_length > 63:
        return 0
    fits32 = all(t.word_length <= (32 if t.signed else 31) for t in (ta, tb))
    return 2 if fits32 else 1


def _plus(a: fi, b: fi, F: fimath, subtract: bool):
    """A.8.1 including CastBeforeSum: returns (q, T, n_overflow, n_underflow)."""
    T = sum_type(a._nt, b._nt, F)
    if F.sum_mode is not ArithMode.FullPrecision and F.cast_before_sum:
        n_ov = n_un = 0
        cast = []
        for x in (a, b):
            q, o1, u1 = convert(x, T, F.rounding_method, F.overflow_action)
            cast.append(fi._from_stored(q, T))
            n_ov, n_un = n_ov + o1, n_un + u1
        q, o2, u2 = _add_into(cast[0], cast[1], T, F, subtract)
        return q, T, n_ov + o2, n_un + u2
    q, n_ov, n_un = _add_into(a, b, T, F, subtract)
    return q, T, n_ov, n_un


def _times(a: fi, b: fi, F: fimath):
    T = product_type(a._nt, b._nt, F)
    q, n_ov, n_un = _mul_into(a, b, T, F)
    return q, T, n_ov, n_un


# ------------------------------------------------------------------------------ public operations
def binary(op: str, a, b, F: fimath | None = None):
    """a + b, a - b or a .* b with the operands' fimath (A.7) or F (then no local fimath)."""
    if not isinstance(a, fi):
        a = _as_operand(a, b, op)
    elif not isinstance(b, fi):
        b = _as_operand(b, a, op)
    if F is None:
        F, local = _resolve_fimath(a, b)
    else:
        local = None
    if a._im is not None or b._im is not None:
        return _complex_binary(op, a, b, F, local)
    if _overridden(a, b):
        rule = product_type if op == "times" else sum_type
        return _override_result(_FLOAT_OPS[op](a.double(), b.double()), (a, b),
                                lambda ta, tb: rule(ta, tb, F), F, local, op)
    _check_binary_point(a, b)
    if op == "times":
        q, T, n_ov, n_un = _times(a, b, F)
    else:
        q, T, n_ov, n_un = _plus(a, b, F, op == "minus")
    return _result(q, T, local, n_ov, n_un, op)


# ------------------------------------------------------------------------------ complex operands
def _parts(x: fi):
    """(real part, imaginary part or None) of a fi, as real fi without a local fimath."""
    re = fi._from_stored(x._q, x._nt)
    return re, (None if x._im is None else fi._from_stored(x._im, x._nt))


def _complex_binary(op: str, a: fi, b: fi, F: fimath, local):
    """a + b, a - b, a .* b with a complex operand (docs/fi.md, complex values).

    Sums and differences: each part in the sum type, independently (a real operand's imaginary
    part is 0). A product with one real operand: each part times it, in the product type. A product
    of two complex operands: re = ar*br - ai*bi, im = ar*bi + ai*br, every product in the product
    type (rounded and overflowed per ProductMode), then the difference / sum of two products per
    SumMode, CastBeforeSum included. Overflows and underflows count over every step."""
    _check_binary_point(a, b)
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    n_ov = n_un = 0

    def step(kind, x, y):
        nonlocal n_ov, n_un
        if kind == "times":
            q, T, o, u = _times(x, y, F)
        else:
            q, T, o, u = _plus(x, y, F, kind == "minus")
        n_ov, n_un = n_ov + o, n_un + u
        return fi._from_stored(q, T)

    if op != "times":
        ai = ai if ai is not None else fi._from_stored(np.zeros_like(np.asarray(ar._q)), ar._nt)
        bi = bi if bi is not None else fi._from_stored(np.zeros_like(np.asarray(br._q)), br._nt)
        re, im = step(op, ar, br), step(op, ai, bi)
    elif bi is None:
        re, im = step("times", ar, br), step("times", ai, br)
    elif ai is None:
        re, im = step("times", ar, br), step("times", ar, bi)
    else:
        re = step("minus", step("times", ar, br), step("times", ai, bi))
        im = step("plus", step("times", ar, bi), step("times", ai, br))
    result = fi._complex(re._q, im._q, re._nt, local)
    fi_logging.record(result, n_ov, n_un, op)
    return result


def _negated(a: fi, F: fimath):
    """-a in a's type with F's overflow: (q, n_overflow, n_underflow)."""
    zero = fi._from_stored(np.zeros(np.shape(a._q), dtype=np.asarray(a._q).dtype), a._nt)
    return _add_into(zero, a, a._nt, F, subtract=True)


def conj(a):
    """The complex conjugate: the imaginary part negated in a's type (the most negative value
    saturates or wraps per the fimath, and counts as an overflow); a real fi is returned as is."""
    if not isinstance(a, fi):
        return np.conj(a)
    if a._im is None:
        return a.copy()
    _check_binary_point(a)
    q, n_ov, n_un = _negated(fi._from_stored(a._im, a._nt), a.fimath)
    return _result_complex(a._q, q, a._nt, a._fm, n_ov, n_un, "conj")


def _result_complex(q_re, q_im, nt, fm_local, n_ov, n_un, operation):
    result = fi._complex(q_re, q_im, nt, fm_local)
    fi_logging.record(result, n_ov, n_un, operation)
    return result


def _is_complex(x) -> bool:
    if isinstance(x, fi):
        return x._im is not None
    if isinstance(x, (int, float)):
        return False
    return isinstance(x, complex) or np.iscomplexobj(x)


def _complex_compare(a, b, ufunc):
    """== / != of complex values: equal when both parts are equal, exactly."""
    if ufunc is not np.equal and ufunc is not np.not_equal:
        raise TypeError(f"{ufunc.__name__}: ordering comparisons are not supported for complex fi "
                        "(only == and !=)")

    def parts(x):
        if isinstance(x, fi):
            return x.real, (x.imag if x._im is not None else 0)
        arr = np.asarray(x)
        return (np.real(arr), np.imag(arr)) if arr.dtype.kind == "c" else (arr, 0)

    (ar, ai), (br, bi) = parts(a), parts(b)
    equal = compare(ar, br, np.equal) & compare(ai, bi, np.equal)
    return equal if ufunc is np.equal else ~equal


# ------------------------------------------------------------------------------ data-type override
# A fi built under TrueDoubles holds doubles and computes in float64 (result data type double); one
# built under ScaledDoubles keeps its fixed-point metadata: the result type follows the same rules
# as fixed point, the value is computed in float64 and rounded to the result's LSB but never
# overflowed, and the would-be overflows are logged (docs/fi.md, spec A.13 / Q10).
_FLOAT_OPS = {"plus": np.add, "minus": np.subtract, "times": np.multiply}
_DOUBLE = numerictype(True, 64, 0, data_type="double")


def _overridden(*operands) -> bool:
    return any(x._nt.data_type in ("double", "single", "ScaledDouble") for x in operands)


def _metadata(nt: numerictype) -> numerictype:
    """The fixed-point type a scaled-double type describes."""
    return nt if nt.data_type == "Fixed" else numerictype(nt.signed, nt.word_length, nt.fraction_length)


def _override_result(values, operands, result_type, F: fimath, local, operation):
    """A double result (any TrueDoubles operand) or a scaled-double one of result_type(*metadata)."""
    values = np.asarray(values, dtype=np.float64)
    if any(x._nt.data_type in ("double", "single") for x in operands):
        return _result(values, _DOUBLE, local, 0, 0, operation)
    T = _metadata(result_type(*(_metadata(x._nt) for x in operands)))
    q, n_ov, n_un = scaled_doubles(values, T, F.rounding_method)
    T = numerictype(T.signed, T.word_length, T.fraction_length, data_type="ScaledDouble")
    return _result(q, T, local, n_ov, n_un, operation)


def add(F: fimath, a, b):
    """a + b computed with F regardless of the operands' fimath; the result has no local fimath."""
    return binary("plus", a, b, _check_fimath(F, "add"))


def sub(F: fimath, a, b):
    """a - b computed with F; the result has no local fimath."""
    return binary("minus", a, b, _check_fimath(F, "sub"))


def mpy(F: fimath, a, b):
    """a .* b computed with F; the result has no local fimath."""
    return binary("times", a, b, _check_fimath(F, "mpy"))


def _check_fimath(F, name):
    if not isinstance(F, fimath):
        raise TypeError(f"{name}: first argument must be a fimath, got {type(F).__name__}")
    return F


def negate(a: fi, F: fimath | None = None):
    """-a in a's type; overflow (most negative value, or any non-zero unsigned) per the fimath."""
    F = F or a.fimath
    if _overridden(a):
        return _override_result(-a.double(), (a,), lambda t: t, F, a._fm, "uminus")
    _check_binary_point(a)
    if a._im is not None:  # A.8.5: the parts are negated independently
        re, im = _parts(a)
        q_re, o1, u1 = _negated(re, F)
        q_im, o2, u2 = _negated(im, F)
        return _result_complex(q_re, q_im, a._nt, a._fm, o1 + o2, u1 + u2, "uminus")
    q, n_ov, n_un = _negated(a, F)
    return _result(q, a._nt, a._fm, n_ov, n_un, "uminus")


def absolute(a: fi, F: fimath | None = None):
    """abs(a) in a's type (A.8.5): abs of the most negative value saturates or wraps."""
    _require_real("abs", a)
    if _overridden(a):
        return _override_result(np.abs(a.double()), (a,), lambda t: t, F or a.fimath, a._fm, "abs")
    _check_binary_point(a)
    if not a._nt.signed:
        return a.copy()
    F = F or a.fimath
    zero = fi._from_stored(np.zeros(np.shape(a._q), dtype=np.asarray(a._q).dtype), a._nt)
    neg_q, _, _ = _add_into(zero, a, a._nt, F, subtract=True)
    q = np.asarray(a._q)
    n_ov = int(np.count_nonzero(q == -(1 << (a._nt.word_length - 1))))  # only the most negative value
    return _result(np.asarray(np.where(q < 0, neg_q, q), dtype=q.dtype), a._nt, a._fm, n_ov, 0, "abs")


def abs(a, T: numerictype | None = None, F: fimath | None = None):
    """abs(a), abs(a, T), abs(a, T, F), abs(a, F) (A.8.5): the exact |a| cast into T (default a's
    type) with F's rounding and overflow (default a's fimath). Without F the result keeps a's local
    fimath; with F it has none, as MATLAB's forms that take a fimath."""
    if isinstance(T, fimath) and F is None:  # abs(a, F)
        T, F = None, T
    if not isinstance(a, fi):
        raise TypeError(f"abs: a must be a fi, got {type(a).__name__}")
    _require_real("abs", a)
    if T is not None and not isinstance(T, numerictype):
        raise TypeError(f"abs: T must be a numerictype, got {type(T).__name__}")
    if F is not None and not isinstance(F, fimath):
        raise TypeError(f"abs: F must be a fimath, got {type(F).__name__}")
    local = a._fm if F is None else None
    Fq = F if F is not None else a.fimath
    if T is None:
        result = absolute(a, Fq)
        if result._fm is not local:
            result = fi._from_stored(result._q, result._nt, local)
        return result
    if _overridden(a):
        return _override_result(np.abs(a.double()), (a,), lambda t: T, Fq, local, "abs")
    _check_binary_point(a)
    q = np.asarray(a._q)
    if q.dtype == object or q.dtype == np.uint64 or a._nt.word_length >= 64:
        x = wide.as_exact(q)
        magnitude = np.asarray(np.where(x < 0, -x, x), dtype=object)
    else:
        magnitude = np.abs(q.astype(np.int64))
    out, n_ov, n_un = requantize(magnitude, a._nt.fraction_length, T, Fq.rounding_method,
                                 Fq.overflow_action)
    return _result(out, T, local, n_ov, n_un, "abs")


def _reduce_prepare(a, axis):
    if not isinstance(a, fi):
        raise TypeError(f"expected a fi, got {type(a).__name__}")
    _require_real("sum / cumsum / prod", a)
    if not _overridden(a):
        _check_binary_point(a)
    q = np.asarray(a._q)
    if axis is None:
        axis = 0 if q.ndim else None
        if q.ndim == 0:
            q = q.reshape(1)
            axis = 0
        elif q.ndim > 1:  # MATLAB sums along the first non-singleton dimension
            axis = next((i for i, n in enumerate(q.shape) if n != 1), 0)
    if not -q.ndim <= axis < q.ndim:
        raise ValueError(f"axis {axis} is out of range for a fi with {q.ndim} dimension(s)")
    return np.moveaxis(q, axis, 0), axis


def _accumulate(a: fi, axis, keep_steps: bool):
    """Sequential accumulation along an axis into the sum type (A.8.1 sum / cumsum)."""
    q, axis = _reduce_prepare(a, axis)
    F = a.fimath
    n = q.shape[0]
    if _overridden(a):
        values = (np.cumsum if keep_steps else np.sum)(q, axis=0)
        values = np.moveaxis(values, 0, axis) if keep_steps else values
        return _override_result(values, (a,), lambda t: accumulation_type(t, builtins.max(n, 1), F), F,
                                a._fm, "sum")
    T = accumulation_type(a._nt, builtins.max(n, 1), F)
    if n == 0:
        return fi._from_stored(np.zeros(q.shape[1:], dtype=object).astype(storage_dtype(T)), T, a._fm)
    if F.sum_mode is ArithMode.FullPrecision:
        if T.word_length <= 63 and q.dtype.kind == "i":
            out = (np.cumsum if keep_steps else np.sum)(q, axis=0, dtype=np.int64)
        else:
            exact = wide.as_exact(q)
            out = np.cumsum(exact, axis=0) if keep_steps else np.sum(exact, axis=0)
            out = np.asarray(out, dtype=object).astype(storage_dtype(T))
        if keep_steps:
            out = np.moveaxis(out, 0, axis)
        return _result(np.asarray(out), T, a._fm, 0, 0, "sum")
    elems = [fi._from_stored(q[k], a._nt) for k in range(n)]
    acc_q, n_ov, n_un = convert(elems[0], T, F.rounding_method, F.overflow_action)
    acc = fi._from_stored(acc_q, T)
    steps = [acc._q]
    for x in elems[1:]:
        q_k, T_k, o, u = _plus(acc, x, F.replace(sum_mode="SpecifyPrecision", sum_word_length=T.word_length,
                                                  sum_fraction_length=T.fraction_length), False)
        acc = fi._from_stored(q_k, T)
        n_ov, n_un = n_ov + o, n_un + u
        steps.append(acc._q)
    out = np.moveaxis(np.stack(steps), 0, axis) if keep_steps else acc._q
    return _result(np.asarray(out), T, a._fm, n_ov, n_un, "sum")


def sum(a, axis=None):
    """Sum along an axis (default: the first non-singleton one) with the sum mode of a's fimath."""
    return _accumulate(a, axis, keep_steps=False)


def cumsum(a, axis=None):
    """Running sums along an axis, every one in the type of sum(a, axis)."""
    return _accumulate(a, axis, keep_steps=True)


def prod(a, axis=None):
    """Product along an axis: products one after another with a's fimath product mode."""
    q, axis = _reduce_prepare(a, axis)
    if q.shape[0] == 0:
        raise ValueError("prod of an empty fi has no fixed-point type")
    acc = fi._from_stored(q[0], a._nt, a._fm)
    for k in range(1, q.shape[0]):
        acc = binary("times", acc, fi._from_stored(q[k], a._nt, a._fm))
    return acc


def matmul(a, b, F: fimath | None = None):
    """Matrix product: each product per ProductMode, the n products accumulated per SumMode.

    FullPrecision: accumulator w = w_product + ceil(log2 n), f = fa + fb.
    """
    if not isinstance(a, fi):
        a = _as_operand(a, b, "times")
    elif not isinstance(b, fi):
        b = _as_operand(b, a, "times")
    _require_real("matrix product @", a, b)
    if F is None:
        F, local = _resolve_fimath(a, b)
    else:
        local = None
    if _overridden(a, b):
        values = np.matmul(a.double(), b.double())
        n = np.shape(a._q)[-1] if np.ndim(a._q) else 1
        return _override_result(values, (a, b), lambda ta, tb: accumulation_type(
            product_type(ta, tb, F), builtins.max(n, 1), F), F, local, "mtimes")
    _check_binary_point(a, b)
    qa, qb = np.asarray(a._q), np.asarray(b._q)
    if qa.ndim == 0 or qb.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
    if qa.shape[-1] != qb.shape[0 if qb.ndim == 1 else -2]:
        raise ValueError(f"matmul: inner dimensions differ: {qa.shape} @ {qb.shape}")
    A = qa.reshape(1, -1) if qa.ndim == 1 else qa
    B = qb.reshape(-1, 1) if qb.ndim == 1 else qb
    n = A.shape[-1]
    P = product_type(a._nt, b._nt, F)
    T = accumulation_type(P, builtins.max(n, 1), F)
    full = F.product_mode is ArithMode.FullPrecision and F.sum_mode is ArithMode.FullPrecision
    if full and A.ndim == 2 and B.ndim == 2 and T.word_length <= 64 and A.dtype.kind == "i" \
            and B.dtype.kind == "i" and not (T.word_length == 64 and not T.signed):
        narrow = T.word_length <= 32 and all(x._nt.word_length <= (16 if x._nt.signed else 15) for x in (a, b))
        q = _core.matmul(np.ascontiguousarray(A), np.ascontiguousarray(B), narrow)
        n_ov = n_un = 0
    else:
        pa = fi._from_stored(A[..., :, :, None], a._nt)
        pb = fi._from_stored(B[..., None, :, :], b._nt)
        pq, _, n_ov, n_un = _times(pa, pb, F)
        prods = fi._from_stored(pq, P, F)
        summed = _accumulate(prods, pq.ndim - 2, keep_steps=False)
        q = summed._q
    if qa.ndim == 1:
        q = q.reshape(q.shape[1:]) if qb.ndim > 1 else q.reshape(q.shape[:-2] + q.shape[-1:])
    if qb.ndim == 1:
        q = q.reshape(q.shape[:-1])
    return _result(np.asarray(q), T, local, n_ov, n_un, "mtimes")


def divide(T: numerictype, a, b):
    """The quotient a ./ b computed directly into T, exact to all bits of T, with a's fimath.

    A built-in operand becomes a fi of the fi operand's word length with best precision.
    Two non-fi operands give a float quotient.
    """
    if not isinstance(T, numerictype):
        raise TypeError(f"divide: T must be a numerictype, got {type(T).__name__}")
    if not isinstance(a, fi) and not isinstance(b, fi):
        return np.divide(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if not isinstance(a, fi):
        a = _as_operand(a, b, "divide")
    elif not isinstance(b, fi):
        b = _as_operand(b, a, "divide")
    _require_real("divide", a, b)
    F = a.fimath if a._fm is not None or b._fm is None else b.fimath
    if _overridden(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.divide(a.double(), b.double())
        return _override_result(values, (a, b), lambda ta, tb: T, F, None, "divide")
    q, n_ov, n_un = _divide_into(a, b, T, F)
    return _result(q, T, None, n_ov, n_un, "divide")


def divide_default(a, b):
    """a / b with the A.8.4 result type: signed if either is, w = max(wa, wb), f = fa - fb."""
    if not isinstance(a, fi):
        a = _as_operand(a, b, "divide")
    elif not isinstance(b, fi):
        b = _as_operand(b, a, "divide")
    _require_real("division /", a, b)
    F, local = _resolve_fimath(a, b)
    if _overridden(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.divide(a.double(), b.double())
        return _override_result(values, (a, b), _quotient_type, F, local, "divide")
    _check_binary_point(a, b)
    T = _quotient_type(a._nt, b._nt)
    q, n_ov, n_un = _divide_into(a, b, T, F)
    return _result(q, T, local, n_ov, n_un, "divide")


def _quotient_type(ta: numerictype, tb: numerictype) -> numerictype:
    """A.8.4: signed if either is, w = max(wa, wb), f = fa - fb."""
    return numerictype(ta.signed or tb.signed, builtins.max(ta.word_length, tb.word_length),
                       ta.fraction_length - tb.fraction_length)


def _divide_into(a: fi, b: fi, T: numerictype, F: fimath):
    """Exact quotient rounded into T: Q = round(Qa * 2^(fT - fa + fb) / Qb); x/0 → ±max, 0/0 → 0."""
    _check_binary_point(a, b)
    qa, qb = _broadcast(a._q, b._q)
    shape = qa.shape  # work on 1-d arrays: 0-d object arrays decay to Python scalars
    k = T.fraction_length - a._nt.fraction_length + b._nt.fraction_length
    num = wide.as_exact(qa.reshape(-1)) * (1 << builtins.max(k, 0))
    den = wide.as_exact(qb.reshape(-1)) * (1 << builtins.max(-k, 0))
    zero = np.asarray(den == 0, dtype=bool)
    sign = np.where(den < 0, -1, 1).astype(object)
    num, den = num * sign, np.where(zero, 1, den * sign).astype(object)
    quot = wide.round_divide(num, den, F.rounding_method)
    lo, hi = (-(1 << (T.word_length - 1)), (1 << (T.word_length - 1)) - 1) if T.signed \
        else (0, (1 << T.word_length) - 1)
    if zero.any():  # like MATLAB: x/0 is ±Inf, then the overflow action; 0/0 is NaN → 0
        sat = F.overflow_action is OverflowAction.Saturate
        inf = np.where(num > 0, hi if sat else 0, np.where(num < 0, lo if sat else 0, 0))
        quot = np.where(zero, inf, quot).astype(object)
    n_un = int(np.count_nonzero((quot == 0) & (num != 0) & ~zero))
    q, n_ov = wide.overflow(np.asarray(quot, dtype=object), T.word_length, T.signed, F.overflow_action)
    q = wide.storage(q, T.word_length, T.signed).reshape(shape)
    return q, n_ov + int(np.count_nonzero(zero & (num != 0))), n_un


def accumpos(a: fi, b, rounding_method="Floor", overflow_action="Wrap"):
    """a + b in a's type (A.12): b is cast into a's type, then the sum overflows into it."""
    return _accum(a, b, rounding_method, overflow_action, subtract=False)


def accumneg(a: fi, b, rounding_method="Floor", overflow_action="Wrap"):
    """a - b in a's type (A.12)."""
    return _accum(a, b, rounding_method, overflow_action, subtract=True)


def _accum(a, b, rounding_method, overflow_action, subtract):
    if not isinstance(a, fi):
        raise TypeError(f"accumpos/accumneg: a must be a fi, got {type(a).__name__}")
    _require_real("accumpos / accumneg", a, b)
    _check_binary_point(a)
    F = fimath(rounding_method=rounding_method, overflow_action=overflow_action)
    bb = b if isinstance(b, fi) else fi(b, a._nt)
    qb, o1, u1 = convert(bb, a._nt, F.rounding_method, F.overflow_action)
    q, o2, u2 = _add_into(a, fi._from_stored(qb, a._nt), a._nt, F, subtract)
    return _result(q, a._nt, a._fm, o1 + o2, u1 + u2, "accumneg" if subtract else "accumpos")


# ------------------------------------------------------------------------------ comparisons
def _exact_form(x):
    """(integer object array, fraction-length array) with value = m * 2^-f exactly."""
    if isinstance(x, fi):
        if x._nt.data_type == "Fixed" and x._nt.is_binary_point:
            return wide.as_exact(x._q), x._nt.fraction_length, None
        return None, None, real_fractions(x)
    arr = np.asarray(x)
    if arr.dtype.kind in "biu" or arr.dtype == object:
        return np.asarray(arr.astype(object) if arr.dtype != object else arr, dtype=object), 0, None
    v = arr.astype(np.float64)
    m, e = wide.exact_doubles(np.where(np.isfinite(v), v, 0.0))
    return m, -e, None


def compare(a, b, ufunc):
    """Exact comparison of real-world values (fi vs fi with any scaling, vs floats and ints)."""
    if _is_complex(a) or _is_complex(b):
        return _complex_compare(a, b, ufunc)
    ma, fa, ra = _exact_form(a)
    mb, fb, rb = _exact_form(b)
    if ra is not None or rb is not None:
        ra = ra if ra is not None else _to_fractions(ma, fa)
        rb = rb if rb is not None else _to_fractions(mb, fb)
        result = np.asarray(ufunc(*np.broadcast_arrays(ra, rb)), dtype=bool)
    else:
        f = np.maximum(fa, fb)
        # shift counts as Python ints (astype(object) converts int64 elements), so nothing wraps at 64 bits
        left = ma * np.left_shift(1, np.asarray(f - fa).astype(object))
        right = mb * np.left_shift(1, np.asarray(f - fb).astype(object))
        result = np.asarray(ufunc(left, right), dtype=bool)
    for side, raw in ((0, a), (1, b)):  # non-finite floats compare like IEEE values
        if not isinstance(raw, fi) and np.asarray(raw).dtype.kind == "f":
            v = np.asarray(raw, dtype=np.float64)
            if not np.isfinite(v).all():
                other = np.asarray(b if side == 0 else a, dtype=np.float64)
                pair = (other, v) if side == 1 else (v, other)
                result = np.where(np.isfinite(v), result, ufunc(*np.broadcast_arrays(*pair)))
    return result


def _to_fractions(m, f):
    from fractions import Fraction
    f = np.broadcast_to(np.asarray(f, dtype=object), np.shape(m))
    return np.array([Fraction(int(x)) / (Fraction(2) ** int(k)) for x, k in zip(np.ravel(m), np.ravel(f))]
                    + [None], dtype=object)[:-1].reshape(np.shape(m))

