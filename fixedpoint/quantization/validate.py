"""Validation (spec B.6): float and quantized metric on the same data, and learnable memory.

Memory follows B.4: float learnables take 4 bytes; in the quantized network, the weights of quantized
layers take 1 byte and their biases 4 (int32 or float32); learnables of layers left in float keep 4.
Both figures are for the prepared network (batch norm folded), so the reduction measures quantization
alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .calibration import check_batch, split_inputs
from .targets import LEARNABLE_QUANTIZED

FLOAT_BYTES = 4
WEIGHT_BYTES = 1


def top1(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 classification accuracy in percent: argmax over classes equals the integer label."""
    return float(np.mean(np.argmax(scores.reshape(len(scores), -1), axis=1) == labels) * 100.0)


METRICS: dict[str, Callable] = {"top1": top1}


def learnable_memory(network, quantized_layers) -> tuple[int, int]:
    """(float bytes, quantized bytes) of the network's learnables when `quantized_layers` (names)
    hold int8 weights."""
    float_bytes = quantized_bytes = 0
    for layer in network.layers:
        for key, value in layer.learnables.items():
            size = int(np.asarray(value).size)
            float_bytes += FLOAT_BYTES * size
            quantized = layer.name in quantized_layers and key == "Weights"
            quantized_bytes += (WEIGHT_BYTES if quantized else FLOAT_BYTES) * size
    return float_bytes, quantized_bytes


@dataclass
class ValidationResult:
    """`metric_results`: rows "Floating-Point" and "Quantized", one column per metric.
    `statistics`: learnable memory in bytes per implementation. `memory_reduction`: percent."""

    num_samples: int
    metric_results: pd.DataFrame
    statistics: pd.DataFrame
    memory_reduction: float

    def __repr__(self) -> str:
        return (f"ValidationResult(num_samples={self.num_samples}, memory_reduction="
                f"{self.memory_reduction:.1f}%)\n{self.metric_results.to_string()}\n"
                f"{self.statistics.to_string()}")


def _resolve_metrics(metric) -> dict[str, Callable]:
    items = metric if isinstance(metric, (list, tuple)) else [metric]
    resolved = {}
    for item in items:
        if isinstance(item, str):
            if item not in METRICS:
                raise ValueError(f"metric: unknown name {item!r}; known: {', '.join(METRICS)}, "
                                 f"or pass a callable metric(scores, labels) -> float")
            resolved[item] = METRICS[item]
        elif callable(item):
            resolved[getattr(item, "__name__", f"metric{len(resolved) + 1}")] = item
        else:
            raise TypeError(f"metric must be a name or a callable, got {type(item).__name__}")
    return resolved


def _labelled_batches(data, batch_size: int):
    """(x, y) batches from an (x, y) pair of arrays or an iterable of (x, y) pairs."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
        x, y = data
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size], np.asarray(y[start:start + batch_size])
        return
    for item in data:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError("validation data must be an (x, y) pair of arrays or an iterable of "
                             "(x, y) batches, so that the metric can compare with the labels")
        yield item


def validate_networks(float_net, qnet, data, metric="top1", *, batch_size: int = 32,
                      quantized_layers=None) -> ValidationResult:
    """Evaluate the float network and (when given) the quantized one on the same labelled data."""
    metrics = _resolve_metrics(metric)
    float_scores, quant_scores, labels = [], [], []
    for x, y in _labelled_batches(data, batch_size):
        x = np.ascontiguousarray(split_inputs(x), dtype=np.float32)
        check_batch(float_net, x, "validation data")
        float_scores.append(float_net.predict(x))
        if qnet is not None:
            quant_scores.append(qnet.predict(x))
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError("validation data is empty: give at least one (x, y) batch")
    labels = np.concatenate(labels)
    float_scores = np.concatenate(float_scores)
    results = {"Floating-Point": {n: f(float_scores, labels) for n, f in metrics.items()}}
    if qnet is not None:
        quant_scores = np.concatenate(quant_scores)
        results["Quantized"] = {n: f(quant_scores, labels) for n, f in metrics.items()}
    if quantized_layers is None:
        quantized_layers = (qnet.quantized_layer_names if qnet is not None else
                            [l.name for l in float_net.layers if l.type_name in LEARNABLE_QUANTIZED])
    float_bytes, quantized_bytes = learnable_memory(float_net, set(quantized_layers))
    statistics = pd.DataFrame({"LearnableParameterMemory(bytes)": [float_bytes, quantized_bytes]},
                              index=["Floating-Point", "Quantized"])
    reduction = 100.0 * (1 - quantized_bytes / float_bytes) if float_bytes else 0.0
    return ValidationResult(len(labels), pd.DataFrame(results).T, statistics, reduction)
