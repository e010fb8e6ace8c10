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

    # two ufunc calls, not np.clip: same values (NaN passes through both), a fifth of the
    # Python-level overhead, which dominates on small tensors
    def forward(self, x):
        return np.minimum(np.maximum(x, np.float32(0)), np.float32(self.ceiling))

    def forward_into(self, x):
        np.maximum(x, np.float32(0), out=x)
        return np.minimum(x, np.float32(self.ceiling), out=x)

    def config(self):
        return {"ceiling": self.ceiling}
