"""Quantized batch normalization (affine only): ONNX Runtime has no integer form; it runs the float operator
between DequantizeLinear and QuantizeLinear."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .ort_graph import float_route, ort_graph


@register_affine_kind("BatchNormalization")
class AffineBatchNormalizationKind(AffineKind):
    """Formulas by recipe "compute": "ort-graph" (always the float operator between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({}), "float": float_route}

