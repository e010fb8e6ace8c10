"""What every LiteRT profile shares (ai-edge-litert 2.3, the TFLite interpreter), and the recipes of
each op resolver.

A LiteRT profile stands for one op resolver of the interpreter: "reference" (BUILTIN_REF),
"optimized" (BUILTIN_WITHOUT_DEFAULT_DELEGATES: the builtin optimized kernels; the x86 wheel runs
their NEON paths through NEON_2_SSE) and "xnnpack" (AUTO, the default: the XNNPACK delegate takes the
ops and parameters it supports, the optimized kernels run the rest). The recipes name the resolver;
the formulas are `fixedpoint.kernels.litert` (docs/runtimes-litert-ops.md) and the affine kinds bind
them (docs/runtimes-litert-import.md). Sources are paths in the LiteRT repository
(github.com/google-ai-edge/LiteRT, `tflite/...`) and in XNNPACK (github.com/google/XNNPACK).
"""

LITERT_VERSION = "2.3"

RESOLVERS = ("reference", "optimized", "xnnpack")

_KERNELS = {"reference": "tflite/kernels/internal/reference", "optimized": "tflite/kernels/internal/optimized",
            "xnnpack": "tflite/delegates/xnnpack/xnnpack_delegate.cc"}

# layer type -> (TFLite operator, kernel file, {resolver: what that resolver runs})
_OPS = {
    "Addition": ("ADD", "tflite/kernels/add.cc", {
        "reference": "reference_integer_ops::Add (AddElementwise: MultiplyByQuantizedMultiplierSmallerThanOneExp)",
        "optimized": "optimized_integer_ops::Add (NEON AddElementwiseInt8 blocks of 16, scalar tail)",
        "xnnpack": "XNNPACK qs8 vadd (src/qs8-vadd, xnn_init_qs8_add_minmax_scalar_params) where the "
                   "delegate takes it (input/output scale ratios in [2^-10, 2^8)), else optimized"}),
    "Subtraction": ("SUB", "tflite/kernels/sub.cc", {
        "reference": "reference_ops::SubElementwise (int8)",
        "optimized": "reference_ops::SubElementwise (no optimized int8 kernel)",
        "xnnpack": "XNNPACK qs8 vadd with the second scale negated (xnn_define_subtract) where the "
                   "delegate takes it, else the optimized kernel"}),
    "Multiplication": ("MUL", "tflite/kernels/mul.cc", {
        "reference": "reference_integer_ops::Mul (MulElementwise)",
        "optimized": "optimized_integer_ops::Mul (NEON MulElementwise blocks of 16, scalar tail)",
        "xnnpack": "XNNPACK qs8 vmul with fp32 requantization (src/qs8-vmul) where the delegate takes "
                   "it (s1 s2 / s_out in [2^-16, 2^8)), else optimized"}),
    "ReLU": ("RELU", "tflite/kernels/activations.cc ReluEval", {
        r: "QuantizedReluX: MultiplyByQuantizedMultiplier(q - z_in) + z_out, clamped at the zero "
           "point (XNNPACK takes only float RELU)" for r in RESOLVERS}),
    "ClippedReLU": ("RELU6", "tflite/kernels/activations.cc Relu6Eval", {
        r: "QuantizedReluX with the bounds 0 and 6 quantized (XNNPACK takes only float RELU6)"
        for r in RESOLVERS}),
    "LeakyReLU": ("LEAKY_RELU", "tflite/kernels/activations.cc LeakyReluEval", {
        "reference": "reference_ops::QuantizeLeakyRelu (two gemmlowp multipliers)",
        "optimized": "optimized_integer_ops::QuantizeLeakyRelu",
        "xnnpack": "XNNPACK qs8 vlrelu (8-bit multipliers) where the delegate takes the scales, else "
                   "optimized"}),
    "HardSwish": ("HARD_SWISH", "tflite/kernels/activations.cc HardSwishEval", {
        r: "reference_ops::HardSwish (int16 fixed point; no int8 XNNPACK kernel, the optimized one is "
           "ARM-only)" for r in RESOLVERS}),
    "Sigmoid": ("LOGISTIC", "tflite/kernels/activations.cc SigmoidEval", {
        "reference": "a 256-entry table of float expf, rounded (PopulateLookupTable)",
        "optimized": "a 256-entry table of float expf, rounded (PopulateLookupTable)",
        "xnnpack": "XNNPACK qs8 sigmoid table (double exp, rounded to even after + zp)"}),
    "Tanh": ("TANH", "tflite/kernels/activations.cc TanhEval", {
        "reference": "a 256-entry table of float tanhf, rounded (PopulateLookupTable)",
        "optimized": "a 256-entry table of float tanhf, rounded (PopulateLookupTable)",
        "xnnpack": "XNNPACK qs8 tanh table"}),
    "Softmax": ("SOFTMAX", "tflite/kernels/activations.cc SoftmaxEval", {
        "reference": "reference_ops::Softmax (int8: gemmlowp exp on differences)",
        "optimized": "optimized_ops::SoftmaxInt8LUT (a float exp table)",
        "xnnpack": "optimized_ops::SoftmaxInt8LUT (XNNPACK takes only float softmax)"}),
    "MaxPooling2D": ("MAX_POOL_2D", "tflite/kernels/pooling.cc MaxEval", {
        "reference": "reference_integer_ops::MaxPool: the window maximum, clamped to the activation",
        "optimized": "optimized_integer_ops::MaxPool: the window maximum, clamped",
        "xnnpack": "XNNPACK max pooling (s8 maxpool), bounds rounded as XNNPACK quantizes them"}),
    "AveragePooling2D": ("AVERAGE_POOL_2D", "tflite/kernels/pooling.cc AverageEval", {
        "reference": "reference_integer_ops::AveragePool (rounded division of the window sum)",
        "optimized": "optimized_integer_ops::AveragePool",
        "xnnpack": "XNNPACK average pooling where the delegate takes it, else optimized"}),
    "GlobalAveragePooling2D": ("MEAN", "tflite/kernels/reduce.cc EvalMean", {
        "reference": "reference_integer_ops::Mean / QuantizedMeanOrSum",
        "optimized": "optimized_integer_ops::Mean",
        "xnnpack": "XNNPACK qs8 mean where the delegate takes it, else optimized"}),
    "Concatenation": ("CONCATENATION", "tflite/kernels/concatenation.cc", {
        r: "a copy: Prepare requires every int8 input to share the output's quantization and no fused "
           "activation" for r in RESOLVERS}),
    "Flatten": ("RESHAPE / SQUEEZE", "tflite/kernels/reshape.cc, squeeze.cc", {
        r: "a copy of the bytes (input and output share their quantization)" for r in RESOLVERS}),
    "Reshape": ("RESHAPE / SQUEEZE", "tflite/kernels/reshape.cc, squeeze.cc", {
        r: "a copy of the bytes (input and output share their quantization)" for r in RESOLVERS}),
    "Transpose": ("(no operator: LiteRT holds 4-D tensors NHWC)", "fixedpoint/tflite/importer.py", {
        r: "the importer's NHWC <-> NCHW permutation of the same integers" for r in RESOLVERS}),
    "Identity": ("QUANTIZE (integer to integer)", "tflite/kernels/quantize.cc", {
        "reference": "reference_ops::Requantize (MultiplyByQuantizedMultiplier)",
        "optimized": "optimized_ops::Requantize (NEON blocks of 16 half-up, scalar tail)",
        "xnnpack": "XNNPACK qs8 convert where the delegate takes it (same type only), else optimized"}),
}

