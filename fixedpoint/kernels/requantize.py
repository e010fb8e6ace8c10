"""Requantization of int32/int64 accumulators, exactly as a chosen int8 runtime computes it.

One pluggable `Requantizer` with named modes (formulas and the runtime behind each in
docs/requantization.md), the TFLite/gemmlowp primitives as array functions, and the two shortcuts
`requantize_shift` (power-of-two scales) and `requantize_fp32` (ONNX Runtime / XNNPACK).
The arithmetic runs in `fixedpoint._requant` (csrc/kernels/requantize.hpp), the GIL released.
"""
import functools

import numpy as np

from .. import _requant

ROUNDING_METHODS = ("Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero")  # C++ codes 0..5
OVERFLOW_ACTIONS = ("Saturate", "Wrap")  # C++ codes 0, 1
REQUANT_MODES = ("pow2_shift", "gemmlowp_double", "single_round", "ruy_double_halfup", "mlas_fp32")
OUTPUT_DTYPES = (np.int8, np.uint8, np.int16, np.int32)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_ACC_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _choice(value, names, arg):
    """The canonical spelling of a case-insensitive name among `names`."""
    if isinstance(value, str):
        for name in names:
            if value.lower() == name.lower():
                return name
    raise ValueError(f"{arg} must be one of {', '.join(names)}; got {value!r}")


@functools.lru_cache(maxsize=32)
def _code(value, names, arg):
    return names.index(_choice(value, names, arg))


def rounding_code(rounding):
    if isinstance(rounding, str):   # hashable: resolved once per spelling
        return _code(rounding, ROUNDING_METHODS, "rounding")
    return ROUNDING_METHODS.index(_choice(rounding, ROUNDING_METHODS, "rounding"))


def overflow_code(overflow):
    if isinstance(overflow, str):
        return _code(overflow, OVERFLOW_ACTIONS, "overflow")
    return OVERFLOW_ACTIONS.index(_choice(overflow, OVERFLOW_ACTIONS, "overflow"))


