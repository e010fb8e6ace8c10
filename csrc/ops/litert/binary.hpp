// ADD, SUB and MUL of int8 tensors (with broadcasting and fused activations), per resolver.
//
// Reference (reference_integer_ops::AddFunc / MulFunc, reference_ops::SubElementwise): every
// element by one scalar formula, broadcast like numpy.
//   ADD/SUB  x_i = (q_i - z_i) << 20;  s_i = RDBPOT(SRDHM(x_i, M_i), -e_i);
//            y = RDBPOT(SRDHM(s_1 +- s_2, M_o), -e_o) + z_o, clamped.
//            M_i from s_i / (2 max(s_1, s_2)), M_o from 2 max(s_1, s_2) / (2^20 s_o) (add.cc Prepare).
//   MUL      y = MultiplyByQuantizedMultiplier((q_1 - z_1)(q_2 - z_2), M, e) + z_o, clamped,
//            M from double(float(s_1 * s_2) / s_o) (mul.cc Prepare: the product in float).
// Optimized (optimized_integer_ops::AddElementwiseInt8 / AddScalarBroadcast / MulElementwise /
// MulSimpleBroadcast, driven by BinaryBroadcastFiveFold; the generic broadcasts and every SUB run
// the reference code). The NEON loops (16 elements at a time; 8 for the add of a broadcast scalar)
// round differently from the scalar tails, which use the reference formula:
//   ADD, elementwise   x_i = SRDHM(shift(q_i - z_i, 20 + e_i), M_i) (the input's right shift folded
//                      into the pre-shift, flooring when 20 + e_i < 0); s = RDBPOT(SRDHM(x_1 + x_2,
//                      M_o), -e_o); y = sat8(int16(int16(s) + z_o)) (vmovn wraps to 16 bits), clamped.
//   ADD, scalar bcast  x_i = floor(SRDHM((q_i - z_i) << 20, M_i) / 2^-e_i) (vshl: no rounding), then
//                      as above.
//   MUL (both)         p = MBQM(product); y = sat8(int16(sat16(p) + z_o)), clamped.
// Xnnpack (qs8 vadd / vmul microkernels, microparams-init.c):
//   ADD/SUB  a_m, b_m = lrintf(2^shift * s_i / s_o) with shift = 20 - exponent(max |s_i / s_o|)
//            (SUB: b's scale negated); acc = bias + q_1 a_m + q_2 b_m with bias = 2^(shift-1) -
//            a_m z_1 - b_m z_2; y = sat8(sat16(sat16(acc >> shift) + z_o)), clamped.
//   MUL      y = sat8(sat16(sat16(RNE(float((q_1 - z_1)(q_2 - z_2)) * scale)) + z_o)), clamped,
//            scale = float(s_1 * s_2) / s_o in float.
// The delegate takes ADD/SUB only when both s_i / s_o lie in [2^-10, 2^8), MUL when
// s_1 s_2 / s_o lies in [2^-16, 2^8) (CheckTensorsInput(Product)OutputScale); otherwise the
// optimized kernels run it.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2 };

struct Quant {
    float scale;
    int32_t zero_point;
};

// ---- TFLite parameters (ArithmeticParams) ---------------------------------------------------------
struct TfliteBinaryParams {
    int32_t input1_offset = 0, input2_offset = 0, output_offset = 0;
    int32_t left_shift = 20;
    int32_t input1_multiplier = 0, input1_shift = 0, input2_multiplier = 0, input2_shift = 0;
    int32_t output_multiplier = 0, output_shift = 0;
    Range act{-128, 127};
};

// QuantizeMultiplierSmallerThanOneExp: TFLite aborts outside (0, 1); here a clear error.
inline QuantizedMultiplier quantize_multiplier_smaller_than_one(double m, const char* what) {
    if (!(m > 0.0 && m < 1.0))
        throw std::invalid_argument(std::string(what) + " real multiplier " + std::to_string(m) +
                                    " outside (0, 1): TFLite rejects these scales");
    return quantize_multiplier(m);
}

