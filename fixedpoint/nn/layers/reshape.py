"""Reshape of each observation; the batch dimension is kept."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class ReshapeLayer(Layer):
    """`shape` is the shape of one observation (without the batch dimension). One entry may be -1
    (inferred); 0 copies the observation's dimension at that position (ONNX Reshape semantics)."""

    type_name = "Reshape"

    def __init__(self, name, shape):
        super().__init__(name)
        shape = tuple(int(d) for d in shape)
        if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
            raise ValueError(f"reshape {name!r}: shape may hold one -1 and no other negative "
                             f"entry, got {shape}")
        self.shape = shape

    def output_shape(self, shape):
        sample = tuple(shape[1:])
        target = [sample[k] if d == 0 and k < len(sample) else d for k, d in enumerate(self.shape)]
        if any(d == 0 for d in self.shape[len(sample):]):
            raise ValueError(f"reshape {self.name!r}: 0 copies a dimension the input {tuple(shape)}"
                             f" does not have")
        if None in sample or None in target:
            return (shape[0],) + tuple(None if d in (-1, None) else d for d in target)
        size = int(np.prod(sample, dtype=np.int64))
        known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        if -1 in target and known and size % known == 0:
            target[target.index(-1)] = size // known
        if int(np.prod(target, dtype=np.int64)) != size:
            raise ValueError(f"reshape {self.name!r}: cannot reshape an observation of shape "
                             f"{sample} to {self.shape}")
        return (shape[0],) + tuple(target)

    def forward(self, x):
        return x.reshape(self.output_shape(x.shape))

    def config(self):
        return {"shape": list(self.shape)}
