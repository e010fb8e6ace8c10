"""Where a float value becomes integers in an affine network (a QuantizeLinear / QUANTIZE at the
input, or a float layer feeding a quantized one), computed as the runtime profile's `quantize`
recipe says."""
from __future__ import annotations

import numpy as np

from .. import kernels


def quantize(profile, value: np.ndarray, params) -> np.ndarray:
    """round(x / scale) + zero point, saturated to the type: the quotient formed in float32 (a true
    division, as ORT's MlasQuantizeLinear and TFLite's AffineQuantize do), rounded with the recipe's
    rounding method (ORT: half to even; TFLite: half away from zero)."""
    recipe = profile.quantize
    if recipe.get("division") != "float32":
        raise ValueError(f"runtime {profile.name!r}: unknown quantize division {recipe.get('division')!r}")
    value = np.asarray(value, dtype=np.float32)
    if params.per_channel:
        raise ValueError("per-channel quantization of activations is not supported")
    if recipe.get("kernel") == "onnxruntime":   # the runtime's own kernel (the same bits, ~25x faster)
        from ..kernels import onnxruntime
        return onnxruntime.quantize_linear(value, np.float32(params.scale[0]),
                                           params.dtype.type(params.zero_point[0]))
    return kernels.quantize(value, scale=np.float32(params.scale[0]), zero_point=int(params.zero_point[0]),
                            rounding=recipe["rounding"], overflow="Saturate", dtype=params.dtype)
