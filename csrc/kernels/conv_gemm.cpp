// GEMM convolution: packed weight rows by im2col columns packed per tile (see conv_gemm.hpp).
#include "kernels/conv_gemm.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "fixed/requantize_fp32.hpp"
#include "kernels/conv_dw_nhwc.hpp"
#include "kernels/gemm_affine.hpp"
#include "kernels/layout.hpp"
#include "kernels/gemm_vnni.hpp"
#include "kernels/pack_units.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

namespace {
// Group gi's (O/groups) x K weight matrix, row j = output channel gi * og + j, K in the chosen order
// (OIHW holds (c, kh, kw) contiguous per output channel).
template <class W>
std::vector<W> group_rows(const W* w, Index og, Index cg, Index kh, Index kw, Index gi, KOrder order) {
    const Index k = cg * kh * kw;
    std::vector<W> m(size_t(og * k));
    for (Index j = 0; j < og; ++j) {
        const W* src = w + (gi * og + j) * k;
        W* dst = m.data() + j * k;
        for (Index c = 0; c < cg; ++c)
            for (Index i = 0; i < kh; ++i)
                for (Index t = 0; t < kw; ++t)
                    dst[order == KOrder::Chw ? (c * kh + i) * kw + t : (i * kw + t) * cg + c] = src[(c * kh + i) * kw + t];
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
    if (accum == Accum::Exact && cg == 1) {  // depthwise, or one input channel (a depth multiplier of O)
        p.depthwise.resize(size_t(o * k));
        for (Index i = 0; i < o * k; ++i)
            p.depthwise[size_t(i)] = w_unsigned ? int16_t(static_cast<const uint8_t*>(w)[i]) : int16_t(static_cast<const int8_t*>(w)[i]);
    }
    for (Index gi = 0; gi < groups; ++gi) {
        if (accum == Accum::Int16Pairs) {
            if (w_unsigned) {
                const auto m = group_rows(static_cast<const uint8_t*>(w), og, cg, kh, kw, gi, order);
                p.quads.push_back(pack_rows(m.data(), og, k, k, 1, Layout::Quads));
            } else {
                const auto m = group_rows(static_cast<const int8_t*>(w), og, cg, kh, kw, gi, order);
                p.quads.push_back(pack_rows(m.data(), og, k, k, 1, Layout::Quads));
            }
            continue;
        }
        std::vector<int8_t> m;
        if (w_unsigned) {  // w - 128 as int8 (byte xor 0x80); the zero points move by the same -128
            const auto u = group_rows(static_cast<const uint8_t*>(w), og, cg, kh, kw, gi, order);
            m.resize(u.size());
            for (size_t i = 0; i < u.size(); ++i) m[i] = int8_t(uint8_t(u[i] ^ 0x80u));
            p.w_offset = -128;
        } else {
            m = group_rows(static_cast<const int8_t*>(w), og, cg, kh, kw, gi, order);
        }
        p.pairs.push_back(pack_rows(m.data(), og, k, k, 1, Layout::Pairs));
        if (cpu_has_avx2()) p.quads.push_back(pack_rows(m.data(), og, k, k, 1, Layout::Quads));
    }
    return p;
}

namespace {

// The im2col columns of a chunk of images: image n's are [n * cols_img, (n + 1) * cols_img).
// Contiguous (stride 1, planar image): column jj of an image reads the padded image at offset jj, so
//   a panel of 16 columns is one byte run per K row; the grid is out_h rows of the padded width,
//   rounded up to whole panels (a panel never spans two images), and the columns past out_w in a row
//   or past the out_h rows are computed and dropped.
// Gathered (other strides, planar image): column jj is output pixel jj, its bytes gathered per column.
// Interleaved (K order (kh, kw, c) with whole quads of channels, any stride): column jj is output
//   pixel jj; the padded image holds 4 channels per dword ([c / 4][y][x][c % 4]), so a K unit of a
//   column (4 channels of one tap) is one dword of the image, and 4 consecutive pixels of a row are
//   16 contiguous bytes.
struct Grid {
    bool contiguous = true, interleaved = false;
    bool int16_pairs = false;  // interleaved: 2 channels as int16 per dword (else 4 bytes)
    Index wp = 0, oh = 0, ow = 0, sh = 1, sw = 1, cols_img = 0;
    // Offset of column jj's first tap in its padded image, in pixels.
    Index base(Index jj) const { return contiguous ? jj : (jj / ow) * sh * wp + (jj % ow) * sw; }
    bool valid(Index jj) const { return contiguous ? jj / wp < oh && jj % wp < ow : jj < oh * ow; }
};

// The right GEMM operand: K rows by the chunk's columns, packed panel by panel into the layout's
// units when the driver asks for a tile. `off`: planar images, per K step the offset of its tap from
// a column's base (elements); interleaved, per K unit (dwords).
template <class T>
struct ChunkCols : ColSource {
    const T* xp;        // the group's first channel in the chunk's first padded image
    Index img_stride;   // elements between padded images
    const Grid& grid;
    const Index* off;
    bool simd;          // SSE2 copies and unit packers (every path but Portable; same dwords)
    ChunkCols(const T* x, Index stride, const Grid& g, const std::vector<Index>& offsets, Index k_steps, Index images,
              Layout l, bool read_unsigned, bool use_simd)
        : xp(x), img_stride(stride), grid(g), off(offsets.data()), simd(use_simd) {
        layout = l;
        is_unsigned = read_unsigned;
        count = images * g.cols_img;
        k = k_steps;
        units = k_units(l, k);
    }

    void unit(const T* const* r, int32_t* d) const {
        if (layout == Layout::Quads) {
            if (simd) quad_unit_sse2(r[0], r[1], r[2], r[3], d);
            else quad_unit_portable(r[0], r[1], r[2], r[3], d);
        } else {
            if (simd) pair_unit_sse2<T>(r[0], r[1], d);
            else pair_unit_portable(r[0], r[1], d);
        }
    }

    // Pixel offset (in its image's grid, plus the image) of each of the 16 columns from c0; columns
    // past the count repeat column 0's (their results are never stored).
    void column_bases(Index c0, Index pixels_per_image, Index* base) const {
        // (Stepped from c0's position: a division per column cost more than the panel's copies.)
        Index img = c0 / grid.cols_img, jj = c0 - img * grid.cols_img;
        Index oy = grid.contiguous ? 0 : jj / grid.ow, ox = grid.contiguous ? 0 : jj - oy * grid.ow;
        for (int j = 0; j < NR; ++j) {
            if (c0 + j >= count) {
                base[j] = base[0];
                continue;
            }
            base[j] = img * pixels_per_image + (grid.contiguous ? jj : oy * grid.sh * grid.wp + ox * grid.sw);
            if (++jj == grid.cols_img) jj = 0, oy = 0, ox = 0, ++img;
            else if (!grid.contiguous && ++ox == grid.ow) ox = 0, ++oy;
        }
    }

    void interleaved_panel(Index c0, int32_t* d) const {
        const int32_t* img = reinterpret_cast<const int32_t*>(xp);
        Index base[NR];
        column_bases(c0, img_stride / 4, base);
        // Four columns that are 4 consecutive dwords of the image (a run of one output row, unit
        // stride) are copied as 16 bytes; other columns one dword at a time.
        bool runs = true;
        for (int b = 0; b < NR; b += 4) runs = runs && base[b + 1] == base[b] + 1 && base[b + 2] == base[b] + 2 && base[b + 3] == base[b] + 3;
        if (runs) {
            for (Index u = 0; u < units; ++u) {
                const int32_t* s = img + off[u];
                int32_t* du = d + u * NR;
                for (int b = 0; b < NR; b += 4) {
                    if (simd) _mm_storeu_si128(reinterpret_cast<__m128i*>(du + b), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + base[b])));
                    else std::memcpy(du + b, s + base[b], 16);
                }
            }
            return;
        }
        for (Index u = 0; u < units; ++u) {
            const int32_t* s = img + off[u];
            for (int j = 0; j < NR; ++j) d[u * NR + j] = s[base[j]];
        }
    }

    const int32_t* cols(Index j0, Index n, std::vector<int32_t>& scratch) const override {
        static const T zeros[NR] = {};  // the K padding rows
        const Index panels = (n + NR - 1) / NR, steps = layout == Layout::Quads ? 4 : 2;
        scratch.resize(size_t(panels * NR * units));
        const T* r[4];
        alignas(16) T tile[4][NR];
        for (Index np = 0; np < panels; ++np) {
            const Index c0 = j0 + np * NR;
            int32_t* d = scratch.data() + np * NR * units;
            if (grid.interleaved) {
                interleaved_panel(c0, d);
                continue;
            }
            if (grid.contiguous) {  // c0 is a multiple of NR, and so is cols_img
                const Index img = c0 / grid.cols_img;
                const T* base = xp + img * img_stride + (c0 - img * grid.cols_img);
                for (Index u = 0; u < units; ++u) {
                    for (Index t = 0; t < steps; ++t) {
                        const Index kk = steps * u + t;
                        r[t] = kk < k ? base + off[kk] : zeros;
                    }
                    unit(r, d + u * NR);
                }
                continue;
            }
            Index base[NR];
            column_bases(c0, img_stride, base);
            for (Index u = 0; u < units; ++u) {
                for (Index t = 0; t < steps; ++t) {
                    const Index kk = steps * u + t;
                    if (kk >= k) {
                        r[t] = zeros;
                        continue;
                    }
                    const T* src = xp + off[kk];
                    for (int j = 0; j < NR; ++j) tile[t][j] = src[base[j]];
                    r[t] = tile[t];
                }
                unit(r, d + u * NR);
            }
        }
        return scratch.data();
    }
};

// Row i of a tile is output channel oc0 + i over chunk columns [j0, j0 + n): adds the zero-point
// terms and the bias (modulo 2^32) to the whole row, requantizes it in one call, then copies each
// image's valid columns (runs of consecutive output pixels) into their NCHW plane.
struct PlaneEpilogue : Epilogue {
    const ConvGemmArgs& args;
    const Grid& grid;
    Index out_channels = 0, pixels = 0, oc0 = 0, n0 = 0;
    const uint32_t* term = nullptr;    // per output channel: bias - zx sum(w) + K zx zw
    const int32_t* zw = nullptr;       // per output channel, or null when every one is 0
    const int32_t* col_sums = nullptr; // sum(x) per chunk column (with zw)
    PlaneEpilogue(const ConvGemmArgs& a, const Grid& g) : args(a), grid(g) {}