def output_dtype(dtype, arg="dtype"):
    """np.dtype of an allowed integer output type, or ValueError naming `arg`."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{arg} must be one of int8, uint8, int16, int32; got {dtype!r}") from None
    if dt not in [np.dtype(t) for t in OUTPUT_DTYPES]:
        raise ValueError(f"{arg} must be one of int8, uint8, int16, int32; got {dt}")
    return dt


def integer_array(value, arg, lo, hi, dtype=np.int32):
    """`value` as a contiguous array of `dtype` after checking it holds integers in [lo, hi]."""
    a = np.asarray(value)
    if a.dtype == object or a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.float64)
        else:
            raise ValueError(f"{arg} must hold integers, got dtype {a.dtype}")
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a.min() if a.min() < lo else a.max()
        raise ValueError(f"{arg} value {bad} outside [{lo}, {hi}]")
    return np.array(a, dtype=dtype, order="C", copy=None)


def _channel_params(value, arg, lo, hi, dtype=np.int32):
    """A scalar or a 1-D per-channel array as a non-empty contiguous 1-D array."""
    if value is None:
        raise ValueError(f"{arg} is required for this requantizer mode")
    a = np.asarray(value)
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"{arg} must be a scalar or a non-empty 1-D per-channel array, got shape {a.shape}")
    if np.dtype(dtype).kind == "f":
        a = np.asarray(a, dtype=np.float64)
        if not np.all(np.isfinite(a)) or np.any(a < lo) or np.any(a > hi):
            raise ValueError(f"{arg} must be finite and within [{lo}, {hi}], got {value!r}")
        return np.ascontiguousarray(a.reshape(-1), dtype=dtype)
    return integer_array(a.reshape(-1), arg, lo, hi, dtype)


class Requantizer:
    """acc -> round(acc * real scale) + zero point, clamped, in a named runtime's exact arithmetic.

    mode: one of REQUANT_MODES. Parameters per tensor (scalars) or per output channel (1-D arrays):
    `shift` (pow2_shift: right shift, negative = left; integer modes: the TFLite exponent),
    `multiplier` (Q0.31 integers), `scale` (mlas_fp32, float32). `clamp=(lo, hi)` is the activation
    clamp in the output domain (ReLU: (zp, max); ReLU6: (zp, zp + round(6 / s_y))); `rounding` and
    `overflow` apply to pow2_shift (the other modes saturate, as their runtimes do).

    The compiled requantizer reads the parameter arrays held here without copying: `to_params()`
    returns them inside the dict, which must outlive any C++ use of it.
    """

    def __init__(self, mode, *, shift=None, multiplier=None, scale=None, zero_point=0, rounding="Nearest",
                 overflow="Saturate", dtype=np.int8, clamp=None):
        mode = _choice(mode, REQUANT_MODES, "mode")
        dt = output_dtype(dtype)
        info = np.iinfo(dt)
        rounding = ROUNDING_METHODS[rounding_code(rounding)]
        overflow = OVERFLOW_ACTIONS[overflow_code(overflow)]
        if mode != "pow2_shift" and (rounding != "Nearest" or overflow != "Saturate"):
            raise ValueError(f"rounding/overflow are fixed by mode {mode!r}; only pow2_shift takes them")
        zp = int(integer_array(zero_point, "zero_point", info.min, info.max, np.int64))
        if clamp is None:
            lo, hi = int(info.min), int(info.max)
        else:
            if len(clamp) != 2:
                raise ValueError(f"clamp must be a pair (lo, hi), got {clamp!r}")
            lo, hi = (int(integer_array(c, "clamp", info.min, info.max, np.int64)) for c in clamp)
            if lo > hi:
                raise ValueError(f"clamp lo {lo} exceeds hi {hi}")
        params = dict(mode=mode, rounding=rounding, overflow=overflow, dtype=dt.name, zero_point=zp,
                      clamp_lo=lo, clamp_hi=hi)
        if mode == "pow2_shift":
            params["shift"] = _channel_params(shift, "shift", -32, 127)
        elif mode == "mlas_fp32":
            params["scale"] = _channel_params(scale, "scale", 0.0, float(np.finfo(np.float32).max), np.float32)
        else:
            params["multiplier"] = _channel_params(multiplier, "multiplier", 0, INT32_MAX)
            params["shift"] = _channel_params(shift, "shift", -31, 30)
            if params["multiplier"].size != params["shift"].size:
                raise ValueError(f"multiplier has {params['multiplier'].size} channels but shift has "
                                 f"{params['shift'].size}")
        for key, value in params.items():   # own read-only copies: the compiled form reads them in place
            if isinstance(value, np.ndarray):
                params[key] = value = np.array(value)
                value.flags.writeable = False
        self._adopt(params)

    def _adopt(self, params):
        """Hold `params` (validated, arrays read-only) with what is derived from them once: the
        channel count and the compiled form (parsed and checked once, not per call)."""
        self._params = params
        self._channels = params["scale" if params["mode"] == "mlas_fp32" else "shift"].size
        self._compiled = _requant.compile_requantizer(params)

    # -- one constructor per runtime ------------------------------------------------------------
    @classmethod
    def pow2_shift(cls, shift, *, rounding="Nearest", overflow="Saturate", dtype=np.int8, zero_point=0, clamp=None):
        """Power-of-two scales (MATLAB scaled int8): a rounding shift, then Saturate or Wrap."""
        return cls("pow2_shift", shift=shift, rounding=rounding, overflow=overflow, dtype=dtype,
                   zero_point=zero_point, clamp=clamp)

    @classmethod
    def gemmlowp(cls, real_multiplier, zero_point=0, dtype=np.int8, clamp=None, *, single_rounding=False):
        """TFLite reference kernels (double rounding), or TFLITE_SINGLE_ROUNDING builds."""
        m0, shift = quantize_multiplier(real_multiplier)
        mode = "single_round" if single_rounding else "gemmlowp_double"
        return cls(mode, multiplier=m0, shift=shift, zero_point=zero_point, dtype=dtype, clamp=clamp)

    @classmethod
    def ruy(cls, real_multiplier, zero_point=0, dtype=np.int8, clamp=None):
        """LiteRT's optimized (ruy) kernels: the gemmlowp pair with both roundings half-up."""
        m0, shift = quantize_multiplier(real_multiplier)
        return cls("ruy_double_halfup", multiplier=m0, shift=shift, zero_point=zero_point, dtype=dtype, clamp=clamp)

    @classmethod
    def fp32(cls, scale, zero_point=0, dtype=np.int8, clamp=None):
        """ONNX Runtime (MLAS) and LiteRT's XNNPACK: RNE(float32(acc) * float32 scale) + zp."""
        return cls("mlas_fp32", scale=scale, zero_point=zero_point, dtype=dtype, clamp=clamp)

    def clamped(self, lo, hi):
        """This requantizer with its output also clamped to [lo, hi] (e.g. a ReLU computed in the
        same pass): the clamp becomes the intersection of both ranges."""
        lo, hi = max(int(lo), self._params["clamp_lo"]), min(int(hi), self._params["clamp_hi"])
        if lo > hi:
            raise ValueError(f"clamp [{lo}, {hi}] is empty within the requantizer's range")
        other = object.__new__(type(self))
        other._adopt({**self._params, "clamp_lo": lo, "clamp_hi": hi})
        return other

    # -- use ------------------------------------------------------------------------------------
    @property
    def mode(self):
        return self._params["mode"]

    @property
    def dtype(self):
        return np.dtype(self._params["dtype"])

    @property
    def num_channels(self):
        return self._channels

    def to_params(self):
        """The dict the C++ side parses (`requantizer_from_params`); it shares this object's arrays."""
        return dict(self._params)

    def __call__(self, acc, *, channel_axis=1):
        """Requantize an int32/int64 accumulator array; per-channel parameters run along channel_axis."""
        if (type(acc) is np.ndarray and acc.ndim and acc.dtype in _ACC_DTYPES
                and acc.flags.c_contiguous and type(channel_axis) is int):   # the common call
            if self._channels == 1:
                return _requant.requantize(acc, self._compiled, 0)
            axis = channel_axis % acc.ndim if -acc.ndim <= channel_axis < acc.ndim else None
            if axis is not None and acc.shape[axis] == self._channels:
                return _requant.requantize(acc, self._compiled, axis)
        a = np.asarray(acc)
        if a.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise ValueError(f"acc must have dtype int32 or int64, got {a.dtype}")
        shape = a.shape
        if a.ndim == 0:
            a = a.reshape(1)
        if self.num_channels == 1:
            axis = 0
        else:
            if not isinstance(channel_axis, (int, np.integer)) or not -a.ndim <= channel_axis < a.ndim:
                raise ValueError(f"channel_axis {channel_axis!r} out of range for acc of shape {shape}")
            axis = int(channel_axis) % a.ndim
            if a.shape[axis] != self.num_channels:
                raise ValueError(f"acc of shape {shape} has {a.shape[axis]} channels along axis {axis}, but the "
                                 f"requantizer has {self.num_channels} per-channel parameters")
        out = _requant.requantize(np.ascontiguousarray(a), self._compiled, axis)
        return out.reshape(shape)

    def __repr__(self):
        return f"Requantizer({self.mode!r}, dtype={self.dtype.name}, channels={self.num_channels})"


