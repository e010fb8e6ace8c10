"""Quantized element-wise multiplication: an exact int64 product, one rounding shift."""
from __future__ import annotations

import numpy as np

from .base import QuantizedKind, register_affine_kind, register_kind, requantize
from .addition import AffineAdditionKind, ort_qlinear_binary
from .litert_common import litert_binary
from .ort_graph import float_route, ort_graph


@register_kind("Multiplication")
class MultiplicationKind(QuantizedKind):
    """Exact int64 product at the summed fraction length, one rounding shift."""

    own_exponent = True
    MAX_INPUTS = 7  # 7 int8 factors stay below 2^49

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        if len(input_fraction_lengths) > self.MAX_INPUTS:
            raise ValueError(f"multiplication {layer.name!r}: at most {self.MAX_INPUTS} inputs run "
                             f"quantized, got {len(input_fraction_lengths)}; skip the layer")
        return {"shift": sum(input_fraction_lengths) - output_fraction_length}

    def run(self, ql, *inputs):
        product = inputs[0].astype(np.int64)
        for q in inputs[1:]:
            product = product * q
        return requantize(product, ql.shift, ql.rounding)


@register_affine_kind("Multiplication")
class AffineMultiplicationKind(AffineAdditionKind):
    """Affine product of two tensors. Formulas by recipe "compute": "ort-graph" (QLinearMul, or the
    float Mul between DQ and Q), "float", "litert" (TFLite MUL: mul.cc, reference_integer_ops::Mul,
    optimized_integer_ops::Mul, XNNPACK qs8 vmul; data: optional `activation`)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearMul": ort_qlinear_binary("qlinear_mul")}),
               "float": float_route, "litert": litert_binary("mul")}
