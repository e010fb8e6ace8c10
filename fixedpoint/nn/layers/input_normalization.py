"""What image and feature input layers share: input checking and MATLAB-style normalisation."""
from __future__ import annotations

import numpy as np

from .base import Layer, as_float32

NORMALIZATIONS = ("none", "zerocenter", "zscore", "rescale-symmetric", "rescale-zero-one")
REQUIRED_STATISTICS = {
    "none": (),
    "zerocenter": ("mean",),
    "zscore": ("mean", "std"),
    "rescale-symmetric": ("min", "max"),
    "rescale-zero-one": ("min", "max"),
}


class InputLayer(Layer):
    """A network input: checks the data it is given and normalises it.

    zerocenter: x - mean;  zscore: (x - mean) / std;
    rescale-symmetric: 2 (x - min) / (max - min) - 1;  rescale-zero-one: (x - min) / (max - min).
    The statistics are fixed arrays broadcastable to one observation; they are stored with the
    layer but are not learnables.
    """

    num_inputs = 0
    learnable_args = {"Mean": "mean", "StandardDeviation": "std", "Min": "min", "Max": "max"}
    layout = ""  # e.g. "(N, C, H, W)", for messages

    def __init__(self, name, sample_shape, normalization="none", mean=None, std=None, min=None,
                 max=None):
        super().__init__(name)
        self.sample_shape = tuple(sample_shape)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"input layer {name!r}: normalization must be one of "
                             f"{NORMALIZATIONS}, got {normalization!r}")
        self.normalization = normalization
        given = {"mean": mean, "std": std, "min": min, "max": max}
        self.statistics = {}
        for key in REQUIRED_STATISTICS[normalization]:
            if given[key] is None:
                raise ValueError(f"input layer {name!r}: normalization {normalization!r} "
                                 f"needs {key}")
            value = as_float32(given[key], f"input layer {name!r} {key}")
            aligned = self.sample_shape[len(self.sample_shape) - value.ndim:]
            if value.ndim > len(self.sample_shape) or any(
                    v != 1 and v != n for v, n in zip(value.shape, aligned)):
                raise ValueError(f"input layer {name!r}: {key} of shape {value.shape} does not "
                                 f"broadcast to one observation of shape {self.sample_shape}")
            self.statistics[key] = value
        if "min" in self.statistics and np.any(self.statistics["max"] == self.statistics["min"]):
            raise ValueError(f"input layer {name!r}: rescaling needs max != min")
        if normalization == "zscore" and np.any(self.statistics["std"] == 0):
            raise ValueError(f"input layer {name!r}: zscore needs a non-zero std")

    @property
    def input_shape(self) -> tuple:
        """The expected data shape; None marks the batch and any size fixed only at run time."""
        return (None,) + self.sample_shape

    def check(self, x) -> np.ndarray:
        """The data as float32, after checking its dtype and shape against the layer."""
        array = np.asarray(x)
        self.check_shape(array.shape, array.dtype)
        return array.astype(np.float32, copy=False)

    def check_shape(self, shape, dtype=np.dtype(np.float32)) -> None:
        expected = self.input_shape
        if np.dtype(dtype).kind not in "biuf":
            raise ValueError(f"input layer {self.name!r} expects numeric data, got dtype {dtype}")
        shape = tuple(shape)
        fits = len(shape) == len(expected) and all(
            e is None or s is None or s == e for s, e in zip(shape, expected))
        if not fits:
            shown = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
            raise ValueError(f"input layer {self.name!r} expects data of shape {self.layout} = "
                             f"{shown}, got {shape}")

    def forward(self, x) -> np.ndarray:
        x = self.check(x)
        stats = self.statistics
        if self.normalization == "zerocenter":
            return x - stats["mean"]
        if self.normalization == "zscore":
            return (x - stats["mean"]) / stats["std"]
        if self.normalization == "rescale-zero-one":
            return (x - stats["min"]) / (stats["max"] - stats["min"])
        if self.normalization == "rescale-symmetric":
            return 2 * (x - stats["min"]) / (stats["max"] - stats["min"]) - 1
        return x

    def output_shape(self, data_shape=None) -> tuple:
        if data_shape is None:
            return self.input_shape
        self.check_shape(data_shape)
        return tuple(data_shape)

    def arrays(self) -> dict:
        names = {arg: key for key, arg in self.learnable_args.items()}
        return {names[key]: value for key, value in self.statistics.items()}
