"""Hard swish: x · relu6(x + 3) / 6 (MobileNetV3; TFLite HARD_SWISH, ONNX HardSwish)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer

_THREE, _SIX, _ZERO = np.float32(3), np.float32(6), np.float32(0)


@register_layer
class HardSwishLayer(Layer):
    """float32 x · min(max(x + 3, 0), 6) / 6, in that order (TFLite's float reference kernel)."""

    type_name = "HardSwish"

    def forward(self, x):
        x = np.asarray(x, np.float32)
        return x * np.clip(x + _THREE, _ZERO, _SIX) / _SIX
