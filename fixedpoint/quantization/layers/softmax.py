"""Quantized softmax (affine only): ONNX Runtime's QLinearSoftmax or the float operator."""
from __future__ import annotations

from .base import register_affine_kind
from .ort_graph import OrtGraphKind, ort_kernels, scalar


@register_affine_kind("Softmax")
class AffineSoftmaxKind(OrtGraphKind):
    """Affine softmax (com.microsoft QLinearSoftmax): ORT's table-and-sum formula (qlinear_softmax.cc)."""

    ORT_OPS = {"QLinearSoftmax": "bind_qlinear"}

    def bind_qlinear(self, layer, runtime):
        formula = ort_kernels(layer, "qlinear_softmax")
        (px,), py = layer.input_params, layer.output_params
        axis = layer.layer.axis
        opset = int(getattr(layer, "ort_opset", 13))

        sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)

        def run(x):
            return formula(x, sx, zx, sy, zy, axis=axis, opset=opset)
        return run
