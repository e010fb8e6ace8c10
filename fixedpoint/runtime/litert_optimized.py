"""LiteRT with its builtin optimized kernels without delegates (BUILTIN_WITHOUT_DEFAULT_DELEGATES)."""
from . import litert_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="litert-optimized", family="litert", isa=None,
    description=f"LiteRT {common.LITERT_VERSION}, builtin optimized kernels without delegates (BUILTIN_WITHOUT_DEFAULT_DELEGATES)",
    quantize=common.quantize("optimized"),
    dequantize=common.dequantize("optimized"),
    ops=common.ops("optimized"),
    options={"experimental_op_resolver_type": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"},
)
