"""What max and average pooling share: window hyper-parameters and shape rules."""
from __future__ import annotations

from .. import functional as F
from .base import Layer, pair


class Pooling2DLayer(Layer):
    """Window `pool_size`, `stride` (default 1, as MATLAB and ONNX), `padding` as for convolution,
    `ceil_mode` to keep a last partial window (ONNX ``ceil_mode=1``)."""

    mode = ""

    def __init__(self, name, pool_size, stride=1, padding=0, ceil_mode=False):
        super().__init__(name)
        what = f"{self.type_name} {name!r}"
        self.pool_size = pair(pool_size, f"{what} pool_size")
        self.stride = pair(stride, f"{what} stride")
        self.padding = F.normalize_padding(padding, f"{what} padding")
        if not isinstance(self.padding, str) and any(
                p >= k for p, k in zip(self.padding, self.pool_size * 2)):
            raise ValueError(f"{what}: padding {self.padding} must be smaller than the pool size "
                             f"{self.pool_size}")
        self.ceil_mode = bool(ceil_mode)

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(f"{self.type_name} {self.name!r} expects (N, C, H, W) input, got "
                             f"{tuple(shape)}")

    def output_shape(self, shape):
        self._check(shape)
        try:
            oh, ow = F.spatial_output_shape(shape, self.pool_size, self.stride, self.padding,
                                            ceil_mode=self.ceil_mode)
        except ValueError as error:
            raise ValueError(f"{self.type_name} {self.name!r} on input {tuple(shape)}: "
                             f"{error}") from None
        return (shape[0], shape[1], oh, ow)

    def pool(self, x, **options):
        self._check(x.shape)
        try:   # the window-size check happens in pool2d, once
            return F.pool2d(x, self.mode, self.pool_size, self.stride, self.padding,
                            self.ceil_mode, **options)
        except ValueError as error:
            raise ValueError(f"{self.type_name} {self.name!r} on input {tuple(x.shape)}: "
                             f"{error}") from None

    def config(self):
        return {"pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "ceil_mode": self.ceil_mode}
