"""LiteRT with its reference kernels (BUILTIN_REF)."""
from . import litert_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="litert-reference", family="litert", isa=None,
    description=f"LiteRT {common.LITERT_VERSION}, reference kernels (BUILTIN_REF)",
    quantize=common.quantize("reference"),
    dequantize=common.dequantize("reference"),
    ops=common.ops("reference"),
    options={"experimental_op_resolver_type": "BUILTIN_REF"},
)
