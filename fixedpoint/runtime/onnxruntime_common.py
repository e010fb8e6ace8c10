"""What every ONNX Runtime profile shares (CPU execution provider, x86-64, ORT 1.32): the recipes
that do not depend on the CPU. Each ONNX Runtime profile module builds on these.

A recipe of an ORT profile names:

* "compute": "ort-graph" — the layer runs as the operator ORT executes for it in the graph the
  profile stands for (the importer records it on each layer, `fixedpoint/onnx/ort_fusion.py`):
  an integer QLinear* operator, or the float operator between DequantizeLinear and QuantizeLinear.
* "graph": which graph that is — "optimized" (ORT's default graph optimizations: QDQ groups fused
  into QLinear* operators), "optimized-precise" (the same with session.x64quantprecision = 1, whose
  S8->U8 weight conversion can change which groups fuse) or "as-written" (ORT_DISABLE_ALL: every
  QDQ group runs in float32; QOperator nodes still run as written).
* "accumulation" (GEMM-like layers): the int32 accumulation MLAS uses on that CPU, as the
  `fixedpoint.kernels.ort_accumulation` ISA profile it names ("avx2", "avx2-precise", "vnni").
* "requantization": an entry of `fixedpoint.runtime.requantization.DERIVATIONS`.
* "float-layout" (Convolution2D, AveragePooling2D, GlobalAveragePooling2D): how ORT lays out the float
  Conv / AveragePool / GlobalAveragePool it runs (outside
  QDQ groups, or between DQ and Q for pooling): "nchwc8" / "nchwc16" (ORT_ENABLE_ALL's
  NchwcTransformer, MLAS's NCHWc kernels with block 8 on AVX2 or 16 on AVX-512F CPUs; the rule and
  the importer's hints in `fixedpoint.runtime.onnxruntime_nchwc`) or "nchw" (ORT_DISABLE_ALL).
* "source": the ORT code it follows.
"""

ORT_VERSION = "1.32"

QUANTIZE = {
    "rounding": "Convergent", "division": "float32", "kernel": "onnxruntime",
    "source": "onnxruntime/core/mlas/lib/quantize.cpp MlasQuantizeLinear: RNE(x / scale) + zero point, "
              "saturated (a true float32 division); computed by kernels.onnxruntime.quantize_linear",
}

_FLOAT = ("float operator between DequantizeLinear and QuantizeLinear: onnxruntime/core/providers/cpu "
          "kernels on MLAS (fixedpoint.kernels.onnxruntime float kernels)")

