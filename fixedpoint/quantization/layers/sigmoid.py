"""Affine sigmoid layers (LiteRT LOGISTIC)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind


def _litert_logistic(layer, runtime):
    """TFLite LOGISTIC (activations.cc SigmoidEval: a 256-entry table; XNNPACK qs8 sigmoid)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    function = litert().logistic
    return lambda x: from_tflite(function(to_tflite(x), **kw))


@register_affine_kind("Sigmoid")
class AffineSigmoidKind(AffineKind):
    """Affine Sigmoid: formulas by recipe "compute"."""

    COMPUTE = {"litert": _litert_logistic}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
