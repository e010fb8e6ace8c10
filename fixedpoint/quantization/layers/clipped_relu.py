"""Quantized clipped ReLU: a clamp of the stored integers to [0, the ceiling's stored integer]."""
from __future__ import annotations

import math

import numpy as np

from .base import INT8_MAX, INT8_MIN, QuantizedKind, register_kind


@register_kind("ClippedReLU")
class ClippedReLUKind(QuantizedKind):
    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        ceiling = math.floor(math.ldexp(layer.ceiling, input_fraction_lengths[0]))
        return {"clip_max": int(min(max(ceiling, INT8_MIN), INT8_MAX))}

    def run(self, ql, x):
        out = np.maximum(x, np.int8(0))   # np.clip costs twice as much on small arrays
        return np.minimum(out, np.int8(ql.clip_max), out=out)
