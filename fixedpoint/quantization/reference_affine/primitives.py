"""Exact primitives of the affine reference: gemmlowp / ruy fixed-point steps in numpy int64, the
exact float32 FMA, libm through ctypes, window geometry and data movement written again here, and the
`fi` accumulations (exact wrapping int32 sums; MLAS's saturating int16 pair sums)."""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from fractions import Fraction

import numpy as np

from ... import arith
from ...cast import setfimath
from ...fi import fi
from ...runtime.profile import RuntimeNotSupportedError
from ...types import fimath, numerictype


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
# window geometry (ONNX auto_pad / TFLite padding, written again here)
# =================================================================================================
def explicit_pads(padding, in_hw, kernel, stride, dilation=(1, 1)) -> tuple:
    """(top, left, bottom, right) of a layer's padding on an input of spatial size `in_hw`: explicit
    sizes as given; "same" / "same_lower" (ONNX SAME_UPPER / SAME_LOWER, TFLite SAME): output
    ceil(L / s), total padding max((out − 1)·s + (k − 1)·d + 1 − L, 0), its odd half at the end
    ("same") or at the start ("same_lower")."""
    if not isinstance(padding, str):
        return tuple(int(v) for v in padding)
    if padding not in ("same", "same_lower"):
        raise ValueError(f"padding {padding!r} is not re-derived")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-int(size) // int(s))
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if padding == "same" else large)
        end.append(large if padding == "same" else small)
    return begin[0], begin[1], end[0], end[1]


def window_count(size: int, kernel: int, stride: int, begin: int, end: int, dilation: int = 1,
                 ceil_mode: bool = False) -> int:
    """Number of windows along one axis: ⌊span / s⌋ + 1 (⌈span / s⌉ + 1 with ceil_mode, dropping a
    last window that starts past the input and its leading padding: ORT's and PyTorch's rule), span =
    L + begin + end − (k − 1)·d − 1."""
    span = size + begin + end - (kernel - 1) * dilation - 1
    if span < 0:
        raise ValueError(f"a window of extent {(kernel - 1) * dilation + 1} does not fit {size} + ({begin}, {end})")
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + begin:
        out -= 1
    return out


def window_output_hw(shape, kernel, stride, pads, dilation=(1, 1), ceil_mode=False) -> tuple:
    """(OH, OW) of a window operation on an NCHW shape with explicit pads."""
    return tuple(window_count(shape[2 + a], kernel[a], stride[a], pads[a], pads[a + 2], dilation[a], ceil_mode)
                 for a in range(2))


def data_movement(layer):
    """The float layer's definition as pure data movement, written here (not the layer's forward):
    Flatten (N, −1); Reshape to (N, *shape) with 0 copying the observation's dimension and −1
    inferred; Transpose by `perm` (batch axis first); Resize2D nearest by integer factors (each value
    repeated); Identity / Dropout / the inputs unchanged. None for anything else (a linear Resize)."""
    t = layer.type_name
    if t in ("Identity", "Dropout", "ImageInput", "TensorInput", "FeatureInput"):
        return lambda x: x
    if t == "Flatten":
        return lambda x: x.reshape(x.shape[0], -1)
    if t == "Reshape":
        def reshape(x):
            sample = x.shape[1:]
            return x.reshape((x.shape[0],) + tuple(sample[k] if d == 0 else d for k, d in enumerate(layer.shape)))
        return reshape
    if t == "Transpose":
        return lambda x: np.ascontiguousarray(x.transpose(tuple(layer.perm)))
    if t == "Resize2D" and layer.mode == "nearest":
        sh, sw = (int(v) for v in layer.scale)
        return lambda x: np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)
    return None


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


def linear_sums(x, weights, x_zero_point, w_zero_points, bias, accumulation, geometry=None, k_order="hwc"):
    """int32 accumulators (N, O[, OH, OW]) of Σ (x − z_x)(w − z_w) + bias for a fully connected
    layer (geometry None; x (N, K), weights (O, K)) or a convolution (geometry = (stride, dilation,
    pads, groups); x NCHW, weights OIHW), exact (`fi`) or as MLAS's int16 pairs (raw bytes, K in
    (kh, kw, c) order per group — `k_order` "hwc", QLinearConv's NHWC im2col — or (c, kh, kw) — "chw",
    ConvInteger's — zero points corrected exactly: raw − z_w·Σx − z_x·Σw + K·z_x·z_w)."""
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
            wm = weights[g * og:(g + 1) * og].astype(np.int64).transpose(2, 3, 1, 0)      # kh, kw, c, o
            if k_order == "chw":
                cols = cols.reshape(-1, kh, kw, cg).transpose(0, 3, 1, 2).reshape(cols.shape[0], -1)
                wm = wm.transpose(2, 0, 1, 3)
            groups_cols.append((cols, slice(g * og, (g + 1) * og)))
            wmats.append(wm.reshape(-1, og))
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
# shared integer layer pieces
# =================================================================================================
def _pool_windows(q: np.ndarray, pool, stride, pads, ceil_mode: bool, fill: int):
    """(N, C, OH, OW, kh·kw) windows of stored integers and a mask of the taps inside the input."""
    n, c, h, w = q.shape
    (kh, kw), (sh, sw) = pool, stride
    oh, ow = window_output_hw(q.shape, pool, stride, pads, ceil_mode=ceil_mode)
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
    return explicit_pads(layer.padding, shape[2:], layer.pool_size, layer.stride, (1, 1))


def max_pool_int(layer, q: np.ndarray) -> np.ndarray:
    """The maximum of the window's taps inside the input (padding never wins)."""
    if layer.type_name == "GlobalMaxPooling2D":
        return q.max(axis=(2, 3), keepdims=True)
    windows, _ = _pool_windows(q, layer.pool_size, layer.stride, _pool_pads(layer, q.shape),
                               layer.ceil_mode, fill=INT32_MIN)
    return windows.max(axis=-1)


def _move(ql, profile):
    """Data movement (`data_movement`) applied to the stored integers."""
    move = data_movement(ql.layer)
    if move is None:
        raise _unsupported(ql, profile, f"a {ql.type_name} layer on integers is not data movement here")
    return lambda q: np.asarray(move(np.asarray(q)), np.int64)


def _conv_geometry(conv, shape, wshape):
    pads = explicit_pads(conv.padding, shape[2:], wshape[2:], conv.stride, conv.dilation)
    return conv.stride, conv.dilation, pads, conv.groups


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
