"""LiteRT (the TFLite interpreter, ai-edge-litert) int8 operators, bit for bit, per op resolver.

LiteRT computes a full-integer model differently depending on how it is run (docs/runtimes-litert-ops.md):

  resolver="reference"  OpResolverType.BUILTIN_REF: the reference kernels (gemmlowp double rounding).
  resolver="optimized"  BUILTIN_WITHOUT_DEFAULT_DELEGATES: the optimized kernels. The x86 wheel runs
                        their NEON paths through NEON_2_SSE, so several ops round one way in the
                        vector loop and another in its scalar tail; the functions here follow that.
  resolver="xnnpack"    AUTO / BUILTIN (the default): XNNPACK takes the ops it supports (fp32
                        requantization, parameters in float); `xnnpack_takes(op)` says which, and the
                        others run as "optimized".

Layout. Convolution-like ops take NCHW activations (`x[n, c, h, w]`) and the weights in their
.tflite layout (CONV_2D OHWI, DEPTHWISE_CONV_2D 1HW(C*m), FULLY_CONNECTED (N, K)). Element-wise,
pooling and reduction ops take tensors in TFLite's own axis order (NHWC for images) because some
optimized kernels treat an element by its position in that order; an NCHW array `a` is passed as the
view `a.transpose(0, 2, 3, 1)` (no copy) and the result comes back in the same memory order.

Quantization parameters are given as floats exactly as stored in the model (float32 scales, integer
zero points); every derivation (multipliers, shifts, float scales, activation bounds) happens in C++
(csrc/ops/litert) in the precision the runtime uses.
"""
import functools

import numpy as np

from .. import _litert
from .conv import conv2d as _conv2d
from .gemm import PackedWeights, gemm as _gemm
from .layout import channels_last as _channels_last, contiguous as _contiguous
from .requantize import Requantizer
from .threads import get_kernel_path

RESOLVERS = ("reference", "optimized", "xnnpack")
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")  # TFLite ActivationFunctionType codes 0..3
_CONV_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")
_ROUNDING_MODES = {0: "gemmlowp_double", 1: "ruy_double_halfup", 2: "mlas_fp32"}  # 3: double round (own)


def _avx2():
    """Whether the compiled loops may run their AVX2 instantiation (the kernels' path setting and the
    CPU, fixedpoint.kernels.get_kernel_path); both instantiations give the same bits."""
    return get_kernel_path() != "portable"


# ---- argument checks ------------------------------------------------------------------------------
def _memoized(fn):
    """`fn` (a pure check-and-convert of scalar arguments) remembering its results per argument values
    and types (a repeated layer's checks cost a dictionary lookup); unhashable arguments (arrays) take
    the uncached call. Failing calls are not remembered: they raise again."""
    cached = functools.lru_cache(maxsize=4096, typed=True)(fn)

    @functools.wraps(fn)
    def call(*args):
        try:
            return cached(*args)
        except TypeError:   # an unhashable argument (or fn's own TypeError, raised again here)
            return fn(*args)
    return call


@_memoized
def resolver_code(resolver):
    if isinstance(resolver, str) and resolver.lower() in RESOLVERS:
        return RESOLVERS.index(resolver.lower())
    raise ValueError(f"resolver must be one of {', '.join(RESOLVERS)}; got {resolver!r}")


@_memoized
def activation_code(activation):
    """TFLite fused-activation code of a name ("RELU6", case-insensitive), a code 0..3, or None."""
    if activation is None:
        return 0
    if isinstance(activation, str) and activation.upper() in ACTIVATIONS:
        return ACTIVATIONS.index(activation.upper())
    if isinstance(activation, (int, np.integer)) and not isinstance(activation, bool) and 0 <= activation <= 3:
        return int(activation)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)} (or None); got {activation!r}")


