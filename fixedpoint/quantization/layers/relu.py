"""Quantized ReLU: the maximum with the stored zero."""
from __future__ import annotations

import numpy as np

from .base import QuantizedKind, register_affine_kind, register_kind
from .ort_graph import OrtGraphKind, float_route


@register_kind("ReLU")
class ReLUKind(QuantizedKind):
    def run(self, ql, x):
        return np.maximum(x, np.int8(0))


@register_affine_kind("ReLU", "ClippedReLU")
class AffineClampKind(OrtGraphKind):
    """ReLU / Clip before a QuantizeLinear, moved after it: the clamp of the quantized value to
    [Q(low), Q(high)]. Q is monotone, so Q(clip(y)) = clamp(Q(y), Q(low), Q(high)) exactly, and this
    holds for the float and the fused paths alike (relu_quantizelinear.cc, clip_quantizelinear.cc)."""

    ORT_OPS = {"Clamp": "bind_clamp"}

    def bind_clamp(self, layer, runtime):
        from ...runtime.boundary import quantize
        out = layer.output_params
        if layer.input_params[0] != out:
            return float_route(layer, runtime)
        high = getattr(layer.layer, "ceiling", None)
        lo = quantize(runtime, np.zeros(1, np.float32), out)[0]
        hi = out.qmax if high is None else quantize(runtime, np.array([high], np.float32), out)[0]
        lo, hi = out.dtype.type(lo), out.dtype.type(hi)

        def run(x):
            y = np.maximum(x, lo)
            return np.minimum(y, hi, out=y)
        return run
