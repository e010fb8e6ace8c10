"""LiteRT with its XNNPACK delegate (the default resolver, AUTO): XNNPACK computes the ops and
parameters it takes, the builtin optimized kernels the rest."""
from . import litert_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="litert", family="litert", isa=None,
    description=f"LiteRT {common.LITERT_VERSION}, XNNPACK delegate where it applies, optimized kernels "
                f"elsewhere (the default resolver, AUTO)",
    quantize=common.quantize("xnnpack"),
    dequantize=common.dequantize("xnnpack"),
    ops=common.ops("xnnpack"),
    options={"experimental_op_resolver_type": "AUTO"},
)
