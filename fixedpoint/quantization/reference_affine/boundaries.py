"""Float <-> integer boundaries of the affine reference: ONNX QuantizeLinear / DequantizeLinear as
MLAS computes them, LiteRT's QUANTIZE / DEQUANTIZE per resolver."""
from __future__ import annotations

import numpy as np

from ..qparams import QuantParams
from .primitives import F32, ReferenceNotSupportedError, float_to_int32, rne, round_half_away, sat, wrap32


# =================================================================================================
# boundaries: float <-> integers
# =================================================================================================
def dequantize_float32(q, params: QuantParams) -> np.ndarray:
    """ONNX DequantizeLinear: float32(float32(q − zp) · scale) (per tensor)."""
    _per_tensor(params)
    return (np.asarray(q, np.int64) - int(params.zero_point[0])).astype(F32) * F32(params.scale[0])


def _per_tensor(params: QuantParams):
    if params.per_channel:
        raise ReferenceNotSupportedError(f"per-channel activation parameters ({params}) are not supported")


def ort_quantize_linear(value, params: QuantParams) -> np.ndarray:
    """MLAS MlasQuantizeLinear: v = x / scale (a float32 division), clamped in float to
    [lo − zp, hi − zp] with MAXPS/MINPS (NaN becomes lo − zp), rounded to nearest even, + zp."""
    _per_tensor(params)
    zp = int(params.zero_point[0])
    v = np.asarray(value, F32) / F32(params.scale[0])
    lo, hi = F32(params.qmin - zp), F32(params.qmax - zp)
    v = np.where(v > lo, v, lo)      # maxps(v, lo): lo unless v > lo (NaN → lo)
    v = np.where(v < hi, v, hi)
    return rne(v).astype(np.int64) + zp


def litert_quantize(value, params: QuantParams, resolver: str) -> np.ndarray:
    """TFLite QUANTIZE float → int8/uint8, per op resolver, on the values in memory (C) order:
    reference roundf(x / s) + z (float division; out-of-range → INT32_MIN, + z wrapping); optimized
    NEON blocks of 8 RNE(x · float(1 / double(s))) + z, the tail round(double(x) / double(s)) + z;
    XNNPACK (f32-qs8-vcvt) sat8(sat16(RNE(min(x · (1/s), 32767))) + z)."""
    _per_tensor(params)
    x = np.asarray(value, F32)
    flat = x.reshape(-1)
    s, z = F32(params.scale[0]), int(params.zero_point[0])
    if resolver == "reference":
        q = wrap32(float_to_int32(round_half_away(flat / s)) + z)
    elif resolver == "optimized":
        body = flat.size // 8 * 8
        inverse = F32(1.0 / float(s))
        head = wrap32(float_to_int32(rne(flat[:body] * inverse)) + z)
        tail = wrap32(float_to_int32(round_half_away(flat[body:].astype(np.float64) / float(s))) + z)
        q = np.concatenate([head, tail])
    elif resolver == "xnnpack":
        v = flat * (F32(1.0) / s)
        v = np.where(v < F32(32767), v, F32(32767))
        q = sat(sat(float_to_int32(rne(v)), -32768, 32767) + z, -32768, 32767)
    else:
        raise ValueError(f"unknown LiteRT resolver {resolver!r}")
    return sat(q, params.qmin, params.qmax).reshape(x.shape)


def litert_dequantize(q, params: QuantParams, resolver: str) -> np.ndarray:
    """TFLite DEQUANTIZE per resolver on the values in memory order: reference and XNNPACK
    float(double(s) · (q − z)); optimized NEON blocks of 8 float(q)·float(s) + float(−z·double(s))
    (two roundings), the tail as the reference."""
    _per_tensor(params)
    q = np.asarray(q, np.int64)
    flat = q.reshape(-1)
    s, z = float(params.scale[0]), int(params.zero_point[0])
    exact = (s * (flat - z).astype(np.float64)).astype(F32)
    if resolver == "optimized":
        body = flat.size // 8 * 8
        offset = F32(-z * s)
        exact[:body] = flat[:body].astype(F32) * F32(s) + offset
    return exact.reshape(q.shape)


def quantize_boundary(profile, value, params: QuantParams) -> np.ndarray:
    """A float value entering an affine layer, as the profile's `quantize` recipe says."""
    recipe = profile.quantize
    if recipe.get("formula") == "litert":
        return litert_quantize(value, params, recipe["resolver"])
    if recipe.get("division") == "float32" and recipe.get("rounding") == "Convergent":
        return ort_quantize_linear(value, params)
    raise ReferenceNotSupportedError(f"runtime {profile.name!r}: quantize recipe {dict(recipe)} is not re-derived")


def dequantize_boundary(profile, q, params: QuantParams) -> np.ndarray:
    """Integers leaving the quantized part, as the profile's `dequantize` recipe says."""
    recipe = profile.dequantize
    if recipe.get("formula") == "litert" and not params.per_channel:
        return litert_dequantize(q, params, recipe["resolver"])
    if recipe.get("formula") in ("float32", "litert"):
        return dequantize_float32(q, params)
    raise ReferenceNotSupportedError(f"runtime {profile.name!r}: dequantize recipe {dict(recipe)} is not re-derived")


def _scale(params: QuantParams) -> np.float32:
    _per_tensor(params)
    return F32(params.scale[0])


def _zp(params: QuantParams) -> int:
    return int(params.zero_point[0])
