// How LiteRT (the TFLite interpreter) derives integer parameters from a .tflite model's float
// scales, and the scalar integer primitives its kernels share, each in the precision and order the
// runtime uses. Three ways to run a model (the op resolvers of ai-edge-litert):
//
//   Reference   BUILTIN_REF: tflite/kernels/internal/reference/** (gemmlowp double rounding).
//   Optimized   BUILTIN_WITHOUT_DEFAULT_DELEGATES: optimized_ops / optimized_integer_ops. The x86
//               wheel defines USE_NEON (NEON_2_SSE.h emulates the ARM intrinsics with SSE), so the
//               NEON paths run, with their own rounding, and the scalar loops handle the tails.
//   Xnnpack     AUTO / BUILTIN: the XNNPACK delegate takes the ops it supports (fp32 requantization,
//               parameters computed in float); the rest falls back to the optimized kernels.
//
// Sources: tflite/kernels/kernel_util.cc, internal/quantization_util.cc, internal/common.h,
// XNNPACK src/xnnpack/requantization.h, src/microparams-init.c.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "fixed/quantize_multiplier.hpp"
#include "fixed/rounding.hpp"
#include "kernels/requantize.hpp"

namespace fxp {
namespace litert {

enum class Resolver : int { Reference = 0, Optimized = 1, Xnnpack = 2 };
// TFLite's ActivationFunctionType codes (schema), the fused activations of quantized ops.
enum class Activation : int { None = 0, Relu = 1, ReluN1To1 = 2, Relu6 = 3 };

inline Resolver resolver_from_int(int r) {
    if (r < 0 || r > 2) throw std::invalid_argument("resolver code must be 0..2, got " + std::to_string(r));
    return Resolver(r);
}
inline Activation activation_from_int(int a) {
    if (a < 0 || a > 3) throw std::invalid_argument("fused activation code must be 0..3, got " + std::to_string(a));
    return Activation(a);
}

// ---- TFLite parameter derivation ----------------------------------------------------------------

using fxp::QuantizedMultiplier;
using fxp::quantize_multiplier;  // fixed/quantize_multiplier.hpp

// TFLite's Quantize helper of CalculateActivationRangeQuantized: zp + int(TfLiteRound(f / scale)),
// the quotient in float and rounded half away from zero.
inline int32_t tflite_quantize_value(float f, float scale, int32_t zero_point) {
    const float q = std::round(f / scale);
    if (!(q >= float(INT32_MIN) && q <= float(INT32_MAX)))
        throw std::invalid_argument("activation bound " + std::to_string(f) + " / scale overflows int32");
    return zero_point + int32_t(q);
}

struct Range {
    int32_t lo, hi;
};

// CalculateActivationRangeQuantized (kernel_util.cc): the fused activation's bounds quantized with
// the output's scale and zero point, intersected with [qmin, qmax].
inline Range tflite_activation_range(Activation a, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    switch (a) {
        case Activation::None: return {qmin, qmax};
        case Activation::Relu: return {std::max(qmin, tflite_quantize_value(0.0f, scale, zp)), qmax};
        case Activation::Relu6:
            return {std::max(qmin, tflite_quantize_value(0.0f, scale, zp)),
                    std::min(qmax, tflite_quantize_value(6.0f, scale, zp))};
        case Activation::ReluN1To1:
            return {std::max(qmin, tflite_quantize_value(-1.0f, scale, zp)),
                    std::min(qmax, tflite_quantize_value(1.0f, scale, zp))};
    }
    return {qmin, qmax};
}

// ---- XNNPACK parameter derivation ---------------------------------------------------------------

// xnn_qs8_quantize / xnn_qu8_quantize (requantization.h): lrintf(clamp(val / scale + float(zp))),
// in float, rounded to nearest even (the default rounding mode).
inline int32_t xnn_quantize_value(float val, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
    const float v = std::fmin(std::fmax(val / scale + float(zero_point), float(qmin)), float(qmax));
    return int32_t(std::nearbyint(v));
}

// The delegate's ConvertActivationToOutputRange (NONE: +-inf, RELU: [0, inf), RELU_N1_TO_1: [-1, 1],
// RELU6: [0, 6]) quantized by xnn_q*8_quantize.
inline Range xnn_activation_range(Activation a, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    const float inf = std::numeric_limits<float>::infinity();
    float lo = -inf, hi = inf;
    switch (a) {
        case Activation::None: break;
        case Activation::Relu: lo = 0.0f; break;
        case Activation::ReluN1To1: lo = -1.0f; hi = 1.0f; break;
        case Activation::Relu6: lo = 0.0f; hi = 6.0f; break;
    }
    return {xnn_quantize_value(lo, scale, zp, qmin, qmax), xnn_quantize_value(hi, scale, zp, qmin, qmax)};
}

inline Range activation_range(Resolver r, Activation a, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    return r == Resolver::Xnnpack ? xnn_activation_range(a, scale, zp, qmin, qmax)
                                  : tflite_activation_range(a, scale, zp, qmin, qmax);
}

// ---- scalar integer primitives ------------------------------------------------------------------

// int32 arithmetic that wraps as the hardware does (TFLite's int32 products and shifts overflow
// silently in C; the NEON lanes wrap by definition).
inline int32_t wrap_add(int32_t a, int32_t b) { return int32_t(uint32_t(a) + uint32_t(b)); }
inline int32_t wrap_mul(int32_t a, int32_t b) { return int32_t(uint32_t(a) * uint32_t(b)); }
inline int32_t wrap_shl(int32_t a, int s) { return int32_t(uint32_t(a) << s); }

// TFLite MultiplyByQuantizedMultiplier (double rounding, common.h):
// RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, M), right).
inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t m, int shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(wrap_shl(x, left), m), right);
}

