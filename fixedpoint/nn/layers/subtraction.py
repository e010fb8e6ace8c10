"""Element-wise difference of two inputs, in1 − in2 (NumPy broadcasting)."""
from __future__ import annotations

from .base import register_layer
from .combination import CombinationLayer


@register_layer
class SubtractionLayer(CombinationLayer):
    """in1 − in2 (TFLite SUB, ONNX Sub); exactly two inputs."""

    type_name = "Subtraction"

    def __init__(self, name, num_inputs=2):
        if num_inputs != 2:
            raise ValueError(f"subtraction {name!r} takes exactly 2 inputs, got num_inputs={num_inputs!r}")
        super().__init__(name, 2)

    def forward(self, a, b):
        self.output_shape(a.shape, b.shape)
        return a - b
