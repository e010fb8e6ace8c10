// Memory layouts of 4-D activations: batched 2-D transposes (NCHW <-> NHWC) of 1-, 2- and 4-byte
// elements, and pooling over "pixel-major" data ([batch][y][x][vector]) in which every tap of a window
// is one contiguous vector (NHWC images: the C channels of a pixel; NCHW planes transposed: every
// plane of the batch at a pixel).
//
// Both only move or compare values (a transpose copies, a max pool picks one of its taps), so a
// result never depends on the layout or the vector length: the emulated runtimes' arithmetic is in
// the ops that call them.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/threads.hpp"

namespace fxp::kern {

namespace layout_detail {

// The 8 x 8 byte block at `src` (rows `sp` bytes apart) transposed into `dst` (rows `dp` apart):
// three rounds of SSE2 unpacks.
inline void transpose8x8_bytes(const uint8_t* src, std::ptrdiff_t sp, uint8_t* dst, std::ptrdiff_t dp) {
    __m128i r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i * sp));
    const __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
    const __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
    const __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
    const __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
    const __m128i c0 = _mm_unpacklo_epi32(b0, b2), c1 = _mm_unpackhi_epi32(b0, b2);
    const __m128i c2 = _mm_unpacklo_epi32(b1, b3), c3 = _mm_unpackhi_epi32(b1, b3);
    const __m128i out[4] = {c0, c1, c2, c3};
    for (int i = 0; i < 4; ++i) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * i) * dp), out[i]);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * i + 1) * dp), _mm_unpackhi_epi64(out[i], out[i]));
    }
}

template <class T>
void transpose_plain(const T* x, std::ptrdiff_t rows, std::ptrdiff_t cols, T* y, std::ptrdiff_t r0, std::ptrdiff_t r1,
                     std::ptrdiff_t c0, std::ptrdiff_t c1) {
    for (std::ptrdiff_t r = r0; r < r1; ++r)
        for (std::ptrdiff_t c = c0; c < c1; ++c) y[c * rows + r] = x[r * cols + c];
}

// One rows x cols matrix: y[c][r] = x[r][c].
template <class T>
void transpose_matrix(const T* x, std::ptrdiff_t rows, std::ptrdiff_t cols, T* y) {
    if (rows == 1 || cols == 1) {
        std::memcpy(y, x, size_t(rows * cols) * sizeof(T));
        return;
    }
    if constexpr (sizeof(T) == 1) {
        const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
        uint8_t* yb = reinterpret_cast<uint8_t*>(y);
        const std::ptrdiff_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
        for (std::ptrdiff_t r = 0; r < r8; r += 8)
            for (std::ptrdiff_t c = 0; c < c8; c += 8) transpose8x8_bytes(xb + r * cols + c, cols, yb + c * rows + r, rows);
        transpose_plain(x, rows, cols, y, 0, r8, c8, cols);
        transpose_plain(x, rows, cols, y, r8, rows, 0, cols);
    } else {
        constexpr std::ptrdiff_t B = 16;  // cache blocks
        for (std::ptrdiff_t r = 0; r < rows; r += B)
            for (std::ptrdiff_t c = 0; c < cols; c += B)
                transpose_plain(x, rows, cols, y, r, std::min(rows, r + B), c, std::min(cols, c + B));
    }
}

}  // namespace layout_detail

// y[b][c][r] = x[b][r][c] for `batches` rows x cols matrices (NCHW -> NHWC: rows = C, cols = H W;
// NHWC -> NCHW: rows = H W, cols = C).
template <class T>
void transpose_batched(const T* x, std::ptrdiff_t batches, std::ptrdiff_t rows, std::ptrdiff_t cols, T* y) {
    const std::ptrdiff_t size = rows * cols;
    const double work = double(batches) * double(size) * 0.25;
    parallel_tasks(batches, threads_for_work(work, batches), [&](std::ptrdiff_t b, int) {
        layout_detail::transpose_matrix(x + b * size, rows, cols, y + b * size);
    });
}

