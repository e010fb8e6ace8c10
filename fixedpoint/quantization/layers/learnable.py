"""What convolution and fully connected layers share: integer weights per tensor or per output
channel, an int32 bias at the accumulator's scale, one fused requantization per output channel, and
the exact float32 route for small products."""
from __future__ import annotations

import numpy as np

from ... import kernels
from ...runtime import host_ort_isa
from ...runtime.profile import RuntimeNotSupportedError
from ..qparams import QuantParams
from .base import AffineKind, QuantizedKind, quantize_scaled
from .addition import check_constant_operand, ort_qlinear_binary_constant
from .ort_float_ports import FLOAT_PORT_OPS, check_float_ports, float_ports_function
from .ort_graph import float_route, ort_graph, ort_op


class LearnableKind(QuantizedKind):
    """Convolution and fully connected: int8 weights, int32 bias at the accumulator's exponent,
    int32 accumulation and one fused rounding shift per output channel."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        weights = layer.learnables["Weights"]
        channels = weights.shape[0]
        if options.per_channel:
            f_w = np.array([options.fraction_length(weights[c]) for c in range(channels)])
        else:
            f_w = np.full(channels, options.fraction_length(weights))
        per_weight = f_w.reshape((-1,) + (1,) * (weights.ndim - 1))
        f_b = input_fraction_lengths[0] + f_w
        bias = layer.learnables.get("Bias")
        bias = np.zeros(channels, np.float32) if bias is None else bias
        return {
            "weights": quantize_scaled(weights, per_weight, options.rounding, np.int8),
            "weight_fraction_lengths": f_w.astype(np.int64),
            "bias": quantize_scaled(bias.reshape(-1), f_b, options.rounding, np.int32),
            "bias_fraction_lengths": f_b.astype(np.int64),
            "shifts": (f_b - output_fraction_length).astype(np.int64),
        }

    def prepare(self, ql):
        shifts = ql.shifts
        shift = int(shifts[0]) if np.all(shifts == shifts[0]) else shifts.astype(np.int32)
        ql.requantizer = kernels.Requantizer.pow2_shift(shift, rounding=ql.rounding,
                                                        overflow="Saturate", dtype=np.int8)


FLOAT_EXACT_MAX_TERMS = 1024        # 1024 · 128 · 128 = 2^24 (see exact_float_sums)


FLOAT_EXACT_MAX_PRODUCTS = 1 << 18  # below this many products the kernels' fixed cost dominates


def exact_float_sums(float_op, x: np.ndarray) -> np.ndarray:
    """The int32 sums of int8 products that `float_op` (a float convolution or matmul without
    bias) forms on `x` in float32, exactly: with at most FLOAT_EXACT_MAX_TERMS products per
    output, every partial sum, in whatever order BLAS adds, is an integer of magnitude at most
    2^24, which float32 represents exactly, so no operation rounds."""
    return float_op(x.astype(np.float32)).astype(np.int32)


class AffineLinearKind(AffineKind):
    """What affine convolution and fully connected layers share.

    Data fields: `weights` (int8, or uint8 with a zero point; OIHW for convolutions, (outputs,
    inputs) for fully connected layers), `weight_params` (`QuantParams`, per tensor or per output
    channel along axis 0), `bias` (int32, one per output, at scale s_x · s_w, zero point 0), and
    optionally `clamp` (lo, hi): a fused activation's bounds in the output's integers (a TFLite fused
    ReLU, say); without it the output type's range. Imported ONNX layers also carry `ort_op`,
    `ort_op_precise`, `ort_op_unoptimized` (the operator ORT runs per graph, see `ort_graph`) and
    `ort_activation_dtype` (the activation type after ORT's S8->U8 conversion of QDQ pairs). Layers
    imported from .tflite files hold `tflite_op` ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    and `activation` (the fused activation's name): LiteRT's resolvers derive the requantization and
    the activation bounds from them and the scales, each in its own way.

    Formulas by recipe "compute" (`COMPUTE`, made per kind from its `ORT_OPS`): "integer" (exact int32
    sums, the runtime's requantizer), "ort-graph" (the ORT operator with MLAS's accumulation on the
    profile's CPU, or the float operator between DQ and Q), "float"."""

    ORT_OPS: tuple = ()   # the ORT operators the subclass computes

    def __init__(self):
        ops = {op: self.bind_ort_integer for op in self.ORT_OPS + FLOAT_PORT_OPS.get(type(self).__name__, ())}
        ops.update(QLinearAdd=ort_qlinear_binary_constant, QLinearMul=ort_qlinear_binary_constant)   # operand_op
        self.COMPUTE = {"integer": self.bind_integer, "float": float_route, "ort-graph": ort_graph(ops)}

    def check(self, layer):
        if getattr(layer, "operand", None) is not None:   # QLinearAdd / QLinearMul of a constant (addition.py)
            return check_constant_operand(layer)
        w, wp = layer.weights, layer.weight_params
        outputs = w.shape[0]
        if w.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise ValueError(f"layer {layer.name!r}: weights must be int8 or uint8, got {w.dtype}")
        if not isinstance(wp, QuantParams) or wp.dtype != w.dtype or (
                wp.per_channel and (wp.axis != 0 or wp.scale.size != outputs)):
            raise ValueError(f"layer {layer.name!r}: weight_params must be {w.dtype} QuantParams per "
                             f"tensor or per output channel (axis 0, {outputs} entries), got {wp!r}")
        bias = getattr(layer, "bias", None)
        if bias is None or bias.dtype != np.int32 or bias.shape != (outputs,):
            raise ValueError(f"layer {layer.name!r}: bias must be int32 of shape ({outputs},), got "
                             f"{None if bias is None else (bias.dtype, bias.shape)}")
        if len(layer.input_params) != 1 or any(p is not None and p.per_channel
                                               for p in (layer.input_params[0], layer.output_params)):
            raise ValueError(f"layer {layer.name!r}: input and output need per-tensor parameters")
        if layer.input_params[0] is None or layer.output_params is None:   # a float port (ort_float_ports.py)
            return check_float_ports(layer)
        clamp = self.clamp(layer)
        out = layer.output_params
        if not out.qmin <= clamp[0] <= clamp[1] <= out.qmax:
            raise ValueError(f"layer {layer.name!r}: clamp {clamp} outside [{out.qmin}, {out.qmax}]")

    @staticmethod
    def clamp(layer) -> tuple[int, int]:
        c = getattr(layer, "clamp", None)
        out = layer.output_params
        return (out.qmin, out.qmax) if c is None else (int(c[0]), int(c[1]))

    def requantizer(self, layer, runtime):
        """The layer's requantizer as `runtime` derives it from the scales."""
        from ...runtime.requantization import DERIVATIONS
        derive = DERIVATIONS[runtime.choice(layer, "requantization", DERIVATIONS)]
        return derive(layer.input_params[0].scale[0], layer.weight_params.scale, layer.output_params,
                      self.clamp(layer), **self.derivation_keywords(layer))

    @staticmethod
    def derivation_keywords(layer) -> dict:
        """What a LiteRT derivation needs beyond the scales: the TFLite operator, its fused
        activation and the output channel count (none for other layers)."""
        op = getattr(layer, "tflite_op", None)
        if op is None:
            return {}
        return {"op": str(op), "activation": str(getattr(layer, "activation", None) or "NONE"),
                "channels": int(layer.weights.shape[0])}

    @staticmethod
    def split(requantizer):
        """(the requantizer a conv2d / gemm call applies in its own pass or None, the function
        applied to its int32 output afterwards or None): a LiteRT requantizer whose channels round
        differently (`fused` None) runs as a second pass."""
        fused = getattr(requantizer, "fused", requantizer)
        return (fused, None) if fused is not None else (None, requantizer)

    def bind_integer(self, layer, runtime):
        """Exact int32 sums and the runtime's requantizer (LiteRT, and hand-made affine layers). Under
        LiteRT, whose other formulas read TFLite's NHWC order, results are NHWC memory."""
        runtime.choice(layer, "accumulation", ("exact",))
        return self.integer_function(layer, self.requantizer(layer, runtime), None, False,
                                     channels_last=runtime.family == "litert")

    def ort_accumulation(self, layer, runtime, op):
        """(the accumulation MLAS uses for this layer on the profile's CPU, whether the activation
        enters it as uint8 after ORT's S8->U8 conversion)."""
        isa = runtime.choice(layer, "accumulation", ("avx2", "avx2-precise", "vnni", "host"))
        activation = np.dtype(getattr(layer, "ort_activation_dtype", None) or layer.input_params[0].dtype)
        flipped = layer.input_params[0] is not None and activation != layer.input_params[0].dtype
        if isa == "host":   # the reference profile's QOperator nodes: this machine's MLAS kernels
            isa = host_ort_isa()
            isa = "avx2" if isa == "avx512bw" else isa
        if isa.endswith("-precise") and layer.weights.dtype == np.int8 and \
                int(np.abs(layer.weights.astype(np.int16)).max(initial=0)) <= 64:
            # avx2_weight_s8_to_u8.cc leaves weights within [-64, 64] alone (no pair can saturate)
            isa = isa[:-len("-precise")]
        groups = getattr(layer.layer, "groups", 1)
        channels = layer.weights.shape[1] * groups if layer.weights.ndim == 4 else None
        try:
            acc = kernels.ort_accumulation(
                op, isa, activation_dtype=activation, weight_dtype=layer.weights.dtype,
                weight_zero_point=layer.weight_params.zero_point, groups=groups, in_channels=channels,
                out_channels=layer.weights.shape[0],
                domain="com.microsoft" if op in ("QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul") else "")
        except ValueError as error:   # a combination ORT itself cannot run (session creation fails)
            raise RuntimeNotSupportedError(f"layer {layer.name!r} ({op}) under {runtime.name!r}: {error}") from None
        if acc.kind == "exact":
            return None, False
        return acc, flipped

    def bind_ort_integer(self, layer, runtime):
        op = ort_op(layer, runtime)
        acc, flipped = self.ort_accumulation(layer, runtime, op)
        if layer.input_params[0] is None or layer.output_params is None:
            return float_ports_function(layer, acc)
        return self.integer_function(layer, self.requantizer(layer, runtime), acc, flipped)

    def integer_function(self, layer, requantizer, accumulation, flip_input, channels_last=False):
        """f(x) computing the layer's sums with `accumulation` (None: exact) and `requantizer` (a
        `Requantizer`, or a LiteRT requantizer applied as `split` says); `flip_input`: x is int8 but
        enters the sums as uint8 x ^ 0x80 with zero point + 128; `channels_last`: a 4-D result may be
        NHWC memory (the values are the same)."""
        raise NotImplementedError


def flip_to_uint8(x: np.ndarray) -> np.ndarray:
    """int8 x as the uint8 x + 128 (ORT's S8->U8 conversion of a QDQ pair: same real values)."""
    return x.view(np.uint8) ^ np.uint8(0x80)
