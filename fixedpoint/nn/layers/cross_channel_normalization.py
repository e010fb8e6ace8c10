"""Local response normalization across channels (MATLAB crossChannelNormalizationLayer, ONNX
LRN)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class CrossChannelNormalizationLayer(Layer):
    """y = x / (k + alpha / size * sum of x^2 over `window_channel_size` neighbouring
    channels)^beta; the window spans floor((size-1)/2) channels before, ceil((size-1)/2) after."""

    type_name = "CrossChannelNormalization"

    def __init__(self, name, window_channel_size, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__(name)
        if int(window_channel_size) != window_channel_size or window_channel_size < 1:
            raise ValueError(f"cross-channel normalization {name!r}: window_channel_size must be "
                             f"a positive int, got {window_channel_size!r}")
        self.window_channel_size = int(window_channel_size)
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def forward(self, x):
        size = self.window_channel_size
        before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
        squares = np.pad(np.square(x), [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2))
        running = np.cumsum(squares, axis=1, dtype=np.float64)
        window_sums = (running[:, size:] - running[:, :-size]).astype(np.float32)
        scale = np.float32(self.k) + np.float32(self.alpha / size) * window_sums
        return x / scale ** np.float32(self.beta)

    def config(self):
        return {"window_channel_size": self.window_channel_size, "alpha": self.alpha,
                "beta": self.beta, "k": self.k}
