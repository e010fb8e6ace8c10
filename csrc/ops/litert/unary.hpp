// Element-wise int8/uint8 ops of one input: RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, HARD_SWISH,
// LOGISTIC, TANH and QUANTIZE between integer types (requantization), plus QUANTIZE from float32 and
// DEQUANTIZE to float32, per resolver.
//
// An 8-bit op of one input is a function of the input byte, so each resolver's formula is evaluated
// once per possible input into a 256-entry table. Where the optimized kernel's NEON loop and scalar
// tail differ (requantization), two tables and the loop's block size say which element gets which.
//
// RELU family (activations.cc QuantizedReluX, reference_ops::ReluX; every builtin resolver; XNNPACK
//   takes only float RELUs): y = clamp(MBQM(q - z_in, M, e) + z_out), M from double(float(s_in / s_out)),
//   bounds z_out + int(roundf(bound / s_out)) (half away), +inf -> the type's max.
// LEAKY_RELU (reference_ops::QuantizeLeakyRelu; every builtin resolver): MBQM by the identity
//   multiplier (s_in / s_out) for q >= z_in, by the alpha multiplier (s_in * alpha / s_out, in float)
//   below. XNNPACK (qs8_vlrelu): y = sat(floor(((q - z_in) m + 128) / 256) + z_out) with
//   m = lrintf(256 s_in / s_out) or lrintf(256 s_in / s_out * alpha), when the delegate accepts the
//   scales (positive in [2^-8, 128], negative in [-127.99609375, 128] and |.| >= 2^-8).
// HARD_SWISH (reference_ops::HardSwish; optimized_ops::HardSwish has NEON code only under
//   __ARM_NEON, so x86 runs the reference; XNNPACK takes only float): gemmlowp int16 fixed point.
// LOGISTIC, TANH (activations.cc LUTPopulate + LookupTable, reference and optimized alike):
//   y = clamp(int(roundf(f(s_in * (q - z_in)) / s_out) + z_out)) with f = 1 / (1 + expf(-x)) or
//   tanhf, in float. XNNPACK (reference unary kernel made into a table): y = sat(RNE(f(x) *
//   (1 / s_out) + z_out)) with x = (q - z_in) * s_in, sigmoid via double exp, tanh via tanhf.
// QUANTIZE int -> int (reference_ops::Requantize): MBQM(q - z_in, M, e) + z_out, M from
//   double(s_in) / double(s_out). Optimized: the NEON loop (16 at a time) rounds the second step half
//   up (MultiplyByQuantizedMultiplier4Rows), the tail is the reference. XNNPACK (qs8_vcvt; same
//   input and output type, scale ratio in [2^-8, 128]): y = sat(floor(((q - z_in) m + 128) / 256) +
//   z_out), m = lrintf(256 s_in / s_out).
// QUANTIZE float -> int8/uint8: reference y = clamp(int(roundf(x / s)) + z) (float division);
//   optimized NEON loop (8 at a time) y = clamp(RNE(x * float(1 / double(s))) + z), tail
//   clamp(int(round(double(x) / double(s))) + z); XNNPACK y = sat(sat16(RNE(min(x * (1.0f / s),
//   32767))) + z). Conversions out of int32 range give INT32_MIN, as x86 does.
// DEQUANTIZE: reference and XNNPACK y = float(double(s) * (q - z)) (one rounding); optimized NEON
//   loop (8 at a time) y = float(q) * float(s) + float(-z * double(s)) (two float roundings).
#pragma once

#include <algorithm>
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "ops/litert/binary.hpp"
#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

enum class UnaryOp : int {
    Relu = 0, Relu6 = 1, ReluN1To1 = 2, LeakyRelu = 3, HardSwish = 4, Logistic = 5, Tanh = 6, Requantize = 7
};
enum class ByteType : int { Int8 = 0, UInt8 = 1 };

