"""Per-layer error study: what quantization costs, layer by layer.

The float network (the prepared one the quantized network was built from) and the quantized network
run on the same inputs; every layer's quantized output (dequantized, exact) is compared with its
float output. Errors therefore accumulate along the graph, as they do on the target. For the
layers that run quantized, the float values are also checked against the layer's int8 output type:
how many would saturate and how many non-zero values would round to zero (underflow).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..quantization.qnetwork import QTensor, dequantize

COLUMNS = ["Layer", "Type", "Quantized", "Output type", "Elements", "SQNR (dB)", "Max abs error",
           "Saturated", "Saturated (fraction)", "Underflow", "Underflow (fraction)"]


def _quantized_network(quantized):
    """A QuantizedNetwork, or the latest result of a dlquantizer."""
    if hasattr(quantized, "qlayers"):
        return quantized
    qnet = getattr(quantized, "quantized_network", None)
    if qnet is None:
        raise ValueError("quantization_error needs a QuantizedNetwork or a dlquantizer that has "
                         "quantized: call q.quantize(...) first")
    return qnet


def round_scaled(values: np.ndarray, fraction_length: int, rounding: str) -> np.ndarray:
    """round_R(v · 2^f) as float64 integers, exact (scaling by a power of two is exact, and every
    float64 of magnitude >= 2^52 is already an integer)."""
    v = np.ldexp(np.asarray(values, np.float64), int(fraction_length))
    if rounding == "Round":
        return np.sign(v) * np.floor(np.abs(v) + 0.5)
    if rounding == "Nearest":
        return np.floor(v + 0.5)
    if rounding == "Convergent":
        return np.rint(v)
    if rounding == "Floor":
        return np.floor(v)
    if rounding == "Ceiling":
        return np.ceil(v)
    if rounding == "Zero":
        return np.trunc(v)
    raise ValueError(f"unknown rounding method {rounding!r}")


def stored_estimate(values: np.ndarray, params, rounding: str) -> np.ndarray:
    """The integers (before saturation, as float64) that float values would be stored as: exact for
    power-of-two parameters (`round_scaled` with the target's rounding), round half to even of
    value / scale + zero point (in float64) for affine ones."""
    if params.is_pow2:
        return round_scaled(values, params.fraction_length, rounding)
    return np.rint(np.asarray(values, np.float64) / float(params.scale[0])) + int(params.zero_point[0])


class _Accumulator:
    """Running sums of one layer over the batches."""

    def __init__(self):
        self.elements = 0
        self.signal = 0.0
        self.noise = 0.0
        self.max_error = 0.0
        self.saturated = 0
        self.underflow = 0
        self.nonzero = 0

    def add(self, reference: np.ndarray, quantized: np.ndarray, params, rounding):
        reference = np.asarray(reference, np.float64)
        error = np.asarray(quantized, np.float64) - reference
        self.elements += reference.size
        self.signal += float(np.sum(reference * reference))
        self.noise += float(np.sum(error * error))
        if error.size:
            self.max_error = max(self.max_error, float(np.max(np.abs(error))))
        if params is not None:
            stored = stored_estimate(reference, params, rounding)
            self.saturated += int(np.count_nonzero((stored > params.qmax) | (stored < params.qmin)))
            nonzero = reference != 0
            self.nonzero += int(np.count_nonzero(nonzero))
            self.underflow += int(np.count_nonzero(nonzero & (stored == int(params.zero_point[0]))))

    def sqnr(self) -> float:
        """10·log10(Σ float² / Σ error²): +inf when the outputs are equal."""
        if self.noise == 0:
            return math.inf
        if self.signal == 0:
            return -math.inf
        return 10.0 * math.log10(self.signal / self.noise)


def quantization_error(quantized, x: np.ndarray, *, float_network=None,
                       batch_size: int = 32, runtime=None) -> pd.DataFrame:
    """One row per layer (input layers excluded): SQNR in dB, maximum absolute error, and for
    quantized layers the saturation and underflow of the float values in the layer's int8 type.

    `quantized`: a QuantizedNetwork or a dlquantizer after quantize. `x`: input observations
    (N, ...). `float_network`: the float network to compare with; by default the prepared network
    the quantized one was built from (batch norm folded), so that the difference is quantization
    alone. Saturation and underflow fractions are of all elements and of the non-zero float
    values respectively; they are NaN for layers running in float. `runtime`: the profile an
    affine network runs as (default its own); the input of a network taking integers is compared
    with the float network run on its dequantized values.
    """
    qnet = _quantized_network(quantized)
    if float_network is None:   # the float network it was built from, when it kept it
        float_network = getattr(qnet, "float_network", None) or qnet.network
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = np.asarray(x)
    if x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one observation, got shape {x.shape}")
    network = qnet.network
    names = [n for n in network.layer_names if n not in network.input_names]
    missing = [n for n in names if n not in float_network.layer_names]
    if missing:
        raise ValueError(f"float_network has no layers {missing}; pass the network the quantized "
                         f"one was built from (the prepared network, q.prepared_network)")
    rounding = qnet.target.rounding
    sums = {name: _Accumulator() for name in names}
    input_name = network.input_names[0]
    integer_input = qnet.input_params.get(input_name)
    for start in range(0, len(x), batch_size):
        batch = np.ascontiguousarray(x[start:start + batch_size])
        float_batch = batch if integer_input is None else integer_input.dequantize(batch)
        floats = float_network.run({input_name: float_batch}, outputs=names)
        quants = qnet.run({input_name: batch}, outputs=names, runtime=runtime)
        for name in names:
            value = quants[name]
            ql = qnet.qlayers.get(name)
            if isinstance(value, QTensor):
                value = dequantize(value)
            sums[name].add(floats[name], value, None if ql is None else ql.output_params, rounding)
    rows = []
    for name in names:
        s, ql = sums[name], qnet.qlayers.get(name)
        quantized_layer = ql is not None
        nan = math.nan
        rows.append((name, network.layer(name).type_name, quantized_layer,
                     ql.output_params.describe() if quantized_layer and ql.output_params is not None
                     else "single",
                     s.elements, s.sqnr(), s.max_error,
                     s.saturated if quantized_layer else nan,
                     s.saturated / s.elements if quantized_layer and s.elements else nan,
                     s.underflow if quantized_layer else nan,
                     s.underflow / s.nonzero if quantized_layer and s.nonzero else
                     (0.0 if quantized_layer else nan)))
    return pd.DataFrame(rows, columns=COLUMNS)
