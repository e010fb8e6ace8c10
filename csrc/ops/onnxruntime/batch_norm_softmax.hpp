// Float32 BatchNormalization (inference) and Softmax as ONNX Runtime's CPU kernels compute them.
//
// BatchNormalization (core/providers/cpu/nn/batch_norm.h, Eigen arrays, compiled without FMA):
//     inv_std   = 1 / sqrt(var + epsilon)
//     new_scale = inv_std * scale
//     new_bias  = bias - mean * new_scale
//     y         = x * new_scale + new_bias          (a multiply and an add: two roundings)
//
// Softmax (core/providers/cpu/math/softmax.cc -> MLAS MlasComputeSoftmax, compute.cpp), per row of D:
//     max (any order), e_i = exp(x_i - max) by the FMA3 sum-exp kernel (mlas_transcendental.hpp),
//     sum accumulated in 8 lanes (lane l takes i = l, l + 8, ... in order; the masked last vector adds
//     +0), reduced as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)),
//     y_i = e_i * (1 / sum).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/onnxruntime/lanes.hpp"
#include "ops/onnxruntime/mlas_transcendental.hpp"

namespace fxp::ort {

struct BatchNormCoefficients {
    float scale, bias;
};

inline BatchNormCoefficients batch_norm_coefficients(float scale, float bias, float mean, float var, float epsilon) {
    const float inv_std = 1.0f / std::sqrt(var + epsilon);
    const float s = inv_std * scale;
    return {s, sub(bias, mul(mean, s))};
}

template <class V>
FXP_ORT_LANE V batch_norm_lane(V x, V scale, V bias) { return add(mul(x, scale), bias); }

inline void batch_norm_plane_portable(const float* x, float* y, std::ptrdiff_t n, BatchNormCoefficients k) {
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = batch_norm_lane(x[i], k.scale, k.bias);
}

FXP_ORT_AVX2 inline void batch_norm_plane_avx2(const float* x, float* y, std::ptrdiff_t n, BatchNormCoefficients k) {
    const __m256 s = _mm256_set1_ps(k.scale), b = _mm256_set1_ps(k.bias);
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, batch_norm_lane(load8(x + i), s, b));
    for (; i < n; ++i) y[i] = batch_norm_lane(x[i], k.scale, k.bias);
}

// x, y: [batch, channels, plane]
inline void batch_norm(const float* x, float* y, std::ptrdiff_t batch, std::ptrdiff_t channels, std::ptrdiff_t plane,
                       const float* scale, const float* bias, const float* mean, const float* var, float epsilon, Isa isa) {
    for (std::ptrdiff_t c = 0; c < channels; ++c) {
        const BatchNormCoefficients k = batch_norm_coefficients(scale[c], bias[c], mean[c], var[c], epsilon);
        for (std::ptrdiff_t n = 0; n < batch; ++n) {
            const std::ptrdiff_t off = (n * channels + c) * plane;
            if (isa == Isa::Avx2) batch_norm_plane_avx2(x + off, y + off, plane, k);
            else batch_norm_plane_portable(x + off, y + off, plane, k);
        }
    }
}

// ---- Softmax ------------------------------------------------------------------------------------------

inline float softmax_lane_sum(const float* l) {
    return add(add(add(l[0], l[1]), add(l[2], l[3])), add(add(l[4], l[5]), add(l[6], l[7])));
}

inline void softmax_row_portable(const float* x, float* y, std::ptrdiff_t d) {
    float mx = std::numeric_limits<float>::lowest();
    for (std::ptrdiff_t i = 0; i < d; ++i) mx = max_ps(mx, x[i]);
    const float neg_max = -mx;
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (std::ptrdiff_t i0 = 0; i0 < d; i0 += 8)
        for (int j = 0; j < 8; ++j) {
            if (i0 + j < d) {
                y[i0 + j] = sum_exp_lane(x[i0 + j], neg_max);
                l[j] = add(l[j], y[i0 + j]);
            } else {
                l[j] = add(l[j], 0.0f);
            }
        }
    const float scale = 1.0f / softmax_lane_sum(l);
    for (std::ptrdiff_t i = 0; i < d; ++i) y[i] = mul(y[i], scale);
}

FXP_ORT_AVX2 inline void softmax_row_avx2(const float* x, float* y, std::ptrdiff_t d) {
    // the maximum (any order gives the same value for numbers)
    __m256 vm = _mm256_set1_ps(std::numeric_limits<float>::lowest());
    std::ptrdiff_t i = 0;
    for (; i + 8 <= d; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vm);
    float mx = lanes[0];
    for (int j = 1; j < 8; ++j) mx = max_ps(mx, lanes[j]);
    for (; i < d; ++i) mx = max_ps(mx, x[i]);
    const __m256 neg_max = _mm256_set1_ps(-mx);
    __m256 acc = _mm256_setzero_ps();
    i = 0;
    for (; i + 8 <= d; i += 8) {
        const __m256 e = sum_exp_lane(load8(x + i), neg_max);
        store8(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    alignas(32) float l[8];
    _mm256_store_ps(l, acc);
    if (i < d)   // the masked last vector: idle lanes add +0
        for (int j = 0; j < 8; ++j) {
            if (i + j < d) {
                y[i + j] = sum_exp_lane(x[i + j], -mx);
                l[j] = add(l[j], y[i + j]);
            } else {
                l[j] = add(l[j], 0.0f);
            }
        }
    const float s = 1.0f / softmax_lane_sum(l);
    const __m256 scale = _mm256_set1_ps(s);
    std::ptrdiff_t k = 0;
    for (; k + 8 <= d; k += 8) store8(y + k, _mm256_mul_ps(load8(y + k), scale));
    for (; k < d; ++k) y[k] = mul(y[k], s);
}

// rows of d contiguous values
inline void mlas_softmax(const float* x, float* y, std::ptrdiff_t rows, std::ptrdiff_t d, Isa isa) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
        if (isa == Isa::Avx2) softmax_row_avx2(x + r * d, y + r * d, d);
        else softmax_row_portable(x + r * d, y + r * d, d);
    }
}

}  // namespace fxp::ort