inline int32_t byte_min(ByteType t) { return t == ByteType::Int8 ? -128 : 0; }
inline int32_t byte_max(ByteType t) { return t == ByteType::Int8 ? 127 : 255; }
// The value of a stored byte of type t, and the byte of an in-range value.
inline int32_t byte_value(uint8_t b, ByteType t) { return t == ByteType::Int8 ? int32_t(int8_t(b)) : int32_t(b); }
inline uint8_t value_byte(int32_t v) { return uint8_t(uint32_t(v)); }

// x86 float -> int32 conversions: truncating (cvttss2si, C casts) and to nearest even (cvtss2si,
// cvtps2dq); NaN and values outside int32 give INT32_MIN.
inline int32_t x86_cvtt(double v) { return (v > -2147483649.0 && v < 2147483648.0) ? int32_t(v) : INT32_MIN; }
inline int32_t x86_cvt_rne(float v) {
    const float r = std::nearbyint(v);
    const bool ok = (r >= -2147483648.0f) & (r < 2147483648.0f);  // selects, not branches: vectorisable
    const int32_t c = int32_t(ok ? r : 0.0f);
    return ok ? c : INT32_MIN;
}

struct UnaryArgs {
    UnaryOp op;
    Resolver resolver;
    Quant in, out;
    ByteType in_type, out_type;
    float alpha = 0.0f;  // LEAKY_RELU
};

// 256-entry tables indexed by the input byte; elements at positions [0, n / block * block) of a
// flat run take `vec`, the rest `tail` (block 0: every element takes `tail`).
struct UnaryTables {
    uint8_t vec[256], tail[256];
    int block = 0;
    // XNNPACK's LEAKY_RELU / int->int QUANTIZE (both tables equal): its 16-bit rescale, which the
    // AVX2 path computes directly (xnn_rescale_avx2) instead of looking up.
    bool xnn_rescale = false;
    int32_t zi = 0, zo = 0, m_pos = 0, m_neg = 0;
    ByteType in_type = ByteType::Int8, out_type = ByteType::Int8;
};

// ---- parameters and per-value formulas -------------------------------------------------------------
inline bool xnn_lrelu_supported(float s_in, float s_out, float alpha) {
    const float pos = s_in / s_out;
    if (pos < 1.0f / 256.0f || pos > 128.0f) return false;
    const float neg = pos * alpha;
    return !(neg < -127.99609375f || neg > 128.0f || std::fabs(neg) < 1.0f / 256.0f);
}

inline bool xnn_requantize_supported(float s_in, float s_out) {
    const float r = s_in / s_out;
    return !(r < 1.0f / 256.0f || r > 128.0f);
}

// Whether XNNPACK runs this op for `resolver` == Xnnpack (the delegate's checks).
inline bool unary_runs_in_xnnpack(const UnaryArgs& a) {
    if (a.resolver != Resolver::Xnnpack) return false;
    switch (a.op) {
        case UnaryOp::LeakyRelu: return xnn_lrelu_supported(a.in.scale, a.out.scale, a.alpha);
        case UnaryOp::Logistic:
        case UnaryOp::Tanh: return true;
        case UnaryOp::Requantize:  // the delegate takes int8 -> int8 and uint8 -> uint8 only
            return a.in_type == a.out_type && xnn_requantize_supported(a.in.scale, a.out.scale);
        default: return false;  // RELU family and HARD_SWISH: float only in the delegate
    }
}

// XNNPACK's 8-bit rescale (qs8_vcvt, qs8_vlrelu): floor(((q - z_in) m + 128) / 256) + z_out,
// saturated to int16 then to the output type.
inline int32_t xnn_rescale_q8(int32_t x, int32_t m, int32_t z_out, ByteType out) {
    const int32_t v = (x * m + 128) >> 8;
    return std::min(std::max(saturate_to<int16_t>(v + z_out), byte_min(out)), byte_max(out));
}