    template <class Out>
    void scatter(const Out* src, Index oc, Index j0, Index n) const {
        const Index cols_img = grid.cols_img;
        for (Index j = j0, end = j0 + n; j < end;) {
            const Index img = j / cols_img, first = img * cols_img, stop = std::min(end, first + cols_img) - first;
            Out* plane = static_cast<Out*>(args.out) + ((n0 + img) * out_channels + oc) * pixels;
            const Out* s = src + (first - j0);  // column jj of this image at s[jj]
            Index jj = j - first;
            if (!grid.contiguous) {
                std::memcpy(plane + jj, s + jj, size_t(stop - jj) * sizeof(Out));
            } else if (grid.wp == grid.ow) {  // no horizontal padding: the first out_h rows are the plane
                const Index last = std::min(stop, grid.oh * grid.wp);
                if (jj < last) std::memcpy(plane + jj, s + jj, size_t(last - jj) * sizeof(Out));
            } else {
                while (jj < stop) {
                    const Index oy = jj / grid.wp, ox = jj - oy * grid.wp;
                    if (oy >= grid.oh) break;
                    if (ox >= grid.ow) {
                        jj += grid.wp - ox;
                        continue;
                    }
                    const Index len = std::min(grid.ow - ox, stop - jj);
                    std::memcpy(plane + oy * grid.ow + ox, s + jj, size_t(len) * sizeof(Out));
                    jj += len;
                }
            }
            j = first + stop;
        }
    }

