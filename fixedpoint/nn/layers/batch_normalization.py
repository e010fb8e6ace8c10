"""Batch normalization at inference: per channel (axis 1) affine map from trained statistics."""
from __future__ import annotations

import numpy as np

from .base import Layer, as_float32, register_layer


@register_layer
class BatchNormalizationLayer(Layer):
    """y = scale (x - mean) / sqrt(variance + epsilon) + offset, per channel (axis 1 of NC/NCHW)."""

    type_name = "BatchNormalization"
    has_learnables = True
    overwrites_input = True
    learnable_args = {"Scale": "scale", "Offset": "offset", "TrainedMean": "mean",
                      "TrainedVariance": "variance"}

    def __init__(self, name, scale, offset, mean, variance, epsilon=1e-5):
        super().__init__(name)
        arrays = {key: as_float32(value, f"batch normalization {name!r} {key}").reshape(-1)
                  for key, value in zip(self.learnable_args, (scale, offset, mean, variance))}
        sizes = {value.size for value in arrays.values()}
        if len(sizes) != 1:
            raise ValueError(f"batch normalization {name!r}: Scale, Offset, TrainedMean and "
                             f"TrainedVariance must have the same length, got "
                             f"{[v.size for v in arrays.values()]}")
        if not epsilon > 0 or np.any(arrays["TrainedVariance"] < 0):
            raise ValueError(f"batch normalization {name!r}: needs epsilon > 0 and variances >= 0")
        self.learnables = arrays
        self.epsilon = float(epsilon)

    @property
    def num_channels(self) -> int:
        return self.learnables["Scale"].size

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(gain, shift) with y = gain * x + shift per channel, in float64 (used by folding)."""
        p = {key: value.astype(np.float64) for key, value in self.learnables.items()}
        gain = p["Scale"] / np.sqrt(p["TrainedVariance"] + self.epsilon)
        return gain, p["Offset"] - gain * p["TrainedMean"]

    def _check(self, shape):
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ValueError(f"batch normalization {self.name!r} expects {self.num_channels} "
                             f"channels on axis 1, got input of shape {tuple(shape)}")

    def forward(self, x):
        self._check(x.shape)
        gain, shift = self._gain_shift(x.ndim)
        return np.add(np.multiply(x, gain), shift)

    def forward_into(self, x):
        self._check(x.shape)
        gain, shift = self._gain_shift(x.ndim)
        np.multiply(x, gain, out=x)
        return np.add(x, shift, out=x)

    def _gain_shift(self, ndim):
        """y = gain·x + shift per channel, in float32 (two passes over the data, as ONNX Runtime
        folds it; within a few float32 ulps of scale·(x − mean)/σ + offset)."""
        p = self.learnables
        gain = p["Scale"] / np.sqrt(p["TrainedVariance"] + np.float32(self.epsilon))
        shift = p["Offset"] - p["TrainedMean"] * gain
        view = (1, -1) + (1,) * (ndim - 2)
        return gain.reshape(view), shift.reshape(view)

    def output_shape(self, shape):
        self._check(shape)
        return tuple(shape)

    def config(self):
        return {"epsilon": self.epsilon}
