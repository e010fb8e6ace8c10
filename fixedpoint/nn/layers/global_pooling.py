"""What global pooling layers share: reduce H and W to 1, keeping NCHW rank."""
from __future__ import annotations

from .base import Layer


class GlobalPooling2DLayer(Layer):
    reduce = None

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(f"{self.type_name} {self.name!r} expects (N, C, H, W) input, got "
                             f"{tuple(shape)}")

    def forward(self, x):
        self._check(x.shape)
        return type(self).reduce(x, axis=(2, 3), keepdims=True)

    def output_shape(self, shape):
        self._check(shape)
        return (shape[0], shape[1], 1, 1)
