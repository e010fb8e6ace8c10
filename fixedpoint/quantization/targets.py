"""Execution environments as data: what each int8 target quantizes and how it rounds.

A target profile is one table entry. The workflow (calibration, quantization, the quantized layers,
validation) reads these fields and never branches on the environment's name, so a new target is a
new entry in `TARGETS`, not new code. The choices and their sources are in docs/quantization.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Layers whose learnables become int8 (weights) and int32/float32 (bias): always quantized.
LEARNABLE_QUANTIZED = frozenset({"Convolution2D", "FullyConnected"})

# Layers without learnables that run in fixed point when all their inputs are fixed point (B.7).
_CONDITIONAL_COMMON = frozenset({
    "ReLU", "LeakyReLU", "ClippedReLU", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Addition", "Concatenation", "Flatten",
    "Dropout", "Identity",
})


@dataclass(frozen=True, eq=False)   # one object per environment: compared and hashed by identity
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
    # How an affine environment quantizes (data read by quantization/affine.py; docs/quantization.md):
    # `affine_layers` maps a layer type to its rule (AFFINE_RULES); `fixed_outputs` maps a type to
    # the output parameters the runtime's quantizer imposes, ("range", lo, hi) or ("params", scale,
    # zero point); `quantizer` names the formulas turning ranges, weights and biases into integers
    # ("onnxruntime": onnxruntime.quantization's quantize_static, "tflite": the TFLite converter);
    # `activation_dtypes` the activation types it takes (the first is the default);
    # `fused_activation_producers` the layer types a following ReLU / ReLU6 fuses into (TFLite's
    # fused activations); `adopting_consumers` the types whose output parameters a convolution or
    # fully connected operand read by nothing else takes over (the TFLite converter's rule for a
    # residual ADD); `float_fallback`: layer types without a rule run in float (else refused).
    affine_layers: Mapping[str, str] = field(default_factory=dict)
    fixed_outputs: Mapping[str, tuple] = field(default_factory=dict)
    quantizer: str | None = None
    activation_dtypes: tuple = ()
    fused_activation_producers: frozenset = frozenset()
    adopting_consumers: frozenset = frozenset()
    float_fallback: bool = True

    def is_supported(self, type_name: str) -> bool:
        return self.supported_types is None or type_name in self.supported_types

    def quantizes(self, type_name: str) -> bool:
        """Whether layers of this type can run quantized on this target (perhaps conditionally)."""
        return (type_name in self.quantized_types or type_name in self.conditional_types
                or type_name in self.affine_layers)


# Rules of the affine environments (`TargetProfile.affine_layers`):
#   "learnable"  int8 weights (symmetric), int32 bias at s_x·s_w, the output's own calibrated range;
#   "range"      the output's own calibrated range; a float input is quantized with its own range;
#   "input"      the output shares its input's parameters (max pooling, reshapes: the integers move);
#                where float fallback is allowed, the layer runs in float when its input does;
#   "fixed"      the output parameters of `fixed_outputs`;
#   "activation" ReLU / clipped ReLU: folded into the producer's output range (ORT: quantize_static
#                removes it and gives its range to the producer's QuantizeLinear) or fused into the
#                producer (TFLite: a fused activation of CONV_2D / FULLY_CONNECTED / ADD), else a
#                quantized layer with its own range.
AFFINE_RULES = ("learnable", "range", "input", "fixed", "activation")

# onnxruntime.quantization quantize_static (QDQ format, default op types: registry.py's
# QLinearOpsRegistry and QDQRegistry) for the layer types we have: QDQConv / QDQGemm (learnable),
# QDQOperatorBase (own range on every input and output), QDQDirect8BitOp / QDQMaxPool (output shares
# the input's parameters, only when the input is quantized), QDQRemovableActivation (Relu, Clip).
# Softmax's output range is set to [0, 1] (base_quantizer.py adjust_tensor_ranges). Not in its
# registry, hence float: Sub, Tanh, GlobalMaxPool, LRN, HardSwish.
_ORT_LAYERS = {
    "Convolution2D": "learnable", "FullyConnected": "learnable",
    "Addition": "range", "Multiplication": "range", "Concatenation": "range",
    "GlobalAveragePooling2D": "range", "Sigmoid": "range", "LeakyReLU": "range", "Softmax": "fixed",
    "MaxPooling2D": "input", "AveragePooling2D": "input", "Flatten": "input", "Reshape": "input",
    "Transpose": "input", "Resize2D": "input",
    "ReLU": "activation", "ClippedReLU": "activation",
}

# The TFLite converter (full-integer post-training quantization, TFLITE_BUILTINS_INT8): every layer
# quantized; MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE keep their input's parameters; SOFTMAX and
# LOGISTIC output scale 1/256 zero point -128, TANH 1/128 and 0 (the ops' fixed output ranges);
# RELU / RELU6 fuse into CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and ADD. Concatenation is not
# offered: the converter makes its operands share one scale by rules not verified here.
_LITERT_LAYERS = {
    "Convolution2D": "learnable", "FullyConnected": "learnable",
    "Addition": "range", "Subtraction": "range", "Multiplication": "range",
    "GlobalAveragePooling2D": "range", "LeakyReLU": "range", "HardSwish": "range",
    "Softmax": "fixed", "Sigmoid": "fixed", "Tanh": "fixed",
    "MaxPooling2D": "input", "AveragePooling2D": "input", "Flatten": "input", "Reshape": "input",
    "ReLU": "activation", "ClippedReLU": "activation",
}

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
    # Deployment runtimes with scales and zero points: the runtime's own quantizer chooses the
    # parameters (quantization/affine.py), the runtime profile computes (fixedpoint/runtime).
    "ONNXRUNTIME": TargetProfile("ONNXRuntime", "onnxruntime", True, "int32", "Convergent",
                                 quantized_types=frozenset(), conditional_types=frozenset(),
                                 requantizer="runtime", runtime_family="onnxruntime",
                                 default_runtime="onnxruntime", affine_layers=_ORT_LAYERS,
                                 fixed_outputs={"Softmax": ("range", 0.0, 1.0)},
                                 quantizer="onnxruntime", activation_dtypes=("uint8", "int8")),
    "LITERT": TargetProfile("LiteRT", "litert", True, "int32", "Round", requantizer="runtime",
                            quantized_types=frozenset(), conditional_types=frozenset(),
                            supported_types=frozenset(_LITERT_LAYERS) | frozenset({
                                "ImageInput", "FeatureInput", "BatchNormalization", "Dropout",
                                "Identity"}),
                            runtime_family="litert", default_runtime="litert",
                            affine_layers=_LITERT_LAYERS,
                            fixed_outputs={"Softmax": ("params", 1 / 256, -128),
                                           "Sigmoid": ("params", 1 / 256, -128),
                                           "Tanh": ("params", 1 / 128, 0)},
                            quantizer="tflite", activation_dtypes=("int8",),
                            fused_activation_producers=frozenset({"Convolution2D", "FullyConnected",
                                                                  "Addition"}),
                            adopting_consumers=frozenset({"Addition"}), float_fallback=False),
}


def get_target(name: str) -> TargetProfile:
    """The profile of an execution environment, by case-insensitive name."""
    if not isinstance(name, str) or name.upper() not in TARGETS:
        raise ValueError(f"execution_environment must be one of {', '.join(TARGETS)}, got {name!r}")
    return TARGETS[name.upper()]
