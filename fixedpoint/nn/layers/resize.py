"""Resize2D: nearest-neighbour upsampling of H and W by integer factors (ONNX Resize, mode "nearest").

For an integer factor s, every ONNX coordinate mapping whose nearest pixel of output i is input
floor(i / s) gives the same result: asymmetric with nearest_mode floor, and half_pixel /
pytorch_half_pixel with round_prefer_floor or round_prefer_ceil (the source coordinate
(i + 0.5) / s - 0.5 lies within (s - 1) / (2 s) < 1/2 of floor(i / s)). The importer accepts only
those (fixedpoint/onnx/ops/shape.py); each value is copied, so the layer is exact on floats and on
quantized integers alike.
"""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class Resize2DLayer(Layer):
    type_name = "Resize2D"

    def __init__(self, name, scale=(2, 2)):
        super().__init__(name)
        values = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
        if np.any(values < 1) or np.any(values != np.round(values)):
            raise ValueError(f"resize {name!r}: scale must be positive integers (H, W), got {scale!r}")
        self.scale = tuple(int(v) for v in values)

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(f"resize {self.name!r} expects (N, C, H, W) input, got shape {tuple(shape)}")

    def forward(self, x):
        self._check(x.shape)
        sh, sw = self.scale
        return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)

    def output_shape(self, shape):
        self._check(shape)
        n, c, h, w = shape
        sh, sw = self.scale
        return (n, c, None if h is None else h * sh, None if w is None else w * sw)

    def config(self):
        return {"scale": list(self.scale)}
