"""The integer semantics of each quantized layer type (docs/quantized-semantics.md), in a registry
keyed by the float layer's `type_name`.

A `QuantizedLayer` holds its integer data as plain, documented attributes (int8 weights with their
fraction lengths, int32 bias, shifts, input and output fraction lengths) that an independent
implementation can read, plus the prepared kernel objects (requantizers) built once at quantize or
load time. Each `QuantizedKind` knows how to build that data from a float layer and how to run it
with the compiled kernels; nothing here loops over tensor elements in Python.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _kernels, kernels
from ..kernels.threads import path_code
from ..nn.functional import conv2d as conv2d_float
from ..nn.functional import conv2d_route, output_size, packed_float_weights, pool_pads, resolve_padding
from .exponent import choose_fraction_length, log2_bins

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class BuildOptions:
    """How a layer's learnables are quantized: the target's rounding, the exponent scheme for the
    weights (and its histogram threshold), and per-tensor or per-output-channel weights."""

    rounding: str
    scheme: str = "MinMax"
    threshold: float = 1e-4
    per_channel: bool = False

    def fraction_length(self, values: np.ndarray) -> int:
        counts, zeros = log2_bins(values)
        return choose_fraction_length(self.scheme, float(values.min()), float(values.max()),
                                      counts, zeros, self.threshold)


def quantize_scaled(values: np.ndarray, fraction_lengths, rounding: str, dtype) -> np.ndarray:
    """`sat(round(values · 2^f))` with f broadcast against `values`; exact, because scaling a
    float32 by a power of two in float64 is exact and the kernel rounds the float64 exactly."""
    scaled = np.ldexp(np.asarray(values, np.float64), np.asarray(fraction_lengths, np.int64))
    return kernels.quantize(scaled, fraction_length=0, rounding=rounding, overflow="Saturate",
                            dtype=dtype)


def requantize(acc: np.ndarray, shift, rounding: str) -> np.ndarray:
    """One rounding shift (positive = right) and saturation to int8."""
    return kernels.requantize_shift(acc, shift, rounding=rounding, overflow="Saturate",
                                    dtype=np.int8)


class QuantizedLayer:
    """One layer of a quantized network: the float layer (hyper-parameters), the integer data and
    the fraction lengths of its int8 inputs and output."""

    def __init__(self, layer, rounding: str, input_fraction_lengths, output_fraction_length: int,
                 **data):
        self.layer = layer
        self.name = layer.name
        self.type_name = layer.type_name
        self.rounding = rounding
        self.input_fraction_lengths = [int(f) for f in input_fraction_lengths]
        self.output_fraction_length = int(output_fraction_length)
        self.data = data
        for key, value in data.items():
            if isinstance(value, np.ndarray):
                # A read-only copy: the kernels work from copies packed below, which an array changed
                # in place afterwards would silently disagree with.
                value = np.array(value)
                value.flags.writeable = False
                data[key] = value
            setattr(self, key, value)
        self.kind = QUANTIZED_KINDS[self.type_name]
        self.kind.prepare(self)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self.kind.run(self, *inputs)

    def __repr__(self) -> str:
        return (f"QuantizedLayer({self.name!r}, {self.type_name}, inputs f={self.input_fraction_lengths}"
                f", output f={self.output_fraction_length})")


class QuantizedKind:
    """Semantics of one layer type. `own_exponent`: the output fraction length comes from the
    layer's calibrated output range; otherwise the layer is range-preserving (output f = input f)."""

    own_exponent = False

    def build(self, layer, input_fraction_lengths, output_fraction_length,
              options: BuildOptions) -> dict:
        return {}

    def prepare(self, ql: QuantizedLayer) -> None:
        """Build the kernel-side objects (requantizers) from the plain data."""

    def run(self, ql: QuantizedLayer, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


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


class ConvolutionKind(LearnableKind):
    """Three exact routes to the same int32 sums, chosen once per input shape by measured speed:

    * float32 (`exact_float_sums`) for small products, where the int8 kernels' fixed cost per
      call dominates, and for depthwise or few-channel convolutions of small images: the compiled
      float convolution with the bias added in the same pass when sums and bias stay within 2^24
      (then every float32 operation is exact), else BLAS and an int32 bias addition;
    * one int8 GEMM over channels-last patches of the whole batch for other ungrouped
      convolutions of small images (the conv kernel's per-image setup dominates there);
    * the conv kernel for everything else (large images)."""

    GEMM_MIN_CHANNELS = 8
    SMALL_IMAGE_PIXELS = 256

    def prepare(self, ql):
        super().prepare(ql)
        layer = ql.layer
        _, c_group, kh, kw = ql.weights.shape
        ql.packed_weights = kernels.pack_weights(ql.weights, groups=layer.groups)
        ql.gemm_weights = None   # packed on first use, rows ordered (kh, kw, C) as the patches
        ql.gemm_eligible = layer.groups == 1 and c_group >= self.GEMM_MIN_CHANNELS
        ql.float_eligible = c_group * kh * kw <= FLOAT_EXACT_MAX_TERMS
        ql.float_weights = None  # made on first use (read-only), and packed for compiled code
        ql.float_packed = None
        ql.bias_nchw = np.asarray(ql.bias, np.int32).reshape(1, -1, 1, 1)
        # the float32 sums stay exact with the bias added too while |sum| + |bias| <= 2^24
        bias_fits = c_group * kh * kw * 128 * 128 + int(np.abs(ql.bias_nchw).max(initial=0)) <= 1 << 24
        ql.float_bias = np.asarray(ql.bias, np.float32) if bias_fits else None
        ql.routes = {}           # input shape -> route (see `route`)

    def route(self, ql, shape) -> tuple:
        """("float" | "gemm" | "conv", explicit pads, (OH, OW)) for inputs of `shape`."""
        layer = ql.layer
        out_ch, c_group, kh, kw = ql.weights.shape
        pads = resolve_padding(layer.padding, shape[2:], (kh, kw), layer.stride, layer.dilation)
        oh, ow = (output_size(shape[2 + a], (kh, kw)[a], layer.stride[a], pads[a], pads[a + 2],
                              layer.dilation[a]) for a in range(2))
        small_image = oh * ow <= self.SMALL_IMAGE_PIXELS
        products = shape[0] * oh * ow * out_ch * c_group * kh * kw
        if ql.float_eligible and (products <= FLOAT_EXACT_MAX_PRODUCTS
                                  or (small_image and not ql.gemm_eligible)):
            compiled = conv2d_route(shape, ql.weights.shape, layer.stride, pads, layer.dilation,
                                    layer.groups)[1]
            return ("compiled float" if compiled and ql.float_bias is not None else "float"), \
                pads, (oh, ow)
        return ("gemm" if ql.gemm_eligible and small_image else "conv"), pads, (oh, ow)

    def run(self, ql, x, requantizer=None):
        """`requantizer` replaces the layer's own (the network passes one with a following ReLU's
        clamp when it computes that activation here)."""
        rq = requantizer or ql.requantizer
        layer = ql.layer
        out_ch, c_group, kh, kw = ql.weights.shape
        route = ql.routes.get(x.shape)
        if route is None:
            route = ql.routes[x.shape] = self.route(ql, x.shape)
        kind, pads, (oh, ow) = route
        if kind == "compiled float" or kind == "float":
            if ql.float_weights is None:
                float_weights = ql.weights.astype(np.float32)
                float_weights.flags.writeable = False   # packed once by the float convolution
                ql.float_weights = float_weights
        if kind == "compiled float":   # exact float32 sums with the bias, in one compiled call
            if ql.float_packed is None:
                ql.float_packed = packed_float_weights(ql.float_weights, layer.groups)
            acc = _kernels.conv2d_float(x.astype(np.float32), ql.float_packed, layer.stride,
                                        layer.dilation, pads, ql.float_bias, None, None,
                                        0, 0.0, 0.0, 0.0, path_code())
            return rq(acc.astype(np.int32), channel_axis=1)
        if kind == "float":
            acc = exact_float_sums(lambda xf: conv2d_float(
                xf, ql.float_weights, None, layer.stride, pads, layer.dilation, layer.groups), x)
            np.add(acc, ql.bias_nchw, out=acc)   # int32, wrapping as the accumulator does
            return rq(acc, channel_axis=1)
        if kind == "gemm":
            if ql.gemm_weights is None:
                ql.gemm_weights = kernels.pack_weights(np.ascontiguousarray(
                    ql.weights.transpose(2, 3, 1, 0).reshape(kh * kw * c_group, out_ch)))
            cols = channels_last_patches(x, (kh, kw), layer.stride, pads, layer.dilation, (oh, ow))
            out = kernels.gemm(cols, ql.gemm_weights, bias=ql.bias, requantizer=rq)
            return np.ascontiguousarray(
                out.reshape(x.shape[0], oh, ow, out_ch).transpose(0, 3, 1, 2))
        return kernels.conv2d(x, ql.packed_weights, bias=ql.bias, stride=layer.stride,
                              padding=pads, dilation=layer.dilation, groups=layer.groups,
                              requantizer=rq)


FLOAT_EXACT_MAX_TERMS = 1024        # 1024 · 128 · 128 = 2^24 (see exact_float_sums)
FLOAT_EXACT_MAX_PRODUCTS = 1 << 18  # below this many products the kernels' fixed cost dominates


def exact_float_sums(float_op, x: np.ndarray) -> np.ndarray:
    """The int32 sums of int8 products that `float_op` (a float convolution or matmul without
    bias) forms on `x` in float32, exactly: with at most FLOAT_EXACT_MAX_TERMS products per
    output, every partial sum, in whatever order BLAS adds, is an integer of magnitude at most
    2^24, which float32 represents exactly, so no operation rounds."""
    return float_op(x.astype(np.float32)).astype(np.int32)


def channels_last_patches(x: np.ndarray, kernel, stride, pads, dilation, out_hw) -> np.ndarray:
    """The convolution patches of NCHW `x` as an (N·OH·OW) × (kh·kw·C) matrix, taps ordered
    (kh, kw, C), gathered from a zero-padded NHWC copy in which one kernel row of all channels is
    a contiguous run. Zero padding is exact here (symmetric int8 has no zero point)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    top, left, bottom, right = pads
    padded = np.zeros((n, h + top + bottom, w + left + right, c), x.dtype)
    padded[:, top:top + h, left:left + w, :] = x.transpose(0, 2, 3, 1)
    sn, sy, sx, sc = padded.strides
    view = as_strided(padded, (n, oh, ow, kh, kw, c),
                      (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc), writeable=False)
    return view.reshape(n * oh * ow, kh * kw * c)


class FullyConnectedKind(LearnableKind):
    """Small products in exact float32 BLAS (see `exact_float_sums`), others in the int8 GEMM."""

    def prepare(self, ql):
        super().prepare(ql)
        ql.packed_weights = kernels.pack_weights(np.ascontiguousarray(ql.weights.T))
        ql.float_weights_t = (np.ascontiguousarray(ql.weights.T, np.float32)
                              if ql.weights.shape[1] <= FLOAT_EXACT_MAX_TERMS else None)
        ql.bias_row = np.asarray(ql.bias, np.int32)
        # as for convolutions: the bias joins the exact float32 sums while they stay within 2^24
        bias_fits = ql.weights.shape[1] * 128 * 128 + int(np.abs(ql.bias_row).max(initial=0)) <= 1 << 24
        ql.float_bias = np.asarray(ql.bias, np.float32) if bias_fits else None

    def run(self, ql, x, requantizer=None):
        """`requantizer` as for convolutions."""
        rq = requantizer or ql.requantizer
        rows = x.reshape(x.shape[0], -1)
        if ql.float_weights_t is not None and rows.shape[0] * ql.weights.size <= \
                FLOAT_EXACT_MAX_PRODUCTS:
            if ql.float_bias is not None:
                sums = np.matmul(rows.astype(np.float32), ql.float_weights_t)
                sums += ql.float_bias
                return rq(sums.astype(np.int32), channel_axis=1)
            acc = exact_float_sums(lambda xf: xf @ ql.float_weights_t, rows)
            np.add(acc, ql.bias_row, out=acc)   # int32, wrapping as the accumulator does
            return rq(acc, channel_axis=1)
        return kernels.gemm(rows, ql.packed_weights, bias=ql.bias, requantizer=rq)


class ReLUKind(QuantizedKind):
    def run(self, ql, x):
        return np.maximum(x, np.int8(0))


class ClippedReLUKind(QuantizedKind):
    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        ceiling = math.floor(math.ldexp(layer.ceiling, input_fraction_lengths[0]))
        return {"clip_max": int(min(max(ceiling, INT8_MIN), INT8_MAX))}

    def run(self, ql, x):
        out = np.maximum(x, np.int8(0))   # np.clip costs twice as much on small arrays
        return np.minimum(out, np.int8(ql.clip_max), out=out)


class LeakyReLUKind(QuantizedKind):
    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        scale = float(layer.scale)
        if scale < 0:
            raise ValueError(f"leaky ReLU {layer.name!r}: a negative scale ({scale}) has no "
                             f"range-preserving int8 form; skip the layer (skip_layers)")
        if scale == 0:
            return {"scale_stored": 0, "scale_fraction_length": 0}
        f = 14 - (math.frexp(scale)[1] - 1)
        stored = int(quantize_scaled(np.array([scale]), f, "Round", np.int16)[0])
        return {"scale_stored": stored, "scale_fraction_length": f}

    def run(self, ql, x):
        negative = requantize(x.astype(np.int32) * np.int32(ql.scale_stored),
                              ql.scale_fraction_length, ql.rounding)
        return np.where(x >= 0, x, negative)


class MaxPoolingKind(QuantizedKind):
    """The maximum of stored integers is the stored integer of the maximum (padding never wins,
    ceil_mode and same padding resolved as the float layer does)."""

    def run(self, ql, x):
        layer = ql.layer
        if layer.type_name == "GlobalMaxPooling2D":
            layer._check(x.shape)
            return kernels.max_pool2d(x, x.shape[2:4], 1)
        layer._check(x.shape)
        full, _, _ = pool_pads(x.shape, layer.pool_size, layer.stride,
                               layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                               layer.ceil_mode)
        return kernels.max_pool2d(x, layer.pool_size, layer.stride, full)


class DataMovementKind(QuantizedKind):
    """Flatten, reshape, dropout (inference), identity: the int8 tensor is passed or reshaped."""

    def run(self, ql, x):
        return ql.layer.forward(x)


class AveragePoolingKind(QuantizedKind):
    """Integer window sum, then one rounding division by the element count."""

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        if layer.ceil_mode:
            raise ValueError(f"average pooling {layer.name!r}: ceil_mode windows have no integer "
                             f"kernel; keep the layer in float with skip_layers=[{layer.name!r}]")
        return {}

    def run(self, ql, x):
        layer = ql.layer
        pads = resolve_padding(layer.padding, x.shape[2:], layer.pool_size, layer.stride, (1, 1))
        return kernels.avg_pool2d(x, layer.pool_size, layer.stride, pads,
                                  count_include_pad=layer.count_include_pad, rounding=ql.rounding)


class GlobalAveragePoolingKind(QuantizedKind):
    def run(self, ql, x):
        ql.layer._check(x.shape)
        return kernels.global_avg_pool(x, rounding=ql.rounding)


class AdditionKind(QuantizedKind):
    """Exact alignment to the finest input exponent, one int64 sum, one rounding shift."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        finest = max(input_fraction_lengths)
        return {"alignment_shifts": [finest - f for f in input_fraction_lengths],
                "shift": finest - output_fraction_length}

    def run(self, ql, *inputs):
        if len(inputs) == 2 and inputs[0].shape == inputs[1].shape:   # the same, in one kernel
            (fa, fb), f_out = ql.input_fraction_lengths, ql.output_fraction_length
            return kernels.add_shifted(inputs[0], fa, inputs[1], fb, out_fraction_length=f_out,
                                       rounding=ql.rounding, overflow="Saturate", dtype=np.int8)
        total = sum(np.left_shift(q.astype(np.int64), s) for q, s in zip(inputs, ql.alignment_shifts))
        return requantize(total, ql.shift, ql.rounding)


class ConcatenationKind(QuantizedKind):
    """Every input requantized to the output exponent, then concatenated."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        return {"input_shifts": [f - output_fraction_length for f in input_fraction_lengths]}

    def run(self, ql, *inputs):
        parts = [q if s == 0 else requantize(q.astype(np.int32), s, ql.rounding)
                 for q, s in zip(inputs, ql.input_shifts)]
        return np.concatenate(parts, axis=ql.layer.axis)


class MultiplicationKind(QuantizedKind):
    """Exact int64 product at the summed fraction length, one rounding shift."""

    own_exponent = True
    MAX_INPUTS = 7  # 7 int8 factors stay below 2^49

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        if len(input_fraction_lengths) > self.MAX_INPUTS:
            raise ValueError(f"multiplication {layer.name!r}: at most {self.MAX_INPUTS} inputs run "
                             f"quantized, got {len(input_fraction_lengths)}; skip the layer")
        return {"shift": sum(input_fraction_lengths) - output_fraction_length}

    def run(self, ql, *inputs):
        product = inputs[0].astype(np.int64)
        for q in inputs[1:]:
            product = product * q
        return requantize(product, ql.shift, ql.rounding)


QUANTIZED_KINDS: dict[str, QuantizedKind] = {
    "Convolution2D": ConvolutionKind(),
    "FullyConnected": FullyConnectedKind(),
    "ReLU": ReLUKind(),
    "ClippedReLU": ClippedReLUKind(),
    "LeakyReLU": LeakyReLUKind(),
    "MaxPooling2D": MaxPoolingKind(),
    "GlobalMaxPooling2D": MaxPoolingKind(),
    "AveragePooling2D": AveragePoolingKind(),
    "GlobalAveragePooling2D": GlobalAveragePoolingKind(),
    "Addition": AdditionKind(),
    "Concatenation": ConcatenationKind(),
    "Multiplication": MultiplicationKind(),
    "Flatten": DataMovementKind(),
    "Reshape": DataMovementKind(),
    "Dropout": DataMovementKind(),
    "Identity": DataMovementKind(),
}
