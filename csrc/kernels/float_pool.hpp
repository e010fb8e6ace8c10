// Float32 pooling and softmax of float inference on NCHW data. On the small images of embedded
// models a numpy formulation of these costs more in per-call overhead than the convolutions around
// it, so they run here, with every sum in a fixed order: results never depend on the thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/elementwise.hpp"

namespace fxp {

// NaN-propagating maximum (numpy.maximum): once a NaN is seen it stays. Branch-free.
inline float max_propagating_nan(float m, float v) { return ((v > m) | (v != v)) ? v : m; }

// Reduces every window of every plane with `step`: each kernel row's taps inside the input in
// column order (from `init`), then those row results in row order (from `init`); taps in the
// padding are skipped. Two loop orders compute exactly that:
// * wide outputs: per plane, two separable passes (all rows' taps, then the rows), whose inner
//   loops run along output columns;
// * narrow outputs (small images, global pooling): kLanes planes at a time, one window after the
//   other, so the plane lanes are independent chains (a loop along 1-7 output columns would be all
//   overhead).
constexpr int64_t kPoolLanes = 8;
constexpr int64_t kPoolWideColumns = 8;

template <class Step>
void pool_plane_separable(const float* in, const PoolGeometry& g, float init, Step step, std::vector<float>& rows,
                          float* out) {
    const int64_t h = g.h, w = g.w, oh = g.out_h, ow = g.out_w;
    const int64_t sw = g.stride[1], dw = g.dilation[1];
    rows.assign(size_t(h * ow), init);
    for (int64_t k = 0; k < g.kernel[1]; ++k) {
        // output columns whose tap k lies inside the row: 0 <= o * sw + offset < w
        const int64_t offset = k * dw - g.pads[1];
        const int64_t lo = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
        const int64_t hi = std::min(ow, offset >= w ? 0 : (w - 1 - offset) / sw + 1);
        for (int64_t r = 0; r < h; ++r) {
            const float* src = in + r * w + offset;
            float* t = rows.data() + r * ow;
            for (int64_t o = lo; o < hi; ++o) t[o] = step(t[o], src[o * sw]);
        }
    }
    for (int64_t o = 0; o < oh; ++o) {
        float* dst = out + o * ow;
        std::fill(dst, dst + ow, init);
        for (int64_t r = g.row_first[size_t(o)]; r < g.row_last[size_t(o)]; ++r) {
            const float* t = rows.data() + (o * g.stride[0] - g.pads[0] + r * g.dilation[0]) * ow;
            for (int64_t c = 0; c < ow; ++c) dst[c] = step(dst[c], t[c]);
        }
    }
}

template <int64_t L, class Step>
void pool_planes_windowed(const float* in, const PoolGeometry& g, float init, Step step, float* out) {
    const int64_t hw = g.h * g.w, ohw = g.out_h * g.out_w;
    for (int64_t oy = 0; oy < g.out_h; ++oy)
        for (int64_t ox = 0; ox < g.out_w; ++ox) {
            float acc[L];
#pragma GCC unroll 8
            for (int64_t l = 0; l < L; ++l) acc[l] = init;
            const int64_t c0 = g.col_first[size_t(ox)], c1 = g.col_last[size_t(ox)];
            for (int64_t r = g.row_first[size_t(oy)]; r < g.row_last[size_t(oy)]; ++r) {
                const float* row = in + (oy * g.stride[0] - g.pads[0] + r * g.dilation[0]) * g.w +
                                   ox * g.stride[1] - g.pads[1];
                float part[L];
#pragma GCC unroll 8
                for (int64_t l = 0; l < L; ++l) part[l] = init;
                for (int64_t k = c0; k < c1; ++k)
#pragma GCC unroll 8
                    for (int64_t l = 0; l < L; ++l) part[l] = step(part[l], row[l * hw + k * g.dilation[1]]);
#pragma GCC unroll 8
                for (int64_t l = 0; l < L; ++l) acc[l] = step(acc[l], part[l]);
            }
#pragma GCC unroll 8
            for (int64_t l = 0; l < L; ++l) out[l * ohw + oy * g.out_w + ox] = acc[l];
        }
}

template <class Step>
void pool_reduce(const float* x, const PoolGeometry& g, float init, Step step, float* y) {
    const int64_t planes = g.n * g.c, hw = g.h * g.w, ohw = g.out_h * g.out_w;
    const double work = double(planes) * double(ohw) * double(g.kernel[0] * g.kernel[1]);
    if (g.out_w >= kPoolWideColumns) {
        const int threads = threads_for_work(work, planes);
        std::vector<std::vector<float>> scratch(size_t(std::max(threads, 1)));
        parallel_tasks(planes, threads, [&](std::ptrdiff_t p, int slot) {
            pool_plane_separable(x + p * hw, g, init, step, scratch[size_t(slot)], y + p * ohw);
        });
        return;
    }
    const int64_t blocks = (planes + kPoolLanes - 1) / kPoolLanes;
    parallel_tasks(blocks, threads_for_work(work, blocks), [&](std::ptrdiff_t b, int) {
        const int64_t p0 = b * kPoolLanes;
        if (p0 + kPoolLanes <= planes) {
            pool_planes_windowed<kPoolLanes>(x + p0 * hw, g, init, step, y + p0 * ohw);
        } else {
            for (int64_t p = p0; p < planes; ++p) pool_planes_windowed<1>(x + p * hw, g, init, step, y + p * ohw);
        }
    });
}

// Max over the taps inside the input: padding never wins.
inline void max_pool2d_float(const float* x, const PoolGeometry& g, float* y) {
    pool_reduce(x, g, -std::numeric_limits<float>::infinity(),
                   [](float m, float v) { return max_propagating_nan(m, v); }, y);
}

// Mean of a window: the float32 sum of each kernel row's taps (left to right), the row sums added
// top to bottom, then one division by the count. The count is the number of taps inside the input,
// or with count_include_pad also those in the explicit padding (counted_bottom / counted_right are
// the layer's own bottom and right pads; g's may be larger by a ceil_mode overhang, which never
// counts). Padding taps would add +0.0, so they are skipped. Dilation 1.
inline void avg_pool2d_float(const float* x, const PoolGeometry& g, bool count_include_pad, int64_t counted_bottom,
                             int64_t counted_right, float* y) {
    pool_reduce(x, g, 0.0f, [](float a, float b) { return a + b; }, y);
    // per-axis counts; a window's count is their product
    auto counts = [&](int a, int64_t extent, int64_t counted_end) {
        const int64_t out = a == 0 ? g.out_h : g.out_w, k = g.kernel[a], pad = g.pads[a];
        const auto& first = a == 0 ? g.row_first : g.col_first;
        const auto& last = a == 0 ? g.row_last : g.col_last;
        std::vector<int64_t> count(static_cast<size_t>(out));
        for (int64_t o = 0; o < out; ++o) {
            const int64_t start = o * g.stride[a] - pad;
            count[size_t(o)] = count_include_pad ? std::min(start + k, extent + counted_end) - std::max(start, -pad)
                                             : last[size_t(o)] - first[size_t(o)];
        }
        return count;
    };
    const std::vector<int64_t> rows = counts(0, g.h, counted_bottom), cols = counts(1, g.w, counted_right);
    const int64_t planes = g.n * g.c, oh = g.out_h, ow = g.out_w;
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t o = 0; o < oh; ++o) {
            float* dst = y + (p * oh + o) * ow;
            for (int64_t c = 0; c < ow; ++c) dst[c] /= float(rows[size_t(o)] * cols[size_t(c)]);
        }
}

// softmax along an axis of `len` elements, `inner` apart, for `outer` x `inner` positions:
// exp(v - max) / sum, the sum in axis order.
inline void softmax_float(const float* x, int64_t outer, int64_t len, int64_t inner, float* y) {
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            const float* in = x + o * len * inner + i;
            float* out = y + o * len * inner + i;
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t k = 0; k < len; ++k) m = max_propagating_nan(m, in[k * inner]);
            float sum = 0.0f;
            for (int64_t k = 0; k < len; ++k) {
                const float e = std::exp(in[k * inner] - m);
                out[k * inner] = e;
                sum += e;
            }
            for (int64_t k = 0; k < len; ++k) out[k * inner] /= sum;
        }
}

}  // namespace fxp
