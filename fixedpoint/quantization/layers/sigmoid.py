"""Quantized sigmoid (affine only)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .leaky_relu import ort_lookup_table
from .ort_graph import float_route, formula, ort_graph


@register_affine_kind("Sigmoid")
class AffineSigmoidKind(AffineKind):
    """Affine sigmoid. Formulas by recipe "compute": "ort-graph" (QLinearSigmoid, a 256-entry table of
    MLAS's logistic, or the float Sigmoid between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearSigmoid": ort_lookup_table("sigmoid")}), "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
