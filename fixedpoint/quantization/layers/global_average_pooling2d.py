"""Quantized global average pooling: one integer sum per channel, one rounding division."""
from __future__ import annotations

from ... import kernels
from .base import QuantizedKind, register_affine_kind, register_kind
from .ort_graph import OrtGraphKind, ort_kernels, scalar


@register_kind("GlobalAveragePooling2D")
class GlobalAveragePoolingKind(QuantizedKind):
    def run(self, ql, x):
        ql.layer._check(x.shape)
        return kernels.global_avg_pool(x, rounding=ql.rounding)


@register_affine_kind("GlobalAveragePooling2D")
class AffineGlobalAveragePoolingKind(OrtGraphKind):
    """Affine global average pooling (com.microsoft QLinearGlobalAveragePool, NCHW): ORT's formula
    (qlgavgpool.cpp)."""

    ORT_OPS = {"QLinearGlobalAveragePool": "bind_qlinear"}

    def bind_qlinear(self, layer, runtime):
        formula = ort_kernels(layer, "qlinear_global_average_pool")
        (px,), py = layer.input_params, layer.output_params

        sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)

        def run(x):
            layer.layer._check(x.shape)
            return formula(x, sx, zx, sy, zy)
        return run
