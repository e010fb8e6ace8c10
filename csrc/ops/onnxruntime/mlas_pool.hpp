// Float32 pooling as ONNX Runtime's CPU kernels run it: MLAS MlasPool (onnxruntime/core/mlas/lib/pooling.cpp)
// for MaxPool, AveragePool and GlobalAveragePool/GlobalMaxPool (pool.cc PoolBase::Compute), and the plain
// loop of pool.cc for MaxPool with dilations (also the kernel of MaxPool on int8/uint8).
//
// MlasPool chooses per call:
//   global   (kernel = input, strides 1, no padding): 4 lane sums over the flat image (lane l takes
//            i = l, l + 4, ...), reduced (l0 + l2) + (l1 + l3), then the tail added in order; / size.
//   vector   (2-D/3-D, last stride <= 2, kernels <= 32, row fits the 2048-float buffer): first each
//            input column is reduced down the window's rows (2-D: starting from the first row;
//            3-D: from the initial value, planes then rows), into a row buffer padded with the
//            initial value; then each output reduces KW consecutive buffer entries left to right;
//            averages divide by (valid columns * rows, at least 1) or the kernel size.
//   generic  (otherwise, and every 1-D pool): the window's valid cells in (d,) h, w order from the
//            initial value (0, or the lowest float for max), divided by the valid or the kernel count.
// Maxima: the vector steps use MAXPS(r, x) (x wins on NaN and on equal zeros), the scalar steps
// std::max(r, x) (r wins): kept apart so that even NaN and -0 come out as ORT's.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

// The Task kinds are pool.cc's own loop (pool_functors.h AveragePool2DTask), not MLAS: ORT runs every
// AveragePool of opset 19 on that way, and ceil_mode with count_include_pad before it. The generic
// order, divided by the valid cells (exclude pad) or by the cells inside the padded input (include
// pad: windows past the tail padding count only up to it).
enum class PoolKind : int { Max = 0, AverageExcludePad = 1, AverageIncludePad = 2, AverageTaskIncludePad = 3,
                            AverageTaskExcludePad = 4 };
inline bool pool_task(PoolKind k) { return k == PoolKind::AverageTaskIncludePad || k == PoolKind::AverageTaskExcludePad; }

struct MlasPoolGeometry {
    int dims = 2;
    std::array<std::ptrdiff_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1};
    std::array<std::ptrdiff_t, 3> head{0, 0, 0}, tail{0, 0, 0};   // padding before / after each dimension
    std::ptrdiff_t in_size() const { return in[0] * in[1] * in[2]; }
    std::ptrdiff_t out_size() const { return out[0] * out[1] * out[2]; }
};

inline float pool_initial(PoolKind k) { return k == PoolKind::Max ? std::numeric_limits<float>::lowest() : 0.0f; }
// the scalar Reduce of MLAS_MAXIMUM_POOLING / MLAS_AVERAGE_POOLING
inline float pool_reduce_scalar(PoolKind k, float r, float x) { return k == PoolKind::Max ? (r < x ? x : r) : add(r, x); }
// the vector Reduce
inline float pool_reduce_vector(PoolKind k, float r, float x) { return k == PoolKind::Max ? max_ps(r, x) : add(r, x); }

// ---- generic kernels ------------------------------------------------------------------------------

inline void pool_generic(PoolKind kind, const MlasPoolGeometry& g, const float* x, float* y) {
    const float init = pool_initial(kind);
    std::array<std::ptrdiff_t, 3> lo{}, hi{};
    for (std::ptrdiff_t o0 = 0; o0 < g.out[0]; ++o0)
        for (std::ptrdiff_t o1 = 0; o1 < g.out[1]; ++o1)
            for (std::ptrdiff_t o2 = 0; o2 < g.out[2]; ++o2) {
                const std::array<std::ptrdiff_t, 3> o{o0, o1, o2};
                std::ptrdiff_t valid = 1, ksize = 1, padded = 1;
                for (int d = 0; d < 3; ++d) {
                    const std::ptrdiff_t start = o[size_t(d)] * g.stride[size_t(d)] - g.head[size_t(d)];
                    lo[size_t(d)] = std::max<std::ptrdiff_t>(start, 0);
                    hi[size_t(d)] = std::min(start + g.kernel[size_t(d)], g.in[size_t(d)]);
                    valid *= hi[size_t(d)] - lo[size_t(d)];
                    ksize *= g.kernel[size_t(d)];
                    padded *= std::min(start + g.kernel[size_t(d)], g.in[size_t(d)] + g.tail[size_t(d)]) - start;
                }
                float m = init;
                for (std::ptrdiff_t i0 = lo[0]; i0 < hi[0]; ++i0)
                    for (std::ptrdiff_t i1 = lo[1]; i1 < hi[1]; ++i1)
                        for (std::ptrdiff_t i2 = lo[2]; i2 < hi[2]; ++i2)
                            m = pool_reduce_scalar(kind, m, x[(i0 * g.in[1] + i1) * g.in[2] + i2]);
                if (kind == PoolKind::AverageExcludePad || kind == PoolKind::AverageTaskExcludePad) m = div(m, float(valid));
                else if (kind == PoolKind::AverageIncludePad) m = div(m, float(ksize));
                else if (kind == PoolKind::AverageTaskIncludePad) m = div(m, float(padded));
                y[(o0 * g.out[1] + o1) * g.out[2] + o2] = m;
            }
}

