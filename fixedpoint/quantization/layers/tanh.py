"""Affine tanh layers (LiteRT TANH)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind


def _litert_tanh(layer, runtime):
    """TFLite TANH (activations.cc TanhEval: a 256-entry table; XNNPACK qs8 tanh)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    function = litert().tanh
    return lambda x: from_tflite(function(to_tflite(x), **kw))


@register_affine_kind("Tanh")
class AffineTanhKind(AffineKind):
    """Affine Tanh: formulas by recipe "compute"."""

    COMPUTE = {"litert": _litert_tanh}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
