"""Quantized tanh (affine only): ONNX Runtime has no integer form; it runs the float operator
between DequantizeLinear and QuantizeLinear."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .ort_graph import float_route, ort_graph


def _litert_tanh(layer, runtime):
    """TFLite TANH (activations.cc TanhEval: a 256-entry table; XNNPACK qs8 tanh)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    function = litert().tanh
    return lambda x: from_tflite(function(to_tflite(x), **kw))


@register_affine_kind("Tanh")
class AffineTanhKind(AffineKind):
    """Formulas by recipe "compute": "ort-graph" (always the float operator between DQ and Q), "float",
    "litert" (TFLite TANH, a 256-entry table)."""

    COMPUTE = {"ort-graph": ort_graph({}), "float": float_route, "litert": _litert_tanh}