# float layer type -> (the integer ORT operators its kind implements, their source)
_SOURCES = {
    "Convolution2D": "onnxruntime/core/providers/cpu/quantization/qlinearconv.cc (QLinearConv, also the "
                     "NHWC com.microsoft form), onnxruntime/core/mlas/lib/quantize.cpp MlasRequantizeOutput; "
                     "conv_integer.cc (ConvInteger, then Cast / Mul / Add in float; dynamicquantizelinear.cc); "
                     "qlinear_binary_op.cc (QLinearAdd / QLinearMul of a per-channel constant)",
    "FullyConnected": "onnxruntime/core/providers/cpu/quantization/quantize_linear_matmul.cc (QLinearMatMul), "
                      "onnxruntime/contrib_ops/cpu/quantization/quant_gemm.cc (QGemm, also with a float output), "
                      "matmul_integer.cc (MatMulInteger), contrib_ops/cpu/quantization/dynamic_quantize_matmul.cc "
                      "(DynamicQuantizeMatMul, MatMulIntegerToFloat), mlas/lib/qpostprocessor.cpp "
                      "(MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR)",
    "Addition": "onnxruntime/contrib_ops/cpu/quantization/qlinear_binary_op.cc (QLinearAdd), "
                "mlas/lib/qladd.cpp",
    "Multiplication": "onnxruntime/contrib_ops/cpu/quantization/qlinear_binary_op.cc (QLinearMul), "
                      "mlas/lib/qlmul.cpp",
    "Concatenation": "onnxruntime/contrib_ops/cpu/quantization/qlinear_concat.cc (QLinearConcat)",
    "AveragePooling2D": "onnxruntime/contrib_ops/cpu/quantization/qlinear_pool.cc (QLinearAveragePool)",
    "GlobalAveragePooling2D": "onnxruntime/contrib_ops/cpu/quantization/qlinear_global_average_pool.cc "
                              "(QLinearGlobalAveragePool), mlas/lib/qlgavgpool.cpp",
    "LeakyReLU": "onnxruntime/contrib_ops/cpu/quantization/qlinear_activations.cc (QLinearLeakyRelu, "
                 "a 256-entry table from qlinear_lookup_table.cc)",
    "Sigmoid": "onnxruntime/contrib_ops/cpu/quantization/qlinear_activations.cc (QLinearSigmoid, a "
               "256-entry table of MlasComputeLogistic)",
    "Softmax": "onnxruntime/contrib_ops/cpu/quantization/qlinear_softmax.cc (QLinearSoftmax)",
    "MaxPooling2D": "onnxruntime/core/optimizer/qdq_transformer/selectors_actions/qdq_selector_action_"
                    "transformer.cc DropQDQNodesRules: MaxPool runs on the integers (pool.cc, uint8/int8)",
    "GlobalMaxPooling2D": "onnxruntime/core/providers/cpu/nn/pool.cc (float GlobalMaxPool; exact on "
                          "dequantized integers)",
    "ReLU": "relu_quantizelinear.cc / clip_quantizelinear.cc: a Relu before a QuantizeLinear is the "
            "clamp of the quantized value at Q(0) (Q is monotone, so the clamp commutes with it)",
    "ClippedReLU": "clip_quantizelinear.cc: Clip(lo, hi) before a QuantizeLinear = clamp to [Q(lo), Q(hi)]",
    "BatchNormalization": "onnxruntime/core/providers/cpu/nn/batch_norm.h (float only in ORT)",
    "Tanh": "onnxruntime/core/providers/cpu/activation (float only: MlasComputeTanh)",
    "Flatten": "DropQDQNodesRules (Flatten/Reshape/Transpose/Squeeze/Unsqueeze run on the integers)",
    "Reshape": "DropQDQNodesRules (Flatten/Reshape/Transpose/Squeeze/Unsqueeze run on the integers)",
    "Transpose": "DropQDQNodesRules (Flatten/Reshape/Transpose/Squeeze/Unsqueeze run on the integers)",
    "Identity": "QuantizeLinear of a float tensor (quantize_linear.cc, MlasQuantizeLinear), or Identity",
    "Dropout": "inference Dropout is an identity",
    "Resize2D": "onnxruntime/core/providers/cpu/tensor/upsample.cc (nearest Resize copies values: on the "
                "integers after DropQDQNodesRules, or in float between DQ and Q; linear: float between DQ and "
                "Q, or on the integers: NCHW float formula, NHWC NhwcUpsampleBilinearInteger)",
}


_NCHWC_TYPES = ("Convolution2D", "AveragePooling2D", "GlobalAveragePooling2D")
_NCHWC = ("float Conv / AveragePool / GlobalAveragePool rewritten by onnxruntime/core/optimizer/"
          "nchwc_transformer.cc to com.microsoft.nchwc nodes: mlas/lib/snchwc.cpp MlasNchwcConv / MlasNchwcPool "
          "(fixedpoint.runtime.onnxruntime_nchwc)")


def graph_ops(graph: str, accumulation: str, float_layout: str = "nchw") -> dict:
    """Recipes of every layer type an imported ORT model holds, for one graph mode, one accumulation
    and one float layout (see the module docstring)."""
    ops = {}
    for type_name, source in _SOURCES.items():
        ops[type_name] = {"compute": "ort-graph", "graph": graph, "float": "mlas", "source": f"{source}; {_FLOAT}"}
        if type_name in _NCHWC_TYPES:   # the float layers whose NCHWc kernel sums in another order
            ops[type_name]["float-layout"] = float_layout
            if float_layout != "nchw":
                ops[type_name]["source"] += f"; {_NCHWC}"
        if type_name in ("Convolution2D", "FullyConnected"):
            ops[type_name].update(accumulation=accumulation, requantization="onnxruntime")
    return ops