inline TfliteBinaryParams tflite_binary_params(BinaryOp op, Quant in1, Quant in2, Quant out, Activation act,
                                               int32_t qmin, int32_t qmax) {
    TfliteBinaryParams p;
    p.input1_offset = -in1.zero_point;
    p.input2_offset = -in2.zero_point;
    p.output_offset = out.zero_point;
    p.act = tflite_activation_range(act, out.scale, out.zero_point, qmin, qmax);
    if (op == BinaryOp::Mul) {
        // mul.cc: input1->params.scale * input2->params.scale / output->params.scale, all float.
        const QuantizedMultiplier q = quantize_multiplier(double(in1.scale * in2.scale / out.scale));
        p.output_multiplier = q.multiplier;
        p.output_shift = q.shift;
        return p;
    }
    p.left_shift = 20;
    const double twice_max = double(2 * std::max(in1.scale, in2.scale));  // 2 * float, exact
    const double real1 = double(in1.scale) / twice_max, real2 = double(in2.scale) / twice_max;
    const double real_out = twice_max / double(float(1 << p.left_shift) * out.scale);
    const QuantizedMultiplier q1 = quantize_multiplier_smaller_than_one(real1, "input1");
    const QuantizedMultiplier q2 = quantize_multiplier_smaller_than_one(real2, "input2");
    const QuantizedMultiplier qo = quantize_multiplier_smaller_than_one(real_out, "output");
    p.input1_multiplier = q1.multiplier;
    p.input1_shift = q1.shift;
    p.input2_multiplier = q2.multiplier;
    p.input2_shift = q2.shift;
    p.output_multiplier = qo.multiplier;
    p.output_shift = qo.shift;
    return p;
}

// ---- the per-element formulas (int8 / uint8 operands, int32 result before the store) --------------
inline int32_t clamp_to(int32_t v, Range r) { return std::min(std::max(v, r.lo), r.hi); }

// reference AddFunc / SubElementwise (op = Add or Sub).
inline int32_t tflite_add_ref(int32_t a, int32_t b, const TfliteBinaryParams& p, bool sub) {
    const int32_t x1 = wrap_shl(p.input1_offset + a, p.left_shift);
    const int32_t x2 = wrap_shl(p.input2_offset + b, p.left_shift);
    const int32_t s1 = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x1, p.input1_multiplier), -p.input1_shift);
    const int32_t s2 = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x2, p.input2_multiplier), -p.input2_shift);
    const int32_t raw = sub ? s1 - s2 : s1 + s2;
    const int32_t y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(raw, p.output_multiplier), -p.output_shift);
    return clamp_to(wrap_add(y, p.output_offset), p.act);
}

// The tail of the NEON add after the two scaled inputs are summed: vqrdmulh, RoundingDivideByPOT,
// vmovn (wrap to int16), + zero point in int16, vqmovn to int8, clamp.
template <class T>
inline int32_t neon_add_finish(int32_t sum, const TfliteBinaryParams& p) {
    const int32_t s = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(sum, p.output_multiplier), -p.output_shift);
    const int32_t v = wrap_to_int16(wrap_to_int16(s) + p.output_offset);
    return clamp_to(saturate_to<T>(v), p.act);
}

// AddElementwiseInt8, NEON loop.
template <class T>
inline int32_t tflite_add_neon(int32_t a, int32_t b, const TfliteBinaryParams& p) {
    const int32_t x1 = saturating_rounding_doubling_high_mul(shift_left_or_floor(p.input1_offset + a, p.left_shift + p.input1_shift), p.input1_multiplier);
    const int32_t x2 = saturating_rounding_doubling_high_mul(shift_left_or_floor(p.input2_offset + b, p.left_shift + p.input2_shift), p.input2_multiplier);
    return neon_add_finish<T>(wrap_add(x1, x2), p);
}

// AddScalarBroadcast, NEON loop (a is the broadcast scalar, b the vector).
template <class T>
inline int32_t tflite_add_neon_scalar(int32_t a, int32_t b, const TfliteBinaryParams& p) {
    const int32_t x1 = shift_left_or_floor(saturating_rounding_doubling_high_mul(wrap_shl(p.input1_offset + a, p.left_shift), p.input1_multiplier), p.input1_shift);
    const int32_t x2 = shift_left_or_floor(saturating_rounding_doubling_high_mul(wrap_shl(p.input2_offset + b, p.left_shift), p.input2_multiplier), p.input2_shift);
    return neon_add_finish<T>(wrap_add(x1, x2), p);
}

// reference MulFunc.
inline int32_t tflite_mul_ref(int32_t a, int32_t b, const TfliteBinaryParams& p) {
    const int32_t prod = (p.input1_offset + a) * (p.input2_offset + b);
    return clamp_to(wrap_add(multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift), p.output_offset), p.act);
}