@_memoized
def _scale(value, name):
    """A positive finite float32 scale, as the model stores it."""
    try:
        s = np.float32(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite float, got {value!r}") from None
    if np.ndim(value) != 0 or not (np.isfinite(s) and s > 0):
        raise ValueError(f"{name} must be a positive finite float, got {value!r}")
    return float(s)


def _scales(value, name):
    s = np.asarray(value, dtype=np.float32).reshape(-1)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name} must hold positive finite floats, got {value!r}")
    return np.ascontiguousarray(s)


@_memoized
def _dtype8(dtype, name="dtype"):
    dt = np.dtype(dtype) if not isinstance(dtype, np.dtype) else dtype
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ValueError(f"{name} must be int8 or uint8, got {dtype!r}")
    return dt


@_memoized
def _zero_point(value, dtype, name):
    info = np.iinfo(dtype)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not info.min <= value <= info.max:
        raise ValueError(f"{name} must be an int in [{info.min}, {info.max}] (the range of {np.dtype(dtype).name}), "
                         f"got {value!r}")
    return int(value)


def _array(value, name, dtypes, ndim=None):
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.dtype not in dtypes and value.dtype not in [np.dtype(d) for d in dtypes]:
        raise ValueError(f"{name} must have dtype {' or '.join(np.dtype(d).name for d in dtypes)}, got {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {value.shape}")
    return value


# ---- parameter derivation -----------------------------------------------------------------------
def activation_range(activation, output_scale, output_zero_point, *, resolver, dtype=np.int8):
    """(lo, hi) of a fused activation in the output domain, as `resolver` quantizes its bounds:
    TFLite rounds 6/s half away from zero then adds the zero point; XNNPACK rounds 6/s + zp to even."""
    return _activation_range(activation, output_scale, output_zero_point, resolver, dtype)


@_memoized
def _activation_range(activation, output_scale, output_zero_point, resolver, dtype):
    dt = _dtype8(dtype)
    return _litert.activation_range(resolver_code(resolver), activation_code(activation),
                                    _scale(output_scale, "output_scale"),
                                    _zero_point(output_zero_point, dt, "output_zero_point"), dt.name)


