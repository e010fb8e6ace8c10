"""Quantized softmax (affine only)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .ort_graph import float_route, formula, ort_graph, ort_kernels, scalar


def _ort_qlinear_softmax(layer, runtime):
    """ORT's com.microsoft QLinearSoftmax (qlinear_softmax.cc; kernels.onnxruntime.qlinear_softmax), with
    the node's opset (its axis semantics)."""
    function = ort_kernels(layer, "qlinear_softmax")
    (px,), py = layer.input_params, layer.output_params
    sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)
    axis, opset = layer.layer.axis, int(getattr(layer, "ort_opset", 13))
    return lambda x: function(x, sx, zx, sy, zy, axis=axis, opset=opset)


@register_affine_kind("Softmax")
class AffineSoftmaxKind(AffineKind):
    """Affine softmax. Formulas by recipe "compute": "ort-graph" (QLinearSoftmax, or the float Softmax
    between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearSoftmax": _ort_qlinear_softmax}), "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
