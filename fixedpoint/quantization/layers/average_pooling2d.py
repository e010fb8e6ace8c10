"""Quantized average pooling: integer window sums, one rounding division."""
from __future__ import annotations

from ... import kernels
from ...nn.functional import resolve_padding
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .max_pooling2d import _litert_pool


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


@register_affine_kind("AveragePooling2D")
class AffineAveragePoolingKind(AffineKind):
    """Affine average pooling (padding excluded from the count). Data: optional `activation`.
    Formulas by recipe "compute"."""

    COMPUTE = {"litert": _litert_pool("average_pool2d")}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