// MulElementwise / MulSimpleBroadcast, NEON loop: vqmovn to int16, + zero point in int16, vqmovn.
template <class T>
inline int32_t tflite_mul_neon(int32_t a, int32_t b, const TfliteBinaryParams& p) {
    const int32_t prod = (p.input1_offset + a) * (p.input2_offset + b);
    const int32_t s = multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift);
    const int32_t v = wrap_to_int16(saturate_to<int16_t>(s) + p.output_offset);
    return clamp_to(saturate_to<T>(v), p.act);
}

// ---- XNNPACK ---------------------------------------------------------------------------------
struct XnnBinaryParams {
    // add: a_multiplier, b_multiplier, bias, shift; mul: scale; both: zero points and the clamp.
    int32_t a_multiplier = 0, b_multiplier = 0, bias = 0, shift = 0;
    float scale = 0.0f;
    int32_t a_zero_point = 0, b_zero_point = 0, output_zero_point = 0;
    Range act{-128, 127};
};

inline float uint32_as_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline uint32_t float_as_uint32(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Whether the XNNPACK delegate takes the op (its scale-range checks).
inline bool xnn_binary_supported(BinaryOp op, Quant in1, Quant in2, Quant out) {
    if (op == BinaryOp::Mul) {
        const float r = in1.scale * in2.scale / out.scale;
        return !(r < 1.0f / 65536.0f || r >= 256.0f);
    }
    const float r1 = in1.scale / out.scale, r2 = in2.scale / out.scale;
    return !(r1 < 1.0f / 1024.0f || r1 >= 256.0f || r2 < 1.0f / 1024.0f || r2 >= 256.0f);
}

inline XnnBinaryParams xnn_binary_params(BinaryOp op, Quant in1, Quant in2, Quant out, Activation act,
                                         int32_t qmin, int32_t qmax) {
    XnnBinaryParams p;
    p.a_zero_point = in1.zero_point;
    p.b_zero_point = in2.zero_point;
    p.output_zero_point = out.zero_point;
    p.act = xnn_activation_range(act, out.scale, out.zero_point, qmin, qmax);
    if (op == BinaryOp::Mul) {
        p.scale = in1.scale * in2.scale / out.scale;  // xnn_init_qs8_mul_minmax_scalar_params
        return p;
    }
    // xnn_init_qs8_add_minmax_scalar_params (SUB: b's scale negated by the operator).
    const float a_out = in1.scale / out.scale;
    const float b_out = (op == BinaryOp::Sub ? -in2.scale : in2.scale) / out.scale;
    const float abs_a = std::fabs(a_out), abs_b = std::fabs(b_out);
    const float max_abs = std::max(abs_a, abs_b);
    const int32_t max_exp = int32_t(float_as_uint32(max_abs) >> 23) - 127;
    const uint32_t shift = uint32_t(20 - max_exp);
    const int32_t abs_am = int32_t(std::nearbyint(uint32_as_float(float_as_uint32(abs_a) + (shift << 23))));
    const int32_t abs_bm = int32_t(std::nearbyint(uint32_as_float(float_as_uint32(abs_b) + (shift << 23))));
    p.a_multiplier = std::signbit(a_out) ? -abs_am : abs_am;
    p.b_multiplier = std::signbit(b_out) ? -abs_bm : abs_bm;
    p.shift = int32_t(shift);
    p.bias = wrap_add(wrap_add(int32_t(1) << (shift - 1), -wrap_mul(p.a_multiplier, in1.zero_point)),
                      -wrap_mul(p.b_multiplier, in2.zero_point));
    return p;
}

template <class T>
inline int32_t xnn_add(int32_t a, int32_t b, const XnnBinaryParams& p) {
    const int32_t acc = wrap_add(wrap_add(p.bias, wrap_mul(a, p.a_multiplier)), wrap_mul(b, p.b_multiplier));
    const int32_t v = saturate_to<int16_t>(saturate_to<int16_t>(acc >> p.shift) + p.output_zero_point);
    return clamp_to(saturate_to<T>(v), p.act);
}

template <class T>
inline int32_t xnn_mul(int32_t a, int32_t b, const XnnBinaryParams& p) {
    const int32_t prod = (a - p.a_zero_point) * (b - p.b_zero_point);
    const float y = float(prod) * p.scale;
    const int32_t r = int32_t(std::nearbyint(y));  // |prod * scale| < 2^24: cvtps_epi32 RNE
    const int32_t v = saturate_to<int16_t>(saturate_to<int16_t>(r) + p.output_zero_point);
    return clamp_to(saturate_to<T>(v), p.act);
}

// ---- broadcasting ----------------------------------------------------------------------------------
constexpr int kMaxBinaryRank = 6;

struct BinaryShapes {
    int rank = 0;  // all three extended to this rank
    std::array<std::ptrdiff_t, kMaxBinaryRank> a{}, b{}, out{};
};

// numpy broadcasting over contiguous a, b: out[idx] = f(a[ia], b[ib]) in row-major output order.
// The innermost run is contiguous in each input or a broadcast scalar, so each run vectorises.
// The same broadcast with adjacent axes merged where each input is either whole or broadcast on
// both (e.g. equal shapes become one axis), so that the innermost runs are as long as possible.
inline BinaryShapes collapse_axes(const BinaryShapes& s) {
    BinaryShapes c;
    for (int d = 0; d < s.rank; ++d) {
        if (s.out[d] == 1) continue;  // size-1 axes change nothing
        const bool ab = s.a[d] == 1, bb = s.b[d] == 1;
        if (c.rank > 0 && (c.a[c.rank - 1] == 1) == ab && (c.b[c.rank - 1] == 1) == bb) {
            c.out[c.rank - 1] *= s.out[d];
            if (!ab) c.a[c.rank - 1] *= s.a[d];
            if (!bb) c.b[c.rank - 1] *= s.b[d];
        } else {
            c.a[c.rank] = s.a[d];
            c.b[c.rank] = s.b[d];
            c.out[c.rank] = s.out[d];
            ++c.rank;
        }
    }
    if (c.rank == 0) {  // a single element
        c.rank = 1;
        c.a[0] = c.b[0] = c.out[0] = 1;
    }
    return c;
}

// Calls run(pa, a_step, pb, b_step, n, po) for each innermost run of the broadcast (steps 0 or 1:
// an input is contiguous along the run or a broadcast scalar), in row-major output order.
template <class T, class Run>
inline void broadcast_runs(const BinaryShapes& shapes, const T* a, const T* b, T* out, Run run) {
    const BinaryShapes s = collapse_axes(shapes);
    std::array<std::ptrdiff_t, kMaxBinaryRank> sa{}, sb{};
    std::ptrdiff_t acc_a = 1, acc_b = 1;
    for (int d = s.rank - 1; d >= 0; --d) {
        sa[d] = s.a[d] == 1 ? 0 : acc_a;
        sb[d] = s.b[d] == 1 ? 0 : acc_b;
        acc_a *= s.a[d];
        acc_b *= s.b[d];
    }
    std::ptrdiff_t total = 1;
    for (int d = 0; d < s.rank; ++d) total *= s.out[d];
    if (total == 0) return;
    const int last = s.rank - 1;
    const std::ptrdiff_t inner = s.out[last];
    std::array<std::ptrdiff_t, kMaxBinaryRank> idx{};
    for (std::ptrdiff_t o = 0; o < total; o += inner) {
        std::ptrdiff_t oa = 0, ob = 0;
        for (int d = 0; d < last; ++d) {
            oa += idx[d] * sa[d];
            ob += idx[d] * sb[d];
        }
        run(a + oa, int(sa[last]), b + ob, int(sb[last]), inner, out + o);
        for (int d = last - 1; d >= 0; --d) {
            if (++idx[d] < s.out[d]) break;
            idx[d] = 0;
        }
    }
}

// out = f(a, b) element by element under numpy broadcasting, each run a vectorisable loop.
template <class T, class F>
inline void broadcast_apply(bool avx2, const BinaryShapes& shapes, const T* a, const T* b, T* out, F f) {
    broadcast_runs(shapes, a, b, out, [&](const T* pa, int as, const T* pb, int bs, std::ptrdiff_t n, T* po) {
        if (as && bs) for_range(avx2, 0, n, [=](std::ptrdiff_t i) { po[i] = T(f(pa[i], pb[i])); });
        else if (as) for_range(avx2, 0, n, [=, vb = int32_t(*pb)](std::ptrdiff_t i) { po[i] = T(f(pa[i], vb)); });
        else if (bs) for_range(avx2, 0, n, [=, va = int32_t(*pa)](std::ptrdiff_t i) { po[i] = T(f(va, pb[i])); });
        else for (std::ptrdiff_t i = 0; i < n; ++i) po[i] = T(f(*pa, *pb));
    });
}

// XNNPACK's qs8 vadd / vmul microkernels on 16 int8 lanes at a time with AVX2, in the kernels' own
// order of operations (int32 products and shift, or float scaling with cvtps; then packs to int16
// with saturation, a saturating + zero point, packs to int8, the clamp); a step of 0 broadcasts an
// input's first value. The scalar xnn_add / xnn_mul are the definition and handle the tail.
struct XnnAvx2Consts {
    __m256i va_m, vb_m, vbias, vaz, vbz;
    __m128i vshift;
    __m256 vscale;
};

__attribute__((target("avx2"))) inline __m256i xnn_load8_avx2(const int8_t* x, int step, std::ptrdiff_t i) {
    return step ? _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))) : _mm256_set1_epi32(*x);
}