// gemmlowp int16 fixed point of the reference HardSwish (reference/hard_swish.h).
inline int16_t srdhm16(int16_t a, int16_t b) {
    if (a == b && a == INT16_MIN) return INT16_MAX;
    const int32_t ab = int32_t(a) * int32_t(b);
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return int16_t((ab + nudge) / (1 << 15));  // C division: toward zero
}
inline int16_t sdhm16(int16_t a, int16_t b) {  // SaturatingDoublingHighMul: truncating
    if (a == b && a == INT16_MIN) return INT16_MAX;
    return int16_t((int32_t(a) * int32_t(b)) / (1 << 15));
}
inline int16_t saturating_left_shift16(int16_t v, int amount) {
    return int16_t(std::min<int64_t>(std::max<int64_t>(int64_t(v) * (int64_t(1) << amount), INT16_MIN), INT16_MAX));
}
inline int16_t rdbpot16(int16_t x, int e) { return int16_t(rounding_divide_by_pot(x, e)); }

// DownScaleInt32ToInt16Multiplier (common.h).
inline int16_t downscale_multiplier16(int32_t m) {
    if (m >= INT32_MAX - (1 << 15)) return INT16_MAX;
    return int16_t((m + (1 << 15)) >> 16);
}

struct HardSwishParams {
    int16_t output_multiplier, reluish_multiplier;
    int output_exponent, reluish_exponent;
};

// HardSwishPrepare (activations.cc).
inline HardSwishParams hard_swish_params(float s_in, float s_out) {
    const float hires_input_scale = (1.0f / 128.0f) * s_in;
    const float reluish_scale = 3.0f / 32768.0f;
    HardSwishParams p;
    const QuantizedMultiplier o = quantize_multiplier(double(hires_input_scale / s_out));
    p.output_multiplier = downscale_multiplier16(o.multiplier);
    p.output_exponent = o.shift;
    if (p.output_exponent > 0)
        throw std::invalid_argument("HARD_SWISH: input_scale / 128 / output_scale >= 1 is rejected by TFLite");
    const QuantizedMultiplier r = quantize_multiplier(double(hires_input_scale / reluish_scale));
    p.reluish_multiplier = downscale_multiplier16(r.multiplier);
    p.reluish_exponent = r.shift;
    return p;
}

inline int32_t hard_swish_value(int32_t q, int32_t z_in, int32_t z_out, const HardSwishParams& p, ByteType out) {
    const int16_t input_value = int16_t(q - z_in);
    const int16_t hires = int16_t(input_value * (1 << 7));
    const int16_t preshift_output = srdhm16(hires, p.output_multiplier);
    int16_t reluish = hires;
    if (p.reluish_exponent > 0) reluish = saturating_left_shift16(reluish, p.reluish_exponent - 1);
    reluish = srdhm16(reluish, p.reluish_multiplier);
    if (p.reluish_exponent > 0) reluish = saturating_left_shift16(reluish, 1);
    if (p.reluish_exponent < 0) reluish = rdbpot16(reluish, -p.reluish_exponent);
    reluish = int16_t((int32_t(reluish) + (1 << 15)) >> 1);
    const int16_t preshift = sdhm16(reluish, preshift_output);
    int16_t y = rdbpot16(preshift, -p.output_exponent);
    y = int16_t(y + z_out);
    return std::min<int32_t>(std::max<int32_t>(y, byte_min(out)), byte_max(out));
}

// LUTPopulateInt8 (common.h): dequantize in float, f in float, roundf(f * (1 / s_out)) + z_out.
template <class F>
inline int32_t tflite_lut_value(int32_t q, const UnaryArgs& a, F f) {
    const float inverse_scale = 1 / a.out.scale;
    const float dequantized = a.in.scale * float(q - a.in.zero_point);
    const float transformed = f(dequantized);
    const float rescaled = std::round(transformed * inverse_scale);
    const int32_t quantized = x86_cvtt(double(rescaled + float(a.out.zero_point)));
    return std::max(std::min(byte_max(a.out_type), quantized), byte_min(a.out_type));
}

// XNNPACK's reference unary kernel (reference/unary-elementwise.cc, reference-utils.h).
template <class F>
inline int32_t xnn_lut_value(int32_t q, const UnaryArgs& a, F f) {
    const float x = (float(q) - float(a.in.zero_point)) * a.in.scale;
    const float y = f(x);
    const float inv = 1.0f / a.out.scale;
    float v = std::nearbyint(y * inv + float(a.out.zero_point));
    if (std::isnan(v)) v = 0.0f;
    v = std::max<float>(v, float(byte_min(a.out_type)));
    v = std::min<float>(v, float(byte_max(a.out_type)));
    return int32_t(v);
}

