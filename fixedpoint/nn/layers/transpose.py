"""Permutation of the non-batch axes (e.g. the channel shuffle of ShuffleNet)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class TransposeLayer(Layer):
    """`perm` permutes all axes as ONNX Transpose, but must keep the batch axis first."""

    type_name = "Transpose"

    def __init__(self, name, perm):
        super().__init__(name)
        perm = tuple(int(p) for p in perm)
        if sorted(perm) != list(range(len(perm))) or not perm or perm[0] != 0:
            raise ValueError(f"transpose {name!r}: perm must be a permutation keeping axis 0 "
                             f"first, got {perm}")
        self.perm = perm

    def output_shape(self, shape):
        if len(shape) != len(self.perm):
            raise ValueError(f"transpose {self.name!r} with perm {self.perm} expects rank "
                             f"{len(self.perm)} input, got {tuple(shape)}")
        return tuple(shape[p] for p in self.perm)

    def forward(self, x):
        self.output_shape(x.shape)
        return np.ascontiguousarray(x.transpose(self.perm))

    def config(self):
        return {"perm": list(self.perm)}