class ConvRequantizer:
    """The requantization of a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED int32 accumulator as one
    LiteRT resolver does it, derived from the model's float scales.

    `parts` lists (first channel, end channel, fixedpoint.kernels.Requantizer or None) — None marks
    the reference FULLY_CONNECTED's double-precision rounding, which no Requantizer mode holds. The
    optimized DEPTHWISE_CONV_2D has two parts (half-up NEON channels, then gemmlowp channels).
    `fused` is the single Requantizer a conv2d / gemm call can apply in its own pass, else None.
    `plan` is the raw dict from C++ (per-channel rounding code, multiplier, shift, scale, real).
    """

    def __init__(self, kind, *, input_scale, weight_scales, output_scale, output_zero_point, channels,
                 activation=None, resolver, dtype=np.int8):
        if kind not in _CONV_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_CONV_KINDS)}; got {kind!r}")
        dt = _dtype8(dtype)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        ws = _scales(weight_scales, "weight_scales")
        if ws.size not in (1, channels):
            raise ValueError(f"weight_scales has {ws.size} entries; expected 1 or one per output channel ({channels})")
        self.kind, self.resolver, self.dtype, self.channels = kind, RESOLVERS[resolver_code(resolver)], dt, int(channels)
        zp = _zero_point(output_zero_point, dt, "output_zero_point")
        self.plan = _litert.conv_requant_plan(resolver_code(resolver), _CONV_KINDS.index(kind),
                                              _scale(input_scale, "input_scale"), ws, int(channels),
                                              _scale(output_scale, "output_scale"), zp, activation_code(activation),
                                              dt.name)
        self.clamp = tuple(self.plan["clamp"])
        rounding = self.plan["rounding"]
        self.parts = []
        start = 0
        for c in range(1, channels + 1):
            if c == channels or rounding[c] != rounding[start]:
                self.parts.append((start, c, self._part(int(rounding[start]), start, c, zp)))
                start = c
        only = self.parts[0][2] if len(self.parts) == 1 else None
        self.fused = only

    def _part(self, code, lo, hi, zp):
        if code == 3:
            return None
        sl = slice(lo, hi)
        mode = _ROUNDING_MODES[code]
        if mode == "mlas_fp32":
            return Requantizer(mode, scale=self.plan["scale"][sl], zero_point=zp, dtype=self.dtype, clamp=self.clamp)
        return Requantizer(mode, multiplier=self.plan["multiplier"][sl], shift=self.plan["shift"][sl], zero_point=zp,
                           dtype=self.dtype, clamp=self.clamp)

    def __call__(self, acc, *, channel_axis=1):
        """Requantize an int32 accumulator whose output channels run along `channel_axis`."""
        acc = _array(acc, "acc", (np.int32,))
        if not -acc.ndim <= channel_axis < acc.ndim or acc.shape[channel_axis] != self.channels:
            raise ValueError(f"acc of shape {acc.shape} must have {self.channels} channels along axis {channel_axis}")
        axis = channel_axis % acc.ndim
        if self.fused is not None:
            return self.fused(np.ascontiguousarray(acc), channel_axis=axis)
        moved = np.moveaxis(acc, axis, -1)
        flat = np.ascontiguousarray(moved).reshape(-1, self.channels)
        out = np.empty(flat.shape, dtype=self.dtype)
        for lo, hi, rq in self.parts:
            part = np.ascontiguousarray(flat[:, lo:hi])
            if rq is None:
                out[:, lo:hi] = _litert.requantize_double_round(part, np.ascontiguousarray(self.plan["real"][lo:hi]),
                                                                int(self.plan["zero_point"]), self.clamp[0],
                                                                self.clamp[1], self.dtype.name)
            else:
                out[:, lo:hi] = rq(part, channel_axis=1)
        return np.moveaxis(out.reshape(moved.shape), -1, axis)

    def __repr__(self):
        return f"ConvRequantizer({self.kind!r}, resolver={self.resolver!r}, channels={self.channels}, clamp={self.clamp})"


def conv_requantizer(kind, **kwargs):
    """`ConvRequantizer(kind, ...)`: how `resolver` requantizes a conv2d / depthwise_conv2d /
    fully_connected accumulator (keywords: input_scale, weight_scales, output_scale,
    output_zero_point, channels, activation, resolver, dtype)."""
    return ConvRequantizer(kind, **kwargs)


# ---- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED ----------------------------------------------------
def _padding(padding, kernel, stride, dilation):
    p = padding.upper() if isinstance(padding, str) else None
    if p == "VALID":
        return 0
    if p == "SAME":
        return "same"  # TFLite SAME: the odd padding pixel after (ONNX SAME_UPPER)
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")


@_memoized
def _pair(v, name):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1:
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(t, (int, np.integer)) and t >= 1 for t in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be a positive int or (h, w) pair, got {v!r}")


def _bias(bias, channels):
    if bias is None:
        return None
    b = _array(bias, "bias", (np.int32,), 1)
    if b.shape[0] != channels:
        raise ValueError(f"bias must have {channels} entries (one per output channel), got {b.shape[0]}")
    return np.ascontiguousarray(b)


