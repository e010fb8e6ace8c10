// 2-D convolution: im2col into the packed GEMM layout for generic groups, a direct kernel for
// depthwise. See conv.hpp for the design.
#include "kernels/conv.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "cpu/features.hpp"
#include "fixed/requantize_fp32.hpp"
#include "kernels/conv_depthwise.hpp"
#include "kernels/gemm_affine.hpp"
#include "kernels/gemm_vnni.hpp"
#include "kernels/pack_units.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

PackedConvWeights pack_conv_weights(const int8_t* w, Index o, Index cg, Index kh, Index kw, Index groups) {
    PackedConvWeights p;
    p.out_channels = o;
    p.in_per_group = cg;
    p.kernel_h = kh;
    p.kernel_w = kw;
    p.groups = groups;
    p.raw.assign(w, w + o * cg * kh * kw);
    p.has_quads = cpu_has_avx2();
    const Index og = o / groups, k = cg * kh * kw;
    for (Index g = 0; g < groups; ++g) {
        const int8_t* wg = w + g * og * k;
        p.pairs.push_back(pack_rows(wg, og, k, k, 1, Layout::Pairs));
        if (p.has_quads) p.quads.push_back(pack_rows(wg, og, k, k, 1, Layout::Quads));
        if (cpu_has_vnni()) {
            // K order (channel / 4, kh, kw, channel % 4): a K unit is 4 channels of one tap, i.e. one
            // dword of an image interleaved by 4 channels. Padding channels get zero weights.
            const Index c4 = (cg + 3) / 4, k4 = c4 * kh * kw * 4;
            std::vector<int8_t> re(size_t(og * k4), 0);
            for (Index r = 0; r < og; ++r)
                for (Index c = 0; c < cg; ++c)
                    for (Index i = 0; i < kh; ++i)
                        for (Index j = 0; j < kw; ++j)
                            re[size_t(r * k4 + (((c / 4) * kh + i) * kw + j) * 4 + c % 4)] = wg[r * k + (c * kh + i) * kw + j];
            p.quads_c4.push_back(pack_rows(re.data(), og, k4, k4, 1, Layout::Quads));
        }
    }
    return p;
}

namespace {

// Writes n finished accumulators of channel oc (already corrected) to out, requantizing if asked.
void emit(const ConvArgs& args, Index oc, const int32_t* acc, Index n, Index out_offset) {
    if (args.rq) {
        with_out_type(args.rq->out_type, [&](auto o) {
            using Out = decltype(o);
            args.rq->apply_channel(acc, n, oc, static_cast<Out*>(args.out) + out_offset);
        });
    } else {
        std::memcpy(static_cast<int32_t*>(args.out) + out_offset, acc, size_t(n) * sizeof(int32_t));
    }
}

// ---- generic groups: im2col + packed GEMM -----------------------------------------------------

// The column grid of one image: column j reads the padded image at base(j). Three kinds:
// contiguous  stride 1, out_h x padded width: every panel is one byte run per K row; the extra
//             columns (padded width - out_w per row) are computed and dropped by the epilogue;
// dense       stride 1, out_h x out_w (out_w >= NR): a panel spans at most two output rows, i.e. two
//             byte runs per K row, the second delta = padded width - out_w further on (AVX-512 masked
//             loads); no column is wasted and column j is output pixel j;
// gathered    other strides, out_h x out_w, gathered per column.
struct ColumnGrid {
    Index grid_w, cols, padded_w;
    Index stride_h, stride_w;
    bool contiguous, dense = false;
    Index base(Index j) const { return contiguous ? j : (j / grid_w) * stride_h * padded_w + (j % grid_w) * stride_w; }
};

bool cpu_has_vbmi() {
    return cpu::has_avx512_vbmi();
}

// One panel in the quad layout: unit u from the four K rows base + offsets[4u..4u+3] (16 bytes each;
// columns whose bit is set in `second` read delta bytes further on: the next output row of a dense
// grid). The four rows go into the lanes of one zmm and a single vpermb transposes them (output byte
// 4j + t = row t, column j). K padding rows are zero.
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"))) void quad_panel_vbmi(const T* base, const Index* offsets, Index k,
                                                                                        Index units, int32_t* d, __mmask16 second,
                                                                                        Index delta) {
    alignas(64) static const uint8_t order[64] = {
        0, 16, 32, 48, 1, 17, 33, 49, 2,  18, 34, 50, 3,  19, 35, 51, 4,  20, 36, 52, 5,  21, 37, 53,
        6, 22, 38, 54, 7, 23, 39, 55, 8,  24, 40, 56, 9,  25, 41, 57, 10, 26, 42, 58, 11, 27, 43, 59,
        12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};
    const __m512i idx = _mm512_load_si512(order);
    // (Macros, not lambdas: a lambda would not inherit the function's target.)
#define FXP_K_LOAD(kk) _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsets[kk]))
#define FXP_K_JOIN(kk) _mm_mask_loadu_epi8(FXP_K_LOAD(kk), second, base + offsets[kk] + delta)
#define FXP_K_UNIT(ROW)                                                       \
    {                                                                         \
        __m512i v = _mm512_castsi128_si512(ROW(4 * u));                       \
        v = _mm512_inserti32x4(v, ROW(4 * u + 1), 1);                         \
        v = _mm512_inserti32x4(v, ROW(4 * u + 2), 2);                         \
        v = _mm512_inserti32x4(v, ROW(4 * u + 3), 3);                         \
        _mm512_storeu_si512(d + u * NR, _mm512_permutexvar_epi8(idx, v));     \
    }
#define FXP_K_TAIL(kk) ((kk) < k ? FXP_K_JOIN(kk) : _mm_setzero_si128())
    const Index full = k / 4;
    Index u = 0;
    if (second)
        for (; u < full; ++u) FXP_K_UNIT(FXP_K_JOIN)
    else
        for (; u < full; ++u) FXP_K_UNIT(FXP_K_LOAD)
    for (; u < units; ++u) FXP_K_UNIT(FXP_K_TAIL)  // the K padding rows of the last unit are zero
#undef FXP_K_TAIL
#undef FXP_K_UNIT
#undef FXP_K_JOIN
#undef FXP_K_LOAD
}

