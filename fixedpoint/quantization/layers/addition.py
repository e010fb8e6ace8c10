"""Quantized addition: exact alignment of the binary points, one rounding shift."""
from __future__ import annotations

import numpy as np

from ... import kernels
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind, requantize
from .litert_common import litert_binary


@register_kind("Addition")
class AdditionKind(QuantizedKind):
    """Exact alignment to the finest input exponent, one int64 sum, one rounding shift."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        finest = max(input_fraction_lengths)
        return {"alignment_shifts": [finest - f for f in input_fraction_lengths],
                "shift": finest - output_fraction_length}

    def run(self, ql, *inputs):
        if len(inputs) == 2 and inputs[0].shape == inputs[1].shape:   # the same, in one kernel
            (fa, fb), f_out = ql.input_fraction_lengths, ql.output_fraction_length
            return kernels.add_shifted(inputs[0], fa, inputs[1], fb, out_fraction_length=f_out,
                                       rounding=ql.rounding, overflow="Saturate", dtype=np.int8)
        total = sum(np.left_shift(q.astype(np.int64), s) for q, s in zip(inputs, ql.alignment_shifts))
        return requantize(total, ql.shift, ql.rounding)


@register_affine_kind("Addition")
class AffineAdditionKind(AffineKind):
    """Affine addition (TFLite ADD: add.cc, reference_integer_ops::Add, optimized_integer_ops::Add,
    XNNPACK qs8 vadd). Data: optional `activation` (a fused TFLite activation). Formulas by recipe
    "compute"."""

    COMPUTE = {"litert": litert_binary("add")}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
