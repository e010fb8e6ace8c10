"""Operator handlers, one module per op family; importing this package registers them all (the float
ones in `registry.HANDLERS`, the QOperator ones of `qoperator` in `registry.QUANTIZED_HANDLERS`)."""
from . import activation, conv, elementwise, gemm, normalization, pooling, qoperator, shape  # noqa: F401
