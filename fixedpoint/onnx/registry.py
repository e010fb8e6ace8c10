"""The operator registry: ONNX op type -> handler `(importer, node, attributes) -> None`.

One module per op family under `ops/` registers its handlers here (as ONNX's reference evaluator
keeps one small file per operator); the importer looks an op up and calls its handler, which adds
layers with `importer.add` or aliases tensors with `importer.alias`.
"""
from __future__ import annotations

from typing import Callable

HANDLERS: dict[str, Callable] = {}
# QOperator nodes (QLinearConv, com.microsoft QGemm, ...): handlers of the quantized importer only
QUANTIZED_HANDLERS: dict[str, Callable] = {}

# Stand-in for the batch size in folded shape arithmetic (`Shape` of a run-time tensor). It lets a
# `Reshape` built from `x.shape[0]` keep the batch axis, so the network works for any batch size;
# it is large and odd so that it cannot be confused with a real dimension.
BATCH = 2_147_483_629


def register(*op_types: str, handler: Callable | None = None, registry: dict | None = None):
    """Register `handler` for `op_types` (in `HANDLERS`, or `registry`); without `handler`, a
    decorator."""
    table = HANDLERS if registry is None else registry

    def add(fn):
        for op_type in op_types:
            if op_type in table:
                raise TypeError(f"a handler for ONNX {op_type!r} is already registered")
            table[op_type] = fn
        return fn
    return add if handler is None else add(handler)


def register_quantized(*op_types: str, handler: Callable | None = None):
    """Register a QOperator handler (used by the quantized importer only)."""
    return register(*op_types, handler=handler, registry=QUANTIZED_HANDLERS)


def simple(cls, **fixed):
    """A handler adding one layer of class `cls` on the node's first input."""
    def handler(imp, node, attrs):
        imp.add(cls(imp.layer_name(node), **fixed), [imp.runtime_input(node)], node.output[0])
    return handler


def axis_of(imp, node, axis, rank):
    """`axis` normalised for a tensor of `rank`; the batch axis 0 is refused."""
    if rank is None or not -rank <= axis < rank:
        imp.fail(node, f"axis {axis} out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        imp.fail(node, "operations along the batch axis 0 are not supported")
    return axis
