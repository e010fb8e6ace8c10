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
        # Read-only, like convolution weights: the float32 (gain, shift) is computed once per set of
        # arrays (`_gain_shift`); replace learnables[...] to change them.
        for value in arrays.values():
            value.flags.writeable = False
        self.learnables = arrays
        self.epsilon = float(epsilon)
        self._folded = None   # (arrays, epsilon, (gain, shift)) of the last `folded`

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

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(gain, shift), flat float32, with y = gain·x + shift per channel (two passes over the
        data, as ONNX Runtime folds it; within a few float32 ulps of scale·(x − mean)/σ + offset).
        Computed once per set of learnable arrays (read-only; replacing one recomputes): the same
        tuple object until then."""
        p = self.learnables
        arrays = (p["Scale"], p["Offset"], p["TrainedMean"], p["TrainedVariance"])
        cached = self._folded
        if (cached is not None and cached[0][0] is arrays[0] and cached[0][1] is arrays[1]
                and cached[0][2] is arrays[2] and cached[0][3] is arrays[3]
                and cached[1] == self.epsilon):
            return cached[2]
        scale, offset, mean, variance = (np.asarray(a, np.float32).reshape(-1) for a in arrays)
        gain = scale / np.sqrt(variance + np.float32(self.epsilon))
        shift = offset - mean * gain
        gain.flags.writeable = shift.flags.writeable = False
        self._folded = (arrays, self.epsilon, (gain, shift))
        return self._folded[2]

    def _gain_shift(self, ndim):
        """`folded()` shaped to broadcast over an input of `ndim` dimensions (channels on axis 1)."""
        gain, shift = self.folded()
        view = (1, -1) + (1,) * (ndim - 2)
        return gain.reshape(view), shift.reshape(view)

    def output_shape(self, shape):
        self._check(shape)
        return tuple(shape)

    def config(self):
        return {"epsilon": self.epsilon}