// The im2col matrix of one image and group as the right GEMM operand, packed panel by panel by the
// driver: K rows (c, kh, kw) x columns of the grid. Quads of a contiguous grid (stride 1) are built
// straight from the padded image rows; other cases go through a K x 16 tile.
template <class T>
struct Im2Col : ColSource {
    const T* xp;                            // the group's first channel in the padded image
    const ColumnGrid& grid;
    const std::vector<Index>& k_offsets;    // offset of (c, kh, kw) from a column's base
    bool simd;                              // SSE2 reshuffle (every path but Portable)
    bool vbmi;                              // vpermb reshuffle (the VNNI path on a CPU with VBMI)
    Im2Col(const T* x, const ColumnGrid& g, const std::vector<Index>& offsets, Layout l, bool use_simd, bool use_vbmi)
        : xp(x), grid(g), k_offsets(offsets), simd(use_simd), vbmi(use_vbmi) {
        layout = l;
        is_unsigned = l == Layout::Quads || std::is_unsigned<T>::value;
        count = g.cols;
        k = Index(offsets.size());
        units = k_units(l, k);
    }
    const int32_t* cols(Index j0, Index n, std::vector<int32_t>& scratch) const override {
        const Index panels = (n + NR - 1) / NR, kpad = padded_k(k);
        scratch.resize(size_t(panels * NR * units));
        if (vbmi && layout == Layout::Quads && grid.contiguous) {
            for (Index np = 0; np < panels; ++np)
                quad_panel_vbmi(xp + j0 + np * NR, k_offsets.data(), k, units, scratch.data() + np * NR * units, 0, 0);
            return scratch.data();
        }
        if (vbmi && layout == Layout::Quads && grid.dense) {
            const Index delta = grid.padded_w - grid.grid_w;
            for (Index np = 0; np < panels; ++np) {
                const Index c0 = j0 + np * NR, ow0 = c0 % grid.grid_w;
                // Columns [first, valid) continue on the next output row (columns past the count are garbage
                // that the driver never stores; they are not read from the next row).
                const Index first = grid.grid_w - ow0, valid = std::min<Index>(NR, count - c0);
                const __mmask16 second = first < valid ? __mmask16(((1u << valid) - 1u) & ~((1u << first) - 1u)) : 0;
                quad_panel_vbmi(xp + grid.base(c0), k_offsets.data(), k, units, scratch.data() + np * NR * units, second, delta);
            }
            return scratch.data();
        }
        if (simd && layout == Layout::Quads && grid.contiguous) {
            static const T zeros[NR] = {};  // K padding rows
            for (Index np = 0; np < panels; ++np) {
                const Index c0 = j0 + np * NR;
                int32_t* d = scratch.data() + np * NR * units;
                const T* row[4];
                for (Index u = 0; u < units; ++u) {
                    for (int t = 0; t < 4; ++t) {
                        const Index kk = 4 * u + t;
                        row[t] = kk < k ? xp + k_offsets[size_t(kk)] + c0 : zeros;
                    }
                    quad_unit_sse2(row[0], row[1], row[2], row[3], d + u * NR);
                }
            }
            return scratch.data();
        }
        std::vector<T> tile(size_t(kpad * NR), T(0));  // tile[k][j]: K rows of one panel's 16 columns
        Index base[NR];
        for (Index np = 0; np < panels; ++np) {
            const Index c0 = j0 + np * NR;
            for (int j = 0; j < NR; ++j) base[j] = c0 + j < count ? grid.base(c0 + j) : 0;
            for (Index kk = 0; kk < k; ++kk) {
                const T* src = xp + k_offsets[size_t(kk)];
                T* t = tile.data() + kk * NR;
                if (grid.contiguous) std::memcpy(t, src + c0, NR * sizeof(T));
                else for (int j = 0; j < NR; ++j) t[j] = src[base[j]];
            }
            int32_t* d = scratch.data() + np * NR * units;
            if (layout == Layout::Pairs) {
                for (Index u = 0; u < units; ++u) {
                    const T* r0 = tile.data() + 2 * u * NR;
                    const T* r1 = r0 + NR;
                    for (int j = 0; j < NR; ++j)
                        d[u * NR + j] = int32_t(uint32_t(uint16_t(int16_t(r0[j]))) | (uint32_t(uint16_t(int16_t(r1[j]))) << 16));
                }
            } else if (simd) {
                for (Index u = 0; u < units; ++u) {
                    const T* r = tile.data() + 4 * u * NR;
                    quad_unit_sse2(r, r + NR, r + 2 * NR, r + 3 * NR, d + u * NR);
                }
            } else {
                for (Index u = 0; u < units; ++u) {
                    const uint8_t* r = reinterpret_cast<const uint8_t*>(tile.data() + 4 * u * NR);
                    for (int j = 0; j < NR; ++j)
                        d[u * NR + j] = int32_t(uint32_t(r[j]) | (uint32_t(r[NR + j]) << 8) | (uint32_t(r[2 * NR + j]) << 16) |
                                                (uint32_t(r[3 * NR + j]) << 24));
                }
            }
        }
        return scratch.data();
    }
};

