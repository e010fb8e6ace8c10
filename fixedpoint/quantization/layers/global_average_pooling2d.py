"""Quantized global average pooling: one integer sum per channel, one rounding division."""
from __future__ import annotations

from ... import kernels
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, formula, ort_graph, ort_kernels, scalar


@register_kind("GlobalAveragePooling2D")
class GlobalAveragePoolingKind(QuantizedKind):
    def run(self, ql, x):
        ql.layer._check(x.shape)
        return kernels.global_avg_pool(x, rounding=ql.rounding)


def _ort_qlinear_global_average_pool(layer, runtime):
    """ORT's com.microsoft QLinearGlobalAveragePool, NCHW (qlgavgpool.cpp;
    kernels.onnxruntime.qlinear_global_average_pool)."""
    function = ort_kernels(layer, "qlinear_global_average_pool")
    (px,), py = layer.input_params, layer.output_params
    sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)

    def run(x):
        layer.layer._check(x.shape)
        return function(x, sx, zx, sy, zy)
    return run


@register_affine_kind("GlobalAveragePooling2D")
class AffineGlobalAveragePoolingKind(AffineKind):
    """Affine global average pooling. Formulas by recipe "compute": "ort-graph"
    (QLinearGlobalAveragePool, or the float GlobalAveragePool between DQ and Q), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearGlobalAveragePool": _ort_qlinear_global_average_pool}),
               "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