inline float tflite_logistic(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float tflite_tanh(float x) { return std::tanh(x); }
inline float xnn_sigmoid(float x) {
    if (x > 100) return 1.0f;
    if (x < -100) return 0.0f;
    const double e = std::exp(double(x));
    return float(e / (1 + e));
}

// The fused-activation bounds of QuantizedReluX (activations.cc).
inline Range relu_bounds(UnaryOp op, Quant out, ByteType t) {
    float lo = 0.0f, hi = std::numeric_limits<float>::infinity();
    if (op == UnaryOp::Relu6) hi = 6.0f;
    if (op == UnaryOp::ReluN1To1) { lo = -1.0f; hi = 1.0f; }
    Range r;
    r.lo = std::max(byte_min(t), out.zero_point + x86_cvtt(double(std::round(lo / out.scale))));
    r.hi = std::isinf(hi) ? byte_max(t) : std::min(byte_max(t), out.zero_point + x86_cvtt(double(std::round(hi / out.scale))));
    return r;
}

// ---- the tables -------------------------------------------------------------------------------------
inline UnaryTables unary_tables(const UnaryArgs& a) {
    UnaryTables t;
    const bool xnn = unary_runs_in_xnnpack(a);
    const int32_t zi = a.in.zero_point, zo = a.out.zero_point;
    const int32_t lo = byte_min(a.out_type), hi = byte_max(a.out_type);
    auto fill = [&](uint8_t* table, auto value) {
        for (int b = 0; b < 256; ++b) table[b] = value_byte(value(byte_value(uint8_t(b), a.in_type)));
    };
    switch (a.op) {
        case UnaryOp::Relu:
        case UnaryOp::Relu6:
        case UnaryOp::ReluN1To1: {
            if (a.in_type != a.out_type) throw std::invalid_argument("RELU needs the same input and output type");
            const QuantizedMultiplier m = quantize_multiplier(double(a.in.scale / a.out.scale));
            const Range r = relu_bounds(a.op, a.out, a.out_type);
            fill(t.tail, [&](int32_t q) {
                return std::min(std::max(wrap_add(zo, multiply_by_quantized_multiplier(q - zi, m.multiplier, m.shift)), r.lo), r.hi);
            });
            break;
        }
        case UnaryOp::LeakyRelu: {
            if (xnn) {
                const float pos = a.in.scale / a.out.scale, neg = pos * a.alpha;
                const int32_t mp = int32_t(std::nearbyint(256.0f * pos)), mn = int32_t(std::nearbyint(256.0f * neg));
                fill(t.tail, [&](int32_t q) { return xnn_rescale_q8(q - zi, q - zi >= 0 ? mp : mn, zo, a.out_type); });
                t.xnn_rescale = true;
                t.m_pos = mp;
                t.m_neg = mn;
                break;
            }
            const QuantizedMultiplier mi = quantize_multiplier(double(a.in.scale / a.out.scale));
            const QuantizedMultiplier ma = quantize_multiplier(double(a.in.scale * a.alpha / a.out.scale));
            const bool negative_alpha = ma.multiplier < 0;
            const int32_t ma_abs = negative_alpha ? -ma.multiplier : ma.multiplier;
            fill(t.tail, [&](int32_t q) {
                const int32_t v = q - zi;
                int32_t y = zo;
                if (v >= 0) {
                    y += multiply_by_quantized_multiplier(v, mi.multiplier, mi.shift);
                } else {
                    const int32_t s = multiply_by_quantized_multiplier(v, ma_abs, ma.shift);
                    y += negative_alpha ? -s : s;
                }
                return std::min(hi, std::max(lo, y));
            });
            break;
        }
        case UnaryOp::HardSwish: {
            const HardSwishParams p = hard_swish_params(a.in.scale, a.out.scale);
            fill(t.tail, [&](int32_t q) { return hard_swish_value(q, zi, zo, p, a.out_type); });
            break;
        }
        case UnaryOp::Logistic:
        case UnaryOp::Tanh: {
            const bool logistic = a.op == UnaryOp::Logistic;
            if (xnn) {
                if (logistic) fill(t.tail, [&](int32_t q) { return xnn_lut_value(q, a, xnn_sigmoid); });
                else fill(t.tail, [&](int32_t q) { return xnn_lut_value(q, a, tflite_tanh); });
                break;
            }
            if (logistic && a.out.scale != 1.0f / 256.0f)
                throw std::invalid_argument("LOGISTIC: TFLite requires the output scale 1/256");
            if (logistic) fill(t.tail, [&](int32_t q) { return tflite_lut_value(q, a, tflite_logistic); });
            else fill(t.tail, [&](int32_t q) { return tflite_lut_value(q, a, tflite_tanh); });
            break;
        }
        case UnaryOp::Requantize: {
            if (xnn) {
                const int32_t m = int32_t(std::nearbyint(256.0f * (a.in.scale / a.out.scale)));
                fill(t.tail, [&](int32_t q) { return xnn_rescale_q8(q - zi, m, zo, a.out_type); });
                t.xnn_rescale = true;
                t.m_pos = t.m_neg = m;
                break;
            }
            const QuantizedMultiplier m = quantize_multiplier(double(a.in.scale) / double(a.out.scale));
            fill(t.tail, [&](int32_t q) {
                return std::max(std::min(wrap_add(multiply_by_quantized_multiplier(q - zi, m.multiplier, m.shift), zo), hi), lo);
            });
            if (a.resolver != Resolver::Reference) {
                // optimized_ops::Requantize: NEON loop, MultiplyByQuantizedMultiplier4Rows (half up).
                fill(t.vec, [&](int32_t q) {
                    return std::max(std::min(wrap_add(multiply_by_quantized_multiplier_half_up(q - zi, m.multiplier, m.shift), zo), hi), lo);
                });
                t.block = 16;
            }
            break;
        }
    }
    t.zi = zi;
    t.zo = zo;
    t.in_type = a.in_type;
    t.out_type = a.out_type;
    return t;
}

// XNNPACK's qs8/qu8 vcvt and vlrelu AVX2 kernels, 16 lanes at a time: x = (z_in - q) << 7 in int16,
// mulhrs by -m (m per lane: positive or negative multiplier), saturating + z_out, packs to 8 bits.
// The same integers as xnn_rescale_q8: mulhrs gives floor(((q - z_in) m 128 + 2^14) / 2^15).
__attribute__((target("avx2"))) inline void xnn_rescale_avx2(const UnaryTables& t, const uint8_t* in, std::ptrdiff_t n,
                                                               uint8_t* out) {
    const bool signed_in = t.in_type == ByteType::Int8, signed_out = t.out_type == ByteType::Int8;
    const __m256i vzi = _mm256_set1_epi16(int16_t(t.zi)), vzo = _mm256_set1_epi16(int16_t(t.zo));
    const __m256i vpos = _mm256_set1_epi16(int16_t(-t.m_pos)), vneg = _mm256_set1_epi16(int16_t(-t.m_neg));
    std::ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        const __m256i q = signed_in ? _mm256_cvtepi8_epi16(raw) : _mm256_cvtepu8_epi16(raw);
        const __m256i mult = _mm256_blendv_epi8(vneg, vpos, _mm256_cmpgt_epi16(q, vzi));
        const __m256i x = _mm256_slli_epi16(_mm256_sub_epi16(vzi, q), 7);
        const __m256i y = _mm256_adds_epi16(_mm256_mulhrs_epi16(x, mult), vzo);
        const __m128i lo = _mm256_castsi256_si128(y), hi = _mm256_extracti128_si256(y, 1);
        const __m128i packed = signed_out ? _mm_packs_epi16(lo, hi) : _mm_packus_epi16(lo, hi);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), packed);
    }
    for (; i < n; ++i) out[i] = t.tail[in[i]];
}

