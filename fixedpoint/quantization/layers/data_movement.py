"""Flatten, reshape, dropout (inference) and identity: the stored integers are passed or reshaped."""
from __future__ import annotations

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, formula, moving, ort_graph


@register_kind("Flatten", "Reshape", "Dropout", "Identity")
class DataMovementKind(QuantizedKind):
    """Flatten, reshape, dropout (inference), identity: the int8 tensor is passed or reshaped."""

    def run(self, ql, x):
        return ql.layer.forward(x)


@register_affine_kind("Flatten", "Reshape", "Transpose", "Dropout", "Identity", "Resize2D")
class AffineDataMovementKind(AffineKind):
    """Flatten, Reshape, Transpose, Dropout, Identity and nearest Resize on affine integers. Formulas by
    recipe "compute": "ort-graph" (ORT drops their DQ/Q pair; an Identity also stands for a
    QuantizeLinear of a float tensor, quantized on entry), "float"."""

    COMPUTE = {"ort-graph": ort_graph({op: moving(lambda layer: layer.layer.forward) for op in (
        "Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Resize")}),
        "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
