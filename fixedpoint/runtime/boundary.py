"""Where a float value becomes integers in an affine network (a QuantizeLinear / QUANTIZE at the
input, or a float layer feeding a quantized one), and integers become floats again (a
DequantizeLinear / DEQUANTIZE at an output), computed as the runtime profile's `quantize` and
`dequantize` recipes say. Arrays are taken in their memory order as given (LiteRT's optimized
kernels treat an element by its position: a .tflite network quantizes its input and dequantizes its
outputs in TFLite's own layout)."""
from __future__ import annotations

import numpy as np

from .. import kernels


def quantize(profile, value: np.ndarray, params) -> np.ndarray:
    """round(x / scale) + zero point, saturated to the type: the quotient formed in float32 (a true
    division, as ORT's MlasQuantizeLinear and TFLite's AffineQuantize do), rounded with the recipe's
    rounding method (ORT: half to even; TFLite: half away from zero)."""
    recipe = profile.quantize
    if recipe.get("formula") == "litert":   # LiteRT's QUANTIZE of the profile's resolver
        from ..kernels import litert
        return litert.quantize(np.ascontiguousarray(value, dtype=np.float32), output_scale=float(params.scale[0]),
                               output_zero_point=int(params.zero_point[0]), resolver=recipe["resolver"],
                               dtype=params.dtype)
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


def dequantize(profile, q: np.ndarray, params) -> np.ndarray:
    """Integers to float32 as the profile's `dequantize` recipe says: float32((q − zp) · scale), or
    LiteRT's DEQUANTIZE of the profile's resolver."""
    recipe = profile.dequantize
    if recipe.get("formula") == "litert" and not params.per_channel:
        from ..kernels import litert
        return litert.dequantize(np.ascontiguousarray(q), scale=float(params.scale[0]),
                                 zero_point=int(params.zero_point[0]), resolver=recipe["resolver"])
    if recipe.get("formula") not in ("float32", "litert"):
        raise ValueError(f"runtime {profile.name!r}: unknown dequantize formula {recipe.get('formula')!r}")
    return params.dequantize(q)
