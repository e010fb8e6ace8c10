"""Execution environments as data: what each int8 target quantizes and how it rounds.

A target profile is one table entry. The workflow (calibration, quantization, the quantized layers,
validation) reads these fields and never branches on the environment's name, so a new target is a
new entry in `TARGETS`, not new code. The choices and their sources are in docs/quantization.md.
"""
from __future__ import annotations

from dataclasses import dataclass

# Layers whose learnables become int8 (weights) and int32/float32 (bias): always quantized.
LEARNABLE_QUANTIZED = frozenset({"Convolution2D", "FullyConnected"})

# Layers without learnables that run in fixed point when all their inputs are fixed point (B.7).
_CONDITIONAL_COMMON = frozenset({
    "ReLU", "LeakyReLU", "ClippedReLU", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Addition", "Concatenation", "Flatten",
    "Dropout", "Identity",
})


@dataclass(frozen=True)
class TargetProfile:
    """Everything that differs between execution environments.

    `supported_types` lists the layer types the environment accepts at all (None: every type);
    `quantized_types` are quantized whenever present; `conditional_types` only when all inputs are
    fixed point. `rounding` is the MATLAB rounding-method name used by every rounding step (bias
    and weight quantization, requantization shifts, average-pool division, boundary quantizers).
    """

    name: str
    target_library: str
    can_quantize: bool
    bias_dtype: str
    rounding: str
    quantized_types: frozenset = LEARNABLE_QUANTIZED
    conditional_types: frozenset = _CONDITIONAL_COMMON
    supported_types: frozenset | None = None
    overflow: str = "Saturate"
    accumulator_bits: int = 32
    requantizer: str = "pow2_shift"
    word_length: int = 8
    # Affine environments: the runtime family whose profiles run their networks, and the profile
    # `predict` uses by default (None: a power-of-two target, computed one way)
    runtime_family: str | None = None
    default_runtime: str | None = None

    def is_supported(self, type_name: str) -> bool:
        return self.supported_types is None or type_name in self.supported_types

    def quantizes(self, type_name: str) -> bool:
        """Whether layers of this type can run quantized on this target (perhaps conditionally)."""
        return type_name in self.quantized_types or type_name in self.conditional_types


_HDL_SUPPORTED = frozenset({
    "ImageInput", "FeatureInput", "Convolution2D", "FullyConnected", "BatchNormalization",
    "Softmax", "Sigmoid", "Tanh", "CrossChannelNormalization", "Reshape",
}) | LEARNABLE_QUANTIZED | _CONDITIONAL_COMMON

TARGETS: dict[str, TargetProfile] = {
    # Target-agnostic fi emulation; MATLAB documents round-half-away-from-zero and saturation.
    "MATLAB": TargetProfile("MATLAB", "none", True, "int32", "Round",
                            conditional_types=_CONDITIONAL_COMMON | {"Multiplication", "Reshape"}),
    # cuDNN int8: bias kept in single precision; float->int conversions round half to even.
    "GPU": TargetProfile("GPU", "cudnn", True, "float32", "Convergent",
                         conditional_types=_CONDITIONAL_COMMON | {"Reshape"}),
    # Deep Learning HDL Toolbox int8 processor: int32 bias; only the layers its processor has.
    "FPGA": TargetProfile("FPGA", "fpga", True, "int32", "Round",
                          conditional_types=_CONDITIONAL_COMMON | {"Reshape"},
                          supported_types=_HDL_SUPPORTED),
    # ARM Compute Library / CMSIS-NN code generation: calibrate and validate only.
    "CPU": TargetProfile("CPU", "arm-compute", False, "int32", "Round"),
    # Deployment runtimes with scales and zero points; their rounding is the runtime profile's.
    "ONNXRUNTIME": TargetProfile("ONNXRuntime", "onnxruntime", True, "int32", "Convergent",
                                 requantizer="runtime", runtime_family="onnxruntime",
                                 default_runtime="onnxruntime"),
    "LITERT": TargetProfile("LiteRT", "litert", True, "int32", "Round", requantizer="runtime",
                            runtime_family="litert", default_runtime="litert"),
}


def get_target(name: str) -> TargetProfile:
    """The profile of an execution environment, by case-insensitive name."""
    if not isinstance(name, str) or name.upper() not in TARGETS:
        raise ValueError(f"execution_environment must be one of {', '.join(TARGETS)}, got {name!r}")
    return TARGETS[name.upper()]
