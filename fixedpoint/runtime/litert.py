"""LiteRT with its XNNPACK delegate (the default resolver, AUTO)."""
from . import litert_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="litert", family="litert", isa=None,
    description=f"LiteRT {common.LITERT_VERSION}, XNNPACK delegate (the default resolver, AUTO)",
    quantize=common.QUANTIZE,
    ops={},
)
