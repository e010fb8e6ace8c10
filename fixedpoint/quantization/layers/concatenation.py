"""Quantized concatenation: each input requantized to the output's fraction length."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind, requantize
from .ort_graph import float_route, formula, ort_graph, ort_kernels, scalar


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


def _ort_qlinear_concat(layer, runtime):
    """ORT's QLinearConcat (qlinear_concat.cc): each input requantized through ORT's table, or copied
    when its parameters equal the output's (kernels.onnxruntime.qlinear_concat)."""
    function = ort_kernels(layer, "qlinear_concat")
    out, axis = layer.output_params, layer.layer.axis
    params = [(scalar(p, "scale"), scalar(p)) for p in layer.input_params]

    def run(*xs):
        return function([(x, s, z) for x, (s, z) in zip(xs, params)], scalar(out, "scale"), scalar(out),
                        axis=axis)
    return run


@register_affine_kind("Concatenation")
class AffineConcatenationKind(AffineKind):
    """Affine concatenation. Formulas by recipe "compute": "ort-graph" (QLinearConcat, or the float
    Concat between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearConcat": _ort_qlinear_concat}), "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
