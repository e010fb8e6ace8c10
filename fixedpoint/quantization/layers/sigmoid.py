"""Quantized sigmoid (affine only): ONNX Runtime's QLinearSigmoid table or the float operator."""
from __future__ import annotations

from .base import register_affine_kind
from .leaky_relu import AffineLeakyReLUKind


@register_affine_kind("Sigmoid")
class AffineSigmoidKind(AffineLeakyReLUKind):
    """Affine sigmoid (com.microsoft QLinearSigmoid): a 256-entry table of MLAS's logistic."""

    ORT_OPS = {"QLinearSigmoid": "bind_table"}
    TABLE = "sigmoid"

    def table_arguments(self, layer):
        return {}