// NEON's vrshl by a negative amount (a rounding right shift, ties toward +inf), as NEON_2_SSE
// computes it: (x >> s) + bit s-1 of x, which cannot overflow.
inline int32_t rounding_shift_right_half_up(int32_t x, int s) { return round_shift_right<Rounding::Nearest>(x, s); }

// NEON's vshl: a left shift by s >= 0 (wrapping) or an arithmetic (flooring) right shift by -s.
inline int32_t shift_left_or_floor(int32_t x, int s) { return s >= 0 ? wrap_shl(x, s) : (x >> std::min(-s, 31)); }

// The optimized kernels' NEON requantization (vshl, vqrdmulh, vrshl): the gemmlowp pair with the
// second rounding half-up, the same arithmetic as ruy's x86 kernels.
inline int32_t multiply_by_quantized_multiplier_half_up(int32_t x, int32_t m, int shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return rounding_shift_right_half_up(saturating_rounding_doubling_high_mul(wrap_shl(x, left), m), right);
}

// f(i) for i in [begin, end), compiled for AVX2 when `avx2` (the caller's choice, from
// fixedpoint.kernels.get_kernel_path()) and portably otherwise: the same source, the same bits (no
// float contraction either way). Give f by value with its parameters captured by value, so that
// byte-typed stores cannot alias them and the loop vectorises.
template <class F>
inline void for_range(bool avx2, std::ptrdiff_t begin, std::ptrdiff_t end, F f) {
    if (end <= begin) return;
    auto g = [f, begin](std::ptrdiff_t i) { f(begin + i); };
    if (avx2) requant_loop_avx2(end - begin, g);
    else requant_loop_portable(end - begin, g);
}

// Saturation into a narrower type and two's-complement wrap to 16 bits, in int32 lanes (vectorisable).
// f(r, i) for r in [0, rows), i in [0, n): both loops inside one AVX2 (or portable) function, so that
// short rows do not pay a call each; the inner loop vectorises.
template <class F>
__attribute__((target("avx2"))) inline void rows_loop_avx2(std::ptrdiff_t rows, std::ptrdiff_t n, F f) {
    for (std::ptrdiff_t r = 0; r < rows; ++r)
        for (std::ptrdiff_t i = 0; i < n; ++i) f(r, i);
}
template <class F>
inline void rows_loop_portable(std::ptrdiff_t rows, std::ptrdiff_t n, F f) {
    for (std::ptrdiff_t r = 0; r < rows; ++r)
        for (std::ptrdiff_t i = 0; i < n; ++i) f(r, i);
}
template <class F>
inline void for_rows(bool avx2, std::ptrdiff_t rows, std::ptrdiff_t n, F f) {
    if (rows <= 0 || n <= 0) return;
    if (avx2) rows_loop_avx2(rows, n, f);
    else rows_loop_portable(rows, n, f);
}

template <class T>
inline int32_t saturate_to(int32_t v) {
    return std::min<int32_t>(std::max<int32_t>(v, std::numeric_limits<T>::min()), std::numeric_limits<T>::max());
}
inline int32_t wrap_to_int16(int32_t v) { return int32_t(uint32_t(v) << 16) >> 16; }

}  // namespace litert
}  // namespace fxp
