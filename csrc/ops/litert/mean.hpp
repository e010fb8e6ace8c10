// MEAN of int8 tensors over a set of axes, per resolver (reduce.cc EvalMean).
//
// Reference, and the optimized resolver except the case below (reference_ops::QuantizedMeanOrSum):
//   s = sum of q over the reduced axes (int32); M, e = QuantizeMultiplier(double(s_in) / double(s_out));
//   with k = min(floor(log2 N), 32, 31 + e): M' = (M << k) / N (int64, truncating), e' = e - k;
//   y = clamp(MBQM(s - z_in N, M', e') + z_out).
// Optimized, 4-D input, keep_dims, axes {1, 2} (optimized_integer_ops::Mean): per channel
//   y = clamp(MBQM(s, M, e) + bias) with bias = z_out - int(z_in s_in / s_out +- 0.5) and M, e from
//   float(s_in / (float(H W) s_out)); channels run in depth ranges split among the threads
//   (max(C / 8, 1) ranges, capped by the interpreter's thread count), and in each range the NEON
//   loop takes blocks of 16 channels with the half-up second rounding, the rest the scalar gemmlowp.
// Xnnpack (reduce-nd.c: qs8 rsum, then the reference int32 -> qint8 convert):
//   y = sat(RNE(float(s) * m + z')) with m = (s_in / s_out) * (1.0f / N) and
//   z' = z_out - float(N * z_in) * m, all in float.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "ops/litert/quant_params.hpp"
#include "ops/litert/unary.hpp"

