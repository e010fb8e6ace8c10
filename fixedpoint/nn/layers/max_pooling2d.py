"""Max pooling; padding is never selected (it acts as -inf)."""
from __future__ import annotations

from .base import register_layer
from .pooling import Pooling2DLayer


@register_layer
class MaxPooling2DLayer(Pooling2DLayer):
    type_name = "MaxPooling2D"
    mode = "max"

    def forward(self, x):
        return self.pool(x)
