// The x86 instructions ONNX Runtime's MLAS kernels round and saturate with, written once for two lane
// types: a scalar float / int32_t (the portable path) and an AVX2 register of 8 (__m256 / __m256i).
// Every formula of csrc/ops/onnxruntime/*.hpp is a template over the lane type built from these, so
// the portable and the AVX2 path compute the same bits: each helper is one IEEE operation (or the
// documented x86 result of a conversion) in both forms.
//
// The extension is compiled with -ffp-contract=off: a * b + c is two roundings unless a formula asks
// for fmadd (the single rounding of FMA3's vfmadd, std::fmaf in the portable path).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#define FXP_ORT_AVX2 __attribute__((target("avx2,fma")))
#define FXP_ORT_LANE __attribute__((always_inline)) inline
#define FXP_ORT_LANE_AVX2 __attribute__((target("avx2,fma"))) inline

namespace fxp::ort {

// The code path a call runs: chosen by the caller (fixedpoint.kernels.get_kernel_path()), never by
// probing the CPU here. Results are identical on both.
enum class Isa : int { Portable = 0, Avx2 = 1 };

inline Isa isa_of(int code) {
    if (code != 0 && code != 1) throw std::invalid_argument("isa must be 0 (portable) or 1 (avx2), got " + std::to_string(code));
    return Isa(code);
}

// ---- scalar lanes ---------------------------------------------------------------------------------

FXP_ORT_LANE float fmadd(float a, float b, float c) { return std::fma(a, b, c); }
FXP_ORT_LANE float add(float a, float b) { return a + b; }
FXP_ORT_LANE float sub(float a, float b) { return a - b; }
FXP_ORT_LANE float mul(float a, float b) { return a * b; }
FXP_ORT_LANE float div(float a, float b) { return a / b; }
// MAXPS / MINPS: the second operand when either is NaN (or both are zeros of either sign).
FXP_ORT_LANE float max_ps(float a, float b) { return a > b ? a : b; }
FXP_ORT_LANE float min_ps(float a, float b) { return a < b ? a : b; }
FXP_ORT_LANE float to_float(int32_t v) { return float(v); }   // CVTDQ2PS: round to nearest even

// CVTPS2DQ under the default MXCSR: round to nearest, ties to even; NaN and values outside int32 give
// the "integer indefinite" 0x80000000.
FXP_ORT_LANE int32_t cvtps_epi32(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
    return int32_t(std::nearbyint(v));
}
// CVTTPS2DQ (C++ float -> int32 conversion on x86): truncation, with the same indefinite value.
FXP_ORT_LANE int32_t cvttps_epi32(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
    return int32_t(v);
}

// PACKSSDW then PACKUSWB / PACKSSWB: int32 saturated to int16, then to the 8-bit output type.
template <class Q>
FXP_ORT_LANE Q pack_saturate(int32_t v) {
    const int32_t s16 = v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
    constexpr int32_t lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
    return Q(s16 < lo ? lo : (s16 > hi ? hi : s16));
}

// ---- AVX2 lanes: 8 floats / int32s ----------------------------------------------------------------

FXP_ORT_LANE_AVX2 __m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
FXP_ORT_LANE_AVX2 __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 max_ps(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 min_ps(__m256 a, __m256 b) { return _mm256_min_ps(a, b); }
FXP_ORT_LANE_AVX2 __m256 to_float(__m256i v) { return _mm256_cvtepi32_ps(v); }
FXP_ORT_LANE_AVX2 __m256i cvtps_epi32(__m256 v) { return _mm256_cvtps_epi32(v); }
FXP_ORT_LANE_AVX2 __m256i cvttps_epi32(__m256 v) { return _mm256_cvttps_epi32(v); }

// Lane constants: splat(x, float{}) / splat(x, __m256{}) give x in the lane type of the second argument.
FXP_ORT_LANE float splat(float x, float) { return x; }
FXP_ORT_LANE_AVX2 __m256 splat(float x, __m256) { return _mm256_set1_ps(x); }

// 8 bytes -> 8 int32 lanes (sign- or zero-extended as the byte type says).
template <class Q>
FXP_ORT_LANE_AVX2 __m256i load8_epi32(const Q* p) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    if constexpr (std::is_signed<Q>::value) return _mm256_cvtepi8_epi32(b);
    else return _mm256_cvtepu8_epi32(b);
}

// 8 int32 lanes -> 8 bytes, with pack_saturate's two saturations.
template <class Q>
FXP_ORT_LANE_AVX2 void store8_packed(Q* p, __m256i v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i b = std::is_signed<Q>::value ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
}

FXP_ORT_LANE_AVX2 __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
FXP_ORT_LANE_AVX2 void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }

// The 8-bit types the quantized operators take.
enum class QType : int { UInt8 = 0, Int8 = 1 };

template <class Fn>
inline decltype(auto) with_qtype(QType t, Fn&& fn) {
    if (t == QType::Int8) return fn(int8_t{});
    return fn(uint8_t{});
}

}  // namespace fxp::ort
