"""Quantized tanh (affine only): ONNX Runtime has no integer form; it runs the float operator
between DequantizeLinear and QuantizeLinear."""
from __future__ import annotations

from .base import register_affine_kind
from .ort_graph import OrtGraphKind


@register_affine_kind("Tanh")
class AffineTanhKind(OrtGraphKind):
    """Float between DQ and Q in every ORT graph (no QLinear form)."""

    ORT_OPS = {}
