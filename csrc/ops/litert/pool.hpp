// MAX_POOL_2D and AVERAGE_POOL_2D of int8 NCHW planes, as every LiteRT resolver computes them
// (reference_integer_ops / optimized_integer_ops MaxPool, AveragePool; XNNPACK's int8 max pooling
// gives the same values): the window is clipped to the input (padding taps are not counted), max
// or sum of the taps; the average is (sum +- count / 2) / count with C truncation, i.e. rounded
// half away from zero (fixed/rounding.hpp round_divide<Round>); then the activation clamp.
// Computed over pixel-major data (kernels/layout.hpp): one vector operation per window tap.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fixed/rounding.hpp"
#include "kernels/layout.hpp"
#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

struct PoolArgs {
    std::ptrdiff_t planes, h, w, out_h, out_w;
    int fh, fw, sh, sw, pad_top, pad_left;
    Range act;
};

// round_divide<Round>(sum, count) for |sum| < 2^24 and 0 < count < 2^24 without an integer division:
// the double quotient is within 2^-29 relative of sum / count, while a quotient that is not a tie
// lies at least 1 / (2 count) from the nearest k + 1/2 and a tie is exact, so floor(|q| + 1/2)
// decides as the exact quotient would (the + 1/2 adds an error below 2^-28).
inline int32_t divide_round_half_away(int32_t sum, int32_t count) {
    const double q = double(sum) / double(count);
    const int32_t r = int32_t(std::fabs(q) + 0.5);
    return sum < 0 ? -r : r;
}

// out[i] = the activation clamp of divide_round_half_away(sums[i], count), i < m. The vector form
// computes TFLite's own integer expression, sign(s) * ((|s| + count / 2) / count) (the same value:
// round half away from zero), with the truncated quotient of u = |s| + count / 2 < 2^25 formed as
// u * inv in double, inv = 1 / count rounded up by two ulps: for u < 2^51 the product is at least the
// exact quotient when that is an integer and below the next integer otherwise, so its truncation is
// the exact one (and a multiplication costs a fraction of a division).
inline void average_portable(const int32_t* sums, std::ptrdiff_t m, int32_t count, Range act, int8_t* out) {
    for (std::ptrdiff_t i = 0; i < m; ++i) out[i] = int8_t(std::min(std::max(divide_round_half_away(sums[i], count), act.lo), act.hi));
}

__attribute__((target("avx2"))) inline void average_avx2(const int32_t* sums, std::ptrdiff_t m, int32_t count, Range act,
                                                          int8_t* out) {
    const double inv = std::nextafter(std::nextafter(1.0 / double(count), 2.0), 2.0);
    const __m256d scale = _mm256_set1_pd(inv);
    const __m128i half = _mm_set1_epi32(count / 2);
    const __m128i lo = _mm_set1_epi32(act.lo), hi = _mm_set1_epi32(act.hi);
    std::ptrdiff_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sums + i));
        const __m128i u = _mm_add_epi32(_mm_abs_epi32(s), half);
        const __m128i r = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtepi32_pd(u), scale));
        __m128i v = _mm_sign_epi32(r, s);  // -r where the sum is negative (a zero sum gives 0 either way)
        v = _mm_min_epi32(_mm_max_epi32(v, lo), hi);
        const int32_t word = _mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(v, v), _mm_setzero_si128()));
        std::memcpy(out + i, &word, 4);
    }
    for (; i < m; ++i) out[i] = int8_t(std::min(std::max(divide_round_half_away(sums[i], count), act.lo), act.hi));
}

// The windows of one pooling over pixel-major data (kernels/layout.hpp): max or rounded average of
// the taps inside the input, then the activation clamp. Max and sum do not depend on the order of the
// taps or on the layout, so NCHW planes (transposed in chunks) and NHWC images give the same values.
inline void pool_pixels(bool average, const kern::PixelPool& p, const int8_t* x, int8_t* y, Range act, bool avx2) {
    if (average) {
        kern::sum_pool_pixels<int8_t, int32_t>(x, p, y, [=](const int32_t* sums, std::ptrdiff_t m, int64_t count, int8_t* out) {
            if (avx2) average_avx2(sums, m, int32_t(count), act, out);
            else average_portable(sums, m, int32_t(count), act, out);
        }, avx2);
        return;
    }
    kern::max_pool_pixels(x, p, y, avx2);
    if (act.lo > -128 || act.hi < 127) {
        const int8_t lo = int8_t(std::max(act.lo, -128)), hi = int8_t(std::min(act.hi, 127));
        const std::ptrdiff_t n = p.batches * p.out_h * p.out_w * p.vec;
        for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
    }
}

// x: NCHW (channels_last false: planes = N C) or NHWC (channels_last: planes = N, channels = C) int8.
inline void pool2d(bool average, const PoolArgs& a, const int8_t* x, int8_t* y, bool avx2, bool channels_last = false,
                   std::ptrdiff_t channels = 1) {
    kern::PixelPool p;
    p.h = a.h;
    p.w = a.w;
    p.out_h = a.out_h;
    p.out_w = a.out_w;
    p.kh = a.fh;
    p.kw = a.fw;
    p.sh = a.sh;
    p.sw = a.sw;
    p.pad_top = a.pad_top;
    p.pad_left = a.pad_left;
    if (channels_last) {
        p.batches = a.planes;
        p.vec = channels;
        pool_pixels(average, p, x, y, a.act, avx2);
        return;
    }
    kern::pool_planes(x, a.planes, p, y, [&](const int8_t* px, const kern::PixelPool& q, int8_t* out) {
        pool_pixels(average, q, px, out, a.act, avx2);
    });
}

}  // namespace litert
}  // namespace fxp
