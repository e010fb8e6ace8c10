"""Quantized max pooling (windowed and global): the maximum of the stored integers."""
from __future__ import annotations

import numpy as np

from ... import kernels
from ...nn.functional import pool_pads
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind


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


def _litert_max_pool(layer, runtime):
    """TFLite MAX_POOL_2D on int8 (pooling.cc MaxEval, reference_integer_ops::MaxPool; XNNPACK max
    pooling): the maximum of the stored integers over the window (padding never wins), clamped to
    the fused activation's bounds as the resolver quantizes them. Input and output share their
    quantization (pooling.cc Prepare)."""
    from .litert_common import activation, litert, resolver, same_params
    same_params(layer, "LiteRT's int8 MAX_POOL_2D")
    pool, out = layer.layer, layer.output_params
    lo, hi = litert().activation_range(activation(layer), float(out.scale[0]), int(out.zero_point[0]),
                                       resolver=resolver(layer, runtime), dtype=out.dtype)
    clamp = (lo, hi) != (out.qmin, out.qmax)
    padding = pool.padding if isinstance(pool.padding, str) else tuple(pool.padding)

    def run(x):
        pool._check(x.shape)
        full, _, _ = pool_pads(x.shape, pool.pool_size, pool.stride, padding, pool.ceil_mode)
        y = kernels.max_pool2d(x, pool.pool_size, pool.stride, full)
        return np.clip(y, lo, hi, out=y) if clamp else y
    return run


@register_affine_kind("MaxPooling2D")
class AffineMaxPoolingKind(AffineKind):
    """Affine max pooling. Data: optional `activation`. Formulas by recipe "formula"."""

    FORMULAS = {"litert": _litert_max_pool}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.FORMULAS, layer, runtime)