    void row(Index i, Index j0, Index n, int32_t* acc) const override {
        const Index oc = oc0 + i;
        const uint32_t t = term[oc];
        uint32_t* u = reinterpret_cast<uint32_t*>(acc);
        if (col_sums) {
            const uint32_t z = uint32_t(zw[oc]);
            const int32_t* cs = col_sums + j0;
            for (Index j = 0; j < n; ++j) u[j] += t - z * uint32_t(cs[j]);
        } else {
            for (Index j = 0; j < n; ++j) u[j] += t;
        }
        if (!args.rq) return scatter(acc, oc, j0, n);
        with_out_type(args.rq->out_type, [&](auto o) {
            using Out = decltype(o);
            static thread_local std::vector<Out> words;
            words.resize(size_t(n));
            args.rq->apply_channel(acc, n, oc, words.data());  // (the dropped columns too: any int32 is valid input)
            scatter(words.data(), oc, j0, n);
        });
    }
};

// ---- the direct AVX2 form: image columns read in place, stored (and requantized) per block -------
//
// With an interleaved image (4 channel bytes, or 2 channels as int16, per dword), unit stride along
// rows and out_w a multiple of 4, the 16 columns of a panel are 4 (or 2) runs of contiguous dwords of
// the image, so block_from_image_avx2 reads them in place (no packed panel), and each finished 6 x 16 block is corrected, requantized and stored
// straight into its 6 NCHW planes (no int32 tile, no separate pass).
struct BlockStore {
    const ConvGemmArgs* args = nullptr;
    const uint32_t* term = nullptr;  // per output channel
    const int32_t* zw = nullptr;     // per output channel, or null
    DirectFp32 fp32;                 // the requantizer in store form, if `fused`
    bool fused = false;
    const float* scale = nullptr;    // per output channel (fused)
    Index pixels = 0;
};

// Rows [0, rows) of the block (row r: output channel oc0 + r, plane at out + plane0 + r * pixels),
// columns [0, cols); cs: the 16 columns' sum(x) (with zw).
__attribute__((target("avx2"))) void store_block_avx2(const int32_t* tile, Index rows, Index cols, Index oc0, Index plane0,
                                                       const int32_t* cs, const BlockStore& st) {
    const __m256 lo = _mm256_set1_ps(st.fp32.lo), hi = _mm256_set1_ps(st.fp32.hi);
    const __m256i zp = _mm256_set1_epi32(st.fp32.zp);
    const OutType out_type = st.args->rq ? st.args->rq->out_type : OutType::Int32;
    for (Index r = 0; r < rows; ++r) {
        const Index oc = oc0 + r, off = plane0 + r * st.pixels;
        const __m256i t = _mm256_set1_epi32(int32_t(st.term[oc]));
        __m256i v0 = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + 16 * r)), t);
        __m256i v1 = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + 16 * r + 8)), t);
        if (cs) {
            const __m256i z = _mm256_set1_epi32(st.zw[oc]);
            v0 = _mm256_sub_epi32(v0, _mm256_mullo_epi32(z, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cs))));
            v1 = _mm256_sub_epi32(v1, _mm256_mullo_epi32(z, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cs + 8))));
        }
        alignas(32) int32_t words[16];
        if (st.fused) {
            const __m256 s = _mm256_set1_ps(st.scale[oc]);
            const __m256i q0 = requantize_fp32_avx2(v0, s, lo, hi, zp), q1 = requantize_fp32_avx2(v1, s, lo, hi, zp);
            // 16 int16 in column order (exact: the values lie inside the output word)
            const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
            if (st.fp32.bytes == 2) {
                int16_t* out = static_cast<int16_t*>(st.args->out) + off;
                if (cols == 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), w);
                else _mm256_store_si256(reinterpret_cast<__m256i*>(words), w), std::memcpy(out, words, size_t(cols) * 2);
                continue;
            }
            const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
            const __m128i bytes = out_type == OutType::UInt8 ? _mm_packus_epi16(w0, w1) : _mm_packs_epi16(w0, w1);
            uint8_t* out = static_cast<uint8_t*>(st.args->out) + off;
            if (cols == 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
            else _mm_store_si128(reinterpret_cast<__m128i*>(words), bytes), std::memcpy(out, words, size_t(cols));
            continue;
        }
        if (!st.args->rq && cols == 16) {
            int32_t* out = static_cast<int32_t*>(st.args->out) + off;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v0);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), v1);
            continue;
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(words), v0);
        _mm256_store_si256(reinterpret_cast<__m256i*>(words + 8), v1);
        with_out_type(out_type, [&](auto o) {
            using Out = decltype(o);
            if (st.args->rq) st.args->rq->apply_channel(words, cols, oc, static_cast<Out*>(st.args->out) + off);
            else std::memcpy(static_cast<int32_t*>(st.args->out) + off, words, size_t(cols) * sizeof(int32_t));
        });
    }
}