// A 256-byte table lookup, 32 bytes at a time with AVX2 byte shuffles (vpshufb looks up 16 entries
// and gives 0 for an index with its top bit set). Step k shuffles the index minus 16 k into a
// 16-byte slice; the slices are stored as XOR differences so that the steps an index passes through
// telescope to its own slice: steps 0..8 subtract with wrap-around (indices 0..127 go negative and
// drop out after their slice), steps 9..15 subtract with signed saturation (indices 128..255, which
// came back positive at step 8, drop out after theirs and never wrap back).
__attribute__((target("avx2"))) inline void lookup_bytes_avx2(const uint8_t* table, const uint8_t* in,
                                                                std::ptrdiff_t n, uint8_t* out) {
    __m256i t[16], d[16];
    for (int k = 0; k < 16; ++k)
        t[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
    d[0] = t[0];
    for (int k = 1; k < 16; ++k) {
        d[k] = _mm256_xor_si256(t[k - 1], t[k]);
        if (k >= 8) d[k] = _mm256_xor_si256(d[k], d[k - 8]);
    }
    const __m256i sixteen = _mm256_set1_epi8(16);
    std::ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
        __m256i y = _mm256_shuffle_epi8(d[0], x);
        for (int k = 1; k <= 8; ++k) {
            x = _mm256_sub_epi8(x, sixteen);
            y = _mm256_xor_si256(y, _mm256_shuffle_epi8(d[k], x));
        }
        for (int k = 9; k < 16; ++k) {
            x = _mm256_subs_epi8(x, sixteen);
            y = _mm256_xor_si256(y, _mm256_shuffle_epi8(d[k], x));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), y);
    }
    for (; i < n; ++i) out[i] = table[in[i]];
}

