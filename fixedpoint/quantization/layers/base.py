"""What every quantized layer kind shares: the layer objects holding a layer's integer data, the
kind contracts, the registries of kinds by float layer type, and the rounding helpers.

Two schemes, one interface (`input_params`, `output_params`, `kind`, `data`):

* `QuantizedLayer` (power-of-two, MATLAB's int8 targets): int8 weights with their fraction lengths,
  int32 bias, shifts, input and output fraction lengths; its `QuantizedKind` runs it one way, with
  the target's rounding (docs/quantized-semantics.md).
* `AffineLayer` (ONNX Runtime, LiteRT): integer weights with scales and zero points, int32 bias,
  `QuantParams` of its inputs and output; its `AffineKind` binds it to a runtime profile, which names
  how that runtime accumulates, requantizes and rounds (docs/runtimes.md).

Layers hold their data as plain, documented attributes an independent implementation can read, plus
kernel-side objects built once; each kind (one module per layer type) runs it with the compiled
kernels, nothing loops over tensor elements in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import kernels
from ..exponent import choose_fraction_length, log2_bins
from ..qparams import QuantParams

INT8_MIN, INT8_MAX = -128, 127

# float layer type name -> its quantized kind, per scheme (filled by the kinds' modules)
QUANTIZED_KINDS: dict[str, "QuantizedKind"] = {}
AFFINE_KINDS: dict[str, "AffineKind"] = {}


def _registrar(registry: dict, what: str):
    def register(*type_names: str):
        """Class decorator: one instance of the kind serves the float layer types `type_names`."""
        def decorate(cls):
            for type_name in type_names:
                if type_name in registry:
                    raise TypeError(f"{what} kind for {type_name!r} is already registered")
                registry[type_name] = cls()
            return cls
        return decorate
    return register


# runtime family -> f(float layer, profile) giving the function that runtime computes the float layer
# with (None: the layer's own `forward`); used for the float layers of affine networks
RUNTIME_FLOAT_FUNCTIONS: dict = {}


def runtime_float_function(layer, profile, hint=None):
    """The float function `profile`'s runtime computes `layer` with, or None (its `forward`); `hint`:
    what the importer recorded about how that runtime rewrites the layer (or None)."""
    make = RUNTIME_FLOAT_FUNCTIONS.get(profile.family)
    return None if make is None else make(layer, profile, hint)


register_kind = _registrar(QUANTIZED_KINDS, "a power-of-two")
register_affine_kind = _registrar(AFFINE_KINDS, "an affine")


def read_only_data(data: dict) -> dict:
    """`data` with every array replaced by a read-only copy: the kernels work from copies packed once,
    which an array changed in place afterwards would silently disagree with."""
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            value = np.array(value)
            value.flags.writeable = False
            data[key] = value
    return data


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
    """One layer of a power-of-two quantized network: the float layer (hyper-parameters), the integer
    data and the fraction lengths of its int8 inputs and output."""

    scheme = "pow2"

    def __init__(self, layer, rounding: str, input_fraction_lengths, output_fraction_length: int,
                 **data):
        self.layer = layer
        self.name = layer.name
        self.type_name = layer.type_name
        self.rounding = rounding
        self.input_fraction_lengths = [int(f) for f in input_fraction_lengths]
        self.output_fraction_length = int(output_fraction_length)
        self.data = read_only_data(data)
        for key, value in data.items():
            setattr(self, key, value)
        self.input_params = [QuantParams.pow2(f) for f in self.input_fraction_lengths]
        self.output_params = QuantParams.pow2(self.output_fraction_length)
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


class AffineLayer:
    """One layer of an affine quantized network (ONNX Runtime, LiteRT): the float layer
    (hyper-parameters), the `QuantParams` of its integer inputs and output, and its integer data
    (weights with their scales and zero points, int32 bias, clamps …: each kind documents its
    fields). It computes nothing by itself: `kind.bind(layer, runtime)` returns the function that
    computes it as that runtime does.

    A port whose parameters are None carries float32 instead of integers: an input the layer
    quantizes itself (ONNX DynamicQuantizeLinear, whose scale and zero point depend on each batch),
    an output the runtime returns as float (QGemm without y_scale, MatMulIntegerToFloat, the Cast →
    Mul → Add after MatMulInteger / ConvInteger). The network passes such an input as float
    (dequantizing an integer tensor) and takes such an output as a float tensor."""

    scheme = "affine"

    def __init__(self, layer, input_params, output_params: QuantParams, **data):
        self.layer = layer
        self.name = layer.name
        self.type_name = layer.type_name
        if type(self.type_name) is not str or self.type_name not in AFFINE_KINDS:
            raise ValueError(f"layer {self.name!r}: no affine quantized form of {self.type_name} layers "
                             f"(supported: {', '.join(sorted(AFFINE_KINDS))})")
        self.input_params = list(input_params)
        self.output_params = output_params
        for p in [*self.input_params, output_params]:
            if p is not None and not isinstance(p, QuantParams):
                raise ValueError(f"layer {self.name!r}: quantization parameters must be QuantParams (or None "
                                 f"for a float port), got {type(p).__name__}")
        self.data = read_only_data(data)
        for key, value in data.items():
            setattr(self, key, value)
        self.kind = AFFINE_KINDS[self.type_name]
        self.kind.check(self)

    def __repr__(self) -> str:
        return (f"AffineLayer({self.name!r}, {self.type_name}, inputs {self.input_params}, "
                f"output {self.output_params})")


class AffineKind:
    """Semantics of one layer type on affine integers, for every runtime that runs it.

    `check(layer)` validates the data fields when the layer is made (clear errors naming the layer).
    `bind(layer, runtime)` returns `f(*input integer arrays) -> output integer array` computing the
    layer as `runtime` (a `RuntimeProfile`) does: the profile's recipe for the layer's type names a
    "compute" entry, and `COMPUTE` maps that name to the function making `f` (recipe value →
    f(layer, runtime)), so the formulas of every runtime sit side by side in one kind. They build
    requantizers and pack weights once; `f` only runs kernels."""

    COMPUTE: dict = {}

    def check(self, layer: AffineLayer) -> None:
        """Raise ValueError naming the layer when its data cannot be run."""

    def bind(self, layer: AffineLayer, runtime):
        table = self.COMPUTE
        return table[runtime.choice(layer, "compute", tuple(table))](layer, runtime)
