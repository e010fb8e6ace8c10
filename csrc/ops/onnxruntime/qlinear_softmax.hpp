// com.microsoft QLinearSoftmax (u8/s8) as ONNX Runtime's CPU kernel computes it
// (contrib_ops/cpu/quantization/qlinear_softmax.cc, EXP_OUT_DTYPE = float).
//
// Table, from the input scale and the reduced length D (QlinearBuildLookupTableUint32):
//     shift = logf(FLT_MAX / float(D))                 (float division, float log: measured, the double
//                                                       log of the same quotient disagreed with ORT)
//     shift = max(0, shift - 5) / x_scale              (double)
//     t[i]  = float(exp((double(i) - 255 + shift) * double(x_scale)))      i = 0..255
// stored at index i (u8) or uint8(i - 128) (s8), so that the row maximum lands on the entry of i = 255.
// Per row of D values (QlinearSoftmaxCPU):
//     u8: e(x) = t[x + 255 - max];   s8: e(x) = t[uint8(x + 127 - max)]
//     sum = e(x0) + e(x1) + ...      (float, in index order)
//     q   = int(rint(double(e(x)) * ys / double(sum))) + y_zero_point,   ys = floorf(1.0f / y_scale)
//     in double: e * ys is exact there (24 + 9 bits), one rounding in the division. The public sources
//     read the float (e * ys) / sum (which would overflow to infinity for D = 1); the AVX2 MLAS kernel of
//     later sources e * ((1 / sum) * ys). onnxruntime 1.32 matches neither, and the double form on every
//     row probed: among 10^6 random rows per case, 0 of the rows where float orders disagree (e.g.
//     [100 0 65 153 109 59 87 115 224 171], x_scale 0.11962616, y_scale 1/255: ys = 254 as
//     floorf(1 / float(1/255)) = floorf(254.99998); e * ys / sum = 253.49999664 gives 253, the float
//     (e / sum) * ys rounds to 253.5 and gives 254). The sum is float, in index order (not the AVX2
//     kernel's 8 lanes: measured on D = 16..100).
//     u8: min(q, 255);  s8: min(q, 127) (q >= 0, so q + zp >= -128 needs no lower clamp; the public
//     sources read "q > 255 ? 255" for s8, onnxruntime 1.32 clamps at 127: 164 + zp gave 127)
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>


namespace fxp::ort {

// ORT computes log(FLT_MAX / D) in float (log of a float argument resolves to logf).
inline double qlinear_softmax_shift(float x_scale, std::ptrdiff_t reduce_len) {
    double bit_shift = double(std::log(std::numeric_limits<float>::max() / float(reduce_len)));   // logf
    bit_shift = std::max(0.0, bit_shift - 5.0) / double(x_scale);
    return bit_shift;
}

template <class Q>
void qlinear_softmax_table(float x_scale, std::ptrdiff_t reduce_len, float* table) {
    const double shift = qlinear_softmax_shift(x_scale, reduce_len);
    for (int i = 0; i < 256; ++i) {
        const double e = std::exp((double(i) - 255.0 + shift) * double(x_scale));
        const uint8_t index = std::is_signed<Q>::value ? uint8_t(i - 128) : uint8_t(i);
        table[index] = float(e);
    }
}

// rows of D contiguous values (the softmax axis innermost)
template <class Q>
void qlinear_softmax_rows(const Q* x, Q* y, std::ptrdiff_t rows, std::ptrdiff_t d, const float* table, float y_scale,
                          int32_t y_zero_point) {
    const double ys = double(std::floor(1.0f / y_scale));
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
        const Q* xr = x + r * d;
        Q* yr = y + r * d;
        const Q xmax = *std::max_element(xr, xr + d);
        float sum = 0.0f;
        if constexpr (std::is_signed<Q>::value) {
            const int32_t adjust = 127 - int32_t(xmax);
            for (std::ptrdiff_t i = 0; i < d; ++i) sum += table[uint8_t(adjust + xr[i])];
            for (std::ptrdiff_t i = 0; i < d; ++i) {
                const double e = table[uint8_t(adjust + xr[i])];
                const int32_t q = int32_t(std::nearbyint(e * ys / double(sum))) + y_zero_point;
                yr[i] = q > 127 ? Q(127) : Q(q);
            }
        } else {
            const float* shifted = table + 255 - int32_t(xmax);
            for (std::ptrdiff_t i = 0; i < d; ++i) sum += shifted[xr[i]];
            for (std::ptrdiff_t i = 0; i < d; ++i) {
                const double e = shifted[xr[i]];
                const int32_t q = int32_t(std::nearbyint(e * ys / double(sum))) + y_zero_point;
                yr[i] = q > 255 ? Q(255) : Q(q);
            }
        }
    }
}

}  // namespace fxp::ort