// One chunk and group: every 16-pixel panel of each image (the last one of an image may be partial)
// by every block of 6 weight rows. xg: the group's first channel quad in the chunk's first image.
void direct_chunk(const unsigned char* xg, Index images, Index img_bytes, Index n0, Index oc0, Index out_channels, const Grid& grid,
                  const PackedRows& w, const std::vector<Index>& unit_bytes, const int32_t* col_sums, const BlockStore& st) {
    const Index pixels = grid.oh * grid.ow, per_image = (pixels + NR - 1) / NR, panels = images * per_image;
    const Index og = w.count, blocks = (og + MR - 1) / MR;
    const bool blocks8 = grid.ow % 8 == 0;
    constexpr Index per_task = 4;  // panels
    const Index tasks = (panels + per_task - 1) / per_task;
    const double work = double(panels) * double(NR) * double(blocks * MR) * double(w.k);
    parallel_tasks(tasks, threads_for_work(work, tasks), [&](std::ptrdiff_t task, int) {
        alignas(32) int32_t tile[MR * NR];
        for (Index pi = Index(task) * per_task; pi < std::min(panels, (Index(task) + 1) * per_task); ++pi) {
            const Index img = pi / per_image, p0 = (pi - img * per_image) * NR, cols = std::min<Index>(NR, pixels - p0);
            const unsigned char* base = xg + img * img_bytes;
            const unsigned char* b[4];
            for (Index q = 0; q < 4; ++q) {
                const Index p = p0 + 4 * q < pixels ? p0 + 4 * q : p0;  // past the image: any readable block
                const Index oy = p / grid.ow, ox = p - oy * grid.ow;
                b[q] = base + (oy * grid.sh * grid.wp + ox) * 4;
            }
            const int32_t* cs = col_sums ? col_sums + img * grid.cols_img + p0 : nullptr;
            for (Index mb = 0; mb < blocks; ++mb) {
                const Index rows = std::min<Index>(MR, og - mb * MR);
                block_from_image_avx2(w.data.data() + mb * MR * w.units, w.units, w.layout, w.is_unsigned, b, blocks8,
                                      unit_bytes.data(), w.units, rows, tile);
                store_block_avx2(tile, rows, cols, oc0 + mb * MR,
                                 ((n0 + img) * out_channels + oc0 + mb * MR) * pixels + p0, cs, st);
            }
        }
    });
}