inline void pool_global(PoolKind kind, std::ptrdiff_t size, const float* x, float* y) {
    float l[4];
    for (float& v : l) v = pool_initial(kind);
    std::ptrdiff_t i = 0;
    for (; i + 4 <= size; i += 4)
        for (int j = 0; j < 4; ++j) l[j] = pool_reduce_vector(kind, l[j], x[i + j]);
    float r = pool_reduce_vector(kind, pool_reduce_vector(kind, l[0], l[2]), pool_reduce_vector(kind, l[1], l[3]));
    for (; i < size; ++i) r = pool_reduce_scalar(kind, r, x[i]);
    if (kind != PoolKind::Max) r = div(r, float(size));
    *y = r;
}

// ---- vector kernels (2-D and 3-D) ------------------------------------------------------------------------

constexpr std::ptrdiff_t kPoolReductionBuffer = 2048, kPoolReductionPadding = 3;

// dst[j] = reduce(a[j], b[j]) for j < n, MAXPS (or add) per element; V = __m256 steps 8 at a time.
template <class V>
FXP_ORT_LANE void pool_reduce_row(PoolKind kind, float* dst, const float* a, const float* b, std::ptrdiff_t n) {
    std::ptrdiff_t j = 0;
    if constexpr (std::is_same<V, __m256>::value) {
        if (kind == PoolKind::Max)
            for (; j + 8 <= n; j += 8) store8(dst + j, max_ps(load8(a + j), load8(b + j)));
        else
            for (; j + 8 <= n; j += 8) store8(dst + j, add(load8(a + j), load8(b + j)));
    }
    for (; j < n; ++j) dst[j] = pool_reduce_vector(kind, a[j], b[j]);
}

