"""Softmax along one axis (the channel axis by default), computed stably."""
from __future__ import annotations

from .. import functional as F
from .base import Layer, register_layer


@register_layer
class SoftmaxLayer(Layer):
    type_name = "Softmax"

    def __init__(self, name, axis=1):
        super().__init__(name)
        if int(axis) != axis or axis == 0:
            raise ValueError(f"softmax {name!r}: axis must be a non-batch axis, got {axis!r}")
        self.axis = int(axis)

    def forward(self, x):
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"softmax {self.name!r}: axis {self.axis} out of range for input of "
                             f"shape {x.shape}")
        return F.softmax(x, self.axis)

    def config(self):
        return {"axis": self.axis}
