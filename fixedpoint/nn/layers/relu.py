"""Rectified linear unit: max(x, 0)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class ReLULayer(Layer):
    type_name = "ReLU"
    overwrites_input = True

    def forward(self, x):
        return np.maximum(x, np.float32(0))

    def forward_into(self, x):
        return np.maximum(x, np.float32(0), out=x)
