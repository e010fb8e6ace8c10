"""Quantized average pooling: integer window sums, one rounding division."""
from __future__ import annotations

from ... import kernels
from ...nn.functional import resolve_padding
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .max_pooling2d import litert_pool
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


@register_kind("AveragePooling2D")
class AveragePoolingKind(QuantizedKind):
    """Integer window sum, then one rounding division by the element count."""

    def build(self, layer, input_fraction_lengths, output_fraction_length, options):
        if layer.ceil_mode:
            raise ValueError(f"average pooling {layer.name!r}: ceil_mode windows have no integer "
                             f"kernel; keep the layer in float with skip_layers=[{layer.name!r}]")
        return {}

    def run(self, ql, x):
        layer = ql.layer
        pads = resolve_padding(layer.padding, x.shape[2:], layer.pool_size, layer.stride, (1, 1))
        return kernels.avg_pool2d(x, layer.pool_size, layer.stride, pads,
                                  count_include_pad=layer.count_include_pad, rounding=ql.rounding)


def _ort_qlinear_average_pool(layer, runtime):
    """ORT's com.microsoft QLinearAveragePool (qlinear_pool.cc; kernels.onnxruntime.qlinear_average_pool)."""
    function = ort_kernels(layer, "qlinear_average_pool")
    pool = layer.layer
    (px,), py = layer.input_params, layer.output_params
    sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)

    def run(x):
        pads = resolve_padding(pool.padding, x.shape[2:], pool.pool_size, pool.stride, (1, 1))
        return function(x, sx, zx, sy, zy, kernel_shape=pool.pool_size, strides=pool.stride, pads=list(pads),
                        count_include_pad=pool.count_include_pad, ceil_mode=pool.ceil_mode)
    return run


@register_affine_kind("AveragePooling2D")
class AffineAveragePoolingKind(AffineKind):
    """Affine average pooling. Formulas by recipe "compute": "ort-graph" (QLinearAveragePool, or the
    float AveragePool between DQ and Q), "float", "litert" (TFLite AVERAGE_POOL_2D, padding excluded
    from the count; data: optional `activation`)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearAveragePool": _ort_qlinear_average_pool}), "float": float_route,
               "litert": litert_pool("average_pool2d")}

