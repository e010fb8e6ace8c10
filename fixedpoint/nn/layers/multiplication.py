"""Element-wise product of all inputs (NumPy broadcasting)."""
from __future__ import annotations

from .base import register_layer
from .combination import CombinationLayer


@register_layer
class MultiplicationLayer(CombinationLayer):
    type_name = "Multiplication"

    def forward(self, *inputs):
        self.output_shape(*[x.shape for x in inputs])
        product = inputs[0]
        for x in inputs[1:]:
            product = product * x
        return product
