"""Logistic sigmoid: 1 / (1 + exp(-x))."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class SigmoidLayer(Layer):
    type_name = "Sigmoid"

    def forward(self, x):
        with np.errstate(over="ignore", under="ignore"):  # exp(-x) -> inf or 0: right limits
            return np.float32(1) / (np.float32(1) + np.exp(-x))