// `images` NCHW images into the chunk buffer, each channel plane padded with the zero point.
template <class T>
void pad_images(const T* x, Index images, const ConvGeometry& g, Index hp, Index wp, T zp, T* xp) {
    const Index h = g.height, w = g.width, planes = images * g.channels;
    if (hp == h && wp == w) {
        std::memcpy(xp, x, size_t(planes * h * w) * sizeof(T));
        return;
    }
    for (Index q = 0; q < planes; ++q) {
        const T* src = x + q * h * w;
        T* dst = xp + q * hp * wp;
        std::fill(dst, dst + g.pad_top * wp, zp);
        for (Index y = 0; y < h; ++y) {
            T* row = dst + (g.pad_top + y) * wp;
            std::fill(row, row + g.pad_left, zp);
            std::memcpy(row + g.pad_left, src + y * w, size_t(w) * sizeof(T));
            std::fill(row + g.pad_left + w, row + wp, zp);
        }
        std::fill(dst + (g.pad_top + h) * wp, dst + hp * wp, zp);
    }
}

// `images` NCHW images into the chunk buffer with 4 channels per dword ([c / 4][y][x][c % 4], C a
// multiple of 4), padded with the zero point.
template <class T>
void interleave_images(const T* x, Index images, const ConvGeometry& g, Index hp, Index wp, T zp, bool simd, T* xp) {
    const Index h = g.height, w = g.width, quads = images * g.channels / 4;
    // Without horizontal padding the rows of a plane are one run (in the image and in the buffer).
    const Index run = wp == w ? h * w : w, runs = wp == w ? 1 : h;
    for (Index q = 0; q < quads; ++q) {
        const T* src = x + q * 4 * h * w;
        T* dst = xp + q * 4 * hp * wp;
        std::fill(dst, dst + 4 * g.pad_top * wp, zp);
        for (Index y = 0; y < runs; ++y) {
            T* row = dst + 4 * (g.pad_top + y) * wp;
            std::fill(row, row + 4 * g.pad_left, zp);
            const T* r0 = src + y * w;
            const T* r1 = r0 + h * w;
            const T* r2 = r1 + h * w;
            const T* r3 = r2 + h * w;
            int32_t* d = reinterpret_cast<int32_t*>(row + 4 * g.pad_left);
            Index x0 = 0;
            if (simd) {
                for (; x0 + NR <= run; x0 += NR) quad_unit_sse2(r0 + x0, r1 + x0, r2 + x0, r3 + x0, d + x0);
                if (x0 + 8 <= run) {  // 8 pixels: the low halves of the same unpacks
                    const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r0 + x0));
                    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1 + x0));
                    const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r2 + x0));
                    const __m128i e = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r3 + x0));
                    const __m128i ab = _mm_unpacklo_epi8(a, b), ce = _mm_unpacklo_epi8(c, e);
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + x0), _mm_unpacklo_epi16(ab, ce));
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + x0 + 4), _mm_unpackhi_epi16(ab, ce));
                    x0 += 8;
                }
            }
            for (; x0 < run; ++x0)
                d[x0] = int32_t(uint32_t(uint8_t(r0[x0])) | (uint32_t(uint8_t(r1[x0])) << 8) | (uint32_t(uint8_t(r2[x0])) << 16) |
                                (uint32_t(uint8_t(r3[x0])) << 24));
            if (runs > 1) std::fill(row + 4 * (g.pad_left + w), row + 4 * wp, zp);
        }
        std::fill(dst + 4 * (g.pad_top + h) * wp, dst + 4 * hp * wp, zp);
    }
}

// `images` NCHW images into the chunk buffer as int16 (sign- or zero-extended) with 2 channels per
// dword ([c / 2][y][x][c % 2], C even), padded with the zero point: the pair layout of the exact route.
template <class T>
void interleave2_images(const T* x, Index images, const ConvGeometry& g, Index hp, Index wp, int32_t zp, bool simd, int32_t* xp) {
    const Index h = g.height, w = g.width, pairs = images * g.channels / 2;
    const int32_t zz = int32_t(uint32_t(uint16_t(int16_t(zp))) * 0x10001u);
    const Index run = wp == w ? h * w : w, runs = wp == w ? 1 : h;
    for (Index q = 0; q < pairs; ++q) {
        const T* src = x + q * 2 * h * w;
        int32_t* dst = xp + q * hp * wp;
        std::fill(dst, dst + g.pad_top * wp, zz);
        for (Index y = 0; y < runs; ++y) {
            int32_t* row = dst + (g.pad_top + y) * wp;
            std::fill(row, row + g.pad_left, zz);
            const T* r0 = src + y * w;
            const T* r1 = r0 + h * w;
            int32_t* d = row + g.pad_left;
            Index x0 = 0;
            if (simd)
                for (; x0 + NR <= run; x0 += NR) pair_unit_sse2<T>(r0 + x0, r1 + x0, d + x0);
            for (; x0 < run; ++x0) d[x0] = int32_t(uint32_t(uint16_t(int16_t(r0[x0]))) | (uint32_t(uint16_t(int16_t(r1[x0]))) << 16));
            if (runs > 1) std::fill(row + g.pad_left + w, row + wp, zz);
        }
        std::fill(dst + (g.pad_top + h) * wp, dst + hp * wp, zz);
    }
}