_LEARNABLE = {
    "Convolution2D": ("CONV_2D / DEPTHWISE_CONV_2D", "tflite/kernels/conv.cc, tflite/kernels/depthwise_conv.cc", {
        "reference": "reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel: exact int32 sums, "
                     "gemmlowp MultiplyByQuantizedMultiplier",
        "optimized": "optimized_integer_ops::ConvPerChannel (ruy, half-up double rounding) / "
                     "DepthwiseConvPerChannel (NEON channel blocks half up, the rest gemmlowp)",
        "xnnpack": "XNNPACK qs8-qc8w conv / dwconv with fp32 requantization (float scales)"}),
    "FullyConnected": ("FULLY_CONNECTED", "tflite/kernels/fully_connected.cc", {
        "reference": "reference_integer_ops::FullyConnected: exact int32 sums, the float-scale path "
                     "round(double(acc) * M) half away",
        "optimized": "optimized_integer_ops::FullyConnected (ruy, half-up double rounding)",
        "xnnpack": "XNNPACK qs8-qc8w gemm with fp32 requantization"}),
}


def ops(resolver: str) -> dict:
    """Recipes of every layer type LiteRT runs, for op resolver `resolver`."""
    recipes = {}
    for kind, (op, where, what) in _LEARNABLE.items():
        recipes[kind] = {"compute": "integer", "accumulation": "exact",
                         "requantization": f"litert-{resolver}",
                         "source": f"{op}: {where}; {what[resolver]}"}
    for kind, (op, where, what) in _OPS.items():
        recipes[kind] = {"compute": "litert", "resolver": resolver,
                         "source": f"{op}: {where}; {what[resolver]}"}
    return recipes


def quantize(resolver: str) -> dict:
    """The float → integer QUANTIZE of op resolver `resolver` (a float model input)."""
    what = {"reference": "reference_ops::AffineQuantize: round(x / scale) half away from zero, + zero point",
            "optimized": "optimized_ops::AffineQuantize: NEON blocks of 8 round x * (1 / scale), the tail "
                         "round(x / scale)",
            "xnnpack": "XNNPACK f32 → qs8 convert (src/f32-qs8-vcvt) where the delegate takes it, else "
                       "optimized"}[resolver]
    return {"formula": "litert", "resolver": resolver, "source": f"tflite/kernels/quantize.cc; {what}"}


def dequantize(resolver: str) -> dict:
    """The integer → float DEQUANTIZE of op resolver `resolver` (a float model output)."""
    what = {"reference": "reference_ops::Dequantize: float(double(scale) * (q - zero point))",
            "optimized": "optimized_ops::Dequantize: the NEON loop rounds the product and the offset "
                         "separately, the scalar tail once",
            "xnnpack": "XNNPACK qs8 → f32 convert where the delegate takes it, else optimized"}[resolver]
    return {"formula": "litert", "resolver": resolver, "source": f"tflite/kernels/dequantize.cc; {what}"}


# the recipe of the profiles before op resolvers (kept for code that reads it)
QUANTIZE = quantize("reference")
