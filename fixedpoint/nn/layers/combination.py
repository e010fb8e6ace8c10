"""What multi-input layers share: a per-instance input count and shape checking."""
from __future__ import annotations

from .base import Layer


def broadcast_shape(layer: Layer, shapes) -> tuple:
    """NumPy broadcasting of shapes that may hold None (unknown until run time)."""
    rank = max(len(s) for s in shapes)
    result = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ValueError(f"{layer.type_name} {layer.name!r}: input shapes "
                             f"{[tuple(s) for s in shapes]} do not broadcast")
        result.append(known.pop() if known else (None if None in dims else 1))
    return tuple(result)


class CombinationLayer(Layer):
    """A layer combining `num_inputs` inputs (ports in1, in2, ...)."""

    num_inputs = -1

    def __init__(self, name, num_inputs=2):
        super().__init__(name)
        if int(num_inputs) != num_inputs or num_inputs < 1:
            raise ValueError(f"{self.type_name} {name!r}: num_inputs must be a positive int, got "
                             f"{num_inputs!r}")
        self.num_inputs = int(num_inputs)

    def _check_count(self, inputs):
        if len(inputs) != self.num_inputs:
            raise ValueError(f"{self.type_name} {self.name!r} takes {self.num_inputs} inputs, "
                             f"got {len(inputs)}")

    def output_shape(self, *shapes):
        self._check_count(shapes)
        return broadcast_shape(self, shapes)

    def config(self):
        return {"num_inputs": self.num_inputs}
