"""Rectified linear unit: max(x, 0)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class ReLULayer(Layer):
    type_name = "ReLU"

    def forward(self, x):
        return np.maximum(x, np.float32(0))
