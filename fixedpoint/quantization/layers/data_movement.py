"""Flatten, reshape, dropout (inference) and identity: the stored integers are passed or reshaped."""
from __future__ import annotations

from .base import QuantizedKind, register_affine_kind, register_kind
from .ort_graph import OrtGraphKind, same_params_route


@register_kind("Flatten", "Reshape", "Dropout", "Identity")
class DataMovementKind(QuantizedKind):
    """Flatten, reshape, dropout (inference), identity: the int8 tensor is passed or reshaped."""

    def run(self, ql, x):
        return ql.layer.forward(x)


@register_affine_kind("Flatten", "Reshape", "Transpose", "Dropout", "Identity", "Resize2D")
class AffineDataMovementKind(OrtGraphKind):
    """Flatten, Reshape, Transpose, Dropout, Identity, nearest Resize on affine integers (ORT drops their
    DQ/Q pair);
    an Identity also stands for a QuantizeLinear of a float tensor (its input is quantized on entry)."""

    ORT_OPS = {op: "bind_move" for op in ("Flatten", "Reshape", "Transpose", "Identity",
                                           "Squeeze", "Unsqueeze", "Resize")}

    def bind_move(self, layer, runtime):
        return same_params_route(layer, runtime, layer.layer.forward)
