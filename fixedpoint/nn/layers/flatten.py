"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), in C order (ONNX Flatten with axis 1)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class FlattenLayer(Layer):
    type_name = "Flatten"

    def forward(self, x):
        return x.reshape(x.shape[0], -1)

    def output_shape(self, shape):
        return (shape[0], None if None in shape[1:] else int(np.prod(shape[1:], dtype=np.int64)))
