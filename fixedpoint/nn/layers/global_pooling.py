"""What global pooling layers share: reduce H and W to 1, keeping NCHW rank."""
from __future__ import annotations

from .. import functional as F
from .base import Layer


class GlobalPooling2DLayer(Layer):
    """A pooling window the size of the image (`mode` "max" or "average": functional.global_pool2d)."""

    mode = ""

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(f"{self.type_name} {self.name!r} expects (N, C, H, W) input, got "
                             f"{tuple(shape)}")

    def forward(self, x):
        if x.ndim != 4:
            self._check(x.shape)
        return F.global_pool2d(x, self.mode)

    def output_shape(self, shape):
        self._check(shape)
        return (shape[0], shape[1], 1, 1)
