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


DERIVATIONS = {"onnxruntime": onnxruntime}
