"""Constant padding of the non-batch axes (TFLite PAD / PADV2, ONNX Pad in constant mode)."""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer


@register_layer
class PadLayer(Layer):
    """`pads` lists (before, after) for each axis after the batch axis, in the layer's axis order
    (for an image: C, H, W); the new elements hold `value` (default 0)."""

    type_name = "Pad"

    def __init__(self, name, pads, value=0.0):
        super().__init__(name)
        try:
            pads = tuple((int(b), int(a)) for b, a in pads)
        except (TypeError, ValueError):
            raise ValueError(f"pad {name!r}: pads must be (before, after) pairs, got {pads!r}") from None
        if not pads or any(b < 0 or a < 0 for b, a in pads):
            raise ValueError(f"pad {name!r}: pads must be non-negative (before, after) pairs, got {pads!r}")
        self.pads = pads
        self.value = float(value)

    def output_shape(self, shape):
        if len(shape) != len(self.pads) + 1:
            raise ValueError(f"pad {self.name!r} pads {len(self.pads)} axes after the batch; input "
                             f"shape {tuple(shape)} has {len(shape) - 1}")
        return (shape[0],) + tuple(None if d is None else d + b + a for d, (b, a) in zip(shape[1:], self.pads))

    def forward(self, x):
        self.output_shape(x.shape)
        return np.pad(np.asarray(x, np.float32), ((0, 0),) + self.pads, constant_values=np.float32(self.value))

    def config(self):
        return {"pads": [list(p) for p in self.pads], "value": self.value}
