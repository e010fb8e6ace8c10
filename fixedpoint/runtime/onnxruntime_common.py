"""What every ONNX Runtime profile shares (CPU execution provider, x86-64, ORT 1.32): the recipes
that do not depend on the CPU. Each ONNX Runtime profile module builds on these."""

ORT_VERSION = "1.32"

QUANTIZE = {
    "rounding": "Convergent", "division": "float32",
    "source": "onnxruntime/core/mlas/lib/quantize.cpp MlasQuantizeLinear: RNE(x / scale) + zero point, "
              "saturated (a true float32 division)",
}


def integer_ops(accumulation: str) -> dict:
    """Recipes of the layers ORT fuses into integer operators, with the given int32 accumulation."""
    return {
        "Convolution2D": {
            "compute": "integer", "accumulation": accumulation, "requantization": "onnxruntime",
            "source": "onnxruntime/core/providers/cpu/quantization/qlinearconv.cc (QLinearConv), "
                      "onnxruntime/core/mlas/lib/quantize.cpp MlasRequantizeOutput"},
        "FullyConnected": {
            "compute": "integer", "accumulation": accumulation, "requantization": "onnxruntime",
            "source": "onnxruntime/core/providers/cpu/quantization/quantize_linear_matmul.cc "
                      "(QLinearMatMul), onnxruntime/contrib_ops/cpu/quantization/quant_gemm.cc (QGemm)"},
    }
