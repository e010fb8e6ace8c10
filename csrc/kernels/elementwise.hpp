// Integer elementwise kernels a quantized network needs between its GEMMs and convolutions:
// float -> int quantization, the saturating add of two tensors with different exponents, and max /
// average pooling on NCHW integers. Every rounding and overflow step is a fixed/rounding.hpp primitive.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fixed/rounding.hpp"
#include "cpu/features.hpp"
#include "kernels/layout.hpp"
#include "kernels/requantize.hpp"
#include "kernels/threads.hpp"

namespace fxp {

template <class Out>
inline Out to_word(i128 v, Overflow o) {
    bool overflowed = false;
    return Out(overflow_to_word(v, int(sizeof(Out) * 8), std::is_signed<Out>::value, o, overflowed));
}

// ---- quantize: float -> integer ----------------------------------------------------------------

// q = round(x * 2^f) + zp, or with a scale q = round(x / scale) + zp where the quotient is computed in
// the input's precision (float32 / float32 like ONNX QuantizeLinear, or double); the rounding of that
// quotient, the zero point and the overflow action are exact.
struct QuantizeParams {
    bool by_scale;
    double scale;
    int fraction_length;
    int64_t zero_point;
    Rounding rounding;
    Overflow overflow;
};

template <class F, class Out>
void quantize(const F* x, std::ptrdiff_t n, const QuantizeParams& p, Out* out) {
    with_rounding(p.rounding, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        const F s = F(p.scale);
        const int f = p.by_scale ? 0 : p.fraction_length;
        const i128 sat_hi = i128(1) << 100;  // far outside any output word, inside i128
        constexpr std::ptrdiff_t chunk = std::ptrdiff_t(1) << 15;
        const std::ptrdiff_t chunks = (n + chunk - 1) / chunk;
        parallel_tasks(chunks, threads_for_work(double(n) * 8, chunks), [&](std::ptrdiff_t t, int) {
            for (std::ptrdiff_t i = t * chunk; i < std::min(n, (t + 1) * chunk); ++i) {
                const F v = p.by_scale ? F(x[i] / s) : x[i];
                const ScaledDouble r = round_scaled_double<R>(double(v), f);
                // A huge value carries only its sign (low bits zero): saturate it far out, or wrap it to 0.
                const i128 q = r.huge ? (p.overflow == Overflow::Saturate ? r.value * sat_hi : i128(0)) : r.value;
                out[i] = to_word<Out>(q + p.zero_point, p.overflow);
            }
        });
    });
}

// ---- add_shifted: a * 2^-fa + b * 2^-fb -> out * 2^-fo --------------------------------------------

// Both operands are aligned exactly to the finer exponent in 128 bits, summed, then rounded once to the
// output fraction length and fitted into the output word.
struct AddShiftedParams {
    int fa, fb, fo;
    Rounding rounding;
    Overflow overflow;

    void check() const {
        const int f = std::max(fa, fb);
        if (f - std::min(fa, fb) > 64)
            throw std::invalid_argument("fraction lengths of a and b differ by more than 64: " + std::to_string(fa) +
                                        " and " + std::to_string(fb));
        if (fo - f > 30 || f - fo > 200)
            throw std::invalid_argument("out_fraction_length " + std::to_string(fo) +
                                        " must lie in [max(fa, fb) - 200, max(fa, fb) + 30]");
    }
};

template <class A, class B, class Out>
void add_shifted(const A* a, const B* b, std::ptrdiff_t n, const AddShiftedParams& p, Out* out) {
    const int f = std::max(p.fa, p.fb);
    const int sa = f - p.fa, sb = f - p.fb, s = f - p.fo;
    const int32_t lo = int32_t(std::numeric_limits<Out>::min()), hi = int32_t(std::numeric_limits<Out>::max());
    const bool wrap = p.overflow == Overflow::Wrap;
    auto run = [&](auto body) {
        if (requant_cpu_has_avx2()) requant_loop_avx2(n, body);
        else requant_loop_portable(n, body);
    };
    // 32-bit lanes (vectorised) when the aligned sum fits int32 (operands of <= 16 bits shifted by <= 14)
    // and the final shift is a right shift by 0..31; otherwise 128 bits (|sum| < 2^98).
    constexpr bool narrow_inputs = sizeof(A) <= 2 && sizeof(B) <= 2;
    if (narrow_inputs && sa <= 14 && sb <= 14 && s >= 0 && s <= 31) {
        const FinishWord32<Out> fin{0, lo, hi, lo, hi, wrap};
        with_rounding(p.rounding, [&](auto rc) {
            constexpr Rounding R = decltype(rc)::value;
            const int32_t ma = int32_t(1) << sa, mb = int32_t(1) << sb;
            if (s == 0) {
                run([=](std::ptrdiff_t i) { out[i] = fin(a[i] * ma + b[i] * mb); });
            } else {
                const int s1 = s > 31 ? 31 : s;  // s is in 1..31 already; this tells the compiler
                run([=](std::ptrdiff_t i) { out[i] = fin(round_shift_right<R>(a[i] * ma + b[i] * mb, s1)); });
            }
        });
        return;
    }
    with_rounding(p.rounding, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            const i128 sum = (i128(a[i]) << sa) + (i128(b[i]) << sb);
            out[i] = to_word<Out>(round_shift<R>(sum, s), p.overflow);
        }
    });
}

// ---- pooling on NCHW ---------------------------------------------------------------------------

