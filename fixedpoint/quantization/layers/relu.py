"""Quantized ReLU: the maximum with the stored zero."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind


@register_kind("ReLU")
class ReLUKind(QuantizedKind):
    def run(self, ql, x):
        return np.maximum(x, np.int8(0))


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
class AffineReLUKind(AffineKind):
    """Affine ReLU and clipped ReLU. Data: optional `fused` (True: the layer before applied it as a
    fused activation with its requantization; the integers pass unchanged). Formulas by recipe
    "compute"."""

    COMPUTE = {"litert": lambda layer, runtime: (_litert_relu if layer.type_name == "ReLU"
                                                 else _litert_relu6)(layer, runtime)}

    def bind(self, layer, runtime):
        if getattr(layer, "fused", False):
            return lambda x: x
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