// cols[ow]: the valid columns of output ow as MLAS's divider computes them in float:
// min(start + KW, PL + W) - max(start, PL) with start = ow * SW in buffer units.
template <class V>
FXP_ORT_LANE void pool_vector_plane(PoolKind kind, const MlasPoolGeometry& g, const float* x, float* y, float* buf,
                                    float* acc, const float* cols) {
    const bool three = g.dims == 3;
    // as 3-D: (planes, rows, width) with one plane for 2-D
    const std::ptrdiff_t D = three ? g.in[0] : 1, H = three ? g.in[1] : g.in[0], W = three ? g.in[2] : g.in[1];
    const std::ptrdiff_t OD = three ? g.out[0] : 1, OH = three ? g.out[1] : g.out[0], OW = three ? g.out[2] : g.out[1];
    const std::ptrdiff_t KD = three ? g.kernel[0] : 1, KH = three ? g.kernel[1] : g.kernel[0], KW = three ? g.kernel[2] : g.kernel[1];
    const std::ptrdiff_t SD = three ? g.stride[0] : 1, SH = three ? g.stride[1] : g.stride[0], SW = three ? g.stride[2] : g.stride[1];
    const std::ptrdiff_t PD = three ? g.head[0] : 0, PH = three ? g.head[1] : g.head[0], PL = three ? g.head[2] : g.head[1];
    const float init = pool_initial(kind);
    const std::ptrdiff_t span = (OW - 1) * SW + KW;   // buffer entries the outputs read
    const std::ptrdiff_t wvec = W / 4 * 4;   // columns MLAS reduces 4-wide (MAXPS); the rest by std::max
    const float ksize = float(KD * KH * KW);
    auto clip = [](std::ptrdiff_t start, std::ptrdiff_t k, std::ptrdiff_t n, std::ptrdiff_t& lo, std::ptrdiff_t& hi) {
        // MLAS computes in size_t: a start before the input or past its end restarts at 0
        hi = std::min(start + k, n);
        lo = (start < 0 || start >= n) ? 0 : start;
    };
    float* col = buf + PL;
    for (std::ptrdiff_t pd = 0; pd < OD; ++pd) {
        std::ptrdiff_t d0 = 0, d1 = 1;
        if (three) clip(pd * SD - PD, KD, D, d0, d1);
        for (std::ptrdiff_t ph = 0; ph < OH; ++ph) {
            std::ptrdiff_t h0, h1;
            clip(ph * SH - PH, KH, H, h0, h1);
            const std::ptrdiff_t rows = (d1 - d0) * (h1 - h0);
            // columns reduced down the window: 2-D from the first row, 3-D from the initial value
            if (three) {
                for (std::ptrdiff_t j = 0; j < W; ++j) col[j] = init;
                for (std::ptrdiff_t dd = d0; dd < d1; ++dd)
                    for (std::ptrdiff_t hh = h0; hh < h1; ++hh) {
                        const float* src = x + (dd * H + hh) * W;
                        pool_reduce_row<V>(kind, col, col, src, wvec);
                        for (std::ptrdiff_t j = wvec; j < W; ++j) col[j] = pool_reduce_scalar(kind, col[j], src[j]);
                    }
            } else if (h1 - h0 == 1) {
                const float* src = x + h0 * W;
                for (std::ptrdiff_t j = 0; j < W; ++j) col[j] = src[j];
            } else {
                const float* r0 = x + h0 * W;
                const float* r1 = r0 + W;
                pool_reduce_row<V>(kind, col, r0, r1, wvec);
                for (std::ptrdiff_t j = wvec; j < W; ++j) col[j] = pool_reduce_scalar(kind, r0[j], r1[j]);
                for (std::ptrdiff_t hh = h0 + 2; hh < h1; ++hh) {
                    const float* src = x + hh * W;
                    pool_reduce_row<V>(kind, col, col, src, wvec);
                    for (std::ptrdiff_t j = wvec; j < W; ++j) col[j] = pool_reduce_scalar(kind, col[j], src[j]);
                }
            }
            // each output: KW consecutive buffer entries left to right (a stride-1 pass over the span)
            const std::ptrdiff_t starts = span - KW + 1;
            if (KW == 1) {
                for (std::ptrdiff_t j = 0; j < starts; ++j) acc[j] = buf[j];
            } else {
                pool_reduce_row<V>(kind, acc, buf, buf + 1, starts);
                for (std::ptrdiff_t t = 2; t < KW; ++t) pool_reduce_row<V>(kind, acc, acc, buf + t, starts);
            }
            float* yrow = y + (pd * OH + ph) * OW;
            std::ptrdiff_t ow = 0;
            if constexpr (std::is_same<V, __m256>::value) {
                if (SW == 1) {   // 8 outputs at a time: the same division per element
                    for (; ow + 8 <= OW; ow += 8) {
                        V r = load8(acc + ow);
                        if (kind == PoolKind::AverageExcludePad)
                            r = div(r, max_ps(mul(load8(cols + ow), splat(float(rows), r)), splat(1.0f, r)));
                        else if (kind == PoolKind::AverageIncludePad)
                            r = div(r, splat(ksize, r));
                        store8(yrow + ow, r);
                    }
                }
            }
            for (; ow < OW; ++ow) {
                float r = acc[ow * SW];
                if (kind == PoolKind::AverageExcludePad) r = div(r, max_ps(mul(cols[ow], float(rows)), 1.0f));
                else if (kind == PoolKind::AverageIncludePad) r = div(r, ksize);
                yrow[ow] = r;
            }
        }
    }
}

// The row buffer of the vector kernel: left padding, the reduced columns, the rest holding the initial
// value (MLAS fills the right padding and 3 more; a window reaching further reads the same value here).
inline void pool_vector_buffers(PoolKind kind, const MlasPoolGeometry& g, std::vector<float>& buf, std::vector<float>& acc,
                                std::vector<float>& cols) {
    const bool three = g.dims == 3;
    const std::ptrdiff_t W = three ? g.in[2] : g.in[1], OW = three ? g.out[2] : g.out[1];
    const std::ptrdiff_t KW = three ? g.kernel[2] : g.kernel[1], SW = three ? g.stride[2] : g.stride[1];
    const std::ptrdiff_t PL = three ? g.head[2] : g.head[1];
    const std::ptrdiff_t span = (OW - 1) * SW + KW;
    buf.assign(size_t(std::max(PL + W, span) + 8), pool_initial(kind));
    acc.assign(size_t(span + 8), 0.0f);
    cols.assign(size_t(OW), 0.0f);
    for (std::ptrdiff_t ow = 0; ow < OW; ++ow) {
        const float start = float(ow * SW);
        cols[size_t(ow)] = sub(min_ps(add(start, float(KW)), float(PL + W)), max_ps(start, float(PL)));
    }
}

inline void pool_vector_portable(PoolKind kind, const MlasPoolGeometry& g, const float* x, float* y, std::ptrdiff_t planes,
                                 float* buf, float* acc, const float* cols) {
    for (std::ptrdiff_t c = 0; c < planes; ++c)
        pool_vector_plane<float>(kind, g, x + c * g.in_size(), y + c * g.out_size(), buf, acc, cols);
}

