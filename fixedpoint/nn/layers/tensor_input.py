"""Input of any rank and layout (e.g. an NHWC image, as a .tflite model takes it)."""
from __future__ import annotations

from .base import register_layer
from .input_normalization import InputLayer


@register_layer
class TensorInputLayer(InputLayer):
    """`input_size` is the shape of one observation in the order the data come in (an NHWC image:
    (H, W, C)); an entry may be None to accept any size at run time. No normalisation."""

    type_name = "TensorInput"
    layout = "(N, ...)"

    def __init__(self, name, input_size):
        size = tuple(None if n is None else int(n) for n in input_size)
        if not size or any(n is not None and n < 1 for n in size):
            raise ValueError(f"tensor input layer {name!r}: input_size must be a non-empty shape of "
                             f"positive sizes (None: any), got {input_size!r}")
        super().__init__(name, size)

    @property
    def input_size(self) -> tuple:
        return self.sample_shape

    def config(self) -> dict:
        return {"input_size": list(self.sample_shape)}
