"""Float operator handlers, one module per op family; importing this package registers them all."""
from . import activation, conv, elementwise, gemm, normalization, pooling, shape  # noqa: F401
