"""Quantized global average pooling: one integer sum per channel, one rounding division."""
from __future__ import annotations

from ... import kernels
from .base import QuantizedKind, register_kind


@register_kind("GlobalAveragePooling2D")
class GlobalAveragePoolingKind(QuantizedKind):
    def run(self, ql, x):
        ql.layer._check(x.shape)
        return kernels.global_avg_pool(x, rounding=ql.rounding)
