// im2col + affine GEMM convolution (see conv_gemm.hpp).
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "kernels/threads.hpp"

namespace fxp::kern {

namespace {
// Element (kk, j) of group gi's (K, O/groups) weight matrix in the chosen K order.
template <class W>
std::vector<W> group_matrix(const W* w, Index og, Index cg, Index kh, Index kw, Index gi, KOrder order) {
    const Index k = cg * kh * kw;
    std::vector<W> m(size_t(k * og));
    for (Index j = 0; j < og; ++j) {
        const W* src = w + (gi * og + j) * k;  // OIHW: (c, kh, kw) contiguous per output channel
        for (Index c = 0; c < cg; ++c)
            for (Index i = 0; i < kh; ++i)
                for (Index t = 0; t < kw; ++t) {
                    const Index kk = order == KOrder::Chw ? (c * kh + i) * kw + t : (i * kw + t) * cg + c;
                    m[size_t(kk * og + j)] = src[(c * kh + i) * kw + t];
                }
    }
    return m;
}
}  // namespace

PackedConvGemm pack_conv_gemm(const void* w, bool w_unsigned, Index o, Index cg, Index kh, Index kw, Index groups,
                              KOrder order, Accum accum) {
    PackedConvGemm p;
    p.out_channels = o;
    p.in_per_group = cg;
    p.kernel_h = kh;
    p.kernel_w = kw;
    p.groups = groups;
    p.order = order;
    p.accum = accum;
    p.w_unsigned = w_unsigned;
    const Index og = o / groups, k = cg * kh * kw;
    for (Index gi = 0; gi < groups; ++gi) {
        if (accum == Accum::Int16Pairs) {
            if (w_unsigned) {
                const auto m = group_matrix(static_cast<const uint8_t*>(w), og, cg, kh, kw, gi, order);
                p.quads.push_back(pack_cols(m.data(), og, k, 1, og, Layout::Quads));
            } else {
                const auto m = group_matrix(static_cast<const int8_t*>(w), og, cg, kh, kw, gi, order);
                p.quads.push_back(pack_cols(m.data(), og, k, 1, og, Layout::Quads));
            }
        } else {
            std::vector<int8_t> m;
            if (w_unsigned) {  // w - 128 as int8 (byte xor 0x80); the zero points move by the same -128
                const auto u = group_matrix(static_cast<const uint8_t*>(w), og, cg, kh, kw, gi, order);
                m.resize(u.size());
                for (size_t i = 0; i < u.size(); ++i) m[i] = int8_t(uint8_t(u[i] ^ 0x80u));
                p.w_offset = -128;
            } else {
                m = group_matrix(static_cast<const int8_t*>(w), og, cg, kh, kw, gi, order);
            }
            p.exact.push_back(pack_gemm_b(m.data(), k, og));
        }
    }
    return p;
}

namespace {
// The im2col rows of one group: row p = (oy, ox), K taps in `order`, padding = the zero point.
// xp is the image padded with the zero point: Chw: [c][y][x] (all channels), Hwc: [y][x][c].
template <class T>
void im2col_rows(const T* xp, const ConvGeometry& g, Index hp, Index wp, Index gi, KOrder order, T* rows) {
    const Index cg = g.channels / g.groups, kh = g.kernel_h, kw = g.kernel_w, k = cg * kh * kw;
    const Index oh = g.out_h(), ow = g.out_w(), c0 = gi * cg;
    parallel_tasks(oh, threads_for_work(double(oh * ow * k), oh), [&](std::ptrdiff_t task, int) {
        const Index oy = Index(task);
        for (Index ox = 0; ox < ow; ++ox) {
            T* r = rows + (oy * ow + ox) * k;
            const Index y0 = oy * g.stride_h, x0 = ox * g.stride_w;
            if (order == KOrder::Hwc) {
                for (Index i = 0; i < kh; ++i)
                    for (Index t = 0; t < kw; ++t) {
                        const T* src = xp + ((y0 + i * g.dilation_h) * wp + x0 + t * g.dilation_w) * g.channels + c0;
                        std::memcpy(r + (i * kw + t) * cg, src, size_t(cg) * sizeof(T));
                    }
            } else {
                for (Index c = 0; c < cg; ++c)
                    for (Index i = 0; i < kh; ++i) {
                        const T* src = xp + ((c0 + c) * hp + y0 + i * g.dilation_h) * wp + x0;
                        for (Index t = 0; t < kw; ++t) r[(c * kh + i) * kw + t] = src[t * g.dilation_w];
                    }
            }
        }
    });
}

// Channel j of an int32 (pixels x og) tile as a contiguous plane.
void gather_channel(const int32_t* tile, Index pixels, Index og, Index j, int32_t* plane) {
    for (Index p = 0; p < pixels; ++p) plane[p] = tile[p * og + j];
}

// The zero-point-padded image in the layout the K order reads: Chw [c][y][x], Hwc [y][x][c].
template <class T>
void pad_image(const T* img, const ConvGeometry& g, Index hp, Index wp, KOrder order, T zp, T* xp) {
    const Index c_n = g.channels, h = g.height, w = g.width;
    std::fill(xp, xp + c_n * hp * wp, zp);
    if (order == KOrder::Chw) {
        for (Index c = 0; c < c_n; ++c)
            for (Index y = 0; y < h; ++y)
                std::memcpy(xp + (c * hp + y + g.pad_top) * wp + g.pad_left, img + (c * h + y) * w, size_t(w) * sizeof(T));
        return;
    }
    parallel_tasks(h, threads_for_work(double(c_n * h * w), h), [&](std::ptrdiff_t task, int) {
        const Index y = Index(task);
        T* row = xp + ((y + g.pad_top) * wp + g.pad_left) * c_n;
        for (Index c = 0; c < c_n; ++c) {
            const T* src = img + (c * h + y) * w;
            for (Index x = 0; x < w; ++x) row[x * c_n + c] = src[x];
        }
    });
}
}  // namespace

template <class T>
void conv2d_gemm(const T* x, const ConvGeometry& g, const PackedConvGemm& w, const ConvGemmArgs& args) {
    const Index cg = g.channels / g.groups, og = g.out_channels / g.groups, k = cg * g.kernel_h * g.kernel_w;
    const Index oh = g.out_h(), ow = g.out_w(), pixels = oh * ow;
    const Index hp = g.height + g.pad_top + g.pad_bottom, wp = g.width + g.pad_left + g.pad_right;
    const bool sat = w.accum == Accum::Int16Pairs;
    if (sat && std::is_unsigned<T>::value == w.w_unsigned)
        throw std::invalid_argument("int16-pair accumulation needs exactly one unsigned operand (uint8 x int8)");
    // Scratch without zero-initialisation (every element is written before it is read).
    std::unique_ptr<T[]> xp(new T[size_t(g.channels * hp * wp)]), rows(new T[size_t(pixels * k)]);
    std::unique_ptr<int32_t[]> tile(new int32_t[size_t(pixels * og)]);
    std::vector<int32_t> zb(static_cast<size_t>(og));
    for (Index n = 0; n < g.batch; ++n) {
        pad_image(x + n * g.channels * g.height * g.width, g, hp, wp, w.order, T(args.x_zero_point), xp.get());
        for (Index gi = 0; gi < g.groups; ++gi) {
            im2col_rows(xp.get(), g, hp, wp, gi, w.order, rows.get());
            for (Index j = 0; j < og; ++j)
                zb[size_t(j)] = args.w_zero_point[args.w_zero_point_count == 1 ? 0 : gi * og + j] + w.w_offset;
            AffineArgs ga;
            ga.bias = args.bias ? args.bias + gi * og : nullptr;
            ga.za = &args.x_zero_point;
            ga.za_count = 1;
            ga.zb = zb.data();
            ga.zb_count = og;
            ga.path = args.path;
            ga.out = tile.get();  // int32 (pixels x og); requantized per channel plane below
            if (sat) gemm_affine_pairs(rows.get(), pixels, w.quads[size_t(gi)], ga);
            else gemm_affine(rows.get(), pixels, w.exact[size_t(gi)], ga);
            // Each channel's plane out of the tile, requantized with its channel's parameters (the
            // per-plane loop vectorises) straight into the NCHW output.
            const Index ch0 = n * g.out_channels + gi * og;
            parallel_tasks(og, threads_for_work(double(pixels * og), og), [&](std::ptrdiff_t task, int) {
                const Index j = Index(task);
                if (!args.rq) {
                    gather_channel(tile.get(), pixels, og, j, static_cast<int32_t*>(args.out) + (ch0 + j) * pixels);
                    return;
                }
                std::vector<int32_t> plane(static_cast<size_t>(pixels));
                gather_channel(tile.get(), pixels, og, j, plane.data());
                with_out_type(args.rq->out_type, [&](auto o) {
                    using Out = decltype(o);
                    args.rq->apply_channel(plane.data(), pixels, gi * og + j, static_cast<Out*>(args.out) + (ch0 + j) * pixels);
                });
            });
        }
    }
}

template void conv2d_gemm<int8_t>(const int8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);
template void conv2d_gemm<uint8_t>(const uint8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);

}  // namespace fxp::kern
