"""Average pooling with ONNX's `count_include_pad` rule (see functional.pool2d)."""
from __future__ import annotations

from .base import register_layer
from .pooling import Pooling2DLayer


@register_layer
class AveragePooling2DLayer(Pooling2DLayer):
    """`count_include_pad=False` (ONNX default) divides by the input elements in each window;
    `True` also counts explicit padding as zeros (MATLAB's ``PaddingValue=0``)."""

    type_name = "AveragePooling2D"
    mode = "average"

    def __init__(self, name, pool_size, stride=1, padding=0, ceil_mode=False,
                 count_include_pad=False):
        super().__init__(name, pool_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        return self.pool(x, count_include_pad=self.count_include_pad)

    def config(self):
        return {**super().config(), "count_include_pad": self.count_include_pad}
