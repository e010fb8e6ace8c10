"""Quantized concatenation: each input requantized to the output's fraction length."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind, requantize
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


@register_kind("Concatenation")
class ConcatenationKind(QuantizedKind):
    """Every input requantized to the output exponent, then concatenated."""

    own_exponent = True

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        return {"input_shifts": [f - output_fraction_length for f in input_fraction_lengths]}

    def run(self, ql, *inputs):
        parts = [q if s == 0 else requantize(q.astype(np.int32), s, ql.rounding)
                 for q, s in zip(inputs, ql.input_shifts)]
        return np.concatenate(parts, axis=ql.layer.axis)


def _ort_qlinear_concat(layer, runtime):
    """ORT's QLinearConcat (qlinear_concat.cc): each input requantized through ORT's table, or copied
    when its parameters equal the output's (kernels.onnxruntime.qlinear_concat)."""
    function = ort_kernels(layer, "qlinear_concat")
    out, axis = layer.output_params, layer.layer.axis
    params = [(scalar(p, "scale"), scalar(p)) for p in layer.input_params]

    def run(*xs):
        return function([(x, s, z) for x, (s, z) in zip(xs, params)], scalar(out, "scale"), scalar(out),
                        axis=axis)
    return run


def _litert_concatenation(layer, runtime):
    """TFLite int8 CONCATENATION copies: its Prepare requires every input to share the output's
    scale and zero point and the fused activation to be NONE (tflite/kernels/concatenation.cc);
    XNNPACK's concatenate copies too."""
    from ...runtime.profile import RuntimeNotSupportedError
    from .litert_common import activation, same_params
    same_params(layer, "LiteRT's int8 CONCATENATION")
    if activation(layer) != "NONE":
        raise RuntimeNotSupportedError(f"layer {layer.name!r}: LiteRT's CONCATENATION takes no fused "
                                       f"activation, got {activation(layer)}")
    axis = layer.layer.axis
    return lambda *inputs: np.concatenate(inputs, axis=axis)


@register_affine_kind("Concatenation")
class AffineConcatenationKind(AffineKind):
    """Affine concatenation along the float layer's axis. Formulas by recipe "compute": "ort-graph"
    (QLinearConcat, or the float Concat between DQ and Q), "float", "litert" (TFLite CONCATENATION;
    data: optional `activation`)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearConcat": _ort_qlinear_concat}), "float": float_route,
               "litert": _litert_concatenation}