// ---- images interleaved by 4 channels (VNNI + VBMI, stride 1, outputs >= NR wide) ---------------
// The padded image stored as [channel / 4][row][column][channel % 4] bytes: the dword of one pixel
// holds 4 channels, which is exactly a quad K unit of the weights packed as quads_c4. A panel unit
// (16 output pixels of one tap, 4 channels) is then one 64-byte run of the image (two on a panel that
// crosses an output row), which the VNNI kernels read where it is: no transpose, no copy per panel.
// The interleave itself is one vpermb per 16 pixels of 4 channel rows, once per image.

// Channel rows r[0..3] (n bytes each; T = int8 read as x + 128 when flip) into 4n interleaved bytes.
template <class T>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"))) void interleave_rows(const T* const* r, Index n, bool flip,
                                                                                        uint8_t* dst) {
    alignas(64) static const uint8_t order[64] = {
        0, 16, 32, 48, 1, 17, 33, 49, 2,  18, 34, 50, 3,  19, 35, 51, 4,  20, 36, 52, 5,  21, 37, 53,
        6, 22, 38, 54, 7, 23, 39, 55, 8,  24, 40, 56, 9,  25, 41, 57, 10, 26, 42, 58, 11, 27, 43, 59,
        12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};
    const __m512i idx = _mm512_load_si512(order);
    const __m512i sign = _mm512_set1_epi8(flip ? char(0x80) : 0);
    for (Index i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1u);
        __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(m, r[0] + i));
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, r[1] + i), 1);
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, r[2] + i), 2);
        v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, r[3] + i), 3);
        _mm512_mask_storeu_epi32(dst + 4 * i, m, _mm512_xor_si512(_mm512_permutexvar_epi8(idx, v), sign));
    }
}

// The interleaved image as the right operand, read in place by the VNNI kernels: unit u of column j
// at base(j) + offsets[u] (one dword per column), so a panel unit is one 64-byte run of the image and
// nothing is packed.
struct InterleavedCols : ColSource {
    const int32_t* xp;                    // the group's first channel quad
    const ColumnGrid& grid;
    InterleavedCols(const uint8_t* x, const ColumnGrid& g, const std::vector<Index>& dword_offsets)
        : xp(reinterpret_cast<const int32_t*>(x)), grid(g) {
        layout = Layout::Quads;
        is_unsigned = true;
        count = g.cols;
        units = Index(dword_offsets.size());
        k = 4 * units;
        unit_offsets = dword_offsets.data();
    }
    const int32_t* cols(Index, Index, std::vector<int32_t>&) const override {
        throw std::logic_error("an interleaved image is read in place by the VNNI kernels, never packed");
    }
    const int32_t* image(Index c0, uint16_t& second, Index& delta) const override {
        const Index ow0 = c0 % grid.grid_w;
        // Columns [first, valid) continue on the next output row, (padded width - out_w) pixels on;
        // columns past the count are garbage the driver never stores.
        const Index first = grid.grid_w - ow0, valid = std::min<Index>(NR, count - c0);
        second = first < valid ? uint16_t(((1u << valid) - 1u) & ~((1u << first) - 1u)) : 0;
        delta = grid.padded_w - grid.grid_w;
        return xp + (c0 / grid.grid_w) * grid.padded_w + ow0;
    }
};

// Row i of group `group`: output channel oc, corrected by -zp * sum(w[oc]) + bias, scattered from the
// column grid into the output plane.
struct ConvEpilogue : Epilogue {
    const ConvArgs& args;
    const ConvGeometry& geo;
    const ColumnGrid& grid;
    const std::vector<int64_t>& row_sums;
    Index oc0, image;
    int32_t zp;  // the zero point of the image as multiplied (+ 128 for int8 read as x + 128)
    ConvEpilogue(const ConvArgs& a, const ConvGeometry& g, const ColumnGrid& gr, const std::vector<int64_t>& rs, Index o0, Index n,
                 int32_t zero_point)
        : args(a), geo(g), grid(gr), row_sums(rs), oc0(o0), image(n), zp(zero_point) {}
    // int32 output whose columns are the grid's (no padded-width columns): every block goes straight
    // into the output plane, the per-channel term added in the kernel's final store.
    // With an MlasFp32 requantizer into 8/16-bit words (`fp32`), the kernel requantizes in that store.
    const std::vector<int32_t>* row_terms = nullptr;
    const DirectFp32* fp32 = nullptr;
    bool direct(DirectOutput& d) const override {
        if (!row_terms || grid.contiguous || (args.rq && !fp32)) return false;
        d.ld = geo.out_h() * geo.out_w();
        const Index offset = (image * geo.out_channels + oc0) * d.ld;
        d.out = fp32 ? reinterpret_cast<int32_t*>(static_cast<char*>(args.out) + offset * fp32->bytes)
                     : static_cast<int32_t*>(args.out) + offset;
        d.add = nullptr;
        d.add_row = row_terms->data();
        d.fp32 = fp32;
        return true;
    }
    void row(Index i, Index j0, Index n, int32_t* acc) const override {
        const Index oc = oc0 + i, ow_count = geo.out_w();
        const uint32_t term = uint32_t(args.bias ? args.bias[oc] : 0) - uint32_t(zp) * uint32_t(row_sums[size_t(i)]);
        const Index plane = (image * geo.out_channels + oc) * geo.out_h() * ow_count;
        if (!args.rq) {  // int32 output: the correction on the way out, one pass
            int32_t* out = static_cast<int32_t*>(args.out) + plane;
            for (Index j = j0; j < j0 + n;) {
                const Index oh = j / grid.grid_w, ow = j % grid.grid_w;
                if (ow >= ow_count) {
                    j += grid.grid_w - ow;
                    continue;
                }
                const Index len = std::min(ow_count - ow, j0 + n - j);
                const int32_t* src = acc + (j - j0);
                int32_t* dst = out + oh * ow_count + ow;
                for (Index t = 0; t < len; ++t) dst[t] = int32_t(uint32_t(src[t]) + term);
                j += len;
            }
            return;
        }
        for (Index j = 0; j < n; ++j) acc[j] = int32_t(uint32_t(acc[j]) + term);
        for (Index j = j0; j < j0 + n;) {
            const Index oh = j / grid.grid_w, ow = j % grid.grid_w;
            if (ow >= ow_count) {  // padded-width columns of the contiguous grid
                j += grid.grid_w - ow;
                continue;
            }
            const Index len = std::min(ow_count - ow, j0 + n - j);
            emit(args, oc, acc + (j - j0), len, plane + oh * ow_count + ow);
            j += len;
        }
    }
};

