"""What convolution and fully connected layers share: int8 weights per tensor or per output channel,
an int32 bias at the accumulator's exponent, one fused rounding shift per output channel, and the
exact float32 route for small products."""
from __future__ import annotations

import numpy as np

from ... import kernels
from .base import QuantizedKind, quantize_scaled


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