// Eight int32 results before the output zero point: (bias + a m_a + b m_b) >> shift, or
// RNE(float((a - z_a)(b - z_b)) * scale).
__attribute__((target("avx2"))) inline __m256i xnn_acc8_avx2(bool mul, const XnnAvx2Consts& c, const int8_t* a, int as,
                                                               const int8_t* b, int bs, std::ptrdiff_t i) {
    const __m256i va = xnn_load8_avx2(a, as, i), vb = xnn_load8_avx2(b, bs, i);
    if (mul) {
        const __m256i prod = _mm256_mullo_epi32(_mm256_sub_epi32(va, c.vaz), _mm256_sub_epi32(vb, c.vbz));
        return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(prod), c.vscale));
    }
    const __m256i acc = _mm256_add_epi32(_mm256_add_epi32(c.vbias, _mm256_mullo_epi32(va, c.va_m)), _mm256_mullo_epi32(vb, c.vb_m));
    return _mm256_sra_epi32(acc, c.vshift);
}

__attribute__((target("avx2"))) inline void xnn_binary_avx2(bool mul, const XnnBinaryParams& p, const int8_t* a, int as,
                                                              const int8_t* b, int bs, std::ptrdiff_t n, int8_t* out) {
    XnnAvx2Consts c;
    c.va_m = _mm256_set1_epi32(p.a_multiplier);
    c.vb_m = _mm256_set1_epi32(p.b_multiplier);
    c.vbias = _mm256_set1_epi32(p.bias);
    c.vaz = _mm256_set1_epi32(p.a_zero_point);
    c.vbz = _mm256_set1_epi32(p.b_zero_point);
    c.vshift = _mm_cvtsi32_si128(p.shift);
    c.vscale = _mm256_set1_ps(p.scale);
    const __m256i vzo = _mm256_set1_epi16(int16_t(p.output_zero_point));
    const __m128i vlo = _mm_set1_epi8(int8_t(p.act.lo)), vhi = _mm_set1_epi8(int8_t(p.act.hi));
    std::ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i lo8 = xnn_acc8_avx2(mul, c, a, as, b, bs, i), hi8 = xnn_acc8_avx2(mul, c, a, as, b, bs, i + 8);
        // packs works within 128-bit halves: [lo 0-3, hi 0-3, lo 4-7, hi 4-7], reordered below.
        const __m256i v16 = _mm256_adds_epi16(_mm256_packs_epi32(lo8, hi8), vzo);
        __m128i v8 = _mm_packs_epi16(_mm256_castsi256_si128(v16), _mm256_extracti128_si256(v16, 1));
        v8 = _mm_shuffle_epi32(v8, _MM_SHUFFLE(3, 1, 2, 0));
        v8 = _mm_min_epi8(_mm_max_epi8(v8, vlo), vhi);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), v8);
    }
    for (; i < n; ++i) {
        const int32_t x = as ? a[i] : *a, y = bs ? b[i] : *b;
        out[i] = int8_t(mul ? xnn_mul<int8_t>(x, y, p) : xnn_add<int8_t>(x, y, p));
    }
}

