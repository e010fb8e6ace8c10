"""Affine hard swish layers (LiteRT HARD_SWISH)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind


def _litert_hard_swish(layer, runtime):
    """TFLite HARD_SWISH (activations.cc HardSwishEval, reference_ops::HardSwish)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    function = litert().hard_swish
    return lambda x: from_tflite(function(to_tflite(x), **kw))


@register_affine_kind("HardSwish")
class AffineHardSwishKind(AffineKind):
    """Affine HardSwish: formulas by recipe "compute"."""

    COMPUTE = {"litert": _litert_hard_swish}