// Window geometry of a 2-D pool. For every output row (column) the taps that fall inside the input
// form a contiguous range [first, last) of kernel indices; padding taps are simply skipped.
struct PoolGeometry {
    int64_t n, c, h, w;
    std::array<int64_t, 2> kernel, stride, dilation;
    std::array<int64_t, 4> pads;  // top, left, bottom, right
    int64_t out_h, out_w;
    std::vector<int64_t> row_first, row_last, col_first, col_last;

    static PoolGeometry make(int64_t n, int64_t c, int64_t h, int64_t w, std::array<int64_t, 2> kernel,
                             std::array<int64_t, 2> stride, std::array<int64_t, 4> pads,
                             std::array<int64_t, 2> dilation) {
        PoolGeometry g{n, c, h, w, kernel, stride, dilation, pads, 0, 0, {}, {}, {}, {}};
        for (int a = 0; a < 2; ++a) {
            const char* axis = a == 0 ? "height" : "width";
            if (kernel[a] < 1 || stride[a] < 1 || dilation[a] < 1)
                throw std::invalid_argument(std::string("kernel, stride and dilation must be >= 1 (") + axis + ")");
            if (pads[a] < 0 || pads[a + 2] < 0) throw std::invalid_argument(std::string("padding must be >= 0 (") + axis + ")");
            const int64_t extent = (a == 0 ? h : w), span = dilation[a] * (kernel[a] - 1) + 1;
            const int64_t padded = extent + pads[a] + pads[a + 2];
            if (padded < span)
                throw std::invalid_argument(std::string("pooling window (") + std::to_string(span) +
                                            ") larger than the padded input (" + std::to_string(padded) + ") along " + axis);
            const int64_t out = (padded - span) / stride[a] + 1;
            auto& first = a == 0 ? g.row_first : g.col_first;
            auto& last = a == 0 ? g.row_last : g.col_last;
            first.resize(out);
            last.resize(out);
            for (int64_t o = 0; o < out; ++o) {
                const int64_t start = o * stride[a] - pads[a];
                int64_t i0 = 0, i1 = kernel[a];
                while (i0 < i1 && start + i0 * dilation[a] < 0) ++i0;
                while (i1 > i0 && start + (i1 - 1) * dilation[a] >= extent) --i1;
                if (i0 == i1)
                    throw std::invalid_argument(std::string("pooling window ") + std::to_string(o) + " along " + axis +
                                                " lies entirely in the padding");
                first[o] = i0;
                last[o] = i1;
            }
            (a == 0 ? g.out_h : g.out_w) = out;
        }
        return g;
    }

    // Calls fn(plane_in, plane_out, oh, ow, r0, r1, c0, c1) for every output element (in parallel over
    // planes); rows r in [r0, r1) and columns in [c0, c1) index the kernel taps inside the input.
    template <class T, class U, class Fn>
    void for_each_window(const T* x, U* y, Fn&& fn) const {
        const int64_t planes = n * c;
        parallel_tasks(planes, threads_for_work(double(planes * out_h * out_w) * 16, planes), [&](std::ptrdiff_t p, int) {
            const T* in = x + p * h * w;
            U* o = y + p * out_h * out_w;
            for (int64_t oh = 0; oh < out_h; ++oh)
                for (int64_t ow = 0; ow < out_w; ++ow)
                    o[oh * out_w + ow] = fn(in, oh * stride[0] - pads[0], ow * stride[1] - pads[1], row_first[oh],
                                            row_last[oh], col_first[ow], col_last[ow]);
        });
    }
};

// Max over the taps inside the input: padding never wins. Computed on chunks of planes in pixel-major
// order (kernels/layout.hpp pool_planes), one vector max per tap.
inline kern::PixelPool pixel_pool(const PoolGeometry& g) {
    kern::PixelPool p;
    p.h = g.h;
    p.w = g.w;
    p.out_h = g.out_h;
    p.out_w = g.out_w;
    p.kh = g.kernel[0];
    p.kw = g.kernel[1];
    p.sh = g.stride[0];
    p.sw = g.stride[1];
    p.dh = g.dilation[0];
    p.dw = g.dilation[1];
    p.pad_top = g.pads[0];
    p.pad_left = g.pads[1];
    return p;
}

template <class T>
void max_pool2d(const T* x, const PoolGeometry& g, T* y) {
    const bool avx2 = cpu::has_avx2();
    kern::pool_planes(x, g.n * g.c, pixel_pool(g), y,
                      [&](const T* px, const kern::PixelPool& p, T* out) { kern::max_pool_pixels(px, p, out, avx2); });
}

// Exact sum of the window divided by its count (the full kernel area with count_include_pad, else the
// taps inside the input), rounded by method r; pixel-major like max_pool2d. Sums are int32 for 8- and
// 16-bit integers (|sum| < 2^31 for any window up to 2^16 taps), int64 for int32.
template <class T>
void avg_pool2d(const T* x, const PoolGeometry& g, bool count_include_pad, Rounding rounding, T* y) {
    const int64_t area = g.kernel[0] * g.kernel[1];
    with_rounding(rounding, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        kern::pool_planes(x, g.n * g.c, pixel_pool(g), y, [&](const T* px, const kern::PixelPool& p, T* out) {
            using Acc = std::conditional_t<(sizeof(T) <= 2), int32_t, int64_t>;
            kern::sum_pool_pixels<T, Acc>(px, p, out, [=](const Acc* sums, std::ptrdiff_t m, int64_t taps, T* o) {
                const int64_t count = count_include_pad ? area : taps;
                for (std::ptrdiff_t i = 0; i < m; ++i) o[i] = T(round_divide<R>(int64_t(sums[i]), count));  // a mean of T values is a T value
            }, cpu::has_avx2());
        });
    });
}

}  // namespace fxp
