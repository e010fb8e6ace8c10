"""Fully connected layer: y = x W^T + b, flattening any trailing dimensions of x (C, H, W order)."""
from __future__ import annotations

import math

import numpy as np

from .base import Layer, as_float32, register_layer


@register_layer
class FullyConnectedLayer(Layer):
    """`weights` have shape (outputs, inputs); an (N, C, H, W) input is flattened to (N, C*H*W)
    first, as ONNX Flatten + Gemm would. The output is (N, outputs)."""

    type_name = "FullyConnected"
    has_learnables = True
    learnable_args = {"Weights": "weights", "Bias": "bias"}

    def __init__(self, name, weights, bias=None):
        super().__init__(name)
        weights = as_float32(weights, f"fully connected {name!r} weights")
        if weights.ndim != 2:
            raise ValueError(f"fully connected {name!r}: weights must be (outputs, inputs), got "
                             f"shape {weights.shape}")
        bias = np.zeros(weights.shape[0], np.float32) if bias is None else as_float32(
            bias, f"fully connected {name!r} bias").reshape(-1)
        if bias.shape != (weights.shape[0],):
            raise ValueError(f"fully connected {name!r}: bias must have {weights.shape[0]} "
                             f"entries, got shape {bias.shape}")
        self.learnables = {"Weights": weights, "Bias": bias}

    @property
    def weights(self) -> np.ndarray:
        return self.learnables["Weights"]

    @property
    def bias(self) -> np.ndarray:
        return self.learnables["Bias"]

    @property
    def output_size(self) -> int:
        return self.weights.shape[0]

    @property
    def input_size(self) -> int:
        return self.weights.shape[1]

    def _check(self, shape):
        features = None if None in shape[1:] else math.prod(shape[1:])
        if len(shape) < 2 or (features is not None and features != self.input_size):
            raise ValueError(f"fully connected {self.name!r} expects {self.input_size} features "
                             f"per observation, got input of shape {tuple(shape)}")

    def forward(self, x):
        weights = self.learnables["Weights"]
        if x.ndim < 2 or x.size != x.shape[0] * weights.shape[1]:
            self._check(x.shape)
        out = np.matmul(x.reshape(x.shape[0], -1), weights.T)
        out += self.learnables["Bias"]
        return out

    def output_shape(self, shape):
        self._check(shape)
        return (shape[0], self.output_size)