template <class T>
void conv_generic(const T* x, const ConvGeometry& g, const PackedConvWeights& w, const ConvArgs& args) {
    const Index hp = g.height + g.pad_top + g.pad_bottom, wp = g.width + g.pad_left + g.pad_right;
    const Index cg = g.channels / g.groups, og = g.out_channels / g.groups;
    const Index plane = hp * wp;
    ColumnGrid grid;
    grid.padded_w = wp;
    grid.stride_h = g.stride_h;
    grid.stride_w = g.stride_w;
    const Path path = resolve(args.path);
    // On a VNNI CPU every image takes the quads: vpdpbusd is exact for every uint8 byte, and int8
    // images are read as x + 128 (xor 0x80 in the padded copy) against the zero point zp + 128:
    // W (x + 128) - (zp + 128) sum(W) = W (x - zp), the same result modulo 2^32 (the raw sums may
    // wrap on the way; convolution outputs are int32 wrapped like every accumulator here).
    // Otherwise vpmaddubsw with the image bytes as the unsigned operand: exact when they (and the
    // padding value) are <= 127.
    const bool vnni = path == Path::Auto && w.has_quads && vnni_enabled();
    const bool vbmi = vnni && cpu_has_vbmi();
    const bool stride1 = g.stride_h == 1 && g.stride_w == 1;
    grid.dense = stride1 && vbmi && g.out_w() >= NR;
    grid.contiguous = stride1 && !grid.dense;
    grid.grid_w = grid.contiguous ? wp : g.out_w();
    grid.cols = g.out_h() * grid.grid_w;

    const int32_t zp = args.x_zero_point;
    const Index image_size = g.channels * g.height * g.width;
    const bool flip = vnni && std::is_signed<T>::value;
    const bool quads = vnni || (path == Path::Auto && w.has_quads && zp >= 0 && zp <= 127 &&
                                bytes_below_128(x, g.batch * image_size));
    const Layout layout = quads ? Layout::Quads : Layout::Pairs;
    const Path run_path = vnni ? Path::Vnni : path;
    const int32_t zp_run = flip ? zp + 128 : zp;
    const T pad_value = flip ? T(uint8_t(zp + 128)) : T(zp);

    // Zero-point-padded image, with slack so that contiguous panels may read past the last row
    // (allocated below unless the image is interleaved instead).
    std::vector<T> xp;
    std::vector<int32_t> row_terms;
    // ONNX Runtime's requantization into 8/16-bit words can be fused into the kernel's store.
    std::vector<float> row_scales;
    DirectFp32 fp32;
    const bool fused = vnni && args.rq && direct_fp32(*args.rq, fp32);
    // Stride 1 on VNNI + VBMI with a dense grid: the image interleaved by 4 channels (see InterleavedCols).
    const bool interleave = grid.dense && !w.quads_c4.empty();
    const Index cg4 = (cg + 3) / 4, plane4 = plane * 4;
    // Kept per thread between calls: a fresh buffer of a few hundred KB is a fresh mmap, page faults included.
    static thread_local std::vector<uint8_t> xi;
    std::vector<Index> unit_offsets, k_offsets;  // per K unit (interleaved) or per K row (Im2Col)
    std::vector<T> zp_row;
    if (interleave) {
        xi.resize(size_t(g.groups * cg4 * plane4 + 4 * wp + 256));
        for (Index c4 = 0; c4 < cg4; ++c4)
            for (Index ki = 0; ki < g.kernel_h; ++ki)
                for (Index kj = 0; kj < g.kernel_w; ++kj)
                    unit_offsets.push_back(c4 * plane + ki * g.dilation_h * wp + kj * g.dilation_w);  // dwords
        zp_row.assign(size_t(g.width), T(zp));  // the rows of padding channels (zero weights)
    } else {
        xp.resize(size_t(g.channels * plane + g.dilation_w * g.kernel_w + 2 * NR + wp));
        for (Index c = 0; c < cg; ++c)
            for (Index ki = 0; ki < g.kernel_h; ++ki)
                for (Index kj = 0; kj < g.kernel_w; ++kj)
                    k_offsets.push_back(c * plane + ki * g.dilation_h * wp + kj * g.dilation_w);
    }
    for (Index n = 0; n < g.batch; ++n) {
        const T* xn = x + n * image_size;
        if (interleave) {
            // Only the padding is filled: the image covers the rest (the slack is read only by columns
            // past the count, which are never stored).
            const uint8_t pad = uint8_t(pad_value);
            const Index row_bytes = 4 * wp, left = 4 * g.pad_left, right = 4 * g.pad_right;
            for (Index q = 0; q < g.groups * cg4; ++q) {
                uint8_t* pq = xi.data() + q * plane4;
                std::memset(pq, pad, size_t(g.pad_top * row_bytes));
                std::memset(pq + (g.pad_top + g.height) * row_bytes, pad, size_t(g.pad_bottom * row_bytes));
                for (Index h = g.pad_top; h < g.pad_top + g.height; ++h) {
                    std::memset(pq + h * row_bytes, pad, size_t(left));
                    std::memset(pq + (h + 1) * row_bytes - right, pad, size_t(right));
                }
            }
            for (Index grp = 0; grp < g.groups; ++grp)
                for (Index c4 = 0; c4 < cg4; ++c4)
                    for (Index h = 0; h < g.height; ++h) {
                        const T* rows[4];
                        for (Index t = 0; t < 4; ++t) {
                            const Index c = c4 * 4 + t;
                            rows[t] = c < cg ? xn + ((grp * cg + c) * g.height + h) * g.width : zp_row.data();
                        }
                        interleave_rows(rows, g.width, flip,
                                        xi.data() + (grp * cg4 + c4) * plane4 + ((h + g.pad_top) * wp + g.pad_left) * 4);
                    }
        } else {
            std::fill(xp.begin(), xp.end(), pad_value);
            for (Index c = 0; c < g.channels; ++c)
                for (Index h = 0; h < g.height; ++h) {
                    T* dst = xp.data() + c * plane + (h + g.pad_top) * wp + g.pad_left;
                    const T* src = xn + (c * g.height + h) * g.width;
                    if (flip) {  // (int8 read as x + 128: VNNI only)
                        copy_sign_flipped(reinterpret_cast<const unsigned char*>(src), g.width,
                                          reinterpret_cast<unsigned char*>(dst), g.width);
                    } else {
                        std::memcpy(dst, src, size_t(g.width) * sizeof(T));
                    }
                }
        }
        for (Index grp = 0; grp < g.groups; ++grp) {
            const PackedRows& pw = interleave ? w.quads_c4[size_t(grp)] : quads ? w.quads[size_t(grp)] : w.pairs[size_t(grp)];
            ConvEpilogue ep(args, g, grid, pw.row_sums, grp * og, n, zp_run);
            if (vnni && (!args.rq || fused)) {  // per output channel: bias - zp * sum(w), modulo 2^32
                row_terms.resize(size_t(og));
                for (Index i = 0; i < og; ++i)
                    row_terms[size_t(i)] = int32_t(uint32_t(args.bias ? args.bias[grp * og + i] : 0) -
                                                   uint32_t(zp_run) * uint32_t(uint64_t(pw.row_sums[size_t(i)])));
                ep.row_terms = &row_terms;
                if (fused) {
                    row_scales.resize(size_t(og));
                    for (Index i = 0; i < og; ++i) row_scales[size_t(i)] = args.rq->params_at(grp * og + i).scale;
                    fp32.scale_row = row_scales.data();
                    ep.fp32 = &fp32;
                }
            }
            if (interleave)
                multiply(pw, InterleavedCols(xi.data() + grp * cg4 * plane4, grid, unit_offsets), ep, run_path);
            else
                multiply(pw, Im2Col<T>(xp.data() + grp * cg * plane, grid, k_offsets, layout, path != Path::Portable, vbmi), ep,
                         run_path);
        }
    }
}

