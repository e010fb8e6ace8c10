"""Quantized ReLU: the maximum with the stored zero."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, ort_graph


@register_kind("ReLU")
class ReLUKind(QuantizedKind):
    def run(self, ql, x):
        return np.maximum(x, np.int8(0))


def _ort_clamp(layer, runtime):
    """A ReLU / Clip before a QuantizeLinear, moved after it: the clamp of the quantized value to
    [Q(low), Q(high)]. Q is monotone, so Q(clip(y)) = clamp(Q(y), Q(low), Q(high)) exactly, in the
    float and the fused graphs alike (relu_quantizelinear.cc, clip_quantizelinear.cc)."""
    from ...runtime.boundary import quantize
    out = layer.output_params
    if layer.input_params[0] != out:
        return float_route(layer, runtime)
    high = getattr(layer.layer, "ceiling", None)
    lo = out.dtype.type(quantize(runtime, np.zeros(1, np.float32), out)[0])
    hi = out.dtype.type(out.qmax if high is None else quantize(runtime, np.array([high], np.float32), out)[0])

    def run(x):   # np.clip: minimum(maximum(x, lo), hi) in one pass (~10x numpy's maximum on bytes)
        return np.clip(x, lo, hi)
    return run


def _litert_relu(layer, runtime):
    """TFLite RELU (activations.cc ReluEval → QuantizedReluX): requantize, clamp at the zero point."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    relu = litert().relu
    return lambda x: from_tflite(relu(to_tflite(x), **kw))


def _litert_relu6(layer, runtime):
    """TFLite RELU6 (activations.cc Relu6Eval → QuantizedReluX): requantize, clamp to [0, 6]."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    if layer.layer.ceiling != 6.0:
        from ...runtime.profile import RuntimeNotSupportedError
        raise RuntimeNotSupportedError(f"layer {layer.name!r}: LiteRT clips at 6 (RELU6), not at "
                                       f"{layer.layer.ceiling}")
    kw = dict(**quant_args(layer.input_params[0], "input"), **quant_args(layer.output_params, "output"),
              resolver=resolver(layer, runtime))
    relu6 = litert().relu6
    return lambda x: from_tflite(relu6(to_tflite(x), **kw))


@register_affine_kind("ReLU", "ClippedReLU")
class AffineClampKind(AffineKind):
    """ReLU and clipped ReLU on affine integers. Data: optional `fused` (True: the layer before applied
    it as a fused activation with its requantization, as TFLite does; the integers pass unchanged).
    Formulas by recipe "compute": "ort-graph" (the clamp after the Q), "float", "litert" (TFLite
    RELU / RELU6: requantize, then clamp)."""

    COMPUTE = {"ort-graph": ort_graph({"Clamp": _ort_clamp}), "float": float_route,
               "litert": lambda layer, runtime: (_litert_relu if layer.type_name == "ReLU"
                                                 else _litert_relu6)(layer, runtime)}

    def bind(self, layer, runtime):
        if getattr(layer, "fused", False):
            return lambda x: x
        return super().bind(layer, runtime)
