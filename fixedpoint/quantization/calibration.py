"""Streaming calibration: running min/max and log2-magnitude histograms of every tensor.

The float network runs one mini-batch at a time; each layer's output updates its statistics and is
dropped, so memory stays bounded by one batch whatever the size of the data set. Data may be a
numpy array (N, ...), an `(x, y)` pair, or any iterable of batches or of `(x, y)` pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..progress import ProgressBar
from .exponent import NUM_BINS, log2_bins

TABLE_COLUMNS = ["Optimized Layer Name", "Network Layer Name", "Learnables / Activations",
                 "MinValue", "MaxValue"]


@dataclass
class TensorStatistics:
    """Range and log2 histogram of one calibrated entity (weights, bias or a layer's activations)."""

    layer: str
    kind: str  # "Weights" | "Bias" | "Activations"
    network_layer: str
    min_value: float = np.inf
    max_value: float = -np.inf
    counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BINS, np.int64))
    zeros: int = 0

    @property
    def optimized_name(self) -> str:
        return self.layer if self.kind == "Activations" else f"{self.layer}_{self.kind}"

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.size == 0:
            return
        self.min_value = min(self.min_value, float(values.min()))
        self.max_value = max(self.max_value, float(values.max()))
        counts, zeros = log2_bins(values)
        self.counts += counts
        self.zeros += zeros


def _is_pair(data) -> bool:
    return isinstance(data, tuple) and len(data) == 2


def split_inputs(data):
    """The input part of a batch: `x` of an `(x, y)` pair, else the batch itself."""
    return data[0] if _is_pair(data) else data


def iterate_batches(data, batch_size: int):
    """Yield float32 input batches; arrays are sliced, iterables yield their own batches."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    data = split_inputs(data)
    if isinstance(data, np.ndarray):
        for start in range(0, len(data), batch_size):
            yield np.ascontiguousarray(data[start:start + batch_size], dtype=np.float32)
        return
    try:
        items = iter(data)
    except TypeError:
        raise TypeError(f"data must be a numpy array, an (x, y) pair or an iterable of batches, "
                        f"got {type(data).__name__}") from None
    for item in items:
        yield np.ascontiguousarray(split_inputs(item), dtype=np.float32)


def count_batches(data, batch_size: int) -> int:
    """Number of batches when known in advance (for the progress bar), else 0."""
    data = split_inputs(data)
    if isinstance(data, np.ndarray):
        return -(-len(data) // batch_size)
    return len(data) if hasattr(data, "__len__") else 0


def check_batch(net, batch: np.ndarray, what: str) -> None:
    """Reject a batch whose per-observation shape differs from the network input layer's."""
    layer = net.layer(net.input_names[0])
    expected = tuple(getattr(layer, "sample_shape", ()) or ())
    if batch.ndim < 1 or (expected and tuple(batch.shape[1:]) != expected):
        raise ValueError(f"{what} for input layer {layer.name!r} must have shape "
                         f"(N, {', '.join(map(str, expected))}) with N observations; got a batch of "
                         f"shape {tuple(batch.shape)}")


class Calibrator:
    """Collects the statistics of a (prepared) float network, one batch at a time."""

    def __init__(self, net, origin: dict[str, list[str]] | None = None):
        self.net = net
        origin = origin or {}
        self.statistics: dict[tuple[str, str], TensorStatistics] = {}
        for layer in net.layers:
            source = ", ".join(origin.get(layer.name, [layer.name]))
            for kind in ("Weights", "Bias"):
                if kind in layer.learnables and layer.learnables[kind] is not None:
                    stats = TensorStatistics(layer.name, kind, source)
                    stats.update(layer.learnables[kind])
                    self.statistics[(layer.name, kind)] = stats
            self.statistics[(layer.name, "Activations")] = TensorStatistics(
                layer.name, "Activations", source)
        self.num_observations = 0

    def observe(self, batch: np.ndarray) -> None:
        check_batch(self.net, batch, "calibration data")
        statistics = self.statistics
        self.net.run({self.net.input_names[0]: batch}, outputs=[],
                     observe=lambda layer, out: statistics[(layer.name, "Activations")].update(out))
        self.num_observations += len(batch)

    def run(self, data, batch_size: int = 32, progress: bool = True) -> None:
        with ProgressBar(count_batches(data, batch_size), "calibrate", progress) as bar:
            for batch in iterate_batches(data, batch_size):
                self.observe(batch)
                bar.update(1)
        if self.num_observations == 0:
            raise ValueError("calibration data is empty: give at least one observation")

    def table(self) -> pd.DataFrame:
        rows = [(s.optimized_name, s.network_layer, s.kind, np.float32(s.min_value),
                 np.float32(s.max_value)) for s in self.statistics.values()]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)