// ---- depthwise: direct kernel over int16 pairs of adjacent taps ---------------------------------
//
// Each padded input row v = x - zp (int16, zero padding) is stored as int16 pairs of horizontally
// adjacent taps, pr[i] = (v[i], v[i + dilation]), split into `stride` phases ph[r][m] = pr[m * stride + r]
// so that the pair of taps (2t, 2t + 1) of output columns ow.. is a contiguous run of phase
// (2t * dilation) % stride at m = ow + (2t * dilation) / stride, for any horizontal stride. vpmaddwd
// sums the two taps of 8 output columns at a time.

struct DepthwisePlan {
    Index hp, oh, ow, ow_round, taps;  // taps: pairs per kernel row
    Index phase_w, row_w;              // pairs per phase, per padded row (stride phases)
    std::vector<Index> tap_off;        // per kernel row and pair: its offset in a padded row's pairs
};

// bias + the sum of one channel's output plane over the kernel: acc[oh * ow + ow'].
void depthwise_plane_portable(const int32_t* pairs, const DepthwisePlan& d, const ConvGeometry& g, const int32_t* wpairs,
                              uint32_t bias, int32_t* acc) {
    for (Index oh = 0; oh < d.oh; ++oh)
        for (Index ow = 0; ow < d.ow; ++ow) {
            uint32_t s = bias;
            for (Index ki = 0; ki < g.kernel_h; ++ki) {
                const int32_t* row = pairs + (oh * g.stride_h + ki * g.dilation_h) * d.row_w + ow;
                for (Index t = 0; t < d.taps; ++t) {
                    const uint32_t v = uint32_t(row[d.tap_off[size_t(t)]]), wv = uint32_t(wpairs[ki * d.taps + t]);
                    s += uint32_t(int16_t(v) * int16_t(wv) + int16_t(v >> 16) * int16_t(wv >> 16));
                }
            }
            acc[oh * d.ow + ow] = int32_t(s);
        }
}

