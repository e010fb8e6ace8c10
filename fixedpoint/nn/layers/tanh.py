"""Hyperbolic tangent."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class TanhLayer(Layer):
    type_name = "Tanh"

    def forward(self, x):
        return np.tanh(x)
