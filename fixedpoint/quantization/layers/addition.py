"""Quantized addition: exact alignment of the binary points, one rounding shift."""
from __future__ import annotations

import numpy as np

from ... import kernels
from .base import QuantizedKind, register_affine_kind, register_kind, requantize
from .ort_graph import OrtGraphKind, ort_kernels, scalar


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
class AffineAdditionKind(OrtGraphKind):
    """Affine addition of two tensors (ONNX QLinearAdd): ORT's float formula (qladd.cpp)."""

    ORT_OPS = {"QLinearAdd": "bind_qlinear"}
    FORMULA = "qlinear_add"

    def check(self, layer):
        if len(layer.input_params) != 2 or any(p.per_channel for p in [*layer.input_params, layer.output_params]):
            raise ValueError(f"layer {layer.name!r}: needs two inputs and per-tensor parameters")

    def bind_qlinear(self, layer, runtime):
        formula = ort_kernels(layer, self.FORMULA)
        (pa, pb), pc = layer.input_params, layer.output_params

        sa, za, sb, zb = scalar(pa, "scale"), scalar(pa), scalar(pb, "scale"), scalar(pb)
        sc, zc = scalar(pc, "scale"), scalar(pc)

        def run(a, b):
            return formula(a, sa, za, b, sb, zb, sc, zc)
        return run
