// The float32 clamps of ONNX Runtime's CPU activations, with ORT's NaN and signed-zero behaviour
// (core/providers/cpu/activation/activations.h, math/clip.cc; Eigen arrays on SSE):
//     Relu       max(0, x) as MAXPS(0, x): x when equal or NaN, so -0 and NaN pass through
//     Clip       min(hi, max(lo, x)) with the same operand order: NaN and -0 pass through
//     LeakyRelu  x >= 0 ? x : alpha * x
#pragma once

#include <cstdint>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

enum class Activation : int { Relu = 0, Clip = 1, LeakyRelu = 2 };

struct ActivationParams {
    Activation kind = Activation::Relu;
    float lo = 0.0f, hi = 0.0f, alpha = 0.0f;
};

template <class V>
FXP_ORT_LANE V relu_lane(V x) { return max_ps(splat(0.0f, x), x); }
template <class V>
FXP_ORT_LANE V clip_lane(V x, V lo, V hi) { return min_ps(hi, max_ps(lo, x)); }

FXP_ORT_LANE float leaky_relu_lane(float x, float alpha) { return x >= 0.0f ? x : mul(alpha, x); }
FXP_ORT_LANE_AVX2 __m256 leaky_relu_lane(__m256 x, __m256 alpha) {
    const __m256 keep = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_blendv_ps(_mm256_mul_ps(alpha, x), x, keep);
}

template <class V>
FXP_ORT_LANE V activation_lane(V x, const ActivationParams& p) {
    switch (p.kind) {
        case Activation::Relu: return relu_lane(x);
        case Activation::Clip: return clip_lane(x, splat(p.lo, x), splat(p.hi, x));
        default: return leaky_relu_lane(x, splat(p.alpha, x));
    }
}

inline void activation_portable(const float* x, float* y, std::ptrdiff_t n, const ActivationParams& p) {
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = activation_lane(x[i], p);
}

FXP_ORT_AVX2 inline void activation_avx2(const float* x, float* y, std::ptrdiff_t n, const ActivationParams& p) {
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, activation_lane(load8(x + i), p));
    for (; i < n; ++i) y[i] = activation_lane(x[i], p);
}

inline void float_activation(const float* x, float* y, std::ptrdiff_t n, const ActivationParams& p, Isa isa) {
    if (isa == Isa::Avx2) activation_avx2(x, y, n, p);
    else activation_portable(x, y, n, p);
}

}  // namespace fxp::ort