class Conv2D:
    """A CONV_2D (or DEPTHWISE_CONV_2D) layer prepared once: weights packed, requantization derived.

    weights: CONV_2D OHWI int8 (TFLite layout), DEPTHWISE_CONV_2D (1, kh, kw, C*m) int8;
    weight_scales: one or one per output channel; bias: int32 per output channel or None;
    stride, dilation: int or (h, w); padding "SAME" / "VALID"; activation: fused activation name.
    Call with x (N, C, H, W) int8 -> (N, O, H_out, W_out) int8.
    """

    def __init__(self, weights, bias=None, *, input_scale, input_zero_point, weight_scales, output_scale,
                 output_zero_point, stride=1, padding="VALID", dilation=1, activation=None, resolver,
                 depthwise=False, depth_multiplier=None):
        w = _array(weights, "weights", (np.int8,), 4)
        if depthwise:
            if w.shape[0] != 1:
                raise ValueError(f"depthwise weights must have shape (1, kh, kw, C*m), got {w.shape}")
            out_c = w.shape[3]
            oihw = np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None])   # (C*m, 1, kh, kw)
            self.depth_multiplier = depth_multiplier
        else:
            out_c = w.shape[0]
            oihw = np.ascontiguousarray(w.transpose(0, 3, 1, 2))             # OHWI -> OIHW
        self.depthwise = bool(depthwise)
        self.out_channels = out_c
        self.kernel = oihw.shape[2:]
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = _padding(padding, self.kernel, self.stride, self.dilation)
        self.input_zero_point = _zero_point(input_zero_point, np.int8, "input_zero_point")
        self.bias = _bias(bias, out_c)
        self.requantizer = ConvRequantizer("depthwise_conv2d" if depthwise else "conv2d", input_scale=input_scale,
                                           weight_scales=weight_scales, output_scale=output_scale,
                                           output_zero_point=output_zero_point, channels=out_c, activation=activation,
                                           resolver=resolver)
        self._oihw = oihw
        self._packed = None

    def __call__(self, x):
        x = _array(x, "x", (np.int8,), 4)
        groups = 1
        if self.depthwise:
            groups = x.shape[1]
            if self.out_channels % groups:
                raise ValueError(f"x has {groups} channels, which must divide the {self.out_channels} depthwise outputs")
            if self.depth_multiplier is not None and self.out_channels != groups * self.depth_multiplier:
                raise ValueError(f"depth_multiplier {self.depth_multiplier} x {groups} input channels != "
                                 f"{self.out_channels} output channels")
        if self._packed is None or self._packed.groups != groups:
            self._packed = PackedWeights(self._oihw, groups)
        rq = self.requantizer
        acc = _conv2d(x, self._packed, bias=self.bias, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=groups, x_zero_point=self.input_zero_point,
                      requantizer=rq.fused)
        return acc if rq.fused is not None else rq(acc, channel_axis=1)


def conv2d(x, weights, bias=None, **kwargs):
    """CONV_2D: x (N, C, H, W) int8, weights OHWI int8 -> (N, O, H_out, W_out) int8 (see `Conv2D`)."""
    return Conv2D(weights, bias, **kwargs)(x)


def depthwise_conv2d(x, weights, bias=None, **kwargs):
    """DEPTHWISE_CONV_2D: x (N, C, H, W) int8, weights (1, kh, kw, C*m) int8 -> (N, C*m, H_out, W_out)."""
    return Conv2D(weights, bias, depthwise=True, **kwargs)(x)


class FullyConnected:
    """A FULLY_CONNECTED layer prepared once: weights (N, K) int8 as stored, bias int32 (N,) or None.
    Call with x (B, K) int8 -> (B, N) int8."""

    def __init__(self, weights, bias=None, *, input_scale, input_zero_point, weight_scales, output_scale,
                 output_zero_point, activation=None, resolver):
        w = _array(weights, "weights", (np.int8,), 2)
        self.units, self.depth = w.shape
        self.bias = _bias(bias, self.units)
        self.input_zero_point = _zero_point(input_zero_point, np.int8, "input_zero_point")
        self.requantizer = ConvRequantizer("fully_connected", input_scale=input_scale, weight_scales=weight_scales,
                                           output_scale=output_scale, output_zero_point=output_zero_point,
                                           channels=self.units, activation=activation, resolver=resolver)
        self._packed = PackedWeights(np.ascontiguousarray(w.T))

    def __call__(self, x):
        x = _array(x, "x", (np.int8,), 2)
        if x.shape[1] != self.depth:
            raise ValueError(f"x must have {self.depth} columns to match the weights, got shape {x.shape}")
        rq = self.requantizer
        acc = _gemm(np.ascontiguousarray(x), self._packed, bias=self.bias, a_zero_point=self.input_zero_point,
                    requantizer=rq.fused)
        return acc if rq.fused is not None else rq(acc, channel_axis=1)


