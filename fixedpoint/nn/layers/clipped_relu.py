"""Clipped ReLU: min(max(x, 0), ceiling); ReLU6 is ceiling = 6."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class ClippedReLULayer(Layer):
    type_name = "ClippedReLU"
    overwrites_input = True

    def __init__(self, name, ceiling=6.0):
        super().__init__(name)
        if not ceiling > 0:
            raise ValueError(f"clipped ReLU {name!r}: ceiling must be positive, got {ceiling!r}")
        self.ceiling = float(ceiling)

    def forward(self, x):
        return np.clip(x, np.float32(0), np.float32(self.ceiling))

    def forward_into(self, x):
        return np.clip(x, np.float32(0), np.float32(self.ceiling), out=x)

    def config(self):
        return {"ceiling": self.ceiling}
