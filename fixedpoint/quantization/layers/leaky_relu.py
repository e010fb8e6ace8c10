"""Quantized leaky ReLU: negative inputs times a 16-bit scale, one rounding shift."""
from __future__ import annotations

import math

import numpy as np

from .base import QuantizedKind, quantize_scaled, register_kind, requantize


@register_kind("LeakyReLU")
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