def fully_connected(x, weights, bias=None, **kwargs):
    """FULLY_CONNECTED: x (B, K) int8, weights (N, K) int8 -> (B, N) int8 (see `FullyConnected`)."""
    return FullyConnected(weights, bias, **kwargs)(x)


# ---- ADD, SUB, MUL ----------------------------------------------------------------------------------
_BINARY_OPS = ("add", "sub", "mul")


def _tflite_tensor(x, name, dtypes=(np.int8,)):
    """x as a C-contiguous array in TFLite axis order (a transposed view is copied)."""
    return _contiguous(_array(x, name, dtypes))


def _binary(op, a, b, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point, activation,
            resolver):
    a = _tflite_tensor(a, "a")
    b = _tflite_tensor(b, "b")
    try:
        shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not broadcast") from None
    if len(shape) > 6:
        raise ValueError(f"tensors of rank {len(shape)} exceed LiteRT's broadcast rank 6")
    return _litert.binary(_BINARY_OPS.index(op), resolver_code(resolver), a, _scale(a_scale, "a_scale"),
                          _zero_point(a_zero_point, np.int8, "a_zero_point"), b, _scale(b_scale, "b_scale"),
                          _zero_point(b_zero_point, np.int8, "b_zero_point"), _scale(output_scale, "output_scale"),
                          _zero_point(output_zero_point, np.int8, "output_zero_point"), activation_code(activation),
                          list(shape), _avx2())


def add(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point, activation=None,
        resolver):
    """ADD of int8 tensors in TFLite axis order (numpy broadcasting), fused activation, exactly as
    `resolver` computes it. The optimized kernels treat elements by position (NEON blocks of 16 and
    scalar tails), so the inputs must be in TFLite's order; the result is C-contiguous in that order."""
    return _binary("add", a, b, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point,
                   activation, resolver)


def sub(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point, activation=None,
        resolver):
    """SUB a - b of int8 tensors (see `add`; LiteRT has no optimized int8 SUB: reference = optimized)."""
    return _binary("sub", a, b, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point,
                   activation, resolver)


def mul(a, b, *, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point, activation=None,
        resolver):
    """MUL of int8 tensors (see `add`)."""
    return _binary("mul", a, b, a_scale, a_zero_point, b_scale, b_zero_point, output_scale, output_zero_point,
                   activation, resolver)


# ---- one-input ops ----------------------------------------------------------------------------------
_UNARY_OPS = ("relu", "relu6", "relu_n1_to_1", "leaky_relu", "hard_swish", "logistic", "tanh", "requantize")
_BYTE_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))
_BYTE_NAMES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8"}   # (numpy's dtype.name costs ~3 us)


def _unary(op, x, input_scale, input_zero_point, output_scale, output_zero_point, resolver, dtype=None, alpha=0.0):
    x = _tflite_tensor(x, "x", (np.int8, np.uint8))
    out_dt = x.dtype if dtype is None else _dtype8(dtype)
    return _litert.unary(_UNARY_OPS.index(op), resolver_code(resolver), x, _scale(input_scale, "input_scale"),
                         _zero_point(input_zero_point, x.dtype, "input_zero_point"), _scale(output_scale, "output_scale"),
                         _zero_point(output_zero_point, out_dt, "output_zero_point"), _BYTE_NAMES[out_dt], float(alpha),
                         _avx2())