namespace fxp {
namespace litert {

constexpr int kMaxMeanRank = 6;

struct MeanArgs {
    Resolver resolver;
    Quant in, out;
    bool keep_dims;
    int num_threads = 1;
};

// Sums of q over the reduced axes, one per output element (row-major over the kept axes).
// The int32 sum of n int8 values (exact; wraps only beyond 2^24 values, as int32 does).
__attribute__((target("avx2"))) inline int32_t sum_bytes_avx2(const int8_t* x, std::ptrdiff_t n) {
    int32_t s = 0;
    for (std::ptrdiff_t i = 0; i < n; ++i) s = wrap_add(s, x[i]);
    return s;
}
inline int32_t sum_bytes(bool avx2, const int8_t* x, std::ptrdiff_t n) {
    if (avx2) return sum_bytes_avx2(x, n);
    int32_t s = 0;
    for (std::ptrdiff_t i = 0; i < n; ++i) s = wrap_add(s, x[i]);
    return s;
}

// Reduced axes forming one block [r0, r1) (ignoring size-1 axes) sum as outer x reduced x inner,
// the inner loop contiguous; any other set of axes takes the general index walk.
inline std::vector<int32_t> reduce_sums(const int8_t* x, int rank, const std::ptrdiff_t* shape, const bool* reduced,
                                        std::ptrdiff_t* count, bool avx2) {
    std::ptrdiff_t outputs = 1, n = 1;
    for (int d = 0; d < rank; ++d) (reduced[d] ? n : outputs) *= shape[d];
    *count = n;
    std::vector<int32_t> sums(std::size_t(outputs), 0);
    int r0 = -1, r1 = -1;
    for (int d = 0; d < rank; ++d)
        if (reduced[d] && shape[d] != 1) {
            if (r0 < 0) r0 = d;
            r1 = d;
        }
    bool block = true;
    for (int d = r0 + 1; r0 >= 0 && d < r1; ++d)
        if (!reduced[d] && shape[d] != 1) block = false;
    if (block) {
        std::ptrdiff_t outer = 1, red = 1, inner = 1;
        for (int d = 0; d < rank; ++d) {
            if (r0 >= 0 && d < r0) outer *= shape[d];
            else if (r0 >= 0 && d <= r1) red *= shape[d];
            else inner *= shape[d];
        }
        int32_t* out = sums.data();
        if (inner == 1) {  // reducing the innermost axes: a horizontal sum per output
            for (std::ptrdiff_t o = 0; o < outer; ++o) out[o] = sum_bytes(avx2, x + o * red, red);
            return sums;
        }
        for (std::ptrdiff_t o = 0; o < outer; ++o) {
            const int8_t* rows = x + o * red * inner;
            int32_t* acc = out + o * inner;
            for_rows(avx2, red, inner, [=](std::ptrdiff_t r, std::ptrdiff_t i) { acc[i] += rows[r * inner + i]; });
        }
        return sums;
    }
    // Output strides over the kept axes; reduced axes stride 0.
    std::array<std::ptrdiff_t, kMaxMeanRank> ostride{};
    std::ptrdiff_t acc = 1;
    for (int d = rank - 1; d >= 0; --d) {
        ostride[d] = reduced[d] ? 0 : acc;
        if (!reduced[d]) acc *= shape[d];
    }
    std::ptrdiff_t total = 1;
    for (int d = 0; d < rank; ++d) total *= shape[d];
    std::array<std::ptrdiff_t, kMaxMeanRank> idx{};
    std::ptrdiff_t o = 0;
    for (std::ptrdiff_t i = 0; i < total; ++i) {
        sums[std::size_t(o)] = wrap_add(sums[std::size_t(o)], x[i]);
        for (int d = rank - 1; d >= 0; --d) {
            o += ostride[d];
            if (++idx[d] < shape[d]) break;
            o -= ostride[d] * shape[d];
            idx[d] = 0;
        }
    }
    return sums;
}

inline void mean(const MeanArgs& a, const int8_t* x, int rank, const std::ptrdiff_t* shape, const bool* reduced, int8_t* y,
                 bool avx2) {
    std::ptrdiff_t n = 0;
    const std::vector<int32_t> sums = reduce_sums(x, rank, shape, reduced, &n, avx2);
    const std::size_t outputs = sums.size();
    if (n == 0) throw std::invalid_argument("MEAN over an empty axis");
    auto clamp8 = [](int32_t v) { return int8_t(std::min(std::max(v, -128), 127)); };

    if (a.resolver == Resolver::Xnnpack) {
        const float scale = (a.in.scale / a.out.scale) * (1.0f / float(n));
        const float zp = float(a.out.zero_point) - (float(int32_t(n)) * float(a.in.zero_point)) * scale;
        for (std::size_t i = 0; i < outputs; ++i) {
            float v = std::nearbyint(float(sums[i]) * scale + zp);
            v = std::min(std::max(v, -128.0f), 127.0f);
            y[i] = int8_t(v);
        }
        return;
    }
    const bool hw_keep_dims = rank == 4 && a.keep_dims && reduced[1] && reduced[2] && !reduced[0] && !reduced[3];
    if (a.resolver == Resolver::Optimized && hw_keep_dims) {
        float temp = float(a.in.zero_point) * a.in.scale / a.out.scale;
        temp = temp > 0 ? temp + 0.5f : temp - 0.5f;
        const int32_t bias = a.out.zero_point - x86_cvtt(double(temp));
        const float real_scale = a.in.scale / (float(shape[1] * shape[2]) * a.out.scale);
        const QuantizedMultiplier m = quantize_multiplier(double(real_scale));
        const std::ptrdiff_t batches = shape[0], depth = shape[3];
        // The depth ranges of MeanWorkerTask and, in each, the NEON blocks of 16 channels.
        const int thread_count = std::max<int>(int(depth / 8), 1);
        const int capped = std::max(1, std::min(thread_count, a.num_threads));
        std::vector<bool> neon(std::size_t(depth), false);
        std::ptrdiff_t start = 0;
        for (int t = 0; t < capped; ++t) {
            const std::ptrdiff_t end = start + (depth - start) / (capped - t);
            for (std::ptrdiff_t c = start; c < start + (end - start) / 16 * 16; ++c) neon[std::size_t(c)] = true;
            start = end;
        }
        for (std::ptrdiff_t b = 0; b < batches; ++b)
            for (std::ptrdiff_t c = 0; c < depth; ++c) {
                const int32_t s = sums[std::size_t(b * depth + c)];
                const int32_t v = neon[std::size_t(c)] ? multiply_by_quantized_multiplier_half_up(s, m.multiplier, m.shift)
                                                       : multiply_by_quantized_multiplier(s, m.multiplier, m.shift);
                y[b * depth + c] = clamp8(wrap_add(v, bias));
            }
        return;
    }
    // reference_ops::QuantizedMeanOrSum
    QuantizedMultiplier m = quantize_multiplier(double(a.in.scale) / double(a.out.scale));
    int shift = 63 - __builtin_clzll(uint64_t(n));
    shift = std::min(shift, 32);
    shift = std::min(shift, 31 + m.shift);
    const int32_t multiplier = int32_t((int64_t(m.multiplier) << shift) / int64_t(n));
    const int out_shift = m.shift - shift;
    const int32_t zp_times_n = wrap_mul(a.in.zero_point, int32_t(n));
    for (std::size_t i = 0; i < outputs; ++i) {
        const int32_t shifted_sum = int32_t(uint32_t(sums[i]) - uint32_t(zp_times_n));
        y[i] = clamp8(wrap_add(multiply_by_quantized_multiplier(shifted_sum, multiplier, out_shift), a.out.zero_point));
    }
}

}  // namespace litert
}  // namespace fxp