# -- TFLite / gemmlowp primitives ----------------------------------------------------------------
def quantize_multiplier(m):
    """TFLite QuantizeMultiplier: real m >= 0 -> (Q0.31 m0, shift) with m ~= m0 * 2^(shift - 31).

    frexp of the double, m0 = round-half-away(q * 2^31) (exact: q has 53 bits), the carry to 2^31
    renormalised, and multipliers below 2^-32 flushed to (0, 0); exponents above 30 are rejected
    (csrc/fixed/quantize_multiplier.hpp, the one definition). Arrays give arrays (int32, int32).
    """
    a = np.asarray(m, dtype=np.float64)
    m0, shift = _requant.quantize_multiplier(np.ascontiguousarray(a).reshape(-1))
    if a.ndim == 0:
        return int(m0[0]), int(shift[0])
    return m0.reshape(a.shape), shift.reshape(a.shape)


def _int32_operands(**named):
    arrays = [integer_array(v, k, INT32_MIN, INT32_MAX) for k, v in named.items()]
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in named.items())
        raise ValueError(f"shapes do not broadcast: {shapes}") from None


def _elementwise_int32(kernel, a, b):
    """kernel on two broadcast int32 arrays; a 0-d result comes back as a numpy scalar."""
    out = kernel(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)).reshape(a.shape)
    return out[()] if out.ndim == 0 else out


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SRDHM: round(a*b / 2^31), ties toward +inf, INT32_MIN*INT32_MIN -> INT32_MAX (int32)."""
    a, b = _int32_operands(a=a, b=b)
    return _elementwise_int32(_requant.saturating_rounding_doubling_high_mul, a, b)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero, 0 <= exponent <= 31."""
    x, e = _int32_operands(x=x, exponent=exponent)
    integer_array(e, "exponent", 0, 31)
    return _elementwise_int32(_requant.rounding_divide_by_pot, x, e)


def multiply_by_quantized_multiplier(x, m0, shift, *, channel_axis=1):
    """TFLite MultiplyByQuantizedMultiplier (RDBPOT(SRDHM(x * 2^left, m0), right)) as int32.

    int64 x uses TFLite's int64 overload (16-bit reduced multiplier, one half-up rounding).
    m0/shift are scalars or per-channel arrays along channel_axis.
    """
    rq = Requantizer("gemmlowp_double", multiplier=m0, shift=shift, dtype=np.int32)
    return rq(x, channel_axis=channel_axis)


def requantize_shift(acc, shift, *, rounding="Nearest", overflow="Saturate", dtype=np.int8, channel_axis=1):
    """acc * 2^-shift rounded by `rounding`, then Saturate/Wrap into dtype (positive shift = right)."""
    rq = Requantizer.pow2_shift(shift, rounding=rounding, overflow=overflow, dtype=dtype)
    return rq(acc, channel_axis=channel_axis)


def fp32_scale(input_scale, weight_scale, output_scale):
    """The float32 requantization scale as ONNX Runtime forms it: (s_x * s_w) / s_y in float32."""
    sx, sw, sy = (np.asarray(s, dtype=np.float32) for s in (input_scale, weight_scale, output_scale))
    return (sx * sw) / sy


def requantize_fp32(acc, scale, zero_point=0, *, dtype=np.int8, clamp=None, channel_axis=1):
    """ONNX Runtime MLAS / XNNPACK: clamp(RNE(float32(acc) * float32 scale)) + zero_point."""
    return Requantizer.fp32(scale, zero_point, dtype, clamp)(acc, channel_axis=channel_axis)


__all__ = ["Requantizer", "quantize_multiplier", "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
           "multiply_by_quantized_multiplier", "requantize_shift", "requantize_fp32", "fp32_scale",
           "ROUNDING_METHODS", "OVERFLOW_ACTIONS", "REQUANT_MODES"]