// ProcessBroadcastShapes (reference/process_broadcast_shapes.h): the category and the fivefold
// shape y0..y4 of the optimized broadcast loops.
enum class BroadcastCategory { NonBroadcast, FirstInputBroadcastsFast, SecondInputBroadcastsFast, Generic };

struct FiveFold {
    BroadcastCategory category = BroadcastCategory::NonBroadcast;
    std::array<std::ptrdiff_t, 5> y{1, 1, 1, 1, 1};
};

inline FiveFold process_broadcast_shapes(const BinaryShapes& s) {
    FiveFold f;
    if (s.a == s.b) return f;  // exact match (shapes extended to the same rank)
    f.category = BroadcastCategory::Generic;
    for (int i = s.rank - 1; i >= 0; --i) {
        if (s.a[i] == s.b[i]) continue;
        if (s.a[i] == 1) { f.category = BroadcastCategory::FirstInputBroadcastsFast; break; }
        if (s.b[i] == 1) { f.category = BroadcastCategory::SecondInputBroadcastsFast; break; }
        return f;  // generic
    }
    if (f.category == BroadcastCategory::Generic) return f;
    const bool swap = f.category == BroadcastCategory::SecondInputBroadcastsFast;
    const auto& A = swap ? s.b : s.a;
    const auto& B = swap ? s.a : s.b;
    int i = s.rank - 1;
    while (i >= 0 && A[i] == B[i]) f.y[4] *= B[i--];
    while (i >= 0 && A[i] == 1) f.y[3] *= B[i--];
    while (i >= 0 && A[i] == B[i]) f.y[2] *= A[i--];
    while (i >= 0 && B[i] == 1) f.y[1] *= A[i--];
    while (i >= 0 && A[i] == B[i]) f.y[0] *= B[i--];
    if (i >= 0) f.category = BroadcastCategory::Generic;
    return f;
}

// BinaryBroadcastFiveFold (optimized_ops.h): `elementwise(n, x1, x2, out)` on runs of y4 elements
// (x1 from the fast-broadcasting input), or `scalar(n, x1_value, x2, out)` when y4 == 1. The
// element order of the callbacks' arguments: x1 is always the input that broadcasts fast.
template <class T, class Elementwise, class Scalar>
inline void binary_broadcast_fivefold(const FiveFold& f, const T* in1, const T* in2, T* out, Elementwise elementwise,
                                      Scalar scalar) {
    const bool unswitched = f.category == BroadcastCategory::FirstInputBroadcastsFast;
    const T* x1 = unswitched ? in1 : in2;
    const T* x2_reset = unswitched ? in2 : in1;
    const auto [y0, y1, y2, y3, y4] = f.y;
    T* o = out;
    for (std::ptrdiff_t i0 = 0; i0 < y0; ++i0) {
        const T* x2 = nullptr;
        for (std::ptrdiff_t i1 = 0; i1 < y1; ++i1) {
            x2 = x2_reset;
            for (std::ptrdiff_t i2 = 0; i2 < y2; ++i2) {
                if (y4 > 1) {
                    for (std::ptrdiff_t i3 = 0; i3 < y3; ++i3) {
                        elementwise(y4, x1, x2, o);
                        x2 += y4;
                        o += y4;
                    }
                    x1 += y4;
                } else {
                    scalar(y3, *x1, x2, o);
                    x2 += y3;
                    o += y3;
                    x1 += 1;
                }
            }
        }
        x2_reset = x2;
    }
}

// ---- one op, one resolver ------------------------------------------------------------------------
struct BinaryArgs {
    BinaryOp op;
    Resolver resolver;
    Quant in1, in2, out;
    Activation act;
};

// Whether `resolver` runs this op in XNNPACK (otherwise Xnnpack falls back to the optimized kernels).
inline bool runs_in_xnnpack(const BinaryArgs& a) {
    return a.resolver == Resolver::Xnnpack && xnn_binary_supported(a.op, a.in1, a.in2, a.out);
}

