"""Concatenation of all inputs along one axis (channels by default)."""
from __future__ import annotations

import numpy as np

from .base import register_layer
from .combination import CombinationLayer


@register_layer
class ConcatenationLayer(CombinationLayer):
    type_name = "Concatenation"

    def __init__(self, name, axis=1, num_inputs=2):
        super().__init__(name, num_inputs)
        if int(axis) != axis or axis == 0:
            raise ValueError(f"concatenation {name!r}: axis must be a non-batch axis, got {axis!r}")
        self.axis = int(axis)

    def output_shape(self, *shapes):
        self._check_count(shapes)
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or any(len(s) != rank for s in shapes) or any(
                len({s[a] for s in shapes} - {None}) > 1 for a in range(rank) if a != axis):
            raise ValueError(f"concatenation {self.name!r} along axis {self.axis}: input shapes "
                             f"{[tuple(s) for s in shapes]} do not match off that axis")
        merged = [next((s[a] for s in shapes if s[a] is not None), None) for a in range(rank)]
        sizes = [s[axis] for s in shapes]
        merged[axis] = None if None in sizes else sum(sizes)
        return tuple(merged)

    def forward(self, *inputs):
        self.output_shape(*[x.shape for x in inputs])
        return np.concatenate(inputs, axis=self.axis)

    def config(self):
        return {"axis": self.axis, "num_inputs": self.num_inputs}
