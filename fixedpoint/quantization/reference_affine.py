"""The independent reference path of affine `QuantizedNetwork`s (ONNX Runtime and LiteRT profiles).

`predict_reference(qnet, x, outputs=..., runtime=...)` computes what `qnet.predict` returns, layer by
layer, from nothing but the layers' plain data (integer weights, `QuantParams`, int32 bias, clamps,
the recorded ORT operators, the TFLite operator and activation fields) and the runtime profile's
recipe names. Every formula is written here again from its definition (docs/requantization.md,
docs/runtimes-onnxruntime-*.md, docs/runtimes-litert-*.md and the runtime sources they cite):

* integer accumulations are `fi` arithmetic: stored integers as `fi`, products kept whole and summed
  in a wrapping 32-bit accumulator under an explicit `fimath`;
* MLAS's saturating int16 pair sums (vpmaddubsw) are explicit numpy int64 pair sums of the raw bytes,
  zero points corrected exactly afterwards, with the rule table of which op saturates re-derived
  from docs/runtimes-onnxruntime-accumulation.md (`ort_accumulation_rule`);
* fixed-point requantizers (gemmlowp double rounding, ruy's half-up rounding, TFLite's float-scale
  FC path, XNNPACK's multipliers) are derived with Python integers / `Fraction` and applied with
  numpy int64; float32 formulas (MLAS fp32 requantization, QLinearAdd / QLinearMul, QuantizeLinear,
  XNNPACK fp32) are written with numpy float32 scalars and arrays, an FMA as an exact fused
  multiply-add (`fma32`);
* table-driven ops built from libm functions (LiteRT's LOGISTIC / TANH / SOFTMAX tables, ORT's
  QLinearSoftmax) call the C library's `expf` / `tanhf` / `logf` / `exp` through ctypes, as the
  runtimes do.

Nothing here calls `fixedpoint.kernels`, the affine layer kinds (their `bind`), or the compiled
extensions other than the `fi` engine; the only shared pieces are the float network's geometry
helpers and the runtime profiles (data). Layers whose runtime arithmetic is a float kernel this
module does not re-derive (MLAS's float convolution, GEMM, pooling, logistic and tanh, ORT's
float-route convolutions of a QDQ graph) raise `ReferenceNotSupportedError` naming the layer, the
runtime and why; `outputs=` of the layers before them still works. The coverage table is in
docs/quantized-semantics.md ("The independent reference path for affine networks").

    y = predict_reference(qnet, x, runtime="onnxruntime-avx2")            # == qnet.predict(...)
    acts = predict_reference(qnet, x, outputs=names, runtime="litert")    # layer by layer
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from fractions import Fraction
from typing import Sequence

import numpy as np

from .. import arith
from ..cast import setfimath
from ..fi import fi
from ..nn.functional import resolve_padding, spatial_output_shape
from ..runtime import get_runtime
from ..runtime.profile import RuntimeNotSupportedError
from ..types import fimath, numerictype
from .qparams import QuantParams

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
F32 = np.float32


class ReferenceNotSupportedError(RuntimeNotSupportedError):
    """The reference path does not re-derive this layer's arithmetic under this runtime; the
    message names the layer, the runtime and why."""


def _unsupported(ql, profile, why: str):
    return ReferenceNotSupportedError(
        f"layer {ql.name!r} ({ql.type_name}) under runtime {profile.name!r}: {why}")


# =================================================================================================
# exact scalar / array primitives
# =================================================================================================
def wrap32(v) -> np.ndarray:
    """int64 values reduced modulo 2^32 into the int32 range (a two's-complement register)."""
    v = np.asarray(v, np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def sat(v, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.asarray(v, np.int64), lo, hi)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul of int32 values: round(a·b / 2^31), ties toward
    +inf (floor((a·b + 2^30) / 2^31)); the one overflow, INT32_MIN · INT32_MIN, gives INT32_MAX."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    r = (a * b + (1 << 30)) >> 31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def rdbpot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: round(x / 2^e), ties away from zero (e >= 0, per element)."""
    x, e = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def shift_half_up(x, exponent) -> np.ndarray:
    """A rounding right shift with ties toward +inf (NEON vrshl by a negative amount, ruy)."""
    x, e = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    half = np.where(e > 0, np.int64(1) << np.maximum(e - 1, 0), 0)
    return (x + half) >> e


def left_shift_wrap(x, exponent) -> np.ndarray:
    """x · 2^e in int32 arithmetic (wrapping, as the compiled `x * (1 << e)` does)."""
    return wrap32(np.asarray(x, np.int64) << np.asarray(exponent, np.int64))


def mbqm(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (gemmlowp double rounding):
    RDBPOT(SRDHM(x · 2^max(shift, 0), M), max(-shift, 0))."""
    shift = np.asarray(shift, np.int64)
    return rdbpot(srdhm(left_shift_wrap(x, np.maximum(shift, 0)), multiplier), np.maximum(-shift, 0))


def mbqm_half_up(x, multiplier, shift) -> np.ndarray:
    """The same with the final shift rounding ties up (ruy's kernels, NEON vrshl)."""
    shift = np.asarray(shift, np.int64)
    return shift_half_up(srdhm(left_shift_wrap(x, np.maximum(shift, 0)), multiplier), np.maximum(-shift, 0))


def _round_half_away_fraction(v: Fraction) -> int:
    n = math.floor(abs(v) + Fraction(1, 2))
    return n if v >= 0 else -n


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier of a double: (M0, shift) with real ≈ M0 · 2^(shift − 31);
    q = frexp(real), M0 = round_half_away(q · 2^31) (exact, a Fraction), 2^31 → 2^30 with shift + 1,
    shifts below −31 flush to (0, 0)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m0 = _round_half_away_fraction(Fraction(q) * (1 << 31))
    if m0 == 1 << 31:
        m0 //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(m0), int(shift)


def round_half_away(v) -> np.ndarray:
    """C's round / roundf on float arrays (ties away from zero), exactly: v − trunc(v) is exact."""
    v = np.asarray(v)
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0).astype(v.dtype)


def float_to_int32(v) -> np.ndarray:
    """static_cast<int32_t> / cvttss2si / cvtps2dq of integral float values: values outside the
    int32 range (and NaN) give INT32_MIN, as on x86."""
    v = np.asarray(v, np.float64)
    bad = ~np.isfinite(v) | (v < INT32_MIN) | (v > INT32_MAX)
    return np.where(bad, INT32_MIN, np.where(bad, 0, v).astype(np.int64))


def rne(v) -> np.ndarray:
    """Round to nearest even (nearbyint / cvtps2dq under the default mode), as float."""
    return np.rint(v)


def fma32(a, b, c) -> np.ndarray:
    """float32 fused multiply-add, rounded once: a·b is exact in float64; a TwoSum gives the exact
    a·b + c as s + e, and rounding s to odd before the final rounding to float32 (53 ≥ 24 + 2 bits)
    makes that rounding correct."""
    a, b, c = np.broadcast_arrays(*(np.asarray(t, F32).astype(np.float64) for t in (a, b, c)))
    shape = a.shape
    a, b, c = (t.reshape(-1) for t in (a, b, c))
    p = a * b
    s = p + c
    bp = s - c
    e = (p - bp) + (c - (s - bp))
    even = (s.view(np.int64) & 1) == 0
    s = np.where((e != 0) & even & np.isfinite(s), np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s.astype(F32).reshape(shape)


_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))


def _libm(name: str, ctype):
    f = getattr(_LIBM, name)
    f.restype, f.argtypes = ctype, [ctype]
    return f


_EXPF, _TANHF, _LOGF = (_libm(n, ctypes.c_float) for n in ("expf", "tanhf", "logf"))
_EXP = _libm("exp", ctypes.c_double)


def _map_f32(function, values) -> np.ndarray:
    """A libm float function applied to float32 values one by one (tables of 256 entries)."""
    return np.array([function(float(v)) for v in np.asarray(values, F32).reshape(-1)], F32)


# =================================================================================================
# fi accumulation
# =================================================================================================
_ACC = fimath(rounding_method="Floor", overflow_action="Wrap", product_mode="FullPrecision",
              sum_mode="SpecifyPrecision", sum_word_length=32, sum_fraction_length=0)
_T16 = numerictype(1, 16, 0)     # centred 8-bit values (q − z) lie in [−255, 255]
_T32 = numerictype(1, 32, 0)
_PRODUCT_CHUNK = 1 << 21


def _fi(q, T=_T16) -> fi:
    return setfimath(fi(int=np.asarray(q, np.int64), numerictype=T), _ACC)


def _stored(x: fi) -> np.ndarray:
    return np.asarray(x.stored_integer, dtype=np.int64)


def fi_matmul_bias(cols: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """int32 sums Σ_k cols[m, k] · weights[k, o] + bias[o] of centred integers, as `fi` products
    summed in a wrapping 32-bit accumulator (exact modulo 2^32)."""
    m, k = cols.shape
    out = np.empty((m, weights.shape[1]), np.int64)
    w = _fi(weights)
    b = _fi(bias, _T32)
    rows = max(1, _PRODUCT_CHUNK // max(1, k * weights.shape[1]))
    for start in range(0, m, rows):
        out[start:start + rows] = _stored(arith.add(_ACC, _fi(cols[start:start + rows]) @ w, b))
    return out


def fi_sum(values: np.ndarray, axis) -> np.ndarray:
    """Σ of integers along `axis` in a wrapping 32-bit `fi` accumulator."""
    return _stored(arith.sum(_fi(values, _T32), axis=axis))


def pair_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MLAS's vpmaddubsw accumulation of raw bytes a (M, K) · b (K, O): the products at K steps
    (2j, 2j+1) — the pairs (4q, 4q+1), (4q+2, 4q+3) of its 4-byte K groups, K zero-padded — added
    in int16 with signed saturation, the pair sums then added exactly."""
    m, k = a.shape
    total = np.zeros((m, b.shape[1]), np.int64)
    for j in range(0, k, 2):
        pair = a[:, j:j + 1] * b[j][None, :]
        if j + 1 < k:
            pair = pair + a[:, j + 1:j + 2] * b[j + 1][None, :]
        total += np.clip(pair, -32768, 32767)
    return total


# =================================================================================================
# ONNX Runtime: which accumulation MLAS uses (docs/runtimes-onnxruntime-accumulation.md, re-derived)
# =================================================================================================
ORT_GEMM_OPS = ("MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
ORT_CONV_OPS = ("ConvInteger", "QLinearConv")
ORT_ISAS = ("avx2", "avx512bw", "vnni", "avx2-precise", "avx512bw-precise")
# session.x64quantprecision converts constant int8 weights of these ops: (domain, SinceVersions)
_PRECISE = {"MatMulInteger": ("", (10,)), "QLinearMatMul": ("", (10,)), "QLinearConv": ("", (10,)),
            "QGemm": ("com.microsoft", (1,)), "MatMulIntegerToFloat": ("com.microsoft", (1,)),
            "DynamicQuantizeMatMul": ("com.microsoft", (1,))}


def ort_accumulation_rule(op, isa, activation_dtype, weight_dtype, weight_zero_point=0, groups=1,
                          in_channels=None, out_channels=None, weight_is_constant=True, domain="",
                          since_version=None) -> tuple:
    """(kind, K order, unsigned operand) of ONNX Runtime 1.32's accumulation for one op, from the
    table of docs/runtimes-onnxruntime-accumulation.md: kind "exact" or "int16_pairs" (MLAS U8S8
    vpmaddubsw), K order None / "hwc" / "chw", the unsigned operand "activation" / "weight".
    Raises ValueError for the combinations ORT cannot run (and for unknown arguments)."""
    if op not in ORT_GEMM_OPS + ORT_CONV_OPS:
        raise ValueError(f"unknown ORT op {op!r}")
    if isa not in ORT_ISAS:
        raise ValueError(f"unknown ORT CPU profile {isa!r}")
    if domain not in ("", "ai.onnx", "com.microsoft"):
        raise ValueError(f"unknown domain {domain!r}")
    domain = "" if domain == "ai.onnx" else domain
    act, wt = (np.dtype(d).name for d in (activation_dtype, weight_dtype))
    if act not in ("uint8", "int8") or wt not in ("uint8", "int8"):
        raise ValueError(f"8-bit operands only, got {act} x {wt}")
    if op == "DynamicQuantizeMatMul" and act != "uint8":
        raise ValueError("DynamicQuantizeMatMul quantizes its activation to uint8")
    if op in ("QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat") and (act, wt) == ("int8", "uint8"):
        raise ValueError(f"no {op} kernel for int8 activations with uint8 weights")
    if isa.endswith("-precise") and wt == "int8" and weight_is_constant and op in _PRECISE:
        want_domain, versions = _PRECISE[op]
        version = versions[0] if since_version is None else int(since_version)
        if domain == want_domain and version in versions:   # the weights become uint8
            if act == "int8" and op != "MatMulInteger":
                raise ValueError(f"{op}: int8 activations with converted uint8 weights have no kernel")
            return ("exact", None, None)
    if isa == "vnni":                                       # vpdpbusd: exact
        return ("exact", None, None)
    if op in ORT_GEMM_OPS:                                  # U8S8 pairs; U8U8, S8S8, S8U8 exact
        return ("int16_pairs", None, "activation") if (act, wt) == ("uint8", "int8") else ("exact", None, None)
    if op == "ConvInteger":                                 # A = weights: s8 x u8 is U8S8
        return ("int16_pairs", "chw", "weight") if (act, wt) == ("int8", "uint8") else ("exact", None, None)
    if (act, wt) == ("uint8", "int8"):                      # QLinearConv
        zp = np.asarray(weight_zero_point).reshape(-1)
        uniform = zp.size == 0 or bool(np.all(zp == zp[0]))
        depthwise = (in_channels is not None and out_channels is not None and groups >= 1
                     and in_channels == groups and out_channels == groups)
        if depthwise and uniform:                           # MlasConvDepthwise: exact
            return ("exact", None, None)
        return ("int16_pairs", "hwc", "activation")
    return ("exact", None, None)


# =================================================================================================
# convolution / fully connected sums
# =================================================================================================
def _patches(x: np.ndarray, kernel, stride, dilation, pads, pad_value: int, channels: slice):
    """(N·OH·OW, kh·kw·cg) raw integers of one group's patches, taps in (kh, kw, c) order, padding
    holding `pad_value`; and (OH, OW)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, left, bottom, right = pads
    padded = np.full((n, c, h + top + bottom, w + left + right), pad_value, np.int64)
    padded[:, :, top:top + h, left:left + w] = x
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    rows = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]
    cols = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]
    chan = np.arange(channels.start, channels.stop)[:, None, None, None, None]
    windows = padded[:, chan, rows[:, None, :, None], cols[None, :, None, :]]   # N, cg, oh, ow, kh, kw
    cg = channels.stop - channels.start
    return windows.transpose(0, 2, 3, 4, 5, 1).reshape(n * oh * ow, kh * kw * cg), (oh, ow)


def linear_sums(x, weights, x_zero_point, w_zero_points, bias, accumulation, geometry=None):
    """int32 accumulators (N, O[, OH, OW]) of Σ (x − z_x)(w − z_w) + bias for a fully connected
    layer (geometry None; x (N, K), weights (O, K)) or a convolution (geometry = (stride, dilation,
    pads, groups); x NCHW, weights OIHW), exact (`fi`) or as MLAS's int16 pairs (raw bytes, K in
    (kh, kw, c) order per group, zero points corrected exactly: raw − z_w·Σx − z_x·Σw + K·z_x·z_w)."""
    zw = np.broadcast_to(np.asarray(w_zero_points, np.int64).reshape(-1), (weights.shape[0],))
    bias = np.asarray(bias, np.int64)
    if geometry is None:
        groups_cols = [(x.reshape(x.shape[0], -1).astype(np.int64), slice(0, weights.shape[0]))]
        wmats = [weights.reshape(weights.shape[0], -1).astype(np.int64).T]
        out_hw = None
    else:
        stride, dilation, pads, groups = geometry
        o, cg, kh, kw = weights.shape
        og = o // groups
        groups_cols, wmats = [], []
        for g in range(groups):
            cols, out_hw = _patches(x, (kh, kw), stride, dilation, pads, x_zero_point,
                                    slice(g * cg, (g + 1) * cg))
            groups_cols.append((cols, slice(g * og, (g + 1) * og)))
            wmats.append(weights[g * og:(g + 1) * og].astype(np.int64).transpose(2, 3, 1, 0).reshape(-1, og))
    n_rows = groups_cols[0][0].shape[0]
    acc = np.empty((n_rows, weights.shape[0]), np.int64)
    for (cols, sel), wm in zip(groups_cols, wmats):
        z = zw[sel]
        if accumulation == "int16_pairs":
            k = cols.shape[1]
            raw = pair_sums(cols, wm)
            acc[:, sel] = wrap32(raw - z[None, :] * cols.sum(1)[:, None] - x_zero_point * wm.sum(0)[None, :]
                                 + k * x_zero_point * z[None, :] + bias[sel][None, :])
        else:
            acc[:, sel] = fi_matmul_bias(cols - x_zero_point, wm - z[None, :], bias[sel])
    if geometry is None:
        return acc
    n = x.shape[0]
    return acc.reshape(n, out_hw[0], out_hw[1], -1).transpose(0, 3, 1, 2)


def _channel_shape(acc: np.ndarray) -> tuple:
    """Broadcast shape of per-output-channel parameters (axis 1)."""
    return (1, -1) + (1,) * (acc.ndim - 2)


def requantize_fp32(acc, scale, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """MLAS MlasRequantizeOutput / XNNPACK fp32: RNE(min(max(float32(acc) · scale, lo − zp),
    hi − zp)) + zp, all in float32 (per-channel scales along axis 1)."""
    scale = np.asarray(scale, F32).reshape(_channel_shape(acc))
    v = np.asarray(acc, np.int64).astype(F32) * scale
    v = np.minimum(np.maximum(v, F32(lo - zero_point)), F32(hi - zero_point))
    return rne(v).astype(np.int64) + zero_point


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


# =================================================================================================
# shared integer layer pieces
# =================================================================================================
def _pool_windows(q: np.ndarray, pool, stride, pads, ceil_mode: bool, fill: int):
    """(N, C, OH, OW, kh·kw) windows of stored integers and a mask of the taps inside the input."""
    n, c, h, w = q.shape
    (kh, kw), (sh, sw) = pool, stride
    oh, ow = spatial_output_shape(q.shape, pool, stride, pads, ceil_mode=ceil_mode)
    top, left = pads[0], pads[1]
    height, width = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    padded = np.full((n, c, max(height, top + h), max(width, left + w)), fill, np.int64)
    padded[:, :, top:top + h, left:left + w] = q
    inside = np.zeros((max(height, top + h), max(width, left + w)), bool)
    inside[top:top + h, left:left + w] = True
    rows = (np.arange(oh) * sh)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols = (np.arange(ow) * sw)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    return (padded[:, :, rows, cols].reshape(n, c, oh, ow, kh * kw),
            inside[rows, cols].reshape(oh, ow, kh * kw))


def _pool_pads(layer, shape):
    return resolve_padding(layer.padding, shape[2:], layer.pool_size, layer.stride, (1, 1))


def max_pool_int(layer, q: np.ndarray) -> np.ndarray:
    """The maximum of the window's taps inside the input (padding never wins)."""
    if layer.type_name == "GlobalMaxPooling2D":
        return q.max(axis=(2, 3), keepdims=True)
    windows, _ = _pool_windows(q, layer.pool_size, layer.stride, _pool_pads(layer, q.shape),
                               layer.ceil_mode, fill=INT32_MIN)
    return windows.max(axis=-1)


def _move(layer):
    """Data movement of the float layer's definition applied to the integers (a reshape,
    transpose, repeat: numpy only)."""
    forward = layer.layer.forward
    return lambda q: np.asarray(forward(q), np.int64)


# =================================================================================================
# ONNX Runtime layers
# =================================================================================================
_GRAPH_FIELDS = {"optimized": "ort_op", "optimized-precise": "ort_op_precise", "as-written": "ort_op_unoptimized"}
# a hand-made layer (no recorded operator) stands for the integer operator ORT fuses its type into
_ORT_DEFAULT_OPS = {
    "Convolution2D": "QLinearConv", "FullyConnected": "QGemm", "Addition": "QLinearAdd",
    "Multiplication": "QLinearMul", "Concatenation": "QLinearConcat",
    "AveragePooling2D": "QLinearAveragePool", "GlobalAveragePooling2D": "QLinearGlobalAveragePool",
    "LeakyReLU": "QLinearLeakyRelu", "Sigmoid": "QLinearSigmoid", "Softmax": "QLinearSoftmax",
    "MaxPooling2D": "MaxPool", "GlobalMaxPooling2D": "GlobalMaxPool", "ReLU": "Clamp",
    "ClippedReLU": "Clamp", "Flatten": "Flatten", "Reshape": "Reshape", "Transpose": "Transpose",
    "Identity": "Identity", "Dropout": "Identity", "Resize2D": "Resize"}
_MOVING_OPS = ("Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Resize", "MaxPool",
               "GlobalMaxPool")


def ort_operator(ql, profile) -> str:
    """The operator ORT runs for the layer in the profile's graph ("" = the float operator between
    DequantizeLinear and QuantizeLinear), from the layer's recorded `ort_op*` fields."""
    graph = profile.recipe(ql).get("graph")
    if graph not in _GRAPH_FIELDS:
        raise _unsupported(ql, profile, f"unknown ORT graph {graph!r}")
    op = getattr(ql, _GRAPH_FIELDS[graph], None)
    if op is None and graph == "optimized-precise":
        op = getattr(ql, "ort_op", None)
    if op is None:
        op = _ORT_DEFAULT_OPS.get(ql.type_name, "")
    return str(op)


def _ort_isa(ql, profile) -> str:
    """The MLAS accumulation profile: the recipe's, "host" mapped to this machine's ORT kernels,
    "-precise" dropped when every int8 weight lies in [−64, 64] (ORT then skips the conversion)."""
    isa = profile.recipe(ql).get("accumulation")
    if isa == "host":   # CPU detection is not arithmetic: the one place it lives (csrc/cpu/features.hpp)
        from ..kernels import host_ort_profile
        isa = host_ort_profile() or "avx2"
        isa = "avx2" if isa == "avx512bw" else isa
    if isa not in ("avx2", "avx2-precise", "vnni"):
        raise _unsupported(ql, profile, f"unknown ORT accumulation {isa!r}")
    if isa.endswith("-precise") and ql.weights.dtype == np.int8 and \
            int(np.abs(ql.weights.astype(np.int64)).max(initial=0)) <= 64:
        isa = isa[:-len("-precise")]
    return isa


def _linear_clamp(ql) -> tuple[int, int]:
    c = getattr(ql, "clamp", None)
    out = ql.output_params
    return (out.qmin, out.qmax) if c is None else (int(c[0]), int(c[1]))


def _ort_linear(ql, profile, op: str | None):
    """QLinearConv / QLinearMatMul / QGemm (op None: exact sums, a hand-made "integer" recipe):
    MLAS's accumulation on the profile's CPU, + bias, MlasRequantizeOutput with the float32 scale
    float32(s_x · s_w[c]) / s_y."""
    x_params = ql.input_params[0]
    zx = _zp(x_params)
    flip = False
    accumulation = "exact"
    if op is not None:
        activation = np.dtype(getattr(ql, "ort_activation_dtype", x_params.dtype))
        flip = activation != x_params.dtype
        layer = ql.layer
        groups = getattr(layer, "groups", 1)
        try:
            accumulation = ort_accumulation_rule(
                op, _ort_isa(ql, profile), activation, ql.weights.dtype, ql.weight_params.zero_point, groups,
                ql.weights.shape[1] * groups if ql.weights.ndim == 4 else None, ql.weights.shape[0],
                domain="com.microsoft" if op == "QGemm" else "")[0]
        except ValueError as error:
            raise _unsupported(ql, profile, f"ONNX Runtime cannot run {op} here ({error})") from None
    scale = (F32(_scale(x_params)) * np.asarray(ql.weight_params.scale, F32)).astype(F32) / _scale(ql.output_params)
    lo, hi = _linear_clamp(ql)
    zy = _zp(ql.output_params)
    geometry_of = _conv_geometry if ql.type_name == "Convolution2D" else None

    def run(x):
        if flip:   # ORT's S8 -> U8 conversion: x + 128 as uint8, zero point + 128 (same real values)
            x, z = x + 128, zx + 128
        else:
            z = zx
        geometry = None if geometry_of is None else geometry_of(ql.layer, x.shape, ql.weights.shape)
        acc = linear_sums(x, ql.weights, z, ql.weight_params.zero_point, ql.bias, accumulation, geometry)
        return requantize_fp32(acc, scale, zy, lo, hi)
    return run


def _conv_geometry(conv, shape, wshape):
    pads = resolve_padding(conv.padding, shape[2:], wshape[2:], conv.stride, conv.dilation)
    return conv.stride, conv.dilation, pads, conv.groups


def _pack_ort(v: np.ndarray, dtype) -> np.ndarray:
    """cvtps2dq (RNE; out of range → INT32_MIN), packssdw (int16 saturation), then packuswb /
    packsswb into the 8-bit type."""
    i = sat(float_to_int32(rne(v)), -32768, 32767)
    info = np.iinfo(dtype)
    return sat(i, info.min, info.max)


def _ort_qlinear_add(ql, profile):
    """com.microsoft QLinearAdd, MLAS's AVX2 kernel (qladd_avx2.cpp, FMA contracted):
    rA = sA/sC, rB = sB/sC, F = float(zC) − fma(rA, zA, rB·zB), c = fma(a, rA, fma(b, rB, F))."""
    (pa, pb), pc = ql.input_params, ql.output_params
    ra, rb = _scale(pa) / _scale(pc), _scale(pb) / _scale(pc)
    f = F32(_zp(pc)) - fma32(ra, F32(_zp(pa)), rb * F32(_zp(pb)))

    def run(a, b):
        if a.shape != b.shape:
            raise _unsupported(ql, profile, "QLinearAdd with broadcasting is not re-derived")
        return _pack_ort(fma32(a.astype(F32), ra, fma32(b.astype(F32), rb, f)), pc.dtype)
    return run


def _ort_qlinear_mul(ql, profile):
    """com.microsoft QLinearMul, MLAS's SSE2 kernel (qlmul.cpp): ratio = (sA·sB)/sC,
    c = float((a − zA)(b − zB)) · ratio + float(zC) (two roundings)."""
    (pa, pb), pc = ql.input_params, ql.output_params
    ratio = (_scale(pa) * _scale(pb)) / _scale(pc)

    def run(a, b):
        if a.shape != b.shape:
            raise _unsupported(ql, profile, "QLinearMul with broadcasting is not re-derived")
        product = ((a - _zp(pa)) * (b - _zp(pb))).astype(F32)
        return _pack_ort(product * ratio + F32(_zp(pc)), pc.dtype)
    return run


def _ort_qlinear_concat(ql, profile):
    """QLinearConcat (qlinear_concat.cc): an input whose scale and zero point equal the output's is
    copied, others pass a table MlasQuantizeLinear(x_scale · float(x − x_zp))."""
    out, axis = ql.output_params, ql.layer.axis

    def requantized(x, p):
        if float(p.scale[0]) == float(out.scale[0]) and _zp(p) == _zp(out):
            return x
        return ort_quantize_linear(_scale(p) * (x - _zp(p)).astype(F32), out)
    return lambda *xs: np.concatenate([requantized(x, p) for x, p in zip(xs, ql.input_params)], axis=axis)


def _ort_qlinear_global_average_pool(ql, profile):
    """QLinearGlobalAveragePool (qlgavgpool.cpp): the exact int32 sum of x − x_zp per channel,
    then fp32 requantization by x_scale / (y_scale · float(H·W))."""
    (px,), py = ql.input_params, ql.output_params

    def run(x):
        n, c, h, w = x.shape
        total = fi_sum((x - _zp(px)).reshape(n, c, h * w), axis=2).reshape(n, c, 1, 1)
        scale = _scale(px) / (_scale(py) * F32(h * w))
        if h * w >= 1 << 24 or not F32(2.0 ** -32) <= scale < F32(256.0):
            raise ValueError(f"layer {ql.name!r}: QLinearGlobalAveragePool's scale {scale} or image size "
                             f"{h * w} is outside what MLAS computes (ORT rejects it)")
        return requantize_fp32(total, scale, _zp(py), py.qmin, py.qmax)
    return run


def _ort_qlinear_average_pool(ql, profile):
    """com.microsoft QLinearAveragePool (qlinear_pool.cc): each cell dequantized x_scale·float(x −
    zp), the window's valid cells summed in float32 in index order, divided by the kernel size
    (count_include_pad) or the valid count, q = clamp(nearbyintf(avg / y_scale + y_zp)). A kernel
    covering the whole image without padding runs as QLinearGlobalAveragePool."""
    pool = ql.layer
    (px,), py = ql.input_params, ql.output_params
    global_pool = _ort_qlinear_global_average_pool(ql, profile)

    def run(x):
        pads = _pool_pads(pool, x.shape)
        if tuple(pool.pool_size) == tuple(x.shape[2:]) and not any(pads):
            return global_pool(x)
        windows, inside = _pool_windows(x, pool.pool_size, pool.stride, pads, pool.ceil_mode, fill=_zp(px))
        cells = _scale(px) * (windows - _zp(px)).astype(F32)
        total = np.zeros(windows.shape[:-1], F32)
        for t in range(windows.shape[-1]):          # in index order, float32 sums
            total = np.where(inside[..., t], total + cells[..., t], total)
        if pool.count_include_pad:
            count = F32(pool.pool_size[0] * pool.pool_size[1])
        else:
            count = inside.sum(-1).astype(F32)
        v = rne((total / count) / _scale(py) + F32(_zp(py)))
        return sat(float_to_int32(v), py.qmin, py.qmax)
    return run


def _ort_leaky_relu(ql, profile):
    """QLinearLeakyRelu (qlinear_lookup_table.cc): a 256-entry table of MlasQuantizeLinear(f(x_scale ·
    float(i − zp))), f(v) = v ≥ 0 ? v : alpha · v in float32."""
    (px,), py = ql.input_params, ql.output_params
    alpha = F32(ql.layer.scale)
    info = np.iinfo(px.dtype)
    values = np.arange(info.min, info.max + 1)
    v = _scale(px) * (values - _zp(px)).astype(F32)
    table = ort_quantize_linear(np.where(v >= 0, v, alpha * v), py)
    return lambda x: table[x - info.min]


def _ort_qlinear_softmax(ql, profile):
    """com.microsoft QLinearSoftmax (qlinear_softmax.cc, as ORT 1.32 computes it): shift =
    max(0, logf(FLT_MAX / float(D)) − 5) / x_scale in double, e(k) = float(exp((k − 255 + shift) ·
    x_scale)) for k = x − max + 255, the row sum in float32 in order, then
    q = nearbyint(double(e) · double(floorf(1 / y_scale)) / double(sum)) + y_zp, clamped at the top
    (255 for uint8, 127 for int8). The quotient in double is measured, not read: it is the only
    formula among float (e / sum)·ys, (e·ys) / sum, e·(ys / sum) and this one that equals ORT on
    every row where they differ (tests/test_quant_reference_affine.py)."""
    (px,), py = ql.input_params, ql.output_params
    axis, opset = ql.layer.axis, int(getattr(ql, "ort_opset", 13))
    xs = float(_scale(px))
    y_scale = float(np.floor(F32(1.0) / _scale(py)))

    def run(x):
        ax = axis % x.ndim
        if opset < 13:
            rows = x.reshape(int(np.prod(x.shape[:ax])), -1)
        else:
            rows = np.moveaxis(x, ax, -1)
            moved = rows.shape
            rows = rows.reshape(-1, rows.shape[-1])
        d = rows.shape[1]
        shift = float(_LOGF(float(F32(np.finfo(F32).max) / F32(d))))
        shift = max(0.0, shift - 5.0) / xs
        table = np.array([_EXP((k - 255 + shift) * xs) for k in range(256)], np.float64).astype(F32)
        e = table[rows - rows.max(axis=1, keepdims=True) + 255]
        total = np.zeros(rows.shape[0], F32)
        for j in range(d):
            total = total + e[:, j]
        quotient = (e.astype(np.float64) * y_scale) / total.astype(np.float64)[:, None]
        q = rne(quotient).astype(np.int64) + _zp(py)
        q = np.minimum(q, 255 if py.dtype == np.uint8 else 127)
        if opset < 13:
            return q.reshape(x.shape)
        return np.moveaxis(q.reshape(moved), -1, ax)
    return run


def _ort_clamp(ql, profile):
    """A ReLU / Clip moved after its QuantizeLinear: clamp to [Q(0), Q(ceiling)] (Q monotone)."""
    out = ql.output_params
    ceiling = getattr(ql.layer, "ceiling", None)
    lo = int(ort_quantize_linear(np.zeros(1, F32), out)[0])
    hi = out.qmax if ceiling is None else int(ort_quantize_linear(np.array([ceiling], F32), out)[0])
    return lambda x: np.minimum(np.maximum(x, lo), hi)


def _batch_norm_float(layer):
    """ORT's BatchNormalization (batch_norm.h, Eigen, no FMA): s = (1 / sqrt(var + eps)) · scale,
    t = bias − mean · s, y = x · s + t, in float32."""
    p = layer.learnables
    s = (F32(1.0) / np.sqrt(np.asarray(p["TrainedVariance"], F32) + F32(layer.epsilon))) * np.asarray(p["Scale"], F32)
    t = np.asarray(p["Offset"], F32) - np.asarray(p["TrainedMean"], F32) * s

    def run(x):
        x = np.asarray(x, F32)
        shp = (1, -1) + (1,) * (x.ndim - 2)
        return x * s.reshape(shp) + t.reshape(shp)
    return run


def float32_literal(text: str) -> np.float32:
    """A C float literal ("4.37e-11f"): the decimal value rounded once to float32 (ties to even)."""
    value = Fraction(text)
    guess = F32(float(value))
    best = None
    for c in (np.nextafter(guess, F32(-np.inf)), guess, np.nextafter(guess, F32(np.inf))):
        key = (abs(Fraction(float(c)) - value), int(np.array(c, F32).view(np.int32)) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return F32(best[1])


# MLAS's rational approximations (logistic.cpp MlasLogisticConstants, tanh.cpp MlasTanhConstants of
# ORT 1.32, the coefficients Eigen used), evaluated as LogisticKernelFma3 / TanhKernelFma3 do
_LOGISTIC = [float32_literal(t) for t in (
    "4.37031012579801e-11", "1.15627324459942e-07", "6.08574864600143e-05", "8.51377133304701e-03",
    "2.48287947061529e-01", "6.10247389755681e-13", "5.76102136993427e-09", "6.29106785017040e-06",
    "1.70198817374094e-03", "1.16817656904453e-01", "9.93151921023180e-01")]
_TANH = [float32_literal(t) for t in (
    "-2.76076847742355e-16", "2.00018790482477e-13", "-8.60467152213735e-11", "5.12229709037114e-08",
    "1.48572235717979e-05", "6.37261928875436e-04", "4.89352455891786e-03", "1.19825839466702e-06",
    "1.18534705686654e-04", "2.26843463243900e-03", "4.89352518554385e-03")]


def _clamp_ps(x, lo, hi):
    """vmaxps(lo, x) then vminps(hi, ·): the second operand wins when one is NaN."""
    x = np.asarray(x, F32)
    x = np.where(F32(lo) > x, F32(lo), x)
    return np.where(F32(hi) < x, F32(hi), x)


def mlas_logistic(x) -> np.ndarray:
    """MlasComputeLogisticF32KernelFma3: x clamped to [−18, 18], p = x · P(x²), q = Q(x²) by FMA
    Horner steps, max(0, p / q + 0.5) (no upper clamp)."""
    a9, a7, a5, a3, a1, b10, b8, b6, b4, b2, b0 = _LOGISTIC
    v = _clamp_ps(x, -18.0, 18.0)
    x2 = v * v
    p = fma32(x2, a9, a7)
    for c in (a5, a3, a1):
        p = fma32(x2, p, c)
    q = fma32(x2, b10, b8)
    for c in (b6, b4, b2, b0):
        q = fma32(x2, q, c)
    r = (v * p) / q + F32(0.5)
    return np.where(F32(0) > r, F32(0), r)


def mlas_tanh(x) -> np.ndarray:
    """MlasComputeTanhF32KernelFma3: x clamped to [−9, 9], p = x · P(x²), q = Q(x²) by FMA Horner
    steps, p / q."""
    a13, a11, a9, a7, a5, a3, a1, b6, b4, b2, b0 = _TANH
    v = _clamp_ps(x, -9.0, 9.0)
    x2 = v * v
    p = fma32(x2, a13, a11)
    for c in (a9, a7, a5, a3, a1):
        p = fma32(x2, p, c)
    q = fma32(x2, b6, b4)
    for c in (b2, b0):
        q = fma32(x2, q, c)
    return (v * p) / q


def _ort_qlinear_sigmoid(ql, profile):
    """QLinearSigmoid (qlinear_lookup_table.cc): a 256-entry table of MlasQuantizeLinear(
    MlasComputeLogistic(x_scale · float(i − zp)))."""
    (px,), py = ql.input_params, ql.output_params
    info = np.iinfo(px.dtype)
    v = _scale(px) * (np.arange(info.min, info.max + 1) - _zp(px)).astype(F32)
    table = ort_quantize_linear(mlas_logistic(v), py)
    return lambda x: table[x - info.min]


# float operators that round once per element (or not at all), written here on float32 arrays
def _float_function(layer, what: str):
    t = layer.type_name
    if t == "ReLU":
        return lambda x: np.maximum(np.asarray(x, F32), F32(0))
    if t == "ClippedReLU":
        c = F32(layer.ceiling)
        return lambda x: np.minimum(np.maximum(np.asarray(x, F32), F32(0)), c)
    if t == "LeakyReLU":
        a = F32(layer.scale)
        return lambda x: np.where(np.asarray(x, F32) >= 0, np.asarray(x, F32), a * np.asarray(x, F32))
    if t == "Addition":
        return lambda *xs: _fold(np.add, xs)
    if t == "Multiplication":
        return lambda *xs: _fold(np.multiply, xs)
    if t == "Concatenation":
        return lambda *xs: np.concatenate([np.asarray(v, F32) for v in xs], axis=layer.axis)
    if t == "BatchNormalization":
        return _batch_norm_float(layer)
    if t in ("MaxPooling2D", "GlobalMaxPooling2D"):
        return lambda x: _max_pool_float(layer, np.asarray(x, F32))
    if t == "GlobalAveragePooling2D" and what == "onnxruntime":
        return _global_average_pool_mlas
    if t == "Sigmoid" and what == "onnxruntime":
        return mlas_logistic
    if t == "Tanh" and what == "onnxruntime":
        return mlas_tanh
    if t in ("Flatten", "Reshape", "Transpose", "Identity", "Dropout", "Resize2D", "ImageInput",
             "TensorInput", "FeatureInput"):
        return layer.forward
    return None


def _fold(op, xs):
    total = np.asarray(xs[0], F32)
    for v in xs[1:]:
        total = op(total, np.asarray(v, F32))
    return total


def _global_average_pool_mlas(x):
    """MLAS's global average pooling (pooling.cpp MlasPoolGlobalKernel): four float32 lanes take the
    elements i ≡ l (mod 4) of the first 4·⌊n/4⌋ in order, reduced (l0 + l2) + (l1 + l3)
    (MlasReduceAddFloat32x4), the tail added in order, then divided by float(n)."""
    x = np.asarray(x, F32)
    n_, c = x.shape[:2]
    flat = x.reshape(n_, c, -1)
    size = flat.shape[2]
    body = size // 4 * 4
    lanes = np.zeros((n_, c, 4), F32)
    for start in range(0, body, 4):
        lanes = lanes + flat[:, :, start:start + 4]
    total = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    for i in range(body, size):
        total = total + flat[:, :, i]
    return (total / F32(size)).reshape(n_, c, 1, 1)


def _max_pool_float(layer, x):
    """Float max pooling: the window's maximum over the taps inside the input."""
    if layer.type_name == "GlobalMaxPooling2D":
        return x.max(axis=(2, 3), keepdims=True)
    pads = _pool_pads(layer, x.shape)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = layer.pool_size, layer.stride
    oh, ow = spatial_output_shape(x.shape, layer.pool_size, layer.stride, pads, ceil_mode=layer.ceil_mode)
    top, left = pads[0], pads[1]
    height, width = max((oh - 1) * sh + kh, top + h), max((ow - 1) * sw + kw, left + w)
    padded = np.full((n, c, height, width), -np.inf, F32)
    padded[:, :, top:top + h, left:left + w] = x
    rows = (np.arange(oh) * sh)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols = (np.arange(ow) * sw)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    return padded[:, :, rows, cols].reshape(n, c, oh, ow, kh * kw).max(axis=-1)


def _ort_float_route(ql, profile):
    """DequantizeLinear of each input, the float operator, QuantizeLinear of the output: ORT's QDQ
    group left unfused (and every group of the as-written graph)."""
    function = _float_function(ql.layer, "onnxruntime")
    if function is None:
        raise _unsupported(ql, profile, f"ONNX Runtime runs the float {ql.type_name} operator between "
                                        f"DequantizeLinear and QuantizeLinear on MLAS's float kernel, whose "
                                        f"summation order / polynomial this reference does not re-derive")
    inputs, out = ql.input_params, ql.output_params
    return lambda *qs: ort_quantize_linear(function(*[dequantize_float32(q, p) for q, p in zip(qs, inputs)]), out)


def _ort_layer(ql, profile):
    recipe = profile.recipe(ql)
    compute = recipe.get("compute")
    t = ql.type_name
    if compute == "integer" and t in ("Convolution2D", "FullyConnected"):
        if recipe.get("requantization") != "onnxruntime" or recipe.get("accumulation") != "exact":
            raise _unsupported(ql, profile, f"recipe {dict(recipe)} is not re-derived")
        return _ort_linear(ql, profile, None)
    if compute != "ort-graph":
        raise _unsupported(ql, profile, f"recipe compute={compute!r} is not re-derived")
    if recipe.get("float") not in (None, "mlas"):
        raise _unsupported(ql, profile, f"float kernels {recipe.get('float')!r} are not re-derived")
    op = ort_operator(ql, profile)
    if op == "":
        return _ort_float_route(ql, profile)
    if t in ("Convolution2D", "FullyConnected"):
        if op not in (("QLinearConv",) if t == "Convolution2D" else ("QLinearMatMul", "QGemm")):
            raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}")
        if recipe.get("requantization") != "onnxruntime":
            raise _unsupported(ql, profile, f"requantization {recipe.get('requantization')!r} is not re-derived")
        return _ort_linear(ql, profile, op)
    if t in ("MaxPooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Transpose", "Identity", "Dropout",
             "Resize2D"):
        if op not in _MOVING_OPS:
            raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}, not re-derived for {t} layers")
        if any(p != ql.output_params for p in ql.input_params):   # DQ/Q kept: the float operator
            return _ort_float_route(ql, profile)
        if t in ("MaxPooling2D", "GlobalMaxPooling2D"):
            return lambda q: max_pool_int(ql.layer, q)
        return _move(ql)
    if t in ("ReLU", "ClippedReLU") and op == "Clamp":
        if ql.input_params[0] != ql.output_params:
            return _ort_float_route(ql, profile)
        return _ort_clamp(ql, profile)
    table = {("Addition", "QLinearAdd"): _ort_qlinear_add, ("Multiplication", "QLinearMul"): _ort_qlinear_mul,
             ("Concatenation", "QLinearConcat"): _ort_qlinear_concat,
             ("AveragePooling2D", "QLinearAveragePool"): _ort_qlinear_average_pool,
             ("GlobalAveragePooling2D", "QLinearGlobalAveragePool"): _ort_qlinear_global_average_pool,
             ("LeakyReLU", "QLinearLeakyRelu"): _ort_leaky_relu, ("Softmax", "QLinearSoftmax"): _ort_qlinear_softmax,
             ("Sigmoid", "QLinearSigmoid"): _ort_qlinear_sigmoid}
    make = table.get((t, op))
    if make is None:
        raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}, not re-derived for {t} layers")
    return make(ql, profile)


# =================================================================================================
# LiteRT layers (docs/runtimes-litert-ops.md; sources in google-ai-edge/LiteRT tflite/kernels and XNNPACK)
# =================================================================================================
def _nhwc(x: np.ndarray) -> np.ndarray:
    """LiteRT's view of one of our arrays: 4-D NCHW held NHWC (memory order matters to the NEON
    blocks of the optimized kernels)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def _nchw(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if y.ndim == 4 else y


def _activation(ql) -> str:
    return str(getattr(ql, "activation", None) or "NONE")


_ACTIVATION_BOUNDS = {"NONE": (-math.inf, math.inf), "RELU": (0.0, math.inf), "RELU6": (0.0, 6.0),
                      "RELU_N1_TO_1": (-1.0, 1.0)}


def tflite_activation_range(activation: str, params: QuantParams) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: z + int(roundf(b / s)) (float division), clipped to the type."""
    lo_f, hi_f = _ACTIVATION_BOUNDS[activation]
    s, z = _scale(params), _zp(params)
    lo = params.qmin if lo_f == -math.inf else max(params.qmin, z + int(round_half_away(F32(lo_f) / s)))
    hi = params.qmax if hi_f == math.inf else min(params.qmax, z + int(round_half_away(F32(hi_f) / s)))
    return lo, hi


def xnnpack_activation_range(activation: str, params: QuantParams) -> tuple[int, int]:
    """xnn_qs8_quantize of the float bounds: lrintf(min(max(b / s + float(z), qmin), qmax))."""
    lo_f, hi_f = _ACTIVATION_BOUNDS[activation]
    s, z = _scale(params), F32(_zp(params))

    def q(b):
        v = F32(b) / s + z
        return int(rne(min(max(v, F32(params.qmin)), F32(params.qmax))))
    return q(lo_f), q(hi_f)


def _resolver(ql, profile) -> str:
    resolver = profile.recipe(ql).get("resolver")
    if resolver not in ("reference", "optimized", "xnnpack"):
        raise _unsupported(ql, profile, f"unknown LiteRT resolver {resolver!r}")
    return resolver


def _litert_linear(ql, profile):
    """CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: exact int32 sums + bias (`fi`), then the
    resolver's requantization (reference: gemmlowp MBQM, FC round(double(acc) · M) half away;
    optimized: ruy's half-up MBQM, depthwise NEON channel blocks half up and the rest gemmlowp;
    XNNPACK: fp32 with float32 scales (s_in · s_w) / s_out and XNNPACK's activation bounds)."""
    recipe = profile.recipe(ql)
    derivation = recipe.get("requantization", "")
    if recipe.get("accumulation") != "exact" or not derivation.startswith("litert-"):
        raise _unsupported(ql, profile, f"recipe {dict(recipe)} is not re-derived")
    resolver = derivation[len("litert-"):]
    op = getattr(ql, "tflite_op", None)
    if op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        raise _unsupported(ql, profile, f"LiteRT requantization needs the TFLite operator, got {op!r}")
    activation = _activation(ql)
    x_params, out = ql.input_params[0], ql.output_params
    zx, zy = _zp(x_params), _zp(out)
    channels = ql.weights.shape[0]
    ws = np.broadcast_to(np.asarray(ql.weight_params.scale, F32).reshape(-1), (channels,))
    s_in, s_out = _scale(x_params), _scale(out)
    double_product = [float(s_in) * float(w) / float(s_out) for w in ws]
    if resolver == "xnnpack":
        scale = (s_in * ws) / s_out
        lo, hi = xnnpack_activation_range(activation, out)
    else:
        lo, hi = tflite_activation_range(activation, out)
        if op == "FULLY_CONNECTED" and resolver == "optimized" and not ql.weight_params.per_channel:
            reals = [float(F32(s_in * ws[0])) / float(s_out)] * channels   # GetQuantizedConvolutionMultipler
        else:
            reals = double_product
        multipliers = [quantize_multiplier(r) for r in reals]
        m0 = np.array([m for m, _ in multipliers], np.int64)
        shift = np.array([e for _, e in multipliers], np.int64)

    def run(x):
        geometry = None if ql.type_name == "FullyConnected" else _conv_geometry(ql.layer, x.shape, ql.weights.shape)
        acc = linear_sums(x, ql.weights, zx, ql.weight_params.zero_point, ql.bias, "exact", geometry)
        if resolver == "xnnpack":
            return requantize_fp32(acc, scale, zy, lo, hi)
        shape = _channel_shape(acc)
        if resolver == "reference" and op == "FULLY_CONNECTED":
            eff = np.array(double_product).reshape(shape)
            v = float_to_int32(round_half_away(acc.astype(np.float64) * eff))
        elif resolver == "reference" or (op == "DEPTHWISE_CONV_2D" and resolver == "optimized"):
            v = mbqm(acc, m0.reshape(shape), shift.reshape(shape))
            if resolver == "optimized":   # NEON blocks of 8 channels round half up
                neon = np.arange(channels) < channels // 8 * 8
                up = mbqm_half_up(acc, m0.reshape(shape), shift.reshape(shape))
                v = np.where(neon.reshape(shape), up, v)
        else:
            v = mbqm_half_up(acc, m0.reshape(shape), shift.reshape(shape))
        return np.clip(wrap32(v + zy), lo, hi)
    return run


def _same_shape(ql, profile, a, b, what):
    if a.shape != b.shape:
        raise _unsupported(ql, profile, f"LiteRT's {what} with broadcasting is not re-derived")


def _litert_add_sub(ql, profile, subtract: bool):
    """TFLite ADD / SUB of two int8 tensors of one shape (add.cc, sub.cc; reference AddElementwise /
    SubElementwise; optimized AddElementwiseInt8: NEON blocks of 16 with the input shift folded
    into the pre-shift, the tail as the reference; SUB has no optimized int8 kernel; XNNPACK qs8 vadd
    where the delegate takes the scales)."""
    resolver = _resolver(ql, profile)
    (pa, pb), out = ql.input_params, ql.output_params
    sa, sb, so = _scale(pa), _scale(pb), _scale(out)
    what = "SUB" if subtract else "ADD"
    taken = all(F32(2.0 ** -10) <= s / so < F32(256.0) for s in (sa, sb))
    activation = _activation(ql)
    if resolver == "xnnpack" and taken:
        ra, rb = sa / so, (-(sb / so) if subtract else sb / so)
        largest = max(abs(ra), abs(rb))
        shift = 20 - (math.frexp(float(largest))[1] - 1)
        ma = int(np.sign(ra)) * int(rne(abs(ra) * F32(2.0 ** shift)))
        mb = int(np.sign(rb)) * int(rne(abs(rb) * F32(2.0 ** shift)))
        bias = (1 << (shift - 1)) - ma * _zp(pa) - mb * _zp(pb)
        lo, hi = xnnpack_activation_range(activation, out)

        def run_xnn(a, b):
            _same_shape(ql, profile, a, b, what)
            v = (bias + a * ma + b * mb) >> shift
            y = sat(sat(v, -32768, 32767) + _zp(out), -32768, 32767)
            return np.clip(sat(y, out.qmin, out.qmax), lo, hi)
        return run_xnn
    twice = 2.0 * float(max(sa, sb))
    m1, e1 = quantize_multiplier(float(sa) / twice)
    m2, e2 = quantize_multiplier(float(sb) / twice)
    mo, eo = quantize_multiplier(twice / (float(F32((1 << 20) * so))))
    if not (0 < float(sa) / twice < 1 and 0 < twice / float(F32((1 << 20) * so)) < 1):
        raise _unsupported(ql, profile, f"{what} needs multipliers below 1 (TFLite aborts otherwise)")
    lo, hi = tflite_activation_range(activation, out)

    def reference(a, b):
        x1 = mbqm(left_shift_wrap(a - _zp(pa), 20), m1, e1)
        x2 = mbqm(left_shift_wrap(b - _zp(pb), 20), m2, e2)
        return np.clip(mbqm(wrap32(x1 - x2 if subtract else x1 + x2), mo, eo) + _zp(out), lo, hi)

    def neon(a, b):   # AddElementwiseInt8's NEON body
        def scaled(q, z, m, e):
            d = q - z
            s = 20 + e
            shifted = left_shift_wrap(d, s) if s >= 0 else (d >> -s)
            return srdhm(shifted, m)
        v = rdbpot(srdhm(wrap32(scaled(a, _zp(pa), m1, e1) + scaled(b, _zp(pb), m2, e2)), mo), -eo)
        v16 = ((v + 32768) & 0xFFFF) - 32768                       # vmovn: the low 16 bits
        v16 = ((v16 + _zp(out) + 32768) & 0xFFFF) - 32768           # int16 add, wrapping
        return np.clip(sat(v16, -128, 127), lo, hi)

    def run(a, b):
        _same_shape(ql, profile, a, b, what)
        if resolver == "reference" or subtract:
            return reference(a, b)
        fa, fb = _nhwc(a).reshape(-1), _nhwc(b).reshape(-1)
        body = fa.size // 16 * 16
        y = np.concatenate([neon(fa[:body], fb[:body]), reference(fa[body:], fb[body:])])
        return _nchw(y.reshape(_nhwc(a).shape))
    return run


def _litert_mul(ql, profile):
    """TFLite MUL of two int8 tensors of one shape (mul.cc; reference MulElementwise: MBQM of the
    product, M from float(s1·s2)/s_out; optimized NEON blocks of 16: sat8(int16(sat16(MBQM) + z)),
    tail as the reference; XNNPACK qs8 vmul fp32 where the delegate takes the scales)."""
    resolver = _resolver(ql, profile)
    (pa, pb), out = ql.input_params, ql.output_params
    product_scale = (_scale(pa) * _scale(pb)) / _scale(out)
    activation = _activation(ql)
    if resolver == "xnnpack" and F32(2.0 ** -16) <= product_scale < F32(256.0):
        lo, hi = xnnpack_activation_range(activation, out)

        def run_xnn(a, b):
            _same_shape(ql, profile, a, b, "MUL")
            v = ((a - _zp(pa)) * (b - _zp(pb))).astype(F32) * product_scale
            v = sat(sat(float_to_int32(rne(v)), -32768, 32767) + _zp(out), -32768, 32767)
            return np.clip(sat(v, out.qmin, out.qmax), lo, hi)
        return run_xnn
    m, e = quantize_multiplier(float(product_scale))
    lo, hi = tflite_activation_range(activation, out)

    def reference(a, b):
        return np.clip(mbqm((a - _zp(pa)) * (b - _zp(pb)), m, e) + _zp(out), lo, hi)

    def neon(a, b):
        p = left_shift_wrap((a - _zp(pa)) * (b - _zp(pb)), max(e, 0))
        v = rdbpot(srdhm(p, m), max(-e, 0))
        v = sat(v, -32768, 32767) + _zp(out)
        v = ((v + 32768) & 0xFFFF) - 32768
        return np.clip(sat(v, -128, 127), lo, hi)

    def run(a, b):
        _same_shape(ql, profile, a, b, "MUL")
        if resolver == "reference":
            return reference(a, b)
        fa, fb = _nhwc(a).reshape(-1), _nhwc(b).reshape(-1)
        body = fa.size // 16 * 16
        y = np.concatenate([neon(fa[:body], fb[:body]), reference(fa[body:], fb[body:])])
        return _nchw(y.reshape(_nhwc(a).shape))
    return run


def _litert_relu(ql, profile):
    """TFLite RELU / RELU6 (activations.cc QuantizedReluX, every resolver): clamp(MBQM(q − z_in, M)
    + z_out) with M from double(float(s_in / s_out)), bounds z_out + int(roundf(b / s_out))."""
    _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    if ql.type_name == "ClippedReLU" and float(ql.layer.ceiling) != 6.0:
        raise _unsupported(ql, profile, f"LiteRT clips at 6 (RELU6), not at {ql.layer.ceiling}")
    m, e = quantize_multiplier(float(_scale(px) / _scale(out)))
    s, z = _scale(out), _zp(out)
    lo = max(out.qmin, z + int(round_half_away(F32(0.0) / s)))
    hi = out.qmax if ql.type_name == "ReLU" else min(out.qmax, z + int(round_half_away(F32(6.0) / s)))
    return lambda x: np.clip(mbqm(x - _zp(px), m, e) + z, lo, hi)


def _litert_leaky_relu(ql, profile):
    """TFLite LEAKY_RELU: builtin QuantizeLeakyRelu (MBQM by float(s_in/s_out) for q ≥ z_in, by
    float(s_in·α/s_out) below); XNNPACK qs8 vlrelu where the delegate takes the scales:
    sat(⌊((q − z_in)·m + 128) / 256⌋ + z_out), m = lrintf(256 · ratio)."""
    resolver = _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    alpha = F32(ql.layer.scale)
    positive = _scale(px) / _scale(out)
    negative = positive * alpha
    taken = (np.isfinite(alpha) and alpha != 0 and abs(alpha) >= np.finfo(F32).tiny
             and F32(2.0 ** -8) <= positive <= F32(128.0)
             and F32(-127.99609375) <= negative <= F32(128.0) and abs(negative) >= F32(2.0 ** -8))
    zx, zy = _zp(px), _zp(out)
    if resolver == "xnnpack" and taken:
        mp, mn = int(rne(F32(256.0) * positive)), int(rne(F32(256.0) * negative))

        def run_xnn(x):
            d = x - zx
            return sat(((d * np.where(d >= 0, mp, mn) + 128) >> 8) + zy, out.qmin, out.qmax)
        return run_xnn
    mi, ei = quantize_multiplier(float(positive))
    ma, ea = quantize_multiplier(float((_scale(px) * alpha) / _scale(out)))

    def run(x):
        d = x - zx
        return sat(np.where(d >= 0, mbqm(d, mi, ei), mbqm(d, ma, ea)) + zy, out.qmin, out.qmax)
    return run


def _srdhm16(a, b):
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    r = (a * b + (1 << 14)) >> 15
    return np.where((a == -32768) & (b == -32768), 32767, r)


def _litert_hard_swish(ql, profile):
    """TFLite HARD_SWISH (reference_ops::HardSwish, every resolver): gemmlowp int16 fixed point with
    multipliers reduced to 16 bits (DownScaleInt32ToInt16Multiplier)."""
    _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    hires = F32(1.0 / 128.0) * _scale(px)

    def to16(m32):
        return 32767 if m32 >= INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16
    om, oe = quantize_multiplier(float(hires / _scale(out)))
    rm, re_ = quantize_multiplier(float(hires / (F32(3.0) / F32(32768.0))))
    if oe > 0:
        raise _unsupported(ql, profile, "HARD_SWISH needs an output multiplier exponent <= 0")
    om16, rm16 = to16(om), to16(rm)

    def sat_left(v, amount):
        return sat(v * (1 << amount), -32768, 32767)

    def run(x):
        value = x - _zp(px)
        hi_res = value * 128
        preshift = _srdhm16(hi_res, om16)
        reluish = hi_res
        if re_ > 0:
            reluish = sat_left(reluish, re_ - 1)
        reluish = _srdhm16(reluish, rm16)
        if re_ > 0:
            reluish = sat_left(reluish, 1)
        if re_ < 0:
            reluish = rdbpot(reluish, -re_)
        reluish = (reluish + (1 << 15)) >> 1
        product = reluish * preshift
        pre = np.where((reluish == -32768) & (preshift == -32768), 32767,
                       np.sign(product) * (np.abs(product) >> 15))          # truncating division
        y = rdbpot(pre, -oe)
        y = ((y + _zp(out) + 32768) & 0xFFFF) - 32768                         # int16 addition
        return sat(y, out.qmin, out.qmax)
    return run


def _litert_table(ql, profile, kind: str):
    """TFLite LOGISTIC / TANH: a 256-entry table. Builtin resolvers (LUTPopulate):
    clamp(int(roundf(f(s_in · float(q − z_in)) · (1 / s_out)) + z_out)), f = 1/(1 + expf(−x)) or
    tanhf in float32; XNNPACK (reference unary kernel): sat(RNE(f(x) · (1 / s_out) + z_out)) with
    sigmoid e/(1 + e), e = exp(double(x)) (±100 clamps), tanh tanhf."""
    resolver = _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    info = np.iinfo(px.dtype)
    values = np.arange(info.min, info.max + 1)
    x = _scale(px) * (values - _zp(px)).astype(F32)
    inverse = F32(1.0) / _scale(out)
    if resolver == "xnnpack":   # the delegate takes int8 LOGISTIC and TANH
        if kind == "sigmoid":
            def sigmoid(v):
                if v > 100:
                    return 1.0
                if v < -100:
                    return 0.0
                e = _EXP(float(v))
                return e / (1 + e)
            y = np.array([sigmoid(float(v)) for v in x], np.float64).astype(F32)
        else:
            y = _map_f32(_TANHF, x)
        q = rne(y * inverse + F32(_zp(out)))
        table = sat(np.where(np.isnan(q), 0, q).astype(np.int64), out.qmin, out.qmax)
    else:
        if kind == "sigmoid":
            y = F32(1.0) / (F32(1.0) + _map_f32(_EXPF, -x))
        else:
            y = _map_f32(_TANHF, x)
        rescaled = round_half_away(y * inverse)
        table = sat(float_to_int32(rescaled + F32(_zp(out))), out.qmin, out.qmax)
    return lambda q: table[q - info.min]


def _litert_softmax(ql, profile):
    """TFLite SOFTMAX on int8 along TFLite's last axis. reference (reference_ops::Softmax): gemmlowp
    fixed point, exp_on_negative_values of SRDHM(d · 2^left, M) in Q5.26, sums in Q12, the
    reciprocal one_over_one_plus_x_for_x_in_0_1; optimized and XNNPACK (which does not take int8
    SOFTMAX): a float table expf(−s_in · β · v), float sum in row order, roundf(t / (sum · s_out)) + z."""
    resolver = _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    axis = ql.layer.axis

    def rows_of(x):
        if x.ndim == 4 and axis % 4 != 1 or x.ndim != 4 and axis % x.ndim != x.ndim - 1:
            raise _unsupported(ql, profile, f"LiteRT's SOFTMAX runs along TFLite's last axis; axis {axis} "
                                            f"of a {x.ndim}-D input is not it")
        t = _nhwc(x)
        return t.reshape(-1, t.shape[-1]), t.shape

    if resolver == "reference":
        m, left, diff_min = _softmax_params(float(_scale(px)))

        def run_ref(x):
            rows, shape = rows_of(x)
            y = _softmax_gemmlowp(rows, m, left, diff_min)
            return _nchw(sat(y, out.qmin, out.qmax).reshape(shape))
        return run_ref
    table = np.zeros(256, F32)
    table[255 - np.arange(256)] = _map_f32(_EXPF, (-_scale(px) * F32(1.0)) * np.arange(256).astype(F32))

    def run(x):
        rows, shape = rows_of(x)
        e = table[255 - (rows.max(axis=1, keepdims=True) - rows)]
        total = np.zeros(rows.shape[0], F32)
        for j in range(rows.shape[1]):
            total = total + e[:, j]
        inverse = F32(1.0) / (total * _scale(out))
        q = float_to_int32(round_half_away(e * inverse[:, None])) + _zp(out)
        return _nchw(sat(q, out.qmin, out.qmax).reshape(shape))
    return run


def _softmax_params(input_scale: float, beta: float = 1.0):
    """PreprocessSoftmaxScaling (5 integer bits) and CalculateInputRadius: (M, left shift, diff_min)."""
    real = min(beta * input_scale * float(1 << 26), float((1 << 31) - 1))
    m, left = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << 5) - 1) * float(1 << 26) / float(1 << left))
    return m, left, -radius


