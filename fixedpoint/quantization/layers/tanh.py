"""Quantized tanh (affine only): ONNX Runtime has no integer form; it runs the float operator
between DequantizeLinear and QuantizeLinear."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .ort_graph import float_route, formula, ort_graph


@register_affine_kind("Tanh")
class AffineTanhKind(AffineKind):
    """Formulas by recipe "compute": "ort-graph" (always the float operator between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({}), "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