inline void lookup_bytes(bool avx2, const uint8_t* table, const uint8_t* in, std::ptrdiff_t n, uint8_t* out) {
    if (avx2) return lookup_bytes_avx2(table, in, n, out);
    for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

// out[i] = table(in[i]) for a flat run of n elements (the kernels see the whole tensor as one run).
inline void apply_unary_tables(const UnaryTables& t, const uint8_t* in, std::ptrdiff_t n, uint8_t* out, bool avx2) {
    if (t.xnn_rescale && avx2) return xnn_rescale_avx2(t, in, n, out);
    const std::ptrdiff_t vec_end = t.block ? n / t.block * t.block : 0;
    lookup_bytes(avx2, t.vec, in, vec_end, out);
    lookup_bytes(avx2, t.tail, in + vec_end, n - vec_end, out + vec_end);
}

// ---- QUANTIZE float -> int8 / uint8 -----------------------------------------------------------------
// The rounding of each resolver on 8 floats at a time with AVX2 (the scalar code below is the
// definition; this is the same arithmetic, lane by lane): x86's cvtt/cvt give INT32_MIN out of range.
__attribute__((target("avx2"))) inline void quantize_float_avx2(Resolver r, const float* x, std::ptrdiff_t n,
                                                                  float scale_or_inv, int32_t z, int32_t lo, int32_t hi,
                                                                  int32_t* q) {
    const __m256 k = _mm256_set1_ps(scale_or_inv);
    const __m256 half = _mm256_set1_ps(0.5f), neg_half = _mm256_set1_ps(-0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 bound = _mm256_set1_ps(32767.0f);
    const __m256i vz = _mm256_set1_epi32(z), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    const __m256i s16lo = _mm256_set1_epi32(-32768), s16hi = _mm256_set1_epi32(32767);
    for (std::ptrdiff_t i = 0; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        __m256i c;
        if (r == Resolver::Reference) {  // roundf(x / s): truncate, then +-1 from the exact remainder
            const __m256 y = _mm256_div_ps(v, k);
            const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 d = _mm256_sub_ps(y, t);
            const __m256 up = _mm256_and_ps(_mm256_cmp_ps(d, half, _CMP_GE_OQ), one);
            const __m256 down = _mm256_and_ps(_mm256_cmp_ps(d, neg_half, _CMP_LE_OQ), one);
            c = _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(t, up), down)), vz);
        } else if (r == Resolver::Optimized) {  // RNE(x * float(1 / s)) + z
            c = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, k)), vz);
        } else {  // XNNPACK: min(x * (1 / s), 32767) (NaN takes the bound), RNE, int16 saturation, + z
            const __m256 y = _mm256_min_ps(_mm256_mul_ps(v, k), bound);
            __m256i i32 = _mm256_cvtps_epi32(y);
            i32 = _mm256_min_epi32(_mm256_max_epi32(i32, s16lo), s16hi);
            c = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i32, vz), s16lo), s16hi);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_min_epi32(_mm256_max_epi32(c, vlo), vhi));
    }
}