// V independent accumulators of 8 outputs each, from the bias (V = 4 in the body of a row, 1 for its
// tail); KH kernel rows and TAPS pairs per row fixed at compile time when not 0 (3 x 3 kernels).
template <int V, int KH, int TAPS>
__attribute__((target("avx2"))) inline void depthwise_block_avx2(const DepthwisePlan& d, const ConvGeometry& g,
                                                                  const int32_t* wpairs, const int32_t* row0, __m256i bias,
                                                                  __m256i* s) {
    const Index kh = KH ? KH : g.kernel_h, taps = TAPS ? TAPS : d.taps;
    for (int v = 0; v < V; ++v) s[v] = bias;
    for (Index ki = 0; ki < kh; ++ki) {
        const int32_t* row = row0 + ki * g.dilation_h * d.row_w;
        for (Index t = 0; t < taps; ++t) {
            const __m256i wv = _mm256_set1_epi32(wpairs[ki * taps + t]);
            const int32_t* p = row + d.tap_off[size_t(t)];
            for (int v = 0; v < V; ++v)
                s[v] = _mm256_add_epi32(s[v], _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 8 * v)), wv));
        }
    }
}

// The plane: row oh at acc + oh * ow, each row written up to ow_round (overwritten by the next row).
template <int KH, int TAPS>
__attribute__((target("avx2"))) void depthwise_plane_avx2(const int32_t* pairs, const DepthwisePlan& d, const ConvGeometry& g,
                                                           const int32_t* wpairs, uint32_t bias, int32_t* acc) {
    const __m256i b = _mm256_set1_epi32(int32_t(bias));
    __m256i s[4];
    for (Index oh = 0; oh < d.oh; ++oh) {
        const int32_t* row0 = pairs + oh * g.stride_h * d.row_w;
        int32_t* out = acc + oh * d.ow;
        Index ow = 0;
        for (; ow + 32 <= d.ow_round; ow += 32) {
            depthwise_block_avx2<4, KH, TAPS>(d, g, wpairs, row0 + ow, b, s);
            for (int v = 0; v < 4; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + ow + 8 * v), s[v]);
        }
        for (; ow < d.ow_round; ow += 8) {
            depthwise_block_avx2<1, KH, TAPS>(d, g, wpairs, row0 + ow, b, s);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + ow), s[0]);
        }
    }
}

// ONNX Runtime's fp32 requantization into 8/16-bit words in the store (DirectFp32, gemm.hpp).
struct PlaneFp32 {
    DirectFp32 f;
    OutType type = OutType::UInt8;
};

// 8 sums requantized into words at out[at..], `valid` of them stored.
__attribute__((target("avx2"))) inline void put_fp32_avx2(__m256i acc, __m256 sc, __m256 lo, __m256 hi, __m256i zp,
                                                          const PlaneFp32& q, void* out, Index at, Index valid) {
    const __m256i r = requantize_fp32_avx2(acc, sc, lo, hi, zp);
    const __m128i w = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi32(r, r), 0xD8));  // 8 int16
    alignas(16) unsigned char tmp[16];
    if (q.f.bytes == 2) {
        int16_t* o = static_cast<int16_t*>(out) + at;
        if (valid >= 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(o), w);
        else _mm_store_si128(reinterpret_cast<__m128i*>(tmp), w), std::memcpy(o, tmp, size_t(valid) * 2);
        return;
    }
    const __m128i bytes = q.type == OutType::UInt8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    unsigned char* o = static_cast<unsigned char*>(out) + at;
    if (valid >= 8) _mm_storel_epi64(reinterpret_cast<__m128i*>(o), bytes);
    else _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes), std::memcpy(o, tmp, size_t(valid));
}

// The same plane requantized as it is summed: each 8 outputs to 8 words of the output plane `out`;
// a row's stores past ow land on the next row's start (rewritten next), the last row's are cut.
template <int KH, int TAPS>
__attribute__((target("avx2"))) void depthwise_plane_fp32_avx2(const int32_t* pairs, const DepthwisePlan& d,
                                                                const ConvGeometry& g, const int32_t* wpairs, uint32_t bias,
                                                                float scale, const PlaneFp32& q, void* out) {
    const __m256i b = _mm256_set1_epi32(int32_t(bias)), zp = _mm256_set1_epi32(q.f.zp);
    const __m256 sc = _mm256_set1_ps(scale), lo = _mm256_set1_ps(q.f.lo), hi = _mm256_set1_ps(q.f.hi);
    __m256i s[4];
    const Index count = d.oh * d.ow;
    for (Index oh = 0; oh < d.oh; ++oh) {
        const int32_t* row0 = pairs + oh * g.stride_h * d.row_w;
        const Index at = oh * d.ow;
        Index ow = 0;
        for (; ow + 32 <= d.ow_round; ow += 32) {
            depthwise_block_avx2<4, KH, TAPS>(d, g, wpairs, row0 + ow, b, s);
            for (int v = 0; v < 4; ++v) put_fp32_avx2(s[v], sc, lo, hi, zp, q, out, at + ow + 8 * v, count - (at + ow + 8 * v));
        }
        for (; ow < d.ow_round; ow += 8) {
            depthwise_block_avx2<1, KH, TAPS>(d, g, wpairs, row0 + ow, b, s);
            put_fp32_avx2(s[0], sc, lo, hi, zp, q, out, at + ow, count - (at + ow));
        }
    }
}