def _exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values of Q5.26 raw values (≤ 0), result Q0.31 raw."""
    a = np.asarray(a, np.int64)
    frac_bits = 26
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod = wrap32((a & mask) - one_quarter)
    x = wrap32(left_shift_sat(a_mod, 5) + (1 << 28))           # Rescale<0>, then + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), 1)
    result = wrap32(1895147668 + srdhm(1895147668, wrap32(x + poly)))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        bit = (remainder & (1 << (frac_bits + exponent))) != 0
        result = np.where(bit, srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def left_shift_sat(x, amount: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: x · 2^e, saturated."""
    x = np.asarray(x, np.int64)
    threshold = (1 << (31 - amount)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << amount))


def _one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 in and out), Newton-Raphson in Q2.29."""
    a = np.asarray(a, np.int64)
    total = a + INT32_MAX                                           # RoundingHalfSum(a, One)
    half = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))
    x = wrap32(1515870810 + srdhm(half, -1010580540))
    one = 1 << 29
    for _ in range(3):
        hx = srdhm(half, x)
        x = wrap32(x + left_shift_sat(srdhm(x, wrap32(one - hx)), 2))
    return left_shift_sat(x, 1)


def _softmax_gemmlowp(rows, m, left, diff_min):
    rows = np.asarray(rows, np.int64)
    d = rows - rows.max(axis=1, keepdims=True)
    valid = d >= diff_min
    exps = _exp_on_negative_values(srdhm(left_shift_wrap(d, left), m))
    total = wrap32(np.where(valid, rdbpot(exps, 12), 0).sum(axis=1))
    total = total.astype(np.int64)
    headroom = np.array([32 - int(v).bit_length() if v > 0 else 32 for v in (total & 0xFFFFFFFF)], np.int64)
    bits_over_unit = 12 - headroom
    shifted = wrap32(((total & 0xFFFFFFFF) << headroom) - (1 << 31))
    scale = _one_over_one_plus_x(shifted)
    exponent = bits_over_unit + 31 - 8
    y = rdbpot(srdhm(scale[:, None], exps), exponent[:, None]) - 128
    return np.where(valid, np.clip(y, -128, 127), -128)


def _litert_pool(ql, profile, kind: str):
    """TFLite MAX_POOL_2D / AVERAGE_POOL_2D (pooling.cc) with SAME or VALID windows: the maximum of the
    taps inside the input, or (Σ ± n/2) / n over them (C division), clamped to the fused activation's
    bounds (XNNPACK's when the delegate takes a max pool: strides at most the filter size). The
    integers are pooled as they are; the output parameters place the activation bounds."""
    resolver = _resolver(ql, profile)
    pool, out = ql.layer, ql.output_params
    padding = pool.padding if isinstance(pool.padding, str) else tuple(pool.padding)
    if padding not in ("same", (0, 0, 0, 0)) or pool.ceil_mode or getattr(pool, "count_include_pad", False):
        raise _unsupported(ql, profile, f"LiteRT pools with SAME or VALID windows, not padding={pool.padding!r}")
    activation = _activation(ql)
    xnn = (kind == "max" and resolver == "xnnpack"
           and all(s <= k for s, k in zip(pool.stride, pool.pool_size)))
    lo, hi = (xnnpack_activation_range if xnn else tflite_activation_range)(activation, out)

    def run(x):
        pads = _pool_pads(pool, x.shape)
        windows, inside = _pool_windows(x, pool.pool_size, pool.stride, pads, False, fill=0)
        if kind == "max":
            y = np.where(inside, windows, INT32_MIN).max(axis=-1)
        else:
            total = np.where(inside, windows, 0).sum(axis=-1)
            n = inside.sum(axis=-1)
            half = n // 2
            num = np.where(total > 0, total + half, total - half)
            y = np.sign(num) * (np.abs(num) // n)                  # C division: toward zero
        return np.clip(y, lo, hi)
    return run


def _litert_mean(ql, profile):
    """TFLite MEAN over H and W (reduce.cc EvalMean), for an interpreter with one thread. reference
    (and optimized without keep_dims): QuantizedMeanOrSum, MBQM of Σq − z_in·N by (M << k) / N with
    k = min(⌊log2 N⌋, 32, 31 + e); optimized with keep_dims: Mean4D, bias = z_out − int(z_in·s_in/s_out
    ± 0.5), M from float(s_in / (float(N)·s_out)), NEON blocks of 16 channels half up, the rest
    gemmlowp; XNNPACK: RNE(float(Σq)·m + z'), m = (s_in/s_out)·(1/N), z' = z_out − float(N·z_in)·m."""
    resolver = _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    keep = bool(getattr(ql, "keep_dims", True))
    zx, zy = _zp(px), _zp(out)

    def run(x):
        n_, c, h, w = x.shape
        count = h * w
        total = fi_sum(x.reshape(n_, c, count), axis=2)              # (N, C) raw sums, int32
        if resolver == "xnnpack":
            m = (_scale(px) / _scale(out)) * (F32(1.0) / F32(count))
            zprime = F32(zy) - (F32(count) * F32(zx)) * m
            y = sat(float_to_int32(rne(total.astype(F32) * m + zprime)), out.qmin, out.qmax)
        elif resolver == "optimized" and keep:
            temp = F32(zx) * _scale(px) / _scale(out)
            temp = temp + F32(0.5) if temp > 0 else temp - F32(0.5)
            bias = zy - int(np.trunc(temp))
            m, e = quantize_multiplier(float(_scale(px) / (F32(count) * _scale(out))))
            neon = (np.arange(c) < c // 16 * 16)[None, :]
            v = np.where(neon, mbqm_half_up(total, m, e), mbqm(total, m, e))
            y = sat(wrap32(v + bias), -128, 127)
        else:
            m, e = quantize_multiplier(float(_scale(px)) / float(_scale(out)))
            k = min(count.bit_length() - 1, 32, 31 + e)
            m2 = (m << k) // count
            shifted = wrap32(total - zx * count)
            y = sat(mbqm(shifted, m2, e - k) + zy, out.qmin, out.qmax)
        return y.reshape(n_, c, 1, 1)
    return run


def _litert_requantize(ql, profile):
    """TFLite QUANTIZE int → int (quantize.cc): reference Requantize, clamp(MBQM(q − z_in) + z_out)
    with M from double(s_in)/double(s_out); optimized NEON blocks of 16 with half-up MBQM, the tail
    as the reference; XNNPACK qs8 convert (same type, s_in/s_out in [2^-8, 128]):
    sat(⌊((q − z_in)·m + 128) / 256⌋ + z_out), m = lrintf(256 · s_in/s_out)."""
    resolver = _resolver(ql, profile)
    (px,), out = ql.input_params, ql.output_params
    zx, zy = _zp(px), _zp(out)
    ratio = _scale(px) / _scale(out)
    if resolver == "xnnpack" and px.dtype == out.dtype and F32(2.0 ** -8) <= ratio <= F32(128.0):
        mult = int(rne(F32(256.0) * ratio))
        return lambda x: sat((((x - zx) * mult + 128) >> 8) + zy, out.qmin, out.qmax)
    m, e = quantize_multiplier(float(_scale(px)) / float(_scale(out)))

    def reference(q):
        return sat(mbqm(q - zx, m, e) + zy, out.qmin, out.qmax)

    def run(x):
        if resolver == "reference":
            return reference(x)
        flat = _nhwc(x).reshape(-1)
        body = flat.size // 16 * 16
        head = sat(mbqm_half_up(flat[:body] - zx, m, e) + zy, out.qmin, out.qmax)
        return _nchw(np.concatenate([head, reference(flat[body:])]).reshape(_nhwc(x).shape))
    return run


def _litert_concat(ql, profile):
    """TFLite int8 CONCATENATION copies; its Prepare requires every input's parameters to be the
    output's and no fused activation."""
    _resolver(ql, profile)
    if any(p != ql.output_params for p in ql.input_params) or _activation(ql) != "NONE":
        raise _unsupported(ql, profile, "LiteRT's int8 CONCATENATION needs equal input/output "
                                        "quantization and no fused activation")
    return lambda *xs: np.concatenate(xs, axis=ql.layer.axis)


def _litert_move(ql, profile):
    if any(p != ql.output_params for p in ql.input_params):
        if ql.type_name == "Identity":
            return _litert_requantize(ql, profile)
        raise _unsupported(ql, profile, f"a {ql.type_name} layer needs the same quantization on its "
                                        f"input and output")
    return _move(ql)


def _litert_layer(ql, profile):
    recipe = profile.recipe(ql)
    compute = recipe.get("compute")
    t = ql.type_name
    if t in ("Convolution2D", "FullyConnected"):
        if compute != "integer":
            raise _unsupported(ql, profile, f"recipe compute={compute!r} is not re-derived")
        return _litert_linear(ql, profile)
    if compute != "litert":
        raise _unsupported(ql, profile, f"recipe compute={compute!r} is not re-derived")
    makers = {
        "Addition": lambda: _litert_add_sub(ql, profile, False),
        "Subtraction": lambda: _litert_add_sub(ql, profile, True),
        "Multiplication": lambda: _litert_mul(ql, profile),
        "ReLU": lambda: _litert_relu(ql, profile), "ClippedReLU": lambda: _litert_relu(ql, profile),
        "LeakyReLU": lambda: _litert_leaky_relu(ql, profile),
        "HardSwish": lambda: _litert_hard_swish(ql, profile),
        "Sigmoid": lambda: _litert_table(ql, profile, "sigmoid"),
        "Tanh": lambda: _litert_table(ql, profile, "tanh"),
        "Softmax": lambda: _litert_softmax(ql, profile),
        "MaxPooling2D": lambda: _litert_pool(ql, profile, "max"),
        "AveragePooling2D": lambda: _litert_pool(ql, profile, "average"),
        "GlobalAveragePooling2D": lambda: _litert_mean(ql, profile),
        "Concatenation": lambda: _litert_concat(ql, profile),
    }
    if t in makers:
        return makers[t]()
    if t in ("Flatten", "Reshape", "Transpose", "Dropout", "Identity", "Resize2D"):
        return _litert_move(ql, profile)
    raise _unsupported(ql, profile, f"no LiteRT formula for {t} layers")


# =================================================================================================
# the graph
# =================================================================================================
def _pad(ql, profile):
    """Constant padding: the new elements hold round(value / scale) + zero point (a stored integer)."""
    pad, out = ql.layer, ql.output_params
    fill = int(round(float(pad.value) / float(out.scale[0]) + _zp(out)))

    def run(x):
        y = np.full(pad.output_shape(x.shape), fill, np.int64)
        y[(slice(None),) + tuple(slice(b, b + n) for (b, _), n in zip(pad.pads, x.shape[1:]))] = x
        return y
    return run


def layer_function(ql, profile):
    """f(*stored int64 arrays) -> stored int64 array: the affine layer `ql` as `profile` runs it."""
    if ql.type_name in ("ReLU", "ClippedReLU") and getattr(ql, "fused", False):
        return lambda x: x                       # the layer before applied it with its requantization
    if ql.type_name == "Pad":                  # every runtime copies the bytes around the zero point
        return _pad(ql, profile)
    if profile.family == "onnxruntime":
        return _ort_layer(ql, profile)
    if profile.family == "litert":
        return _litert_layer(ql, profile)
    raise _unsupported(ql, profile, f"runtime family {profile.family!r} has no reference formulas")


def float_layer_function(layer, profile):
    """A float layer of an affine network: ORT's float operators that round once per element (or
    its Eigen batch normalization) and data movement; other float kernels are not re-derived."""
    function = _float_function(layer, profile.family)
    if function is None:
        raise ReferenceNotSupportedError(
            f"layer {layer.name!r} ({layer.type_name}) under runtime {profile.name!r}: a float "
            f"{layer.type_name} layer runs the runtime's float kernel, which this reference does not re-derive")
    return function


class _Q:
    """Stored integers (int64) in flight, with their quantization parameters."""

    __slots__ = ("q", "params")

    def __init__(self, q, params):
        self.q, self.params = q, params


def as_fi(q: np.ndarray, params: QuantParams) -> fi:
    """Stored integers as an `fi` of the parameters' exact (slope-bias) numerictype."""
    return fi(int=np.asarray(q, np.int64), numerictype=params.numerictype())


def _profile(qnet, runtime):
    if qnet.scheme != "affine":
        raise ValueError("the affine reference path runs affine networks (ONNXRuntime / LiteRT)")
    profile = get_runtime(qnet.default_runtime if runtime is None else runtime)
    if profile.family != qnet.target.runtime_family:
        raise ValueError(f"runtime {profile.name!r} emulates {profile.family} models; this network is a "
                         f"{qnet.target.runtime_family} network")
    return profile


def predict_reference(qnet, *x: np.ndarray, outputs: str | Sequence[str] | None = None, runtime=None):
    """What `qnet.predict(*x, outputs=outputs, runtime=runtime)` returns for an affine network,
    computed by this module's independent formulas (quantized layers' outputs as `fi`)."""
    profile = _profile(qnet, runtime)
    network = qnet.network
    functions: dict = {}

    def step(layer, *args):
        ql = qnet.qlayers.get(layer.name)
        if ql is None:
            if not layer.input_ports and layer.name in qnet.input_params:
                params = qnet.input_params[layer.name]
                value = np.asarray(args[0])
                if value.dtype != params.dtype:
                    raise ValueError(f"input {layer.name!r} takes {params.dtype} integers, got {value.dtype}")
                return _Q(value.astype(np.int64), params)
            function = functions.get(layer.name)
            if function is None:
                function = functions[layer.name] = float_layer_function(layer, profile)
            return function(*[dequantize_boundary(profile, a.q, a.params) if isinstance(a, _Q) else a
                              for a in args])
        function = functions.get(layer.name)
        if function is None:
            function = functions[layer.name] = layer_function(ql, profile)
        stored = []
        for a, p in zip(args, ql.input_params):
            if isinstance(a, _Q) and a.params == p:
                stored.append(a.q)
            else:   # a float value, or integers of other parameters (DequantizeLinear then QuantizeLinear)
                value = dequantize_float32(a.q, a.params) if isinstance(a, _Q) else a
                stored.append(quantize_boundary(profile, value, p))
        return _Q(np.asarray(function(*stored), np.int64), ql.output_params)

    names = [outputs] if isinstance(outputs, str) else outputs
    result = network.run(network._input_dict(x), outputs=names, compute=step)
    if outputs is not None:
        convert = lambda v: as_fi(v.q, v.params) if isinstance(v, _Q) else v  # noqa: E731
    elif qnet.integer_outputs:
        convert = lambda v: v.q.astype(v.params.dtype) if isinstance(v, _Q) else v  # noqa: E731
    else:
        convert = lambda v: dequantize_boundary(profile, v.q, v.params) if isinstance(v, _Q) else v  # noqa: E731
    values = [convert(v) for v in result.values()]
    single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
    return values[0] if single else values


def reference_coverage(qnet, runtime=None) -> dict:
    """{layer name: None if this reference computes the layer under `runtime`, else the reason}
    for every layer the network computes (input layers included); a layer after an unsupported one
    can still be supported itself (`outputs=` of it then fails for its source's reason)."""
    profile = _profile(qnet, runtime)
    coverage = {}
    for layer in qnet.network.layers:
        ql = qnet.qlayers.get(layer.name)
        try:
            if ql is not None:
                layer_function(ql, profile)
            elif layer.input_ports or layer.name not in qnet.input_params:
                float_layer_function(layer, profile)
            coverage[layer.name] = None
        except ReferenceNotSupportedError as error:
            coverage[layer.name] = str(error)
    return coverage
