"""Quantized concatenation: each input requantized to the output's fraction length."""
from __future__ import annotations

import numpy as np

from .base import QuantizedKind, register_kind, requantize


@register_kind("Concatenation")
class ConcatenationKind(QuantizedKind):
    """Every input requantized to the output exponent, then concatenated."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        return {"input_shifts": [f - output_fraction_length for f in input_fraction_lengths]}

    def run(self, ql, *inputs):
        parts = [q if s == 0 else requantize(q.astype(np.int32), s, ql.rounding)
                 for q, s in zip(inputs, ql.input_shifts)]
        return np.concatenate(parts, axis=ql.layer.axis)