// sum(x) of every valid column of the chunk (over the group's cg channels and the kernel taps, the
// padding included), 0 for dropped columns: per image, the channel sum of the padded planes, then its
// box sums over the taps.
template <class T>
void column_sums(const T* xp, Index images, Index img_stride, Index cg, Index plane, const Grid& grid,
                 const ConvGeometry& g, std::vector<int32_t>& s, int32_t* cs) {
    s.resize(size_t(plane));
    for (Index img = 0; img < images; ++img) {
        const T* xi = xp + img * img_stride;
        std::fill(s.begin(), s.end(), 0);
        if (grid.int16_pairs) {  // xp holds int16 (T = int16_t)
            for (Index c2 = 0; c2 < cg / 2; ++c2)
                for (Index q = 0; q < plane; ++q) {
                    const T* v = xi + (c2 * plane + q) * 2;
                    s[size_t(q)] += int32_t(v[0]) + int32_t(v[1]);
                }
        } else if (grid.interleaved) {
            for (Index c4 = 0; c4 < cg / 4; ++c4)
                for (Index q = 0; q < plane; ++q) {
                    const T* v = xi + (c4 * plane + q) * 4;
                    s[size_t(q)] += int32_t(v[0]) + int32_t(v[1]) + int32_t(v[2]) + int32_t(v[3]);
                }
        } else {
            for (Index c = 0; c < cg; ++c)
                for (Index q = 0; q < plane; ++q) s[size_t(q)] += xi[c * plane + q];
        }
        int32_t* out = cs + img * grid.cols_img;
        for (Index jj = 0; jj < grid.cols_img; ++jj) {
            if (!grid.valid(jj)) {
                out[jj] = 0;
                continue;
            }
            const Index b = grid.base(jj);
            int32_t v = 0;
            for (Index i = 0; i < g.kernel_h; ++i)
                for (Index t = 0; t < g.kernel_w; ++t) v += s[size_t(b + i * g.dilation_h * grid.wp + t * g.dilation_w)];
            out[jj] = v;
        }
    }
}

}  // namespace