// Pooling windows over pixel-major data x[b][y][x][v] -> y[b][oy][ox][v]: per output pixel the taps
// (rows kh, columns kw, stride, dilation, top/left padding) that lie inside the input; a window
// without any raises before this is called (the caller's geometry checks).
struct PixelPool {
    std::ptrdiff_t batches = 0, h = 0, w = 0, vec = 0, out_h = 0, out_w = 0;
    std::ptrdiff_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pad_top = 0, pad_left = 0;
};

namespace layout_detail {

// Calls reduce(base, off, n, step, count, out) for runs of output pixels of every output row: the
// window of the run's i-th pixel has its n taps at base + i * step + off[t] (elements) and its output
// vector at out + i * vec. Windows that lie wholly inside the input along x share one run per row;
// the clipped ones at the left and right edges are runs of one pixel with their own taps.
template <class T, class Reduce>
inline void pool_pixels(const T* x, const PixelPool& p, T* y, Reduce&& reduce) {
    const std::ptrdiff_t v = p.vec, row = p.w * v, image = p.h * row, out_image = p.out_h * p.out_w * v;
    const double work = double(p.batches) * double(out_image) * double(p.kh * p.kw);
    // Output columns [lo, hi) have windows inside the input along x.
    const std::ptrdiff_t lo = std::min(p.out_w, (p.pad_left + p.sw - 1) / p.sw);
    const std::ptrdiff_t last = p.w - 1 - (p.kw - 1) * p.dw + p.pad_left;
    const std::ptrdiff_t hi = last < 0 ? lo : std::max(lo, std::min(p.out_w, last / p.sw + 1));
    parallel_tasks(p.batches, threads_for_work(work, p.batches), [&](std::ptrdiff_t b, int) {
        std::vector<std::ptrdiff_t> off(size_t(p.kh * p.kw));
        const T* img = x + b * image;
        T* out = y + b * out_image;
        for (std::ptrdiff_t oy = 0; oy < p.out_h; ++oy, out += p.out_w * v) {
            const std::ptrdiff_t y0 = oy * p.sh - p.pad_top;
            std::ptrdiff_t i0 = 0, i1 = p.kh;
            while (i0 < i1 && y0 + i0 * p.dh < 0) ++i0;
            while (i1 > i0 && y0 + (i1 - 1) * p.dh >= p.h) --i1;
            for (std::ptrdiff_t ox = 0; ox < p.out_w; ++ox) {
                if (ox == lo && hi > lo) {  // the interior run
                    std::ptrdiff_t n = 0;
                    for (std::ptrdiff_t i = i0; i < i1; ++i)
                        for (std::ptrdiff_t j = 0; j < p.kw; ++j) off[size_t(n++)] = (y0 + i * p.dh) * row + j * p.dw * v;
                    reduce(img + (lo * p.sw - p.pad_left) * v, off.data(), n, p.sw * v, hi - lo, out + lo * v);
                    ox = hi - 1;
                    continue;
                }
                const std::ptrdiff_t x0 = ox * p.sw - p.pad_left;
                std::ptrdiff_t j0 = 0, j1 = p.kw;
                while (j0 < j1 && x0 + j0 * p.dw < 0) ++j0;
                while (j1 > j0 && x0 + (j1 - 1) * p.dw >= p.w) --j1;
                std::ptrdiff_t n = 0;
                for (std::ptrdiff_t i = i0; i < i1; ++i)
                    for (std::ptrdiff_t j = j0; j < j1; ++j) off[size_t(n++)] = (y0 + i * p.dh) * row + (x0 + j * p.dw) * v;
                reduce(img, off.data(), n, 0, 1, out + ox * v);
            }
        }
    });
}

// The max of each window's taps (see pool_pixels for the arguments).
template <class T>
__attribute__((noinline)) void max_windows_portable(const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n, std::ptrdiff_t step,
                                                    std::ptrdiff_t count, std::ptrdiff_t v, T* __restrict out) {
    for (std::ptrdiff_t c = 0; c < count; ++c, base += step, out += v) {
        std::memcpy(out, base + off[0], size_t(v) * sizeof(T));
        for (std::ptrdiff_t t = 1; t < n; ++t) {
            const T* __restrict tap = base + off[t];
            for (std::ptrdiff_t k = 0; k < v; ++k) out[k] = std::max(out[k], tap[k]);
        }
    }
}

template <class T>
__attribute__((target("avx2"))) inline __m256i max_bytes_avx2(__m256i a, __m256i b) {
    if constexpr (std::is_signed<T>::value) return _mm256_max_epi8(a, b);
    else return _mm256_max_epu8(a, b);
}
template <class T>
__attribute__((target("avx2"))) inline __m128i max_bytes_sse(__m128i a, __m128i b) {
    if constexpr (std::is_signed<T>::value) return _mm_max_epi8(a, b);
    else return _mm_max_epu8(a, b);
}

template <class T>
__attribute__((target("avx2"), noinline)) void max_windows_avx2(const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n,
                                                                std::ptrdiff_t step, std::ptrdiff_t count, std::ptrdiff_t v,
                                                                T* __restrict out) {
    if constexpr (sizeof(T) != 1) {
        max_windows_portable(base, off, n, step, count, v, out);
    } else {
        for (std::ptrdiff_t c = 0; c < count; ++c, base += step, out += v) {
            std::ptrdiff_t k = 0;
            for (; k + 32 <= v; k += 32) {
                __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + off[0] + k));
                for (std::ptrdiff_t t = 1; t < n; ++t)
                    m = max_bytes_avx2<T>(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + off[t] + k)));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), m);
            }
            for (; k + 16 <= v; k += 16) {
                __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + off[0] + k));
                for (std::ptrdiff_t t = 1; t < n; ++t)
                    m = max_bytes_sse<T>(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + off[t] + k)));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), m);
            }
            for (; k < v; ++k) {
                T m = base[off[0] + k];
                for (std::ptrdiff_t t = 1; t < n; ++t) m = std::max(m, base[off[t] + k]);
                out[k] = m;
            }
        }
    }
}

