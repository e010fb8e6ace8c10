"""`RuntimeProfile`: one emulated runtime as data — what it is, and per layer type how it computes.

A profile names, for each layer type it runs, a *recipe*: a small mapping of named choices
(accumulation, requantization, formula, …) and the runtime source the recipe follows. The affine
layer kinds (`fixedpoint/quantization/layers/`) read the recipe and pick the matching compiled
formula; a profile holds no code. Adding a runtime that combines known formulas differently is a new
data module in this package; only a new formula is new code (in the kind, or a C++ primitive).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


DEQUANTIZE_FLOAT32 = {
    "formula": "float32",
    "source": "ONNX DequantizeLinear (onnxruntime/core/providers/cpu/quantization/quantize_linear.cc) "
              "and TFLite's reference DEQUANTIZE: float32((q - zero point) * scale), rounded once",
}


class RuntimeNotSupportedError(ValueError):
    """A layer type (or option) this runtime profile does not run; names the layer and the profile."""


def _frozen(mapping) -> Mapping:
    return MappingProxyType({k: MappingProxyType(dict(v)) if isinstance(v, Mapping) else v
                             for k, v in dict(mapping).items()})


@dataclass(frozen=True)
class RuntimeProfile:
    """One emulated runtime configuration.

    `family` says which networks it runs: "onnxruntime" (ONNX models quantized with scales and zero
    points, and our own ONNXRuntime environment) or "litert" (.tflite models, our LiteRT
    environment). `isa` is the CPU kernel family it stands for (None: the runtime computes the same on
    every CPU). `quantize` is the recipe of a float → integer boundary (a QuantizeLinear / QUANTIZE at
    the network input, or a float layer feeding a quantized one). `ops` maps a float layer type name
    to its recipe; every recipe has a "source" entry citing the runtime code it follows.
    `options` records the runtime settings the profile stands for (e.g. a session option).
    `dequantize` is the recipe of an integer → float boundary (a DequantizeLinear / DEQUANTIZE at an
    output, or a quantized layer feeding a float one); by default float32((q − zp) · scale).
    """

    name: str
    family: str
    description: str
    quantize: Mapping[str, str]
    ops: Mapping[str, Mapping[str, str]]
    isa: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    dequantize: Mapping[str, str] = field(default_factory=lambda: dict(DEQUANTIZE_FLOAT32))

    def __post_init__(self):
        object.__setattr__(self, "quantize", _frozen(self.quantize))
        object.__setattr__(self, "dequantize", _frozen(self.dequantize))
        object.__setattr__(self, "ops", _frozen(self.ops))
        object.__setattr__(self, "options", _frozen(self.options))
        missing = [kind for kind, recipe in self.ops.items() if "source" not in recipe]
        if missing or "source" not in self.quantize or "source" not in self.dequantize:
            raise ValueError(f"runtime profile {self.name!r}: every recipe must cite its source "
                             f"(missing for {missing or ['quantize']})")

    def recipe(self, layer) -> Mapping[str, str]:
        """The recipe for `layer` (anything with `name` and `type_name`), or a clear error."""
        recipe = self.ops.get(layer.type_name)
        if recipe is None:
            raise RuntimeNotSupportedError(
                f"layer {layer.name!r}: runtime {self.name!r} has no emulation of {layer.type_name} "
                f"layers; it runs {', '.join(sorted(self.ops))}")
        return recipe

    def choice(self, layer, key: str, known) -> str:
        """The recipe's value for `key`, checked against the values the kind implements."""
        value = self.recipe(layer).get(key)
        if value not in known:
            raise RuntimeNotSupportedError(
                f"layer {layer.name!r}: runtime {self.name!r} asks for {key}={value!r} for "
                f"{layer.type_name} layers; implemented: {', '.join(map(str, known))}")
        return value
