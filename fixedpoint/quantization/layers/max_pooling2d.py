"""Quantized max pooling (windowed and global): the maximum of the stored integers."""
from __future__ import annotations

from ... import kernels
from ...nn.functional import pool_pads
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, formula, moving, ort_graph


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


def _max_of(layer):
    kind = MaxPoolingKind()
    return lambda x: kind.run(layer, x)


@register_affine_kind("MaxPooling2D", "GlobalMaxPooling2D")
class AffineMaxPoolingKind(AffineKind):
    """Max pooling of affine integers. Formulas by recipe "compute": "ort-graph" (ORT drops the DQ/Q
    pair around MaxPool when both have the same parameters and takes the maximum of the integers; a
    positive scale keeps the order, so it is exact), "float"."""

    COMPUTE = {"ort-graph": ort_graph({"MaxPool": moving(_max_of), "GlobalMaxPool": moving(_max_of)}),
               "float": float_route}

    def bind(self, layer, runtime):
        return formula(self.COMPUTE, layer, runtime)