// v[pad_left + i] = x[i] - zp for the row's width (the padding of v stays zero).
template <class T>
void row_minus_zp(const T* xr, Index width, int32_t zp, int16_t* v) {
    for (Index i = 0; i < width; ++i) v[i] = int16_t(int32_t(xr[i]) - zp);
}
template <class T>
__attribute__((target("avx2"))) inline void row_minus_zp_avx2(const T* xr, Index width, int32_t zp, int16_t* v) {
    const __m256i z = _mm256_set1_epi16(int16_t(zp));
    Index i = 0;
    for (; i + 16 <= width; i += 16) {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + i));
        const __m256i w = std::is_unsigned<T>::value ? _mm256_cvtepu8_epi16(b) : _mm256_cvtepi8_epi16(b);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(v + i), _mm256_sub_epi16(w, z));
    }
    if (i + 8 <= width) {
        const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(xr + i));
        const __m128i w = std::is_unsigned<T>::value ? _mm_cvtepu8_epi16(b) : _mm_cvtepi8_epi16(b);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(v + i), _mm_sub_epi16(w, _mm256_castsi256_si128(z)));
        i += 8;
    }
    for (; i < width; ++i) v[i] = int16_t(int32_t(xr[i]) - zp);
}

// The phases of one padded row's pairs from v (ph[r * phase_w + m] = (v[m s + r], v[m s + r + dil])).
void pair_phases(const int16_t* v, Index stride, Index dil, Index phase_w, int32_t* ph) {
    if (stride == dil + 1 && dil == 1) {  // (v[2m + r], v[2m + r + 1]) is the dword at v + r + 2m
        for (Index r = 0; r < stride; ++r) std::memcpy(ph + r * phase_w, v + r, size_t(phase_w) * sizeof(int32_t));
        return;
    }
    for (Index r = 0; r < stride; ++r)
        for (Index m = 0; m < phase_w; ++m)
            ph[r * phase_w + m] = int32_t(uint32_t(uint16_t(v[m * stride + r])) | (uint32_t(uint16_t(v[m * stride + r + dil])) << 16));
}
__attribute__((target("avx2"))) inline void pair_phases_avx2(const int16_t* v, Index stride, Index dil, Index phase_w,
                                                              int32_t* ph) {
    if (stride == 2 && dil == 1) {  // the dwords at v + r (phase_w is a multiple of 16)
        for (Index r = 0; r < 2; ++r)
            for (Index i = 0; i < phase_w; i += 8)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(ph + r * phase_w + i),
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + r + 2 * i)));
        return;
    }
    if (stride != 1) return pair_phases(v, stride, dil, phase_w, ph);
    for (Index i = 0; i < phase_w; i += 16) {  // phase_w is a multiple of 16
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i + dil));
        const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // in-lane halves
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ph + i), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ph + i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
}

// The pairs of every padded row of one input plane (v: the rows x - zp, padding zero). All rows of v
// first, then their pairs: the pairs read v with wide loads that would stall on the just-stored
// narrower values of the same row (no store-to-load forwarding).
template <class T>
void build_plane(const T* xc, const ConvGeometry& g, const DepthwisePlan& d, int32_t zp, Index v_cap, int16_t* v,
                 int32_t* pairs) {
    for (Index h = 0; h < g.height; ++h) row_minus_zp(xc + h * g.width, g.width, zp, v + (g.pad_top + h) * v_cap + g.pad_left);
    for (Index r = 0; r < d.hp; ++r) pair_phases(v + r * v_cap, g.stride_w, g.dilation_w, d.phase_w, pairs + r * d.row_w);
}
template <class T>
__attribute__((target("avx2"))) void build_plane_avx2(const T* xc, const ConvGeometry& g, const DepthwisePlan& d, int32_t zp,
                                                       Index v_cap, int16_t* v, int32_t* pairs) {
    for (Index h = 0; h < g.height; ++h)
        row_minus_zp_avx2(xc + h * g.width, g.width, zp, v + (g.pad_top + h) * v_cap + g.pad_left);
    for (Index r = 0; r < d.hp; ++r) pair_phases_avx2(v + r * v_cap, g.stride_w, g.dilation_w, d.phase_w, pairs + r * d.row_w);
}

