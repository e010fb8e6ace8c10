"""Dropout: the identity at inference; kept so imported graphs keep their layer names."""
from __future__ import annotations

from .base import Layer, register_layer


@register_layer
class DropoutLayer(Layer):
    type_name = "Dropout"

    def __init__(self, name, probability=0.5):
        super().__init__(name)
        if not 0 <= probability < 1:
            raise ValueError(f"dropout {name!r}: probability must be in [0, 1), "
                             f"got {probability!r}")
        self.probability = float(probability)

    def forward(self, x):
        return x

    def config(self):
        return {"probability": self.probability}