template <class T>
void conv2d_gemm(const T* x, const ConvGeometry& g, const PackedConvGemm& w, const ConvGemmArgs& args) {
    const Index cg = g.channels / g.groups, og = g.out_channels / g.groups, kh = g.kernel_h, kw = g.kernel_w, k = cg * kh * kw;
    const Index hp = g.height + g.pad_top + g.pad_bottom, wp = g.width + g.pad_left + g.pad_right, plane = hp * wp;
    const Index img_stride = g.channels * plane, image_size = g.channels * g.height * g.width;
    const Index oh = g.out_h(), ow = g.out_w();
    const bool sat = w.accum == Accum::Int16Pairs;
    if (sat && std::is_unsigned<T>::value == w.w_unsigned)
        throw std::invalid_argument("int16-pair accumulation needs exactly one unsigned operand (uint8 x int8)");
    if (g.batch == 0 || g.out_channels == 0) return;
    const int32_t zx = args.x_zero_point;
    if (!w.depthwise.empty() && depthwise_nhwc_available(g, args.path)) {
        DepthwiseArgs a;
        a.x_zero_point = zx;
        a.w_zero_point = args.w_zero_point;
        a.w_zero_point_count = args.w_zero_point_count;
        a.bias = args.bias;
        a.rq = args.rq;
        a.out = args.out;
        a.x_channels_last = args.x_channels_last;
        a.out_channels_last = args.out_channels_last;
        conv2d_depthwise_nhwc(x, g, w.depthwise.data(), a);
        return;
    }
    if (args.x_channels_last || args.out_channels_last) {  // the NCHW route, transposed around
        std::vector<T> x_nchw;
        const T* xs = x;
        if (args.x_channels_last) {
            x_nchw.resize(size_t(g.batch * image_size));
            transpose_batched(x, g.batch, g.height * g.width, g.channels, x_nchw.data());
            xs = x_nchw.data();
        }
        ConvGemmArgs a = args;
        a.x_channels_last = a.out_channels_last = false;
        const Index pixels = oh * ow;
        if (!args.out_channels_last) return conv2d_gemm(xs, g, w, a);
        with_out_type(args.rq ? args.rq->out_type : OutType::Int32, [&](auto o) {
            using Out = decltype(o);
            std::vector<Out> out_nchw(size_t(g.batch * g.out_channels * pixels));
            a.out = out_nchw.data();
            conv2d_gemm(xs, g, w, a);
            transpose_batched(out_nchw.data(), g.batch, g.out_channels, pixels, static_cast<Out*>(args.out));
        });
        return;
    }
    if (!w.depthwise.empty() && g.depthwise()) {  // the direct depthwise kernel on w - w_zero_point (exact)
        const Index per = g.kernel_h * g.kernel_w;
        std::vector<int16_t> wz(w.depthwise.size());
        for (Index oc = 0; oc < g.out_channels; ++oc)
            for (Index i = 0; i < per; ++i)
                wz[size_t(oc * per + i)] =
                    int16_t(w.depthwise[size_t(oc * per + i)] - args.w_zero_point[args.w_zero_point_count == 1 ? 0 : oc]);
        ConvArgs a;
        a.x_zero_point = zx;
        a.bias = args.bias;
        a.rq = args.rq;
        a.out = args.out;
        a.path = args.path;
        conv2d_depthwise_int16(x, g, wz.data(), a);
        return;
    }

    // The pair sums: vpmaddubsw (AVX2, any path but Portable) or the portable kernel saturating the
    // same pairs. Exact: as the direct convolution, quads where they are exact (VNNI for uint8 images,
    // or image bytes and zero point <= 127 on AVX2), else int16 pairs.
    const Path path = resolve(args.path);
    const bool simd = path != Path::Portable;
    Layout layout = Layout::Quads;
    Path run = path == Path::Vnni ? Path::Auto : path;
    bool read_unsigned = std::is_unsigned<T>::value;
    if (!sat) {
        const bool vnni = path == Path::Auto && !w.quads.empty() && vnni_enabled() && std::is_unsigned<T>::value;
        const bool quads = vnni || (path == Path::Auto && !w.quads.empty() && zx >= 0 && zx <= 127 &&
                                    bytes_below_128(x, g.batch * image_size));
        layout = quads ? Layout::Quads : Layout::Pairs;
        if (vnni) run = Path::Vnni;
        read_unsigned = quads || std::is_unsigned<T>::value;
    }
    const std::vector<PackedRows>& rows = layout == Layout::Quads ? w.quads : w.pairs;

    Grid grid;
    // The exact route's int16 pairs take the direct form from an image of int16 channel pairs.
    grid.int16_pairs = !sat && layout == Layout::Pairs && w.order == KOrder::Hwc && cg % 2 == 0 && simd && cpu_has_avx2() &&
                       g.stride_w == 1 && ow % 4 == 0;
    grid.interleaved = (layout == Layout::Quads && w.order == KOrder::Hwc && cg % 4 == 0) || grid.int16_pairs;
    grid.contiguous = !grid.interleaved && g.stride_h == 1 && g.stride_w == 1;
    grid.wp = wp;
    grid.oh = oh;
    grid.ow = ow;
    grid.sh = g.stride_h;
    grid.sw = g.stride_w;
    grid.cols_img = grid.contiguous ? round_up(oh * wp, NR) : oh * ow;

    // Interleaved images with unit stride along rows and rows of whole 4-pixel blocks take the direct
    // AVX2 form (vpmaddubsw: the pairs, or exact quads of bytes <= 127).
    const bool direct = grid.interleaved && simd && cpu_has_avx2() && run != Path::Vnni && g.stride_w == 1 && ow % 4 == 0;
    // Per K step (planar: bytes from a column's base) or per K unit (interleaved: dwords).
    std::vector<Index> off;
    if (grid.interleaved) {
        const Index per_dword = grid.int16_pairs ? 2 : 4;
        for (Index i = 0; i < kh; ++i)
            for (Index t = 0; t < kw; ++t)
                for (Index cq = 0; cq < cg / per_dword; ++cq) off.push_back(cq * plane + i * g.dilation_h * wp + t * g.dilation_w);
        off.resize(size_t(k_units(layout, k)), 0);  // K padding units (zero weights) read any dword
    } else {
        off.resize(size_t(k));
        for (Index c = 0; c < cg; ++c)
            for (Index i = 0; i < kh; ++i)
                for (Index t = 0; t < kw; ++t)
                    off[size_t(w.order == KOrder::Chw ? (c * kh + i) * kw + t : (i * kw + t) * cg + c)] =
                        c * plane + i * g.dilation_h * wp + t * g.dilation_w;
    }
    // Per output channel: the effective weight zero point and the terms that do not depend on the pixel.
    std::vector<int32_t> zw(static_cast<size_t>(g.out_channels));
    std::vector<uint32_t> term(static_cast<size_t>(g.out_channels));
    bool any_zw = false;
    for (Index grp = 0; grp < g.groups; ++grp)
        for (Index i = 0; i < og; ++i) {
            const Index oc = grp * og + i;
            zw[size_t(oc)] = args.w_zero_point[args.w_zero_point_count == 1 ? 0 : oc] + w.w_offset;
            any_zw = any_zw || zw[size_t(oc)] != 0;
            term[size_t(oc)] = uint32_t(args.bias ? args.bias[oc] : 0) -
                               uint32_t(zx) * uint32_t(uint64_t(rows[size_t(grp)].row_sums[size_t(i)])) +
                               uint32_t(k) * uint32_t(zx) * uint32_t(zw[size_t(oc)]);
        }

    BlockStore store;
    std::vector<float> scales;
    std::vector<Index> unit_bytes;
    if (direct) {
        store.args = &args;
        store.term = term.data();
        store.zw = zw.data();
        store.pixels = oh * ow;
        store.fused = args.rq && direct_fp32(*args.rq, store.fp32);
        if (store.fused) {
            for (Index oc = 0; oc < g.out_channels; ++oc) scales.push_back(args.rq->params_at(oc).scale);
            store.scale = scales.data();
        }
        for (Index o : off) unit_bytes.push_back(4 * o);
    }

    // Images per chunk: enough work to amortise a GEMM call (~2^20 multiply-adds), a padded chunk of at
    // most 256 KB (it stays in L2 while its tiles are packed), and with several threads at least 4
    // chunks per thread where the batch allows (chunks are shared out dynamically).
    const int threads = num_threads();
    const double work_img = double(g.out_channels) * double(grid.cols_img) * double(k);
    Index nb = std::max<Index>(1, Index(std::ceil(double(1 << 20) / work_img)));
    nb = std::min(nb, std::max<Index>(1, (Index(1) << 18) / img_stride));
    if (threads > 1) nb = std::min(nb, std::max<Index>(1, (g.batch + 4 * threads - 1) / (4 * threads)));
    const Index chunks = (g.batch + nb - 1) / nb;
    const Accum accum = sat ? Accum::Int16Pairs : Accum::Exact;
    // Contiguous panels of the last image read up to a grid row past its end.
    const Index slack = grid.contiguous ? grid.cols_img + NR : 0;
    const Index elem = grid.int16_pairs ? 2 : 1;  // bytes per channel value in the chunk buffer

    auto run_chunk = [&](std::ptrdiff_t ci, int) {
        static thread_local std::vector<uint8_t> buffer;
        static thread_local std::vector<int32_t> sums, plane_sums;
        const Index n0 = Index(ci) * nb, images = std::min(nb, g.batch - n0);
        buffer.resize(size_t((images * img_stride + slack) * elem));
        T* xp = reinterpret_cast<T*>(buffer.data());
        if (grid.int16_pairs)
            interleave2_images(x + n0 * image_size, images, g, hp, wp, zx, simd, reinterpret_cast<int32_t*>(buffer.data()));
        else if (grid.interleaved) interleave_images(x + n0 * image_size, images, g, hp, wp, T(zx), simd, xp);
        else pad_images(x + n0 * image_size, images, g, hp, wp, T(zx), xp);
        std::fill(xp + images * img_stride, xp + images * img_stride + slack, T(zx));
        for (Index grp = 0; grp < g.groups; ++grp) {
            const T* xg = xp + grp * cg * plane;
            const unsigned char* xg_bytes = buffer.data() + grp * cg * plane * elem;
            PlaneEpilogue ep(args, grid);
            ep.out_channels = g.out_channels;
            ep.pixels = oh * ow;
            ep.oc0 = grp * og;
            ep.n0 = n0;
            ep.term = term.data();
            if (any_zw) {
                sums.resize(size_t(images * grid.cols_img + NR));  // (+ NR: a partial panel's block reads 16)
                if (grid.int16_pairs)
                    column_sums(reinterpret_cast<const int16_t*>(xg_bytes), images, img_stride, cg, plane, grid, g, plane_sums,
                                sums.data());
                else
                    column_sums(xg, images, img_stride, cg, plane, grid, g, plane_sums, sums.data());
                ep.zw = zw.data();
                ep.col_sums = sums.data();
            }
            if (direct) {
                direct_chunk(xg_bytes, images, img_stride * elem, n0, grp * og, g.out_channels, grid, rows[size_t(grp)], unit_bytes,
                             any_zw ? sums.data() : nullptr, store);
                continue;
            }
            const ChunkCols<T> cols(xg, img_stride, grid, off, k, images, layout, read_unsigned, simd);
            multiply(rows[size_t(grp)], cols, ep, run, 0, -1, accum);
        }
    };
    // Chunks on the threads when there are enough of them to share out evenly; else one chunk at a
    // time, its GEMM threaded over tiles. (Outputs do not depend on either: each is summed by the same
    // instruction sequence whichever chunk and tile hold it.)
    if (chunks >= 2 * Index(threads) || work_img * double(nb) < 4 * kMinWorkPerThread) {
        parallel_tasks(chunks, threads_for_work(work_img * double(g.batch), chunks), run_chunk);
    } else {
        for (Index ci = 0; ci < chunks; ++ci) run_chunk(ci, 0);
    }
}

template void conv2d_gemm<int8_t>(const int8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);
template void conv2d_gemm<uint8_t>(const uint8_t*, const ConvGeometry&, const PackedConvGemm&, const ConvGemmArgs&);

}  // namespace fxp::kern
