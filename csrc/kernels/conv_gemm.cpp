// im2col + affine GEMM convolution (see conv_gemm.hpp).
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <cstring>
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

// out[ch0 + j][p] = tile[p][j] for an (pixels x og) tile of `bytes`-byte words; out rows of `pixels`.
void transpose_into(const char* tile, Index pixels, Index og, int bytes, char* out) {
    for (Index j = 0; j < og; ++j) {
        char* dst = out + j * pixels * bytes;
        for (Index p = 0; p < pixels; ++p) std::memcpy(dst + p * bytes, tile + (p * og + j) * bytes, size_t(bytes));
    }
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
    const int bytes = args.rq ? with_out_type(args.rq->out_type, [](auto o) { return int(sizeof(o)); }) : 4;
    std::vector<T> xp(size_t(g.channels * hp * wp)), rows(size_t(pixels * k));
    std::vector<char> tile(size_t(pixels * og * bytes));
    std::vector<int32_t> zb(static_cast<size_t>(og));
    for (Index n = 0; n < g.batch; ++n) {
        // The zero-point-padded image, in the layout the K order reads.
        const T* img = x + n * g.channels * g.height * g.width;
        std::fill(xp.begin(), xp.end(), T(args.x_zero_point));
        for (Index c = 0; c < g.channels; ++c)
            for (Index y = 0; y < g.height; ++y)
                for (Index xx = 0; xx < g.width; ++xx) {
                    const T v = img[(c * g.height + y) * g.width + xx];
                    const Index py = y + g.pad_top, px = xx + g.pad_left;
                    if (w.order == KOrder::Hwc) xp[size_t((py * wp + px) * g.channels + c)] = v;
                    else xp[size_t((c * hp + py) * wp + px)] = v;
                }
        for (Index gi = 0; gi < g.groups; ++gi) {
            im2col_rows(xp.data(), g, hp, wp, gi, w.order, rows.data());
            for (Index j = 0; j < og; ++j)
                zb[size_t(j)] = args.w_zero_point[args.w_zero_point_count == 1 ? 0 : gi * og + j] + w.w_offset;
            AffineArgs ga;
            ga.bias = args.bias ? args.bias + gi * og : nullptr;
            ga.za = &args.x_zero_point;
            ga.za_count = 1;
            ga.zb = zb.data();
            ga.zb_count = og;
            ga.path = args.path;
            ga.out = tile.data();
            Requantizer rq;
            if (args.rq) {  // the group's channels: per-channel parameters from channel gi * og on
                rq = *args.rq;
                if (rq.num_channels != 1) {
                    rq.num_channels = og;
                    if (rq.shift) rq.shift += gi * og;
                    if (rq.multiplier) rq.multiplier += gi * og;
                    if (rq.scale) rq.scale += gi * og;
                }
                ga.rq = &rq;
            }
            if (sat) gemm_affine_pairs(rows.data(), pixels, w.quads[size_t(gi)], ga);
            else gemm_affine(rows.data(), pixels, w.exact[size_t(gi)], ga);
            char* out = static_cast<char*>(args.out) + ((n * g.out_channels + gi * og) * pixels) * bytes;
            transpose_into(tile.data(), pixels, og, bytes, out);
        }
    }
}

template void conv2d_gemm<int8_t>(const int8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);
template void conv2d_gemm<uint8_t>(const uint8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);

}  // namespace fxp::kern
