"""Quantized element-wise multiplication: an exact int64 product, one rounding shift."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind, requantize
from .litert_common import litert_binary


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
class AffineMultiplicationKind(AffineKind):
    """Affine multiplication (TFLite MUL: mul.cc, reference_integer_ops::Mul,
    optimized_integer_ops::Mul, XNNPACK qs8 vmul). Data: optional `activation`. Formulas by recipe
    "compute"."""

    COMPUTE = {"litert": litert_binary("mul")}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