def relu(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """RELU of an int8/uint8 tensor (any layout: element-wise): clamp(MBQM(q - z_in) + z_out) as
    QuantizedReluX computes it (one formula for every resolver: XNNPACK takes only float RELU)."""
    return _unary("relu", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def relu6(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """RELU6 of an int8/uint8 tensor (see `relu`)."""
    return _unary("relu6", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def relu_n1_to_1(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """RELU_N1_TO_1 of an int8/uint8 tensor (see `relu`)."""
    return _unary("relu_n1_to_1", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def leaky_relu(x, *, alpha, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """LEAKY_RELU of an int8/uint8 tensor: TFLite's two gemmlowp multipliers, or XNNPACK's
    8-bit multipliers when the delegate takes the scales."""
    a = np.float32(alpha)
    if not np.isfinite(a):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return _unary("leaky_relu", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver,
                  alpha=float(a))


def hard_swish(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """HARD_SWISH of an int8/uint8 tensor: the reference int16 fixed-point formula, which every
    resolver runs on x86 (no int8 XNNPACK kernel, the optimized one is ARM-only)."""
    return _unary("hard_swish", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def logistic(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """LOGISTIC of an int8/uint8 tensor: TFLite's float table (expf) or XNNPACK's (double exp)."""
    return _unary("logistic", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def tanh(x, *, input_scale, input_zero_point, output_scale, output_zero_point, resolver):
    """TANH of an int8/uint8 tensor: TFLite's float table (tanhf) or XNNPACK's."""
    return _unary("tanh", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver)


def quantize(x, *, output_scale, output_zero_point, resolver, dtype=np.int8, input_scale=None,
             input_zero_point=None):
    """QUANTIZE in TFLite element order: float32 x -> dtype (int8/uint8), or an int8/uint8 x (with
    input_scale, input_zero_point) requantized to dtype (int8 -> int8, int8 <-> uint8)."""
    dt = _dtype8(dtype)
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        if input_scale is not None or input_zero_point is not None:
            raise ValueError("a float32 input takes no input_scale / input_zero_point")
        x = _contiguous(x)
        return _litert.quantize(resolver_code(resolver), x, _scale(output_scale, "output_scale"),
                                _zero_point(output_zero_point, dt, "output_zero_point"), _BYTE_NAMES[dt], _avx2())
    if input_scale is None or input_zero_point is None:
        raise ValueError("requantizing an integer x needs input_scale and input_zero_point "
                         "(x must be float32, int8 or uint8)")
    return _unary("requantize", x, input_scale, input_zero_point, output_scale, output_zero_point, resolver, dtype=dt)


def dequantize(x, *, scale, zero_point, resolver):
    """DEQUANTIZE of an int8/uint8 tensor (TFLite element order) to float32."""
    x = _tflite_tensor(x, "x", (np.int8, np.uint8))
    return _litert.dequantize(resolver_code(resolver), x, _scale(scale, "scale"),
                              _zero_point(zero_point, x.dtype, "zero_point"), _avx2())


# ---- SOFTMAX, MEAN -----------------------------------------------------------------------------------
def softmax(x, *, beta=1.0, input_scale, output_scale=1 / 256, output_zero_point=-128, resolver):
    """SOFTMAX of int8 x along its last axis (TFLite's axis): gemmlowp fixed point (reference) or
    the float exp table (optimized; XNNPACK does not take int8 SOFTMAX). The output must be int8
    with zero point -128 and scale 1/256, as TFLite requires. The input zero point cancels."""
    x = _tflite_tensor(x, "x")
    b = np.float32(beta)
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"beta must be a positive finite float, got {beta!r}")
    return _litert.softmax(resolver_code(resolver), x, float(b), _scale(input_scale, "input_scale"),
                           _scale(output_scale, "output_scale"), _zero_point(output_zero_point, np.int8,
                                                                            "output_zero_point"))


def mean(x, axes, *, keep_dims, input_scale, input_zero_point, output_scale, output_zero_point, resolver,
         num_threads=1):
    """MEAN of int8 x (TFLite axis order) over `axes`. The optimized kernel for a 4-D input reduced
    over axes (1, 2) with keep_dims splits the channels among `num_threads` (the interpreter's
    thread count) and rounds the NEON blocks of 16 channels half up; give the count it ran with."""
    x = _tflite_tensor(x, "x")
    if isinstance(axes, (int, np.integer)):
        axes = [axes]
    ax = sorted({int(a) % x.ndim if -x.ndim <= int(a) < x.ndim else _bad_axis(a, x.ndim) for a in axes})
    if not ax:
        raise ValueError("axes must name at least one axis")
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    return _litert.mean(resolver_code(resolver), x, ax, bool(keep_dims), _scale(input_scale, "input_scale"),
                        _zero_point(input_zero_point, np.int8, "input_zero_point"), _scale(output_scale, "output_scale"),
                        _zero_point(output_zero_point, np.int8, "output_zero_point"), int(num_threads), _avx2())


def _bad_axis(a, ndim):
    raise ValueError(f"axis {a!r} out of range for a tensor of rank {ndim}")


# ---- data movement and pooling -------------------------------------------------------------------------
@_memoized
def _same_or_valid(padding, size, kernel, stride):
    """TFLite's pooling padding (ComputePaddingHeightWidth) as (before, after) per spatial axis."""
    p = padding.upper() if isinstance(padding, str) else None
    if p not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    pads = []
    for n, k, s in zip(size, kernel, stride):
        out = -(-n // s) if p == "SAME" else (n - k + s) // s
        if out < 1:
            raise ValueError(f"the {k}-wide window does not fit the input of size {n} (VALID padding)")
        total = max((out - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _pool(kind, x, filter_size, stride, padding, activation, output_scale, output_zero_point, resolver):
    x = _array(x, "x", (np.int8,), 4)
    k, s = _pair(filter_size, "filter_size"), _pair(stride, "stride")
    top, left, bottom, right = _same_or_valid(padding, x.shape[2:], k, s)
    out_h = (x.shape[2] + top + bottom - k[0]) // s[0] + 1
    out_w = (x.shape[3] + left + right - k[1]) // s[1] + 1
    # XNNPACK takes int8 max pooling only (CheckPoolingParams: strides within the filter); the
    # activation bounds follow whoever runs the op.
    runner = "xnnpack" if (resolver_code(resolver) == 2 and kind == "max" and s[0] <= k[0] and s[1] <= k[1]) \
        else "reference"
    lo, hi = activation_range(activation, output_scale, output_zero_point, resolver=runner)
    if _channels_last(x):   # NHWC memory (a LiteRT result): pooled as it is, the result NHWC memory too
        y = _litert.pool2d(kind == "avg", x.transpose(0, 2, 3, 1), k[0], k[1], s[0], s[1], top, left, out_h, out_w,
                           lo, hi, _avx2(), True)
        return y.transpose(0, 3, 1, 2)
    return _litert.pool2d(kind == "avg", _contiguous(x), k[0], k[1], s[0], s[1], top, left, out_h, out_w, lo, hi,
                          _avx2())


def max_pool2d(x, *, filter_size, stride, padding="VALID", activation=None, output_scale, output_zero_point, resolver):
    """MAX_POOL_2D of int8 NCHW x: the max over the window's taps inside the input, clamped to the
    fused activation (bounds rounded as `resolver` rounds them). Input and output quantization are
    the same in TFLite (no rescaling); the output scale and zero point only place the activation."""
    return _pool("max", x, filter_size, stride, padding, activation, output_scale, output_zero_point, resolver)


def average_pool2d(x, *, filter_size, stride, padding="VALID", activation=None, output_scale, output_zero_point,
                   resolver):
    """AVERAGE_POOL_2D of int8 NCHW x: the window sum over the taps inside the input divided by
    their count, rounded half away from zero ((acc +- n/2) / n), clamped to the fused activation.
    Every resolver computes this (XNNPACK takes only float average pooling)."""
    return _pool("avg", x, filter_size, stride, padding, activation, output_scale, output_zero_point, resolver)


def concatenation(xs, axis, *, scales, zero_points, output_scale, output_zero_point, resolver):
    """CONCATENATION of int8 tensors (TFLite axis order) along `axis`. TFLite requires every input's
    scale and zero point to equal the output's for int8 (and XNNPACK then fails to prepare the
    model), so the op is a copy; unequal parameters raise ValueError as LiteRT refuses them."""
    resolver_code(resolver)
    xs = [_array(x, f"xs[{i}]", (np.int8,)) for i, x in enumerate(xs)]
    if len(xs) < 1 or len(scales) != len(xs) or len(zero_points) != len(xs):
        raise ValueError("give one scale and one zero point per input")
    so = np.float32(_scale(output_scale, "output_scale"))
    for i, (s, z) in enumerate(zip(scales, zero_points)):
        if np.float32(_scale(s, f"scales[{i}]")) != so or z != output_zero_point:
            raise ValueError(f"input {i} has scale {s} / zero point {z} but the output {output_scale} / "
                             f"{output_zero_point}: LiteRT rejects int8 CONCATENATION with rescaling")
    return np.concatenate(xs, axis=axis)


def pad(x, paddings, *, output_zero_point, resolver, constant=None):
    """PAD (PADV2 with `constant`) of int8 x in TFLite axis order: the new positions take the output
    zero point (or the constant), the others keep their values (no rescaling in any resolver)."""
    resolver_code(resolver)
    x = _array(x, "x", (np.int8,))
    p = np.asarray(paddings)
    if p.shape != (x.ndim, 2) or p.dtype.kind not in "iu" or np.any(p < 0):
        raise ValueError(f"paddings must be a ({x.ndim}, 2) array of non-negative ints, got {paddings!r}")
    value = _zero_point(output_zero_point if constant is None else constant, np.int8, "pad value")
    return np.pad(x, [tuple(int(v) for v in row) for row in p], constant_values=value)


def reshape(x, shape, *, resolver):
    """RESHAPE: the same values in TFLite (row-major) order."""
    resolver_code(resolver)
    return _contiguous(_array(x, "x", (np.int8, np.uint8))).reshape(shape)


# ---- which ops XNNPACK takes -----------------------------------------------------------------------------
_XNNPACK_ALWAYS = {"conv2d", "depthwise_conv2d", "fully_connected", "concatenation", "mean", "reshape", "pad",
                   "logistic", "tanh", "dequantize"}
_XNNPACK_NEVER = {"average_pool2d", "softmax", "relu", "relu6", "relu_n1_to_1", "hard_swish"}


def xnnpack_takes(op, *, input_scale=None, output_scale=None, b_scale=None, alpha=None, filter_size=None,
                  stride=None, input_dtype=np.int8, output_dtype=np.int8, float_input=False):
    """Whether the default resolver (AUTO) hands this int8 op to XNNPACK (the delegate's checks in
    xnnpack_delegate.cc, as verified in tests/test_litert_ops.py); otherwise the optimized builtin
    kernel runs it. Scale arguments are those of the op's tensors (ADD/SUB/MUL: input_scale is a,
    b_scale is b). CONV/DEPTHWISE/FC are taken when their weights and bias are constants."""
    if op in _XNNPACK_ALWAYS:
        return True
    if op in _XNNPACK_NEVER:
        return False
    if op in _BINARY_OPS:
        return bool(_litert.xnnpack_takes_binary(_BINARY_OPS.index(op), _scale(input_scale, "input_scale"),
                                                 _scale(b_scale, "b_scale"), _scale(output_scale, "output_scale")))
    if op == "max_pool2d":
        (fh, fw), (sh, sw) = _pair(filter_size, "filter_size"), _pair(stride, "stride")
        return sh <= fh and sw <= fw
    if op == "leaky_relu" or op == "quantize":
        if op == "quantize" and float_input:
            return True
        code = _UNARY_OPS.index("leaky_relu" if op == "leaky_relu" else "requantize")
        return bool(_litert.unary_table(code, 2, _scale(input_scale, "input_scale"), 0,
                                        _scale(output_scale, "output_scale"), 0, np.dtype(input_dtype).name,
                                        np.dtype(output_dtype).name, float(0.0 if alpha is None else alpha))[3])
    raise ValueError(f"unknown op {op!r}")
