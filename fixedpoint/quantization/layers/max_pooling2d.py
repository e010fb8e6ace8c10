"""Quantized max pooling (windowed and global): the maximum of the stored integers."""
from __future__ import annotations

from ... import kernels
from ...nn.functional import pool_pads
from .base import QuantizedKind, register_affine_kind, register_kind
from .ort_graph import OrtGraphKind, same_params_route


@register_kind("MaxPooling2D", "GlobalMaxPooling2D")
class MaxPoolingKind(QuantizedKind):
    """The maximum of stored integers is the stored integer of the maximum (padding never wins,
    ceil_mode and same padding resolved as the float layer does)."""

    def run(self, ql, x):
        layer = ql.layer
        if layer.type_name == "GlobalMaxPooling2D":
            layer._check(x.shape)
            return kernels.max_pool2d(x, x.shape[2:4], 1)
        layer._check(x.shape)
        full, _, _ = pool_pads(x.shape, layer.pool_size, layer.stride,
                               layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                               layer.ceil_mode)
        return kernels.max_pool2d(x, layer.pool_size, layer.stride, full)


@register_affine_kind("MaxPooling2D", "GlobalMaxPooling2D")
class AffineMaxPoolingKind(OrtGraphKind):
    """Max pooling of affine integers: ORT drops the DQ/Q pair around MaxPool (equal parameters) and
    takes the maximum of the integers; a positive scale keeps the order, so it is exact."""

    ORT_OPS = {"MaxPool": "bind_max", "GlobalMaxPool": "bind_max"}

    def bind_max(self, layer, runtime):
        kind = MaxPoolingKind()
        return same_params_route(layer, runtime, lambda x: kind.run(layer, x))
