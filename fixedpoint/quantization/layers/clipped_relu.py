"""Quantized clipped ReLU: a clamp of the stored integers to [0, the ceiling's stored integer]."""
from __future__ import annotations

import math

import numpy as np

from .base import INT8_MAX, INT8_MIN, AffineKind, QuantizedKind, register_affine_kind, register_kind


@register_kind("ClippedReLU")
class ClippedReLUKind(QuantizedKind):
    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        ceiling = math.floor(math.ldexp(layer.ceiling, input_fraction_lengths[0]))
        return {"clip_max": int(min(max(ceiling, INT8_MIN), INT8_MAX))}

    def run(self, ql, x):
        out = np.maximum(x, np.int8(0))   # np.clip costs twice as much on small arrays
        return np.minimum(out, np.int8(ql.clip_max), out=out)


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


@register_affine_kind("ClippedReLU")
class AffineClippedReLUKind(AffineKind):
    """Affine clipped ReLU. Data: optional `fused` (True: applied by the layer before as a fused
    activation; the integers pass unchanged). Formulas by recipe "formula"."""

    FORMULAS = {"litert": _litert_relu6}

    def bind(self, layer, runtime):
        if getattr(layer, "fused", False):
            return lambda x: x
        from .litert_common import formula
        return formula(self.FORMULAS, layer, runtime)
