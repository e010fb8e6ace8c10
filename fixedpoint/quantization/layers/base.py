"""What every quantized layer kind shares: the `QuantizedLayer` holding a layer's integer data, the
`QuantizedKind` contract, the registry of kinds by float layer type, and the rounding helpers.

A `QuantizedLayer` holds its integer data as plain, documented attributes (int8 weights with their
fraction lengths, int32 bias, shifts, input and output fraction lengths) that an independent
implementation can read, plus the prepared kernel objects (requantizers) built once at quantize or
load time. Each kind (one module per layer type, docs/quantized-semantics.md) knows how to build that
data from a float layer and how to run it with the compiled kernels; nothing loops over tensor
elements in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import kernels
from ..exponent import choose_fraction_length, log2_bins

INT8_MIN, INT8_MAX = -128, 127

# float layer type name -> its quantized kind (filled by `register_kind` in each kind's module)
QUANTIZED_KINDS: dict[str, "QuantizedKind"] = {}


def register_kind(*type_names: str):
    """Class decorator: one instance of the kind serves the float layer types `type_names`."""
    def decorate(cls):
        for type_name in type_names:
            if type_name in QUANTIZED_KINDS:
                raise TypeError(f"a quantized kind for {type_name!r} is already registered")
            QUANTIZED_KINDS[type_name] = cls()
        return cls
    return decorate


@dataclass(frozen=True)
class BuildOptions:
    """How a layer's learnables are quantized: the target's rounding, the exponent scheme for the
    weights (and its histogram threshold), and per-tensor or per-output-channel weights."""

    rounding: str
    scheme: str = "MinMax"
    threshold: float = 1e-4
    per_channel: bool = False

    def fraction_length(self, values: np.ndarray) -> int:
        counts, zeros = log2_bins(values)
        return choose_fraction_length(self.scheme, float(values.min()), float(values.max()),
                                      counts, zeros, self.threshold)


def quantize_scaled(values: np.ndarray, fraction_lengths, rounding: str, dtype) -> np.ndarray:
    """`sat(round(values · 2^f))` with f broadcast against `values`; exact, because scaling a
    float32 by a power of two in float64 is exact and the kernel rounds the float64 exactly."""
    scaled = np.ldexp(np.asarray(values, np.float64), np.asarray(fraction_lengths, np.int64))
    return kernels.quantize(scaled, fraction_length=0, rounding=rounding, overflow="Saturate",
                            dtype=dtype)


def requantize(acc: np.ndarray, shift, rounding: str) -> np.ndarray:
    """One rounding shift (positive = right) and saturation to int8."""
    return kernels.requantize_shift(acc, shift, rounding=rounding, overflow="Saturate",
                                    dtype=np.int8)


class QuantizedLayer:
    """One layer of a quantized network: the float layer (hyper-parameters), the integer data and
    the fraction lengths of its int8 inputs and output."""

    def __init__(self, layer, rounding: str, input_fraction_lengths, output_fraction_length: int,
                 **data):
        self.layer = layer
        self.name = layer.name
        self.type_name = layer.type_name
        self.rounding = rounding
        self.input_fraction_lengths = [int(f) for f in input_fraction_lengths]
        self.output_fraction_length = int(output_fraction_length)
        self.data = data
        for key, value in data.items():
            if isinstance(value, np.ndarray):
                # A read-only copy: the kernels work from copies packed below, which an array changed
                # in place afterwards would silently disagree with.
                value = np.array(value)
                value.flags.writeable = False
                data[key] = value
            setattr(self, key, value)
        self.kind = QUANTIZED_KINDS[self.type_name]
        self.kind.prepare(self)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self.kind.run(self, *inputs)

    def __repr__(self) -> str:
        return (f"QuantizedLayer({self.name!r}, {self.type_name}, inputs f={self.input_fraction_lengths}"
                f", output f={self.output_fraction_length})")


class QuantizedKind:
    """Semantics of one layer type. `own_exponent`: the output fraction length comes from the
    layer's calibrated output range; otherwise the layer is range-preserving (output f = input f)."""

    own_exponent = False

    def build(self, layer, input_fraction_lengths, output_fraction_length,
              options: BuildOptions) -> dict:
        return {}

    def prepare(self, ql: QuantizedLayer) -> None:
        """Build the kernel-side objects (requantizers) from the plain data."""

    def run(self, ql: QuantizedLayer, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError
