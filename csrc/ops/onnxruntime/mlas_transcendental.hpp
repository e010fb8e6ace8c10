// The float32 transcendental kernels of MLAS as they run on x86 with AVX2 + FMA3 (ONNX Runtime's Sigmoid,
// Tanh and Softmax, and the tables of QLinearSigmoid): the same constants, the same operations, the same
// order; every multiply-add below is one vfmadd of the assembly kernel.
//
//   logistic  x86_64/LogisticKernelFma3.S (MlasLogisticKernelFma3), constants MlasLogisticConstants of
//             logistic.cpp: clamp to [-18, 18], p = x * odd polynomial, q = even polynomial,
//             max(0, p / q + 0.5) (the FMA3 kernel has no upper clamp to 1, unlike the C fallback).
//   tanh      x86_64/TanhKernelFma3.S (MlasTanhKernelFma3), constants MlasTanhConstants of tanh.cpp
//             (the Eigen rational approximation): clamp to [-9, 9], p / q.
//   sum-exp   x86_64/TransKernelFma3.S (MlasComputeSumExpF32KernelFma3), constants MlasExpConstants of
//             compute.cpp: exp(x - max) with a degree-6 polynomial and a 2^m scale.
//
// Each *_lane function is a template over the lane type of lanes.hpp (float or __m256).
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

struct LogisticConstants {
    static constexpr float lower = -18.0f, upper = 18.0f;
    static constexpr float a9 = 4.37031012579801e-11f, a7 = 1.15627324459942e-07f, a5 = 6.08574864600143e-05f,
                           a3 = 8.51377133304701e-03f, a1 = 2.48287947061529e-01f;
    static constexpr float b10 = 6.10247389755681e-13f, b8 = 5.76102136993427e-09f, b6 = 6.29106785017040e-06f,
                           b4 = 1.70198817374094e-03f, b2 = 1.16817656904453e-01f, b0 = 9.93151921023180e-01f;
};

template <class V>
FXP_ORT_LANE V logistic_lane(V x) {
    using C = LogisticConstants;
    const V z = splat(0.0f, x);
    x = min_ps(splat(C::upper, x), max_ps(splat(C::lower, x), x));   // NaN stays NaN
    const V x2 = mul(x, x);
    V p = fmadd(x2, splat(C::a9, x), splat(C::a7, x));
    p = fmadd(x2, p, splat(C::a5, x));
    p = fmadd(x2, p, splat(C::a3, x));
    p = fmadd(x2, p, splat(C::a1, x));
    V q = fmadd(x2, splat(C::b10, x), splat(C::b8, x));
    q = fmadd(x2, q, splat(C::b6, x));
    q = fmadd(x2, q, splat(C::b4, x));
    q = fmadd(x2, q, splat(C::b2, x));
    q = fmadd(x2, q, splat(C::b0, x));
    p = mul(x, p);
    return max_ps(z, add(div(p, q), splat(0.5f, x)));
}

struct TanhConstants {
    static constexpr float lower = -9.0f, upper = 9.0f;
    static constexpr float a13 = -2.76076847742355e-16f, a11 = 2.00018790482477e-13f, a9 = -8.60467152213735e-11f,
                           a7 = 5.12229709037114e-08f, a5 = 1.48572235717979e-05f, a3 = 6.37261928875436e-04f,
                           a1 = 4.89352455891786e-03f;
    static constexpr float b6 = 1.19825839466702e-06f, b4 = 1.18534705686654e-04f, b2 = 2.26843463243900e-03f,
                           b0 = 4.89352518554385e-03f;
};

template <class V>
FXP_ORT_LANE V tanh_lane(V x) {
    using C = TanhConstants;
    x = min_ps(splat(C::upper, x), max_ps(splat(C::lower, x), x));
    const V x2 = mul(x, x);
    V p = fmadd(x2, splat(C::a13, x), splat(C::a11, x));
    p = fmadd(p, x2, splat(C::a9, x));
    p = fmadd(p, x2, splat(C::a7, x));
    p = fmadd(p, x2, splat(C::a5, x));
    p = fmadd(p, x2, splat(C::a3, x));
    p = fmadd(p, x2, splat(C::a1, x));
    p = mul(p, x);
    V q = fmadd(x2, splat(C::b6, x), splat(C::b4, x));
    q = fmadd(q, x2, splat(C::b2, x));
    q = fmadd(q, x2, splat(C::b0, x));
    return div(p, q);
}

// ---- exp of the softmax kernels ---------------------------------------------------------------------

struct ExpConstants {
    static constexpr float lower_sum_exp = -88.3762626647949f;
    static constexpr float rounding_bias = 12582912.0f;   // MLAS_ROUNDING_BIAS_MAGIC, 1.5 * 2^23
    static constexpr float log2_reciprocal = 1.44269504088896341f;
    static constexpr float log2_high = -6.93145752e-1f, log2_low = -1.42860677e-6f;
    static constexpr float p0 = 0x1.694000p-10f, p1 = 0x1.125edcp-7f, p2 = 0x1.555b5ap-5f, p3 = 0x1.555450p-3f,
                           p4 = 0x1.fffff6p-2f, p56 = 0x1.000000p+0f;
    static constexpr int32_t maximum_exponent = 0x3F800000;
};

// exp(x + neg_max) as MlasComputeSumExpF32KernelFma3 computes each element (biased input clamped below
// at -88.376; the scale 2^m built in the exponent field of the rounding-biased value).
FXP_ORT_LANE float sum_exp_scale(float biased) {
    uint32_t b;
    std::memcpy(&b, &biased, 4);
    const uint32_t s = (b << 23) + uint32_t(ExpConstants::maximum_exponent);
    float f;
    std::memcpy(&f, &s, 4);
    return f;
}
FXP_ORT_LANE_AVX2 __m256 sum_exp_scale(__m256 biased) {
    const __m256i s = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(biased), 23),
                                       _mm256_set1_epi32(ExpConstants::maximum_exponent));
    return _mm256_castsi256_ps(s);
}

template <class V>
FXP_ORT_LANE V sum_exp_lane(V x, V neg_max) {
    using C = ExpConstants;
    x = max_ps(splat(C::lower_sum_exp, x), add(neg_max, x));
    const V bias = splat(C::rounding_bias, x);
    const V biased = fmadd(x, splat(C::log2_reciprocal, x), bias);
    const V m = sub(biased, bias);
    x = fmadd(m, splat(C::log2_high, x), x);
    x = fmadd(m, splat(C::log2_low, x), x);
    V p = fmadd(splat(C::p0, x), x, splat(C::p1, x));
    p = fmadd(p, x, splat(C::p2, x));
    p = fmadd(p, x, splat(C::p3, x));
    p = fmadd(p, x, splat(C::p4, x));
    p = fmadd(p, x, splat(C::p56, x));
    p = fmadd(p, x, splat(C::p56, x));
    return mul(p, sum_exp_scale(biased));
}

// ---- whole-buffer forms ------------------------------------------------------------------------------

enum class Unary : int { Logistic = 0, Tanh = 1 };

template <Unary F, class V>
FXP_ORT_LANE V unary_lane(V x) {
    if constexpr (F == Unary::Logistic) return logistic_lane(x);
    else return tanh_lane(x);
}

template <Unary F>
void unary_portable(const float* x, float* y, std::ptrdiff_t n) {
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = unary_lane<F>(x[i]);
}

template <Unary F>
FXP_ORT_AVX2 void unary_avx2(const float* x, float* y, std::ptrdiff_t n) {
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, unary_lane<F>(load8(x + i)));
    for (; i < n; ++i) y[i] = unary_lane<F>(x[i]);
}

// MlasComputeLogistic / MlasComputeTanh (ONNX Sigmoid / Tanh on float32).
inline void mlas_unary(Unary f, const float* x, float* y, std::ptrdiff_t n, Isa isa) {
    if (f == Unary::Logistic) {
        if (isa == Isa::Avx2) unary_avx2<Unary::Logistic>(x, y, n);
        else unary_portable<Unary::Logistic>(x, y, n);
    } else {
        if (isa == Isa::Avx2) unary_avx2<Unary::Tanh>(x, y, n);
        else unary_portable<Unary::Tanh>(x, y, n);
    }
}

}  // namespace fxp::ort
