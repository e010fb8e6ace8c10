"""Element-wise sum of all inputs (NumPy broadcasting)."""
from __future__ import annotations

from .base import register_layer
from .combination import CombinationLayer


@register_layer
class AdditionLayer(CombinationLayer):
    type_name = "Addition"

    def forward(self, *inputs):
        shape = inputs[0].shape
        if len(inputs) != self.num_inputs or any(x.shape != shape for x in inputs):
            self.output_shape(*[x.shape for x in inputs])   # count and broadcasting checked
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total
