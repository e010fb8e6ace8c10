"""Quantized addition: exact alignment of the binary points, one rounding shift."""
from __future__ import annotations

import numpy as np

from ... import kernels
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind, requantize
from .litert_common import litert_binary
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


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


def ort_qlinear_binary(function_name):
    """ORT's QLinearAdd / QLinearMul of two tensors (kernels.onnxruntime.qlinear_add / qlinear_mul:
    qlinear_binary_op.cc, qladd.cpp, qlmul.cpp), scales and zero points bound once."""
    def bind(layer, runtime):
        function = ort_kernels(layer, function_name)
        (pa, pb), pc = layer.input_params, layer.output_params
        sa, za, sb, zb = scalar(pa, "scale"), scalar(pa), scalar(pb, "scale"), scalar(pb)
        sc, zc = scalar(pc, "scale"), scalar(pc)
        return lambda a, b: function(a, sa, za, b, sb, zb, sc, zc)
    return bind


def ort_qlinear_binary_constant(layer, runtime):
    """ORT's QLinearAdd / QLinearMul of a tensor and a constant operand (a per-channel float layer of the
    float model: the affine convolution / fully connected kinds hold it). Data: `operand` (the constant's
    integers, in its ONNX shape: numpy broadcasting against the input), `operand_params` (per tensor),
    `operand_first` (the constant is ORT's input A: the formula is not symmetric in A and B), `operand_op`
    ("Add" or "Mul": the ONNX operator)."""
    function = ort_kernels(layer, {"Add": "qlinear_add", "Mul": "qlinear_mul"}[str(layer.operand_op)])
    c, pc = layer.operand, layer.operand_params
    (px,), py = layer.input_params, layer.output_params
    sc, zc, sx, zx = scalar(pc, "scale"), scalar(pc), scalar(px, "scale"), scalar(px)
    sy, zy = scalar(py, "scale"), scalar(py)
    if layer.operand_first:
        return lambda x: function(c, sc, zc, x, sx, zx, sy, zy)
    return lambda x: function(x, sx, zx, c, sc, zc, sy, zy)


def check_constant_operand(layer) -> None:
    """Validate `operand`, `operand_params` and `operand_first` (see ort_qlinear_binary_constant)."""
    from ..qparams import QuantParams
    c, pc = layer.operand, getattr(layer, "operand_params", None)
    if not isinstance(pc, QuantParams) or pc.per_channel or c.dtype != pc.dtype or c.dtype not in (
            np.dtype(np.int8), np.dtype(np.uint8)):
        raise ValueError(f"layer {layer.name!r}: operand must be int8/uint8 integers with per-tensor operand_params "
                         f"of their type, got {c.dtype} and {pc!r}")
    if len(layer.input_params) != 1 or layer.input_params[0] is None or layer.output_params is None or any(
            p.per_channel for p in (layer.input_params[0], layer.output_params)):
        raise ValueError(f"layer {layer.name!r}: a binary operation with a constant operand needs one integer input "
                         f"and an integer output, per tensor")
    if not isinstance(getattr(layer, "operand_first", None), (bool, np.bool_)):
        raise ValueError(f"layer {layer.name!r}: operand_first must be a bool")
    if getattr(layer, "operand_op", None) not in ("Add", "Mul"):
        raise ValueError(f"layer {layer.name!r}: operand_op must be 'Add' or 'Mul', got {getattr(layer, 'operand_op', None)!r}")


@register_affine_kind("Addition")
class AffineAdditionKind(AffineKind):
    """Affine addition of two tensors. Formulas by recipe "compute": "ort-graph" (QLinearAdd, or the
    float Add between DQ and Q), "float", "litert" (TFLite ADD: add.cc, reference_integer_ops::Add,
    optimized_integer_ops::Add, XNNPACK qs8 vadd; data: optional `activation`, a fused TFLite
    activation)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearAdd": ort_qlinear_binary("qlinear_add")}),
               "float": float_route, "litert": litert_binary("add")}

    def check(self, layer):
        if len(layer.input_params) != 2 or any(p.per_channel for p in [*layer.input_params, layer.output_params]):
            raise ValueError(f"layer {layer.name!r}: needs two inputs and per-tensor parameters")
