"""Quantized ReLU: the maximum with the stored zero."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, formula, ort_graph


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

    def run(x):
        y = np.maximum(x, lo)
        return np.minimum(y, hi, out=y)
    return run


@register_affine_kind("ReLU", "ClippedReLU")
class AffineClampKind(AffineKind):
    """ReLU and clipped ReLU on affine integers. Formulas by recipe "compute": "ort-graph" (the clamp
    after the Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"Clamp": _ort_clamp}), "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
