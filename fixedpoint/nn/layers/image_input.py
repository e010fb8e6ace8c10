"""Image input: NCHW data with a fixed channel count and optionally fixed height and width."""
from __future__ import annotations

from .base import register_layer
from .input_normalization import InputLayer


@register_layer
class ImageInputLayer(InputLayer):
    """`input_size` is (C, H, W) (NCHW order, unlike MATLAB's [h w c]); H or W may be None to accept
    any size at run time. Normalisation statistics broadcast to (C, H, W), e.g. shape (C, 1, 1)."""

    type_name = "ImageInput"
    layout = "(N, C, H, W)"

    def __init__(self, name, input_size, normalization="none", mean=None, std=None, min=None,
                 max=None):
        size = tuple(None if n is None else int(n) for n in input_size)
        if len(size) != 3 or size[0] is None or any(n is not None and n < 1 for n in size):
            raise ValueError(f"image input layer {name!r}: input_size must be (C, H, W) with a "
                             f"fixed channel count, got {input_size!r}")
        super().__init__(name, size, normalization, mean, std, min, max)

    @property
    def input_size(self) -> tuple:
        return self.sample_shape

    def config(self) -> dict:
        return {"input_size": list(self.sample_shape), "normalization": self.normalization}