inline void quantize_float(Resolver r, const float* x, std::ptrdiff_t n, Quant out, ByteType t, uint8_t* y, bool avx2) {
    const int32_t lo = byte_min(t), hi = byte_max(t), z = out.zero_point;
    const double scale = double(out.scale);
    // The scalar definitions; std::ptrdiff_t `from` lets the AVX2 loop hand over its tail.
    auto scalar = [&](std::ptrdiff_t from, std::ptrdiff_t to) {
        for (std::ptrdiff_t i = from; i < to; ++i) {
            int32_t q;
            if (r == Resolver::Xnnpack) {
                float v = x[i] * (1.0f / out.scale);
                v = v < 32767.0f ? v : 32767.0f;  // minps: NaN takes the bound
                q = saturate_to<int16_t>(saturate_to<int16_t>(x86_cvt_rne(v)) + z);
            } else if (r == Resolver::Optimized) {
                q = wrap_add(x86_cvt_rne(x[i] * float(1.0f / scale)), z);
            } else {
                q = wrap_add(x86_cvtt(double(std::round(x[i] / out.scale))), z);
            }
            y[i] = value_byte(std::min(std::max(q, lo), hi));
        }
    };
    // The optimized kernel's NEON loop covers whole blocks of 8; its tail rounds double(x) / s.
    const std::ptrdiff_t vec_end = r == Resolver::Optimized ? n / 8 * 8 : n;
    std::ptrdiff_t done = 0;
    if (avx2 && vec_end >= 8) {
        const float k = r == Resolver::Reference ? out.scale : (r == Resolver::Optimized ? float(1.0f / scale) : 1.0f / out.scale);
        constexpr std::ptrdiff_t chunk = 4096;
        int32_t q[chunk];
        for (; done + 8 <= vec_end; done += std::min(chunk, (vec_end - done) / 8 * 8)) {
            const std::ptrdiff_t m = std::min(chunk, (vec_end - done) / 8 * 8);
            quantize_float_avx2(r, x + done, m, k, z, lo, hi, q);
            for (std::ptrdiff_t j = 0; j < m; ++j) y[done + j] = value_byte(q[j]);
        }
    }
    scalar(done, vec_end);
    for (std::ptrdiff_t i = vec_end; i < n; ++i)
        y[i] = value_byte(std::min(std::max(wrap_add(x86_cvtt(std::round(double(x[i]) / scale)), z), lo), hi));
}

// ---- DEQUANTIZE int8 / uint8 -> float ----------------------------------------------------------------
// float(double(s) * (q - z)): the double product is exact (24 + 9 bits), so this is the correctly
// rounded float product, which float(q - z) * s also is.
inline void dequantize(Resolver r, const uint8_t* q, std::ptrdiff_t n, Quant in, ByteType t, float* y, bool avx2) {
    const double scale = double(in.scale);
    const float s = in.scale;
    const int32_t z = in.zero_point;
    std::ptrdiff_t start = 0;
    auto value = [t](uint8_t b) { return t == ByteType::Int8 ? int32_t(int8_t(b)) : int32_t(b); };
    if (r == Resolver::Optimized) {
        const float zero_times_scale = float(-z * scale);
        start = n / 8 * 8;  // the NEON loop, 8 at a time: two float roundings
        for_range(avx2, 0, start, [=](std::ptrdiff_t i) { y[i] = float(value(q[i])) * s + zero_times_scale; });
    }
    for_range(avx2, start, n, [=](std::ptrdiff_t i) { y[i] = float(value(q[i]) - z) * s; });
}

}  // namespace litert
}  // namespace fxp
