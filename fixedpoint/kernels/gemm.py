"""Exact integer matrix multiply C = (A - za)(B - zb) + bias, and weights packed once for reuse.

int8 x int8 and uint8 x int8 accumulate in int32 (exact, wrapping like int32 hardware unless told
otherwise); int16 x int16 accumulates in int64. Zero points are corrections outside the inner loop,
so the affine case costs the same as the symmetric one. A `Requantizer` fuses bias + requantization +
clamp into the pass that writes each output tile. See docs/kernels.md.
"""
import numpy as np

from .. import _kernels
from .accumulation import ACCUMULATION_KINDS, as_accumulation
from .threads import path_code, setting_path_code

INT32_MAX = 2**31 - 1
OVERFLOW_POLICIES = ("wrap", "saturate", "raise")  # C++ codes 0, 1, 2


class AccumulatorOverflowError(ValueError, OverflowError):
    """overflow="raise" and an exact output does not fit int32; the message names its position."""


def describe(a):
    return f"shape {tuple(a.shape)} dtype {a.dtype}"


def as_array(value, name, dtypes, ndim):
    """`value` as a C-contiguous ndarray (no copy when it already is one) of one of `dtypes`."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of {'/'.join(dtypes)}, got {type(value).__name__}")
    if not any(value.dtype == d for d in dtypes):
        raise ValueError(f"{name} must have dtype {' or '.join(dtypes)}, got {describe(value)}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {describe(value)}")
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)


_RANGES = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in (np.int8, np.uint8, np.int16, np.int32)}


def dtype_range(dtype):
    return _RANGES[np.dtype(dtype)]


def zero_point_array(value, name, length, dtype, what):
    """A zero point (scalar, or one per `what`) as a 1-D int32 array, within the operand's range."""
    lo, hi = dtype_range(dtype)
    if isinstance(value, int) and not isinstance(value, bool):  # the common case, without numpy calls
        if not lo <= value <= hi:
            raise ValueError(f"{name} must lie in [{lo}, {hi}] (the range of {np.dtype(dtype).name}), got {value!r}")
        return np.array([value], np.int32)
    z = np.asarray(value)
    if z.dtype == object or z.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer or an integer array, got {value!r}")
    if z.ndim > 1 or (z.ndim == 1 and z.shape[0] not in (1, length)):
        raise ValueError(f"{name} must be a scalar or have {length} entries (one per {what}), got shape {z.shape}")
    if z.size and (z.min() < lo or z.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}] (the range of {np.dtype(dtype).name}), got {value!r}")
    return np.ascontiguousarray(z.reshape(-1), dtype=np.int32)


def bias_array(bias, length, what):
    if bias is None:
        return None
    b = np.asarray(bias)
    if b.dtype.kind not in "iu" or b.shape != (length,):
        raise ValueError(f"bias must be an int32 array of shape ({length},) (one per {what}), got {describe(b)}")
    lo, hi = dtype_range(np.int32)
    if b.size and (b.min() < lo or b.max() > hi):
        raise ValueError("bias values must fit int32")
    return np.ascontiguousarray(b, dtype=np.int32)


def requantizer_params(requantizer):
    if requantizer is None:
        return None
    if not hasattr(requantizer, "to_params"):
        raise ValueError(f"requantizer must be a fixedpoint.kernels.Requantizer, got {type(requantizer).__name__}")
    return requantizer.to_params()


def max_abs_offset(lo, hi, zero_points):
    """max |v - z| over v in [lo, hi] and the zero points z."""
    z = zero_points.astype(np.int64)
    return int(max(np.abs(lo - z).max(), np.abs(hi - z).max()))


class PackedWeights:
    """Weights packed once into the kernels' layouts (int16 pairs and byte quads).

    Pass it to `gemm` (from a 2-D (K, N) int8/uint8 matrix) or `conv2d` (from 4-D OIHW int8/uint8
    weights) in place of the array; a network layer packs its weights once and reuses them on every
    call. uint8 GEMM weights are stored as int8 w - 128 (byte xor 0x80; `gemm` moves the zero point by
    the same 128, so the result is exact). Convolutions that need the im2col + GEMM route (a weight
    zero point, uint8 weights, int16-pair accumulation) pack their form on first use and keep it.
    """

    def __init__(self, weights, groups=1):
        w = as_array(weights, "weights", ("int8", "uint8"), weights.ndim if isinstance(weights, np.ndarray) else 2)
        self.offset = 0
        self.weights = None
        self._conv_gemm = {}
        if w.ndim == 2:
            if groups != 1:
                raise ValueError(f"groups applies to 4-D convolution weights, got groups={groups} for {describe(w)}")
            if w.dtype == np.uint8:
                self.offset = -128
                self.handle = _kernels.pack_gemm_b((w ^ np.uint8(0x80)).view(np.int8))
            else:
                self.handle = _kernels.pack_gemm_b(w)
        elif w.ndim == 4:
            if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 or w.shape[0] % groups:
                raise ValueError(f"groups={groups!r} must be a positive int dividing the {w.shape[0]} output channels of w")
            # The direct convolution takes int8 weights; the im2col + GEMM route reads these.
            self.weights = w.copy()
            self.handle = _kernels.pack_conv_weights(w, int(groups)) if w.dtype == np.int8 else None
        else:
            raise ValueError(f"weights must be 2-D (K, N) for gemm or 4-D OIHW for conv2d, got {describe(w)}")
        self.shape = w.shape
        self.dtype = w.dtype
        self.groups = int(groups)
        self.min = int(w.min()) if w.size else 0
        self.max = int(w.max()) if w.size else 0

    def __repr__(self):
        return f"PackedWeights(shape={self.shape}, groups={self.groups})"


    def conv_gemm(self, order, kind):
        """The im2col + GEMM packing of these OIHW weights (K order code, accumulation code), cached."""
        key = (order, kind)
        if key not in self._conv_gemm:
            self._conv_gemm[key] = _kernels.pack_conv_gemm(self.weights, self.groups, order, kind)
        return self._conv_gemm[key]


