"""ADD, SUB, MUL of two run-time tensors (NumPy broadcasting), with a fused activation."""
from __future__ import annotations

from ...nn.layers import AdditionLayer, MultiplicationLayer, SubtractionLayer
from ..registry import register

LAYERS = {"ADD": AdditionLayer, "SUB": SubtractionLayer, "MUL": MultiplicationLayer}


@register("ADD", "SUB", "MUL")
def binary(imp, op):
    for k in (0, 1):
        t = imp.tensor(op, k)
        if t.data is not None:
            imp.fail(op, f"input {k} ({t.name!r}) is a constant; {op.op} of a run-time tensor and a "
                         f"constant is not supported")
    a, b = imp.value(op, 0), imp.value(op, 1)
    if len(a.shape) != len(b.shape):
        imp.fail(op, f"inputs of rank {len(a.shape)} and {len(b.shape)}: broadcasting across ranks is "
                     f"not supported")
    order = "nchw" if len(a.shape) == 4 else "native"
    a, b = imp.value(op, 0, order), imp.value(op, 1, order)
    code = op.options.get("fused_activation_function", 0)
    value = imp.output(op, LAYERS[op.op](imp.name_for(op), 2), [a, b], order,
                       {"tflite_op": op.op, "activation": imp.activation_name(op, code)})
    imp.activation(op, value, code)
