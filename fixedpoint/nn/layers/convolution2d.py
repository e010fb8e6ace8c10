"""2-D convolution (cross-correlation, as ONNX Conv and MATLAB convolution2dLayer), grouped and
depthwise included."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .base import Layer, as_float32, pair, register_layer


@register_layer
class Convolution2DLayer(Layer):
    """`weights` are OIHW with I = input channels / groups; `bias` has O entries (zeros if None).

    `padding` is explicit (int, pair or (h_begin, w_begin, h_end, w_end)) or ``"same"`` /
    ``"same_lower"`` (output size ceil(input / stride); the odd extra padding goes at the end for
    ``"same"``, at the start for ``"same_lower"``). A depthwise convolution is ``groups`` equal to
    the input channel count.
    """

    type_name = "Convolution2D"
    has_learnables = True
    learnable_args = {"Weights": "weights", "Bias": "bias"}

    def __init__(self, name, weights, bias=None, stride=1, padding=0, dilation=1, groups=1):
        super().__init__(name)
        weights = as_float32(weights, f"convolution {name!r} weights")
        if weights.ndim != 4:
            raise ValueError(f"convolution {name!r}: weights must be OIHW (4-D), got shape "
                             f"{weights.shape}")
        if int(groups) != groups or groups < 1 or weights.shape[0] % groups:
            raise ValueError(f"convolution {name!r}: groups={groups!r} must be a positive int "
                             f"dividing the {weights.shape[0]} filters")
        bias = np.zeros(weights.shape[0], np.float32) if bias is None else as_float32(
            bias, f"convolution {name!r} bias").reshape(-1)
        if bias.shape != (weights.shape[0],):
            raise ValueError(f"convolution {name!r}: bias must have {weights.shape[0]} entries, "
                             f"got shape {bias.shape}")
        # Read-only: a changed-in-place kernel would not match the packed copy predict caches
        # (fixedpoint.nn.functional.packed_float_weights); replace learnables["Weights"] instead.
        weights.flags.writeable = False
        self.learnables = {"Weights": weights, "Bias": bias}
        self.stride = pair(stride, f"convolution {name!r} stride")
        self.dilation = pair(dilation, f"convolution {name!r} dilation")
        self.padding = F.normalize_padding(padding, f"convolution {name!r} padding")
        self.groups = int(groups)

    @property
    def weights(self) -> np.ndarray:
        return self.learnables["Weights"]

    @property
    def bias(self) -> np.ndarray:
        return self.learnables["Bias"]

    @property
    def filter_size(self) -> tuple[int, int]:
        return self.weights.shape[2], self.weights.shape[3]

    @property
    def num_filters(self) -> int:
        return self.weights.shape[0]

    @property
    def num_channels(self) -> int:
        """Input channels expected."""
        return self.weights.shape[1] * self.groups

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.num_channels

    def _check(self, shape):
        if len(shape) != 4 or shape[1] != self.num_channels:
            raise ValueError(f"convolution {self.name!r} expects (N, {self.num_channels}, H, W) "
                             f"input, got {tuple(shape)}")

    def forward(self, x):
        self._check(x.shape)
        try:   # the window-size check happens in conv2d, once
            return F.conv2d(x, self.weights, self.bias, self.stride, self.padding,
                            self.dilation, self.groups)
        except ValueError as error:
            raise ValueError(f"convolution {self.name!r} on input {tuple(x.shape)}: "
                             f"{error}") from None

    def output_shape(self, shape):
        self._check(shape)
        try:
            oh, ow = F.spatial_output_shape(shape, self.filter_size, self.stride, self.padding,
                                            self.dilation)
        except ValueError as error:
            raise ValueError(f"convolution {self.name!r} on input {tuple(shape)}: "
                             f"{error}") from None
        return (shape[0], self.num_filters, oh, ow)

    def config(self):
        return {"stride": list(self.stride), "dilation": list(self.dilation),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "groups": self.groups}