def pack_weights(weights, *, groups=1):
    """Pack int8/uint8 weights once: (K, N) for `gemm`, OIHW (with `groups`) for `conv2d`."""
    return PackedWeights(weights, groups)


# Read-only int32 arrays of the scalar zero points seen so far (at most 256 + 256 + 128 values).
_SCALAR_ZERO_POINTS = {}


def _scalar_zero_point(value, lo, hi):
    """The 1-element int32 array of an int zero point within [lo, hi], else None (checked the long way)."""
    if type(value) is not int or not lo <= value <= hi:
        return None
    z = _SCALAR_ZERO_POINTS.get(value)
    if z is None:
        z = np.array([value], np.int32)
        z.flags.writeable = False
        _SCALAR_ZERO_POINTS[value] = z
    return z


def _direct_out(out, *inputs):
    """`out` if the kernel can write into it (a C-contiguous, writeable array sharing no memory with an
    input; the compiled call checks its shape and dtype), else None (the result is copied into it)."""
    if (type(out) is np.ndarray and out.flags.c_contiguous and out.flags.writeable
            and not any(x is not None and np.may_share_memory(out, x) for x in inputs)):
        return out
    return None


def _fast_call(a, b, bias, a_zero_point, b_zero_point, requantizer, out=None):
    """The usual call of a quantized layer (contiguous int8/uint8 A, packed B, scalar zero points,
    int32 bias or none, wrap) checked in one pass: the general checks cost ~3 us, as much as a small
    layer's arithmetic. None when the call needs the general route (which also words the errors).
    The compiled call checks FIXEDPOINT_FORCE_PORTABLE itself (cheaper than from Python)."""
    if not (type(a) is np.ndarray and a.ndim == 2 and a.flags.c_contiguous and len(b.shape) == 2
            and b.shape[0] == a.shape[1] and b.offset == 0):
        return None
    kind = a.dtype.char
    if kind == "b":
        za = _scalar_zero_point(a_zero_point, -128, 127)
    elif kind == "B":
        za = _scalar_zero_point(a_zero_point, 0, 255)
    else:
        return None
    zb = _scalar_zero_point(b_zero_point, -128, 127)
    if za is None or zb is None:
        return None
    if bias is not None and not (type(bias) is np.ndarray and bias.dtype == np.int32 and bias.shape == (b.shape[1],)
                                 and bias.flags.c_contiguous):
        return None
    params = None if requantizer is None else requantizer_params(requantizer)
    return _kernels.gemm(a, b.handle, bias, za, zb, 0, False, params, setting_path_code(), out)


