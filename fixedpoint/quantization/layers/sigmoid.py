"""Quantized sigmoid (affine only)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .leaky_relu import ort_lookup_table
from .ort_graph import float_route, ort_graph


def _litert_logistic(layer, runtime):
    """TFLite LOGISTIC (activations.cc SigmoidEval: a 256-entry table; XNNPACK qs8 sigmoid)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    function = litert().logistic
    return lambda x: from_tflite(function(to_tflite(x), **kw))


@register_affine_kind("Sigmoid")
class AffineSigmoidKind(AffineKind):
    """Affine sigmoid. Formulas by recipe "compute": "ort-graph" (QLinearSigmoid, a 256-entry table of
    MLAS's logistic, or the float Sigmoid between DQ and Q), "float", "litert" (TFLite LOGISTIC)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearSigmoid": ort_lookup_table("sigmoid")}), "float": float_route,
               "litert": _litert_logistic}

