"""Leaky ReLU: x for x >= 0, scale * x otherwise."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class LeakyReLULayer(Layer):
    type_name = "LeakyReLU"
    overwrites_input = True

    def __init__(self, name, scale=0.01):
        super().__init__(name)
        self.scale = float(scale)

    def forward(self, x):
        return np.where(x >= 0, x, x * np.float32(self.scale))

    def forward_into(self, x):
        return np.multiply(x, np.float32(self.scale), out=x, where=x < 0)

    def config(self):
        return {"scale": self.scale}