template <class T>
inline void binary_op(const BinaryArgs& args, const BinaryShapes& shapes, const T* a, const T* b, T* out, bool avx2) {
    constexpr int32_t qmin = std::numeric_limits<T>::min(), qmax = std::numeric_limits<T>::max();
    if (runs_in_xnnpack(args)) {
        const XnnBinaryParams p = xnn_binary_params(args.op, args.in1, args.in2, args.out, args.act, qmin, qmax);
        const bool mul = args.op == BinaryOp::Mul;
        if constexpr (std::is_same<T, int8_t>::value) {
            if (avx2) {
                broadcast_runs(shapes, a, b, out, [&](const T* pa, int as, const T* pb, int bs, std::ptrdiff_t n, T* po) {
                    xnn_binary_avx2(mul, p, pa, as, pb, bs, n, po);
                });
                return;
            }
        }
        if (mul) broadcast_apply(avx2, shapes, a, b, out, [p](int32_t x, int32_t y) { return xnn_mul<T>(x, y, p); });
        else broadcast_apply(avx2, shapes, a, b, out, [p](int32_t x, int32_t y) { return xnn_add<T>(x, y, p); });
        return;
    }
    const TfliteBinaryParams p = tflite_binary_params(args.op, args.in1, args.in2, args.out, args.act, qmin, qmax);
    const bool sub = args.op == BinaryOp::Sub, mul = args.op == BinaryOp::Mul;
    auto reference = [&](const T* x, const T* y, T* o) {
        if (mul) broadcast_apply(avx2, shapes, x, y, o, [p](int32_t u, int32_t v) { return tflite_mul_ref(u, v, p); });
        else if (sub) broadcast_apply(avx2, shapes, x, y, o, [p](int32_t u, int32_t v) { return tflite_add_ref(u, v, p, true); });
        else broadcast_apply(avx2, shapes, x, y, o, [p](int32_t u, int32_t v) { return tflite_add_ref(u, v, p, false); });
    };
    // SUB has no optimized int8 kernel (sub.cc runs reference_ops::Sub / BroadcastQuantSubSlow).
    if (args.resolver == Resolver::Reference || sub) return reference(a, b, out);
    const FiveFold f = process_broadcast_shapes(shapes);
    if (f.category == BroadcastCategory::Generic) return reference(a, b, out);

    // The fast-broadcasting input is "input 1" of the NEON loops: swap the parameters with the data.
    TfliteBinaryParams q = p;
    if (f.category == BroadcastCategory::SecondInputBroadcastsFast) {
        std::swap(q.input1_offset, q.input2_offset);
        std::swap(q.input1_multiplier, q.input2_multiplier);
        std::swap(q.input1_shift, q.input2_shift);
    }
    // One run of n elements: the NEON loop on whole blocks of 16, the scalar (reference) formula after.
    auto elementwise = [&](std::ptrdiff_t n, const T* x1, const T* x2, T* o) {
        const std::ptrdiff_t vec = n / 16 * 16;
        if (mul) {
            for_range(avx2, 0, vec, [=](std::ptrdiff_t i) { o[i] = T(tflite_mul_neon<T>(x1[i], x2[i], q)); });
            for_range(avx2, vec, n, [=](std::ptrdiff_t i) { o[i] = T(tflite_mul_ref(x1[i], x2[i], q)); });
        } else {
            for_range(avx2, 0, vec, [=](std::ptrdiff_t i) { o[i] = T(tflite_add_neon<T>(x1[i], x2[i], q)); });
            for_range(avx2, vec, n, [=](std::ptrdiff_t i) { o[i] = T(tflite_add_ref(x1[i], x2[i], q, false)); });
        }
    };
    // A broadcast scalar against a run: AddScalarBroadcast takes 8 at a time, MulSimpleBroadcast 16.
    auto scalar = [&](std::ptrdiff_t n, T s, const T* x2, T* o) {
        const int32_t sv = s;
        if (mul) {
            const std::ptrdiff_t vec = n / 16 * 16;
            for_range(avx2, 0, vec, [=](std::ptrdiff_t i) { o[i] = T(tflite_mul_neon<T>(sv, x2[i], q)); });
            for_range(avx2, vec, n, [=](std::ptrdiff_t i) { o[i] = T(tflite_mul_ref(sv, x2[i], q)); });
        } else {
            const std::ptrdiff_t vec = n / 8 * 8;
            for_range(avx2, 0, vec, [=](std::ptrdiff_t i) { o[i] = T(tflite_add_neon_scalar<T>(sv, x2[i], q)); });
            for_range(avx2, vec, n, [=](std::ptrdiff_t i) { o[i] = T(tflite_add_ref(sv, x2[i], q, false)); });
        }
    };
    if (f.category == BroadcastCategory::NonBroadcast) {
        std::ptrdiff_t n = 1;
        for (int d = 0; d < shapes.rank; ++d) n *= shapes.out[d];
        return elementwise(n, a, b, out);
    }
    binary_broadcast_fivefold(f, a, b, out, elementwise, scalar);
}

}  // namespace litert
}  // namespace fxp