// The sums of each window's taps into acc[i * v + k].
template <class T, class Acc>
__attribute__((noinline)) void sum_windows(const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n, std::ptrdiff_t step,
                                           std::ptrdiff_t count, std::ptrdiff_t v, Acc* __restrict acc) {
    for (std::ptrdiff_t c = 0; c < count; ++c, base += step, acc += v) {
        const T* __restrict first = base + off[0];
        for (std::ptrdiff_t k = 0; k < v; ++k) acc[k] = Acc(first[k]);
        for (std::ptrdiff_t t = 1; t < n; ++t) {
            const T* __restrict tap = base + off[t];
            for (std::ptrdiff_t k = 0; k < v; ++k) acc[k] += Acc(tap[k]);
        }
    }
}

// sum_windows for bytes with AVX2: 16 elements at a time summed over the taps in int16 (exact for up
// to 256 taps: |sum| <= 256 * 128), then widened.
template <class T, class Acc>
__attribute__((target("avx2"), noinline)) void sum_windows_avx2(const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n,
                                                                std::ptrdiff_t step, std::ptrdiff_t count, std::ptrdiff_t v,
                                                                Acc* __restrict acc) {
    if constexpr (sizeof(T) != 1 || sizeof(Acc) != 4) {
        sum_windows(base, off, n, step, count, v, acc);
    } else {
        if (n > 256) return sum_windows(base, off, n, step, count, v, acc);
        for (std::ptrdiff_t c = 0; c < count; ++c, base += step, acc += v) {
            std::ptrdiff_t k = 0;
            for (; k + 16 <= v; k += 16) {
                __m256i s = _mm256_setzero_si256();
                for (std::ptrdiff_t t = 0; t < n; ++t) {
                    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + off[t] + k));
                    s = _mm256_add_epi16(s, std::is_signed<T>::value ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b));
                }
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k), _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k + 8), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
            }
            for (; k < v; ++k) {
                Acc a = 0;
                for (std::ptrdiff_t t = 0; t < n; ++t) a += Acc(base[off[t] + k]);
                acc[k] = a;
            }
        }
    }
}

}  // namespace layout_detail