template <class T>
void conv_depthwise(const T* x, const ConvGeometry& g, const int16_t* weights, const ConvArgs& args) {
    DepthwisePlan d;
    const Index s = g.stride_w, dil = g.dilation_w;
    d.hp = g.height + g.pad_top + g.pad_bottom;
    d.oh = g.out_h();
    d.ow = g.out_w();
    d.ow_round = round_up(d.ow, 8);
    d.taps = (g.kernel_w + 1) / 2;
    // Pair (2t, 2t + 1) of output column ow is pr[ow * s + 2t * dil]: phase (2t dil) % s, index
    // ow + (2t dil) / s; the last index read is ow_round - 1 + (2 (taps - 1) dil) / s.
    d.phase_w = round_up(d.ow_round + (2 * (d.taps - 1) * dil) / s, 16);
    for (Index t = 0; t < d.taps; ++t) d.tap_off.push_back(((2 * t * dil) % s) * d.phase_w + (2 * t * dil) / s);
    d.row_w = s * d.phase_w;
    // v is read up to (phase_w - 1) s + (s - 1) + dil.
    const Index v_cap = std::max(g.pad_left + g.width, d.phase_w * s + dil) + 16;
    const Index mult = g.out_channels / g.channels, kk = g.kernel_h * g.kernel_w;
    const bool avx2 = resolve(args.path) != Path::Portable;
    const bool k33 = g.kernel_h == 3 && d.taps == 2;
    const auto plane_kernel = !avx2 ? depthwise_plane_portable : k33 ? depthwise_plane_avx2<3, 2> : depthwise_plane_avx2<0, 0>;
    // ONNX Runtime's fp32 requantization into words: in the AVX2 kernel's store.
    PlaneFp32 fp32;
    const bool fused = avx2 && args.rq && direct_fp32(*args.rq, fp32.f);
    if (fused) fp32.type = args.rq->out_type;
    const auto fused_kernel = k33 ? depthwise_plane_fp32_avx2<3, 2> : depthwise_plane_fp32_avx2<0, 0>;
    const auto build = avx2 ? build_plane_avx2<T> : build_plane<T>;
    // The weight pairs of every output channel, once per call.
    std::vector<int32_t> wpairs(size_t(g.out_channels * g.kernel_h * d.taps));
    for (Index oc = 0; oc < g.out_channels; ++oc)
        for (Index ki = 0; ki < g.kernel_h; ++ki)
            for (Index t = 0; t < d.taps; ++t) {
                const int16_t* wr = weights + oc * kk + ki * g.kernel_w;
                const int32_t w0 = wr[2 * t], w1 = 2 * t + 1 < g.kernel_w ? wr[2 * t + 1] : 0;
                wpairs[size_t((oc * g.kernel_h + ki) * d.taps + t)] =
                    int32_t(uint32_t(uint16_t(int16_t(w0))) | (uint32_t(uint16_t(int16_t(w1))) << 16));
            }
    const Index planes = g.batch * g.channels, count = d.oh * d.ow;
    const double work = double(planes) * double(mult) * double(count) * double(kk);
    struct Scratch {
        std::vector<int32_t> pairs, acc;
        std::vector<int16_t> rows;  // v of every padded row; the padding is zeroed once and never written
    };
    const int threads = threads_for_work(work, planes);
    std::vector<Scratch> per_thread(static_cast<size_t>(threads));
    parallel_tasks(planes, threads, [&](std::ptrdiff_t task, int slot) {
        const Index pc = Index(task);
        Scratch& own = per_thread[size_t(slot)];
        if (own.rows.empty()) {
            own.pairs.resize(size_t(d.hp * d.row_w));
            own.rows.assign(static_cast<size_t>(d.hp * v_cap), 0);
            own.acc.resize(size_t(count + d.ow_round));  // the plane, rows at stride ow (+ a row's overhang)
        }
        int32_t* pairs = own.pairs.data();
        int32_t* acc = own.acc.data();
        int16_t* v = own.rows.data();
        const Index n = pc / g.channels, c = pc % g.channels;
        const T* xc = x + pc * g.height * g.width;
        build(xc, g, d, args.x_zero_point, v_cap, v, pairs);
        for (Index oc = c * mult; oc < (c + 1) * mult; ++oc) {
            const int32_t* wp = wpairs.data() + oc * g.kernel_h * d.taps;
            const uint32_t bias = uint32_t(args.bias ? args.bias[oc] : 0);
            const Index plane_at = (n * g.out_channels + oc) * count;
            if (fused) {
                fused_kernel(pairs, d, g, wp, bias, args.rq->params_at(oc).scale, fp32,
                             static_cast<char*>(args.out) + plane_at * fp32.f.bytes);
                continue;
            }
            plane_kernel(pairs, d, g, wp, bias, acc);
            emit(args, oc, acc, count, plane_at);  // one requantization call per plane
        }
    });
}

}  // namespace

template <class T>
void conv2d(const T* x, const ConvGeometry& g, const PackedConvWeights& w, const ConvArgs& args) {
    if (g.depthwise()) {
        if (!conv_depthwise_bytes(x, g, w, args)) conv_depthwise(x, g, std::vector<int16_t>(w.raw.begin(), w.raw.end()).data(), args);
    } else {
        conv_generic(x, g, w, args);
    }
}

template <class T>
void conv2d_depthwise_int16(const T* x, const ConvGeometry& g, const int16_t* weights, const ConvArgs& args) {
    conv_depthwise(x, g, weights, args);
}

template void conv2d_depthwise_int16<int8_t>(const int8_t*, const ConvGeometry&, const int16_t*, const ConvArgs&);
template void conv2d_depthwise_int16<uint8_t>(const uint8_t*, const ConvGeometry&, const int16_t*, const ConvArgs&);
template void conv2d<int8_t>(const int8_t*, const ConvGeometry&, const PackedConvWeights&, const ConvArgs&);
template void conv2d<uint8_t>(const uint8_t*, const ConvGeometry&, const PackedConvWeights&, const ConvArgs&);

}  // namespace fxp::kern
