"""Convolution [+ batch normalization] [+ activation] chains that float `predict` computes in one
pass of the compiled convolution (the same float32 operations as the layers one by one).

On the small images of embedded models a convolution's arithmetic takes a few microseconds, as much
as resolving its geometry, folding a batch normalization and checking arguments in Python; a
`ConvolutionChain` does that once per input shape and parameter arrays, so each call is one
compiled call. It notices a replaced array (convolution weights and batch normalization arrays are
read-only, so replacing is the only way to change them).
"""
from __future__ import annotations

import numpy as np

from .. import _kernels
from ..kernels.conv_float import activation_code
from . import functional as F
from .layers.base import Layer

# Activation layers a convolution can apply as it stores its outputs, by layer type.
FUSABLE_ACTIVATIONS = {
    "ReLU": lambda layer: "relu",
    "ClippedReLU": lambda layer: ("clip", 0.0, layer.ceiling),
    "LeakyReLU": lambda layer: ("leaky", layer.scale),
}


def fusable_norm(conv: Layer, layer: Layer) -> bool:
    return layer.type_name == "BatchNormalization" and layer.num_channels == conv.num_filters


class ConvolutionChain:
    """`conv`, then `norm` (a batch normalization layer or None), then `activation` (a spec of
    functional.conv2d or None), called as ``chain(x, path)`` with `path` the kernels' path code;
    `tail` names the last layer of the chain."""

    __slots__ = ("conv", "norm", "activation", "tail", "code", "bound")

    def __init__(self, conv: Layer, norm: Layer | None, activation, tail: str):
        self.conv, self.norm, self.activation, self.tail = conv, norm, activation, tail
        self.code = activation_code(activation)
        self.bound = (None,) * 8

    def _bind(self, shape, weights, bias, folded) -> tuple:
        """What depends on the input shape and the arrays, as one tuple (replaced in one step, so
        concurrent calls never see a mix): (shape, weights, bias, folded, pads, compiled, packed,
        bias_ready). Errors name the layer."""
        conv = self.conv
        conv._check(shape)
        try:
            pads, compiled = F.conv2d_route(shape, weights.shape, conv.stride, conv.padding,
                                            conv.dilation, conv.groups)
        except ValueError as error:
            raise ValueError(f"convolution {conv.name!r} on input {tuple(shape)}: {error}") from None
        # the packed copy stands for the weights only while they cannot change (read-only)
        compiled = compiled and weights.dtype == np.float32 and not weights.flags.writeable
        packed = F.packed_float_weights(weights, conv.groups) if compiled else None
        bias_ready = bias.dtype == np.float32 and bias.flags.c_contiguous
        self.bound = (shape, weights, bias, folded, pads, compiled, packed, bias_ready)
        return self.bound

    def __call__(self, x: np.ndarray, path: int) -> np.ndarray:
        conv, norm = self.conv, self.norm
        weights, bias = conv.learnables["Weights"], conv.learnables["Bias"]
        folded = norm.folded() if norm is not None else None
        bound = self.bound
        if (x.shape != bound[0] or weights is not bound[1] or bias is not bound[2]
                or folded is not bound[3]):
            bound = self._bind(x.shape, weights, bias, folded)
        gain, shift = folded if folded is not None else (None, None)
        if bound[5]:
            try:
                return _kernels.conv2d_float(x, bound[6], conv.stride, conv.dilation, bound[4],
                                             bias if bound[7] else
                                             np.ascontiguousarray(bias, np.float32),
                                             gain, shift, *self.code, path)
            except ValueError:
                pass   # not C-contiguous float32 data: the general route reports or handles it
        try:
            return F.conv2d(x, weights, bias, conv.stride, conv.padding, conv.dilation, conv.groups,
                            activation=self.activation,
                            affine=None if folded is None else (gain, shift))
        except ValueError as error:
            raise ValueError(f"convolution {conv.name!r} on input {tuple(x.shape)}: "
                             f"{error}") from None