FXP_ORT_AVX2 inline void pool_vector_avx2(PoolKind kind, const MlasPoolGeometry& g, const float* x, float* y,
                                          std::ptrdiff_t planes, float* buf, float* acc, const float* cols) {
    for (std::ptrdiff_t c = 0; c < planes; ++c)
        pool_vector_plane<__m256>(kind, g, x + c * g.in_size(), y + c * g.out_size(), buf, acc, cols);
}

// MlasPool over `planes` images (batch * channels) of geometry g (the Task kinds: pool.cc's loop).
inline void mlas_pool(PoolKind kind, const MlasPoolGeometry& g, const float* x, float* y, std::ptrdiff_t planes, Isa isa) {
    bool global = true, small = true;
    for (int d = 0; d < g.dims; ++d) {
        global &= g.kernel[size_t(d)] == g.in[size_t(d)] && g.stride[size_t(d)] == 1 && g.head[size_t(d)] == 0 &&
                  g.tail[size_t(d)] == 0;
        small &= g.kernel[size_t(d)] <= 32;
    }
    if (pool_task(kind)) global = false;
    bool vector = false;
    if (!pool_task(kind) && !global && g.dims >= 2 && g.stride[size_t(g.dims - 1)] <= 2 && small) {
        std::ptrdiff_t remaining = kPoolReductionBuffer - kPoolReductionPadding;
        const std::ptrdiff_t pl = g.head[size_t(g.dims - 1)], pr = g.tail[size_t(g.dims - 1)];
        remaining = remaining >= pl ? remaining - pl : 0;
        remaining = remaining >= pr ? remaining - pr : 0;
        vector = remaining >= g.in[size_t(g.dims - 1)];
    }
    const std::ptrdiff_t in_size = g.in_size(), out_size = g.out_size();
    if (vector) {
        std::vector<float> buf, acc, cols;
        pool_vector_buffers(kind, g, buf, acc, cols);
        if (isa == Isa::Avx2) pool_vector_avx2(kind, g, x, y, planes, buf.data(), acc.data(), cols.data());
        else pool_vector_portable(kind, g, x, y, planes, buf.data(), acc.data(), cols.data());
        return;
    }
    for (std::ptrdiff_t c = 0; c < planes; ++c) {
        if (global) pool_global(kind, in_size, x + c * in_size, y + c * out_size);
        else pool_generic(kind, g, x + c * in_size, y + c * out_size);
    }
}

// MaxPool with dilations (pool.cc MaxPoolV8 / the plain loop): the first maximum in (h, w, d) order by
// "x > best", from the lowest value of T. x, y as [planes, spatial...]; 1 to 3 dimensions as in g.
template <class T>
void max_pool_dilated(const MlasPoolGeometry& g, const std::array<std::ptrdiff_t, 3>& dilation, const T* x, T* y,
                      std::ptrdiff_t planes) {
    const std::ptrdiff_t in_size = g.in_size(), out_size = g.out_size();
    for (std::ptrdiff_t c = 0; c < planes; ++c) {
        const T* xc = x + c * in_size;
        T* yc = y + c * out_size;
        for (std::ptrdiff_t o0 = 0; o0 < g.out[0]; ++o0)
            for (std::ptrdiff_t o1 = 0; o1 < g.out[1]; ++o1)
                for (std::ptrdiff_t o2 = 0; o2 < g.out[2]; ++o2) {
                    T best = std::numeric_limits<T>::lowest();
                    const std::ptrdiff_t s0 = o0 * g.stride[0] - g.head[0], s1 = o1 * g.stride[1] - g.head[1],
                                         s2 = o2 * g.stride[2] - g.head[2];
                    for (std::ptrdiff_t k0 = 0; k0 < g.kernel[0]; ++k0) {
                        const std::ptrdiff_t i0 = s0 + k0 * dilation[0];
                        if (i0 < 0 || i0 >= g.in[0]) continue;
                        for (std::ptrdiff_t k1 = 0; k1 < g.kernel[1]; ++k1) {
                            const std::ptrdiff_t i1 = s1 + k1 * dilation[1];
                            if (i1 < 0 || i1 >= g.in[1]) continue;
                            for (std::ptrdiff_t k2 = 0; k2 < g.kernel[2]; ++k2) {
                                const std::ptrdiff_t i2 = s2 + k2 * dilation[2];
                                if (i2 < 0 || i2 >= g.in[2]) continue;
                                const T v = xc[(i0 * g.in[1] + i1) * g.in[2] + i2];
                                if (v > best) best = v;
                            }
                        }
                    }
                    yc[(o0 * g.out[1] + o1) * g.out[2] + o2] = best;
                }
    }
}

}  // namespace fxp::ort
