"""Quantized ReLU: the maximum with the stored zero."""
from __future__ import annotations

import numpy as np

from .base import QuantizedKind, register_kind


@register_kind("ReLU")
class ReLUKind(QuantizedKind):
    def run(self, ql, x):
        return np.maximum(x, np.int8(0))
