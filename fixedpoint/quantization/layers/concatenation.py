"""Quantized concatenation: each input requantized to the output's fraction length."""
from __future__ import annotations

import numpy as np

from .base import QuantizedKind, register_affine_kind, register_kind, requantize
from .ort_graph import OrtGraphKind, ort_kernels, scalar


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


@register_affine_kind("Concatenation")
class AffineConcatenationKind(OrtGraphKind):
    """Affine concatenation (ONNX QLinearConcat): each input requantized through ORT's table, or copied
    when its parameters equal the output's."""

    ORT_OPS = {"QLinearConcat": "bind_qlinear"}

    def bind_qlinear(self, layer, runtime):
        formula = ort_kernels(layer, "qlinear_concat")
        out, axis = layer.output_params, layer.layer.axis

        params = [(scalar(p, "scale"), scalar(p)) for p in layer.input_params]

        def run(*xs):
            return formula([(x, s, z) for x, (s, z) in zip(xs, params)], scalar(out, "scale"), scalar(out),
                           axis=axis)
        return run
