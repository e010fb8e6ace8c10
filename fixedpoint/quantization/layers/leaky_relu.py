"""Quantized leaky ReLU: negative inputs times a 16-bit scale, one rounding shift."""
from __future__ import annotations

import math

import numpy as np


from .base import AffineKind, QuantizedKind, quantize_scaled, register_affine_kind, register_kind, requantize
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


@register_kind("LeakyReLU")
class LeakyReLUKind(QuantizedKind):
    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        scale = float(layer.scale)
        if scale < 0:
            raise ValueError(f"leaky ReLU {layer.name!r}: a negative scale ({scale}) has no "
                             f"range-preserving int8 form; skip the layer (skip_layers)")
        if scale == 0:
            return {"scale_stored": 0, "scale_fraction_length": 0}
        f = 14 - (math.frexp(scale)[1] - 1)
        stored = int(quantize_scaled(np.array([scale]), f, "Round", np.int16)[0])
        return {"scale_stored": stored, "scale_fraction_length": f}

    def run(self, ql, x):
        negative = requantize(x.astype(np.int32) * np.int32(ql.scale_stored),
                              ql.scale_fraction_length, ql.rounding)
        return np.where(x >= 0, x, negative)


def ort_lookup_table(function_name, arguments=lambda layer: {}):
    """ORT's table-driven activations (QLinearLeakyRelu, QLinearSigmoid: qlinear_lookup_table.cc): the
    256-entry table built once at bind (kernels.onnxruntime.qlinear_lookup_table), applied per call."""
    def bind(layer, runtime):
        build = ort_kernels(layer, "qlinear_lookup_table")
        apply = ort_kernels(layer, "apply_lookup_table")
        (px,), py = layer.input_params, layer.output_params
        table = build(function_name, scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py),
                      dtype=py.dtype, **arguments(layer))
        return lambda x: apply(x, table)
    return bind


def _litert_leaky_relu(layer, runtime):
    """TFLite LEAKY_RELU (activations.cc LeakyReluEval, reference_ops::QuantizeLeakyRelu; XNNPACK
    qs8 vlrelu where the delegate takes it)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(alpha=float(layer.layer.scale), **quant_args(layer.input_params[0], "input"),
              **quant_args(layer.output_params, "output"), resolver=resolver(layer, runtime))
    leaky = litert().leaky_relu
    return lambda x: from_tflite(leaky(to_tflite(x), **kw))


@register_affine_kind("LeakyReLU")
class AffineLeakyReLUKind(AffineKind):
    """Affine leaky ReLU (the slope is the float layer's `scale`). Formulas by recipe "compute":
    "ort-graph" (QLinearLeakyRelu, or the float LeakyRelu between DQ and Q), "float", "litert" (TFLite
    LEAKY_RELU)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearLeakyRelu": ort_lookup_table(
        "leaky_relu", lambda layer: {"alpha": float(layer.layer.scale)})}), "float": float_route,
        "litert": _litert_leaky_relu}