// y[b][oy][ox][:] = the maximum of the window's taps inside the input (pixel-major data).
template <class T>
void max_pool_pixels(const T* x, const PixelPool& p, T* y, bool avx2) {
    const std::ptrdiff_t v = p.vec;
    layout_detail::pool_pixels(x, p, y, [=](const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n, std::ptrdiff_t step,
                                            std::ptrdiff_t count, T* out) {
        if (avx2) layout_detail::max_windows_avx2(base, off, n, step, count, v, out);
        else layout_detail::max_windows_portable(base, off, n, step, count, v, out);
    });
}

// Window sums (Acc: int32 for 8- and 16-bit T, exact up to 2^16 taps), handed with the number of taps
// inside the input to finish(const Acc* sums, std::ptrdiff_t m, int64_t taps, T* out), which writes
// the m outputs of a run of windows with that many taps (pixel-major data).
template <class T, class Acc, class Finish>
void sum_pool_pixels(const T* x, const PixelPool& p, T* y, Finish&& finish, bool avx2 = false) {
    const std::ptrdiff_t v = p.vec;
    layout_detail::pool_pixels(x, p, y, [&](const T* base, const std::ptrdiff_t* off, std::ptrdiff_t n, std::ptrdiff_t step,
                                            std::ptrdiff_t count, T* out) {
        static thread_local std::vector<Acc> acc;
        acc.resize(size_t(count * v));
        if (avx2) layout_detail::sum_windows_avx2(base, off, n, step, count, v, acc.data());
        else layout_detail::sum_windows(base, off, n, step, count, v, acc.data());
        finish(acc.data(), count * v, int64_t(n), out);
    });
}

// Pooling of NCHW planes x[plane][h][w] -> y[plane][out_h][out_w] through pixel-major data: chunks of
// planes are transposed to [h w][planes] (each window tap one contiguous vector over the chunk's
// planes), pooled by `pool(const T* pixels, const PixelPool& geometry, T* out)` and transposed back.
// Small planes (the usual int8 networks' 4x4 .. 16x16) would otherwise cost a loop set-up per plane
// and row for a handful of elements. `p` gives the geometry (its batches and vec are set here).
template <class T, class Pool>
void pool_planes(const T* x, std::ptrdiff_t planes, PixelPool p, T* y, Pool&& pool) {
    const std::ptrdiff_t in_px = p.h * p.w, out_px = p.out_h * p.out_w;
    if (planes <= 0 || out_px <= 0) return;
    // Chunks of ~32 KB of input (a multiple of 16 planes where there are more), shared out on threads.
    std::ptrdiff_t chunk = std::max<std::ptrdiff_t>(16, (std::ptrdiff_t(1) << 15) / std::max<std::ptrdiff_t>(1, in_px * std::ptrdiff_t(sizeof(T))) / 16 * 16);
    chunk = std::min(chunk, planes);
    const std::ptrdiff_t chunks = (planes + chunk - 1) / chunk;
    const double work = double(planes) * double(in_px + out_px * p.kh * p.kw);
    p.batches = 1;
    parallel_tasks(chunks, threads_for_work(work, chunks), [&](std::ptrdiff_t ci, int) {
        static thread_local std::vector<T> in, out;
        const std::ptrdiff_t p0 = ci * chunk, k = std::min(chunk, planes - p0);
        in.resize(size_t(k * in_px));
        out.resize(size_t(k * out_px));
        layout_detail::transpose_matrix(x + p0 * in_px, k, in_px, in.data());
        PixelPool q = p;
        q.vec = k;
        pool(in.data(), q, out.data());
        layout_detail::transpose_matrix(out.data(), out_px, k, y + p0 * out_px);
    });
}

}  // namespace fxp::kern
