"""How each runtime turns the float scales of a GEMM-like layer into its requantizer.

The requantizers themselves (their rounding and saturation) are `fixedpoint.kernels.Requantizer`
modes; what differs between runtimes here is the *derivation*: in which precision the effective scale
`s_x · s_w / s_y` is formed and how it becomes a multiplier. A profile's recipe names one entry of
`DERIVATIONS` under "requantization".
"""
from __future__ import annotations

import numpy as np

from .. import kernels


def onnxruntime(input_scale, weight_scales, output, clamp):
    """ONNX Runtime (MLAS): `float32(s_x · s_w[c]) / s_y` in float32 (qlinearconv.cc
    ComputeOutputScale, quantize_linear_matmul.cc), applied by `mlas_fp32` (MlasRequantizeOutput)."""
    scale = kernels.fp32_scale(input_scale, weight_scales, output.scale[0])
    return kernels.Requantizer.fp32(np.asarray(scale, np.float32).reshape(-1), int(output.zero_point[0]),
                                    output.dtype, clamp)


def _litert(resolver: str):
    """LiteRT with op resolver `resolver`: the requantizer `fixedpoint.kernels.litert.ConvRequantizer`
    derives from the float32 scales, the TFLite operator and its fused activation (the derivations
    and their sources: docs/runtimes-litert-ops.md). The `clamp` of other runtimes is not used: each
    resolver quantizes the fused activation's bounds itself."""
    kinds = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
             "FULLY_CONNECTED": "fully_connected"}

    def derive(input_scale, weight_scales, output, clamp, *, op=None, activation="NONE", channels=None):
        from ..kernels import litert
        if op not in kinds:
            raise ValueError(f"LiteRT requantization needs the TFLite operator (one of {', '.join(kinds)}), "
                             f"got {op!r}")
        return litert.ConvRequantizer(kinds[op], input_scale=float(input_scale), weight_scales=weight_scales,
                                      output_scale=float(output.scale[0]),
                                      output_zero_point=int(output.zero_point[0]), channels=int(channels),
                                      activation=activation, resolver=resolver, dtype=output.dtype)
    derive.__name__ = derive.__qualname__ = f"litert_{resolver}"
    derive.__doc__ = (f"LiteRT, {resolver} resolver: " + {
        "reference": "gemmlowp double rounding (reference_integer_ops::ConvPerChannel, "
                     "DepthwiseConvPerChannel); FULLY_CONNECTED rounds double(acc)·M half away "
                     "(reference_integer_ops::FullyConnected with the float-scale path).",
        "optimized": "ruy's half-up double rounding (optimized_integer_ops::ConvPerChannel, "
                     "FullyConnected); DEPTHWISE_CONV_2D rounds its NEON channel blocks half up and "
                     "the rest as gemmlowp.",
        "xnnpack": "XNNPACK's fp32 requantization with float scales (xnn_qs8_qc8w_conv_minmax_params), "
                   "where the delegate takes the layer."}[resolver])
    return derive


litert_reference = _litert("reference")
litert_optimized = _litert("optimized")
litert_xnnpack = _litert("xnnpack")

DERIVATIONS = {"onnxruntime": onnxruntime, "litert-reference": litert_reference,
               "litert-optimized": litert_optimized, "litert-xnnpack": litert_xnnpack}