def gemm(a, b, *, bias=None, a_zero_point=0, b_zero_point=0, overflow="wrap", requantizer=None, out=None,
         accumulation=None):
    """Exact C[M, N] = (A - a_zero_point)(B - b_zero_point) + bias.

    a: (M, K) int8/uint8 with b: (K, N) int8/uint8 or `pack_weights(b)` -> int32; or a, b int16 -> int64.
    a_zero_point: scalar or one per row; b_zero_point: scalar or one per column; bias: int32 per column.
    overflow (int8 paths): "wrap" (int32 two's complement, default), "saturate" (to int32), "raise"
    (AccumulatorOverflowError naming the first output that does not fit int32).
    requantizer: a `Requantizer` applied per output column; the result then has its dtype.
    out: optional array of the result's shape and dtype to write into (directly when it is
    C-contiguous and shares no memory with an input; the int16 route copies). After an
    AccumulatorOverflowError its contents are unspecified.
    accumulation: None / "exact" (default), or "int16_pairs" (an `Accumulation` of that kind) for ONNX
    Runtime's AVX2 U8S8 arithmetic: a uint8 A against int8 B, the products of K steps (4q, 4q+1) and
    (4q+2, 4q+3) summed in saturating int16, then exactly (`ort_accumulation` says when ORT does this).
    """
    direct = None if out is None else _direct_out(out, a, bias)
    if accumulation is not None and as_accumulation(accumulation).kind != "exact":
        return _gemm_int16_pairs(a, b, bias, a_zero_point, b_zero_point, overflow, requantizer, out, direct)
    if type(b) is PackedWeights and overflow == "wrap":
        result = _fast_call(a, b, bias, a_zero_point, b_zero_point, requantizer, direct)
        if result is not None:
            return result if out is None else _deliver(result, out)
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}; got {overflow!r}")
    a = as_array(a, "a", ("int8", "uint8", "int16"), 2)
    params = requantizer_params(requantizer)
    if a.dtype == np.int16:
        b = as_array(b, "b", ("int16",), 2)
        if b.shape[0] != a.shape[1]:
            raise ValueError(f"b must have K = {a.shape[1]} rows to match a ({describe(a)}), got {describe(b)}")
        m, n = a.shape[0], b.shape[1]
        result = _kernels.gemm_i16(a, b, bias_array(bias, n, "column"),
                                   zero_point_array(a_zero_point, "a_zero_point", m, np.int16, "row"),
                                   zero_point_array(b_zero_point, "b_zero_point", n, np.int16, "column"), params)
        return _deliver(result, out)
    packed = _packed_b(b, a)
    k, n = packed.shape
    m = a.shape[0]
    za = zero_point_array(a_zero_point, "a_zero_point", m, a.dtype, "row")
    # uint8 B is packed as int8 B - 128: its zero point moves by the same 128 (exact).
    zb = zero_point_array(b_zero_point, "b_zero_point", n, packed.dtype, "column") + np.int32(packed.offset)
    bias32 = bias_array(bias, n, "column")
    wide = False
    if overflow != "wrap":
        # Cheap bound first (dtype ranges); only if it may overflow, the actual data ranges.
        a_lo, a_hi = dtype_range(a.dtype)
        b_lo, b_hi = dtype_range(np.int8)
        extra = int(np.abs(bias32.astype(np.int64)).max()) if bias32 is not None and n else 0
        wide = k * max_abs_offset(a_lo, a_hi, za) * max_abs_offset(b_lo, b_hi, zb) + extra > INT32_MAX
        if wide and a.size:
            b_lo, b_hi = packed.min + packed.offset, packed.max + packed.offset
            a_lo, a_hi = int(a.min()), int(a.max())
            wide = k * max_abs_offset(a_lo, a_hi, za) * max_abs_offset(b_lo, b_hi, zb) + extra > INT32_MAX
    handle = packed.handle
    try:
        result = _kernels.gemm(a, handle, bias32, za, zb, OVERFLOW_POLICIES.index(overflow), wide, params, path_code(),
                               direct)
    except OverflowError as e:
        raise AccumulatorOverflowError(str(e)) from None
    return _deliver(result, out)


def _packed_b(b, a):
    """b as PackedWeights of a (K, N) matrix whose K matches a's columns."""
    packed = b if isinstance(b, PackedWeights) else PackedWeights(as_array(b, "b", ("int8", "uint8"), 2))
    if len(packed.shape) != 2:
        raise ValueError(f"b is packed convolution weights {packed.shape}; gemm needs weights packed from a (K, N) matrix")
    k, n = packed.shape
    if k != a.shape[1]:
        raise ValueError(f"b must have K = {a.shape[1]} rows to match a ({describe(a)}), got K = {k} (b shape {(k, n)})")
    return packed


def _gemm_int16_pairs(a, b, bias, a_zero_point, b_zero_point, overflow, requantizer, out, direct):
    """gemm with MLAS's int16-pair saturating accumulation (uint8 A, int8 B, wrap)."""
    if overflow != "wrap":
        raise ValueError(f"accumulation='int16_pairs' wraps like int32 hardware; overflow must be 'wrap', got {overflow!r}")
    a = as_array(a, "a", ("uint8",), 2)
    packed = _packed_b(b, a)
    if packed.dtype != np.int8:
        raise ValueError(f"accumulation='int16_pairs' needs int8 b (MLAS U8S8), got {packed.dtype} weights")
    k, n = packed.shape
    za = zero_point_array(a_zero_point, "a_zero_point", a.shape[0], a.dtype, "row")
    zb = zero_point_array(b_zero_point, "b_zero_point", n, np.int8, "column")
    result = _kernels.gemm(a, packed.handle, bias_array(bias, n, "column"), za, zb, 0, False,
                           requantizer_params(requantizer), path_code(), direct, ACCUMULATION_KINDS.index("int16_pairs"))
    return _deliver(result, out)


def _deliver(result, out):
    if out is None or result is out:
        return result
    if not isinstance(out, np.ndarray) or out.shape != result.shape or out.dtype != result.dtype:
        raise ValueError(f"out must be an array of shape {result.shape} dtype {result.dtype}, "
                         f"got {describe(out) if isinstance(out, np.ndarray) else type(out).__name__}")
    out[...] = result
    return out
