// QuantizeLinear and DequantizeLinear as ONNX Runtime's CPU kernels compute them (float32 <-> u8/s8/int32,
// per tensor or per axis).
//
//   QuantizeLinear   q = cvtps(min(max(x / scale, lo - zp), hi - zp)) + zp
//       MLAS MlasQuantizeLinear (onnxruntime/core/mlas/lib/quantize.cpp, MlasQuantizeLinearKernel), called
//       per block by quantize_linear.cc (ParQuantizeLinearStd). A true division (DIVPS), then the clamp
//       to the output range less the zero point in float (MAXPS/MINPS: NaN becomes lo - zp), then
//       CVTPS2DQ (round to nearest even). The 4-wide vector loop and its scalar tail do the same steps.
//   DequantizeLinear y = float(int32(x) - zp) * scale
//       quantize_linear.cc DequantizeLinearApply (int32 subtraction, CVTDQ2PS, one multiply).
#pragma once

#include <cstdint>
#include <limits>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

// The float value QuantizeLinear rounds: x / scale clamped to [lo - zp, hi - zp].
template <class V>
FXP_ORT_LANE V quantize_linear_clamped(V x, V scale, V lo_less_zp, V hi_less_zp) {
    return min_ps(max_ps(div(x, scale), lo_less_zp), hi_less_zp);
}

template <class Q>
struct QuantizeLinearParams {
    float scale;
    int32_t zp;
    float lo, hi;   // output range less the zero point
    explicit QuantizeLinearParams(float s, int32_t z)
        : scale(s), zp(z), lo(float(int32_t(std::numeric_limits<Q>::min()) - z)),
          hi(float(int32_t(std::numeric_limits<Q>::max()) - z)) {}
};

template <class Q>
FXP_ORT_LANE Q quantize_linear_value(float x, const QuantizeLinearParams<Q>& p) {
    return Q(cvtps_epi32(quantize_linear_clamped(x, p.scale, p.lo, p.hi)) + p.zp);
}

template <class Q>
void quantize_linear_run_portable(const float* x, Q* y, std::ptrdiff_t n, const QuantizeLinearParams<Q>& p) {
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = quantize_linear_value(x[i], p);
}

template <class Q>
FXP_ORT_AVX2 void quantize_linear_run_avx2(const float* x, Q* y, std::ptrdiff_t n, const QuantizeLinearParams<Q>& p) {
    const __m256 s = _mm256_set1_ps(p.scale), lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
    const __m256i zp = _mm256_set1_epi32(p.zp);
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i q = _mm256_add_epi32(cvtps_epi32(quantize_linear_clamped(load8(x + i), s, lo, hi)), zp);
        store8_packed(y + i, q);   // in range after the clamp: the packs do not saturate
    }
    for (; i < n; ++i) y[i] = quantize_linear_value(x[i], p);
}

// x viewed as [outer, channels, inner]; scale and zero point per channel (channels == 1: per tensor).
template <class Q>
void quantize_linear(const float* x, Q* y, std::ptrdiff_t outer, std::ptrdiff_t channels, std::ptrdiff_t inner,
                     const float* scale, const Q* zero_point, Isa isa) {
    for (std::ptrdiff_t o = 0; o < outer; ++o)
        for (std::ptrdiff_t c = 0; c < channels; ++c) {
            const QuantizeLinearParams<Q> p(scale[c], zero_point ? int32_t(zero_point[c]) : 0);
            const std::ptrdiff_t off = (o * channels + c) * inner;
            if (isa == Isa::Avx2) quantize_linear_run_avx2(x + off, y + off, inner, p);
            else quantize_linear_run_portable(x + off, y + off, inner, p);
        }
}

// ---- DequantizeLinear -------------------------------------------------------------------------------

template <class T>
FXP_ORT_LANE float dequantize_linear_value(T x, int32_t zp, float scale) {
    // int32 subtraction (wraps for int32 inputs, as the C++ loop compiled for x86 does)
    return mul(to_float(int32_t(uint32_t(int32_t(x)) - uint32_t(zp))), scale);
}

template <class T>
void dequantize_linear_run_portable(const T* x, float* y, std::ptrdiff_t n, int32_t zp, float scale) {
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = dequantize_linear_value(x[i], zp, scale);
}

template <class T>
FXP_ORT_AVX2 void dequantize_linear_run_avx2(const T* x, float* y, std::ptrdiff_t n, int32_t zp, float scale) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zp);
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v;
        if constexpr (sizeof(T) == 1) v = load8_epi32(x + i);
        else v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
        store8(y + i, mul(to_float(_mm256_sub_epi32(v, z)), s));
    }
    for (; i < n; ++i) y[i] = dequantize_linear_value(x[i], zp, scale);
}

template <class T>
void dequantize_linear(const T* x, float* y, std::ptrdiff_t outer, std::ptrdiff_t channels, std::ptrdiff_t inner,
                       const float* scale, const T* zero_point, Isa isa) {
    for (std::ptrdiff_t o = 0; o < outer; ++o)
        for (std::ptrdiff_t c = 0; c < channels; ++c) {
            const int32_t zp = zero_point ? int32_t(zero_point[c]) : 0;
            const std::ptrdiff_t off = (o * channels + c) * inner;
            if (isa == Isa::Avx2) dequantize_linear_run_avx2(x + off, y + off, inner, zp, scale[c]);
            else dequantize_linear_run_portable(x + off, y + off, inner, zp, scale[c]);
        }
}

}  // namespace fxp::ort
