"""LiteRT's int8 operators in the affine reference, per resolver (XNNPACK, optimized, reference)."""
from __future__ import annotations

import math

import numpy as np

from ..qparams import QuantParams
from .primitives import (
    F32, INT32_MAX, INT32_MIN, _EXP, _EXPF, _TANHF, _channel_shape, _conv_geometry, _map_f32, _move,
    _pool_pads, _pool_windows, _unsupported, fi_sum, float_to_int32, left_shift_wrap, linear_sums, mbqm,
    mbqm_half_up, quantize_multiplier, rdbpot, requantize_fp32, rne, round_half_away, sat, srdhm, wrap32)
from .boundaries import _scale, _zp


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
    return _move(ql, profile)


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
