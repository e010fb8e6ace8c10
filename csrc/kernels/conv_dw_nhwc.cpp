// Depthwise convolution vectorised over channels (see conv_dw_nhwc.hpp for the design).
#include "kernels/conv_dw_nhwc.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/features.hpp"
#include "kernels/layout.hpp"
#include "fixed/requantize_fp32.hpp"
#include "kernels/gemm_affine.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

namespace {

constexpr Index kBlock = 16;  // channels per block: 16 int16 lanes

struct DwPlan {
    Index cin = 0, out_c = 0, mult = 1, cp = 0, blocks = 0;  // cp: channels padded to whole blocks
    Index hp = 0, wp = 0, oh = 0, ow = 0, taps = 0, pairs = 0;
    std::vector<Index> tap_off;   // per tap: offset in the padded image from a window's origin (int16 units)
    std::vector<int16_t> wpk;     // [pair][block][lo 16 | hi 16]: (w - zw) of taps 2q, 2q + 1 interleaved as
                                  // _mm256_unpack{lo,hi}_epi16 interleave them
    std::vector<int32_t> bias;    // [block][lo 8 | hi 8]: the bias in the accumulators' lane order
};

// Lane k of unpacklo / unpackhi_epi16(a, b) (k < 16, 128-bit lanes of 8): the channel it holds and
// whether from b; the int32 lane of vpmaddwd's result j holds channel lane_channel(hi, 2j).
inline Index lane_channel(bool hi, Index k) {
    const Index half = k / 8, within = (k % 8) / 2;
    return half * 8 + (hi ? 4 : 0) + within;
}

DwPlan make_plan(const ConvGeometry& g, const int16_t* w, const DepthwiseArgs& args) {
    DwPlan p;
    p.cin = g.channels;
    p.out_c = g.out_channels;
    p.mult = g.out_channels / g.channels;
    p.cp = round_up(p.out_c, kBlock);
    p.blocks = p.cp / kBlock;
    p.hp = g.height + g.pad_top + g.pad_bottom;
    p.wp = g.width + g.pad_left + g.pad_right;
    p.oh = g.out_h();
    p.ow = g.out_w();
    p.taps = g.kernel_h * g.kernel_w;
    p.pairs = (p.taps + 1) / 2;
    for (Index i = 0; i < g.kernel_h; ++i)
        for (Index j = 0; j < g.kernel_w; ++j) p.tap_off.push_back((i * g.dilation_h * p.wp + j * g.dilation_w) * p.cp);
    // (w - zw) per tap and (padded) channel
    std::vector<int32_t> wt(size_t(p.taps * p.cp), 0);
    for (Index oc = 0; oc < p.out_c; ++oc) {
        const int32_t zw = args.w_zero_point[args.w_zero_point_count == 1 ? 0 : oc];
        for (Index t = 0; t < p.taps; ++t) wt[size_t(t * p.cp + oc)] = int32_t(w[oc * p.taps + t]) - zw;
    }
    p.wpk.assign(size_t(p.pairs * p.blocks * 32), 0);
    for (Index q = 0; q < p.pairs; ++q)
        for (Index b = 0; b < p.blocks; ++b)
            for (int hi = 0; hi < 2; ++hi)
                for (Index k = 0; k < 16; ++k) {
                    const Index c = b * kBlock + lane_channel(hi, k), t = 2 * q + (k % 2);
                    p.wpk[size_t(((q * p.blocks + b) * 2 + hi) * 16 + k)] = t < p.taps ? int16_t(wt[size_t(t * p.cp + c)]) : 0;
                }
    p.bias.assign(size_t(p.blocks * 16), 0);
    for (Index b = 0; b < p.blocks; ++b)
        for (int hi = 0; hi < 2; ++hi)
            for (Index j = 0; j < 8; ++j) {
                const Index c = b * kBlock + lane_channel(hi, 2 * j);
                p.bias[size_t(b * 16 + hi * 8 + j)] = args.bias && c < p.out_c ? args.bias[c] : 0;
            }
    return p;
}

// The padded int16 image of x - zx into a zeroed buffer (channels past out_c and the border stay 0:
// padded taps add nothing). nhwc: the image as channels-last bytes (x itself, or its transpose).
template <class T>
void build_image(const T* nhwc, const ConvGeometry& g, const DwPlan& p, int32_t zx, int16_t* buf) {
    for (Index y = 0; y < g.height; ++y)
        for (Index x = 0; x < g.width; ++x) {
            const T* s = nhwc + (y * g.width + x) * p.cin;
            int16_t* d = buf + ((y + g.pad_top) * p.wp + x + g.pad_left) * p.cp;
            if (p.mult == 1)
                for (Index c = 0; c < p.cin; ++c) d[c] = int16_t(int32_t(s[c]) - zx);
            else  // input channel c feeds output channels c * mult .. (no division per value)
                for (Index c = 0; c < p.cin; ++c) std::fill_n(d + c * p.mult, p.mult, int16_t(int32_t(s[c]) - zx));
        }
}

// Where a block of 16 channels' sums goes: the int32 tile [pixel][cp], or (fp32 set) requantized into
// words (fp32->bytes each) of out[pixel * ld + channel], channels past `channels` not stored.
struct DwStore {
    int32_t* acc = nullptr;
    const DirectFp32* fp32 = nullptr;
    const float* scale = nullptr;   // per padded channel (fused)
    void* out = nullptr;
    Index ld = 0, channels = 0;
};

// The sums of one image from its padded buffer, 16 channels at a time.
template <int PAIRS>
__attribute__((target("avx2"))) void dw_image_avx2(const int16_t* buf, const ConvGeometry& g, const DwPlan& p, const DwStore& st) {
    const Index pairs = PAIRS ? PAIRS : p.pairs;
    const Index* off = p.tap_off.data();
    const __m256 lo_v = _mm256_set1_ps(st.fp32 ? st.fp32->lo : 0.0f), hi_v = _mm256_set1_ps(st.fp32 ? st.fp32->hi : 0.0f);
    const __m256i zp = _mm256_set1_epi32(st.fp32 ? st.fp32->zp : 0);
    for (Index b = 0; b < p.blocks; ++b) {
        __m256i wlo[PAIRS ? PAIRS : 1], whi[PAIRS ? PAIRS : 1];
        if constexpr (PAIRS > 0)
            for (Index q = 0; q < PAIRS; ++q) {
                wlo[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.wpk.data() + ((q * p.blocks + b) * 2) * 16));
                whi[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.wpk.data() + ((q * p.blocks + b) * 2 + 1) * 16));
            }
        const __m256i blo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias.data() + b * 16));
        const __m256i bhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.bias.data() + b * 16 + 8));
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        if (st.fp32) {
            s0 = _mm256_loadu_ps(st.scale + b * kBlock);
            s1 = _mm256_loadu_ps(st.scale + b * kBlock + 8);
        }
        const Index stored = std::min<Index>(kBlock, st.channels - b * kBlock);
        const int16_t* base_b = buf + b * kBlock;
        for (Index oy = 0; oy < p.oh; ++oy)
            for (Index ox = 0; ox < p.ow; ++ox) {
                const int16_t* o = base_b + (oy * g.stride_h * p.wp + ox * g.stride_w) * p.cp;
                __m256i lo = blo, hi = bhi;
                for (Index q = 0; q < pairs; ++q) {
                    const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + off[2 * q]));
                    const __m256i xb = 2 * q + 1 < p.taps ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + off[2 * q + 1]))
                                                          : _mm256_setzero_si256();
                    __m256i wl, wh;
                    if constexpr (PAIRS > 0) {
                        wl = wlo[q];
                        wh = whi[q];
                    } else {
                        wl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.wpk.data() + ((q * p.blocks + b) * 2) * 16));
                        wh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.wpk.data() + ((q * p.blocks + b) * 2 + 1) * 16));
                    }
                    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), wl));
                    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), wh));
                }
                const __m256i v0 = _mm256_permute2x128_si256(lo, hi, 0x20);  // channels 0..7 of the block
                const __m256i v1 = _mm256_permute2x128_si256(lo, hi, 0x31);  // 8..15
                const Index pixel = oy * p.ow + ox;
                if (!st.fp32) {
                    int32_t* dst = st.acc + pixel * p.cp + b * kBlock;
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v0);
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8), v1);
                    continue;
                }
                // 16 words in channel order (exact narrowing: the values lie inside the output word)
                const __m256i w = _mm256_permute4x64_epi64(
                    _mm256_packs_epi32(requantize_fp32_avx2(v0, s0, lo_v, hi_v, zp), requantize_fp32_avx2(v1, s1, lo_v, hi_v, zp)), 0xD8);
                alignas(32) uint8_t words[32];
                char* dst = static_cast<char*>(st.out) + (pixel * st.ld + b * kBlock) * st.fp32->bytes;
                if (st.fp32->bytes == 2) {
                    if (stored == kBlock) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), w);
                    else _mm256_store_si256(reinterpret_cast<__m256i*>(words), w), std::memcpy(dst, words, size_t(stored) * 2);
                    continue;
                }
                const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
                const __m128i bytes = st.fp32->unsigned_bytes ? _mm_packus_epi16(w0, w1) : _mm_packs_epi16(w0, w1);
                if (stored == kBlock) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
                else _mm_store_si128(reinterpret_cast<__m128i*>(words), bytes), std::memcpy(dst, words, size_t(stored));
            }
    }
}

// The same sums in plain C++ (wrapping int32 arithmetic, so every path gives the same bits).
void dw_image_portable(const int16_t* buf, const ConvGeometry& g, const DwPlan& p, const int16_t* w_taps, int32_t* acc) {
    for (Index oy = 0; oy < p.oh; ++oy)
        for (Index ox = 0; ox < p.ow; ++ox) {
            const int16_t* o = buf + (oy * g.stride_h * p.wp + ox * g.stride_w) * p.cp;
            int32_t* dst = acc + (oy * p.ow + ox) * p.cp;
            for (Index c = 0; c < p.cp; ++c) {
                uint32_t s = 0;
                for (Index t = 0; t < p.taps; ++t) s += uint32_t(int32_t(o[p.tap_off[size_t(t)] + c]) * int32_t(w_taps[t * p.cp + c]));
                dst[c] = int32_t(s);
            }
        }
}

}  // namespace

bool depthwise_nhwc_available(const ConvGeometry& g, Path path) {
    // groups == channels: depthwise, or a single input channel (the stem of an image network), whose
    // K = kh * kw is too short for the GEMM route
    return g.groups == g.channels && g.out_channels % g.channels == 0 && resolve(path) != Path::Portable && cpu::has_avx2();
}

template <class T>
void conv2d_depthwise_nhwc(const T* x, const ConvGeometry& g, const int16_t* w, const DepthwiseArgs& args) {
    if (g.batch == 0 || g.out_channels == 0) return;
    const DwPlan p = make_plan(g, w, args);
    const bool avx2 = cpu::has_avx2();
    // Portable: (w - zw) per tap and padded channel, and the bias added after the sums.
    std::vector<int16_t> w_taps;
    if (!avx2) {
        w_taps.assign(size_t(p.taps * p.cp), 0);
        for (Index oc = 0; oc < p.out_c; ++oc) {
            const int32_t zw = args.w_zero_point[args.w_zero_point_count == 1 ? 0 : oc];
            for (Index t = 0; t < p.taps; ++t) w_taps[size_t(t * p.cp + oc)] = int16_t(int32_t(w[oc * p.taps + t]) - zw);
        }
    }
    const Index in_image = g.channels * g.height * g.width, pixels = p.oh * p.ow, out_image = p.out_c * pixels;
    const Requantizer* rq = args.rq;
    // ONNX Runtime's / XNNPACK's fp32 requantization into 8/16-bit words: fused into the AVX2 store.
    DirectFp32 fp32;
    const bool fused = avx2 && rq && direct_fp32(*rq, fp32);
    std::vector<float> scales;
    if (fused) {
        fp32.unsigned_bytes = rq->out_type == OutType::UInt8;
        scales.assign(size_t(p.cp), 0.0f);
        for (Index oc = 0; oc < p.out_c; ++oc) scales[size_t(oc)] = rq->params_at(oc).scale;
    }
    const double work = double(g.batch) * double(pixels) * double(p.cp) * double(p.taps);
    parallel_tasks(g.batch, threads_for_work(work, g.batch), [&](std::ptrdiff_t task, int) {
        static thread_local std::vector<int16_t> buf;
        static thread_local std::vector<int32_t> acc, planes;
        static thread_local std::vector<uint8_t> bytes;  // an NCHW image transposed, or an output image
        const Index n = Index(task);
        buf.assign(size_t(p.hp * p.wp * p.cp + kBlock), 0);
        const T* img = x + n * in_image;
        if (!args.x_channels_last) {
            bytes.resize(size_t(in_image) * sizeof(T));
            layout_detail::transpose_matrix(img, g.channels, g.height * g.width, reinterpret_cast<T*>(bytes.data()));
            img = reinterpret_cast<const T*>(bytes.data());
        }
        build_image(img, g, p, args.x_zero_point, buf.data());
        if (fused) {  // requantized in the store: into the output (NHWC) or an image tile transposed after
            DwStore st;
            st.fp32 = &fp32;
            st.scale = scales.data();
            st.ld = p.out_c;
            st.channels = p.out_c;
            char* dst = static_cast<char*>(args.out) + n * out_image * fp32.bytes;
            if (!args.out_channels_last) bytes.resize(size_t(out_image * fp32.bytes));
            st.out = args.out_channels_last ? static_cast<void*>(dst) : static_cast<void*>(bytes.data());
            if (p.pairs == 5) dw_image_avx2<5>(buf.data(), g, p, st);
            else if (p.pairs == 2) dw_image_avx2<2>(buf.data(), g, p, st);
            else dw_image_avx2<0>(buf.data(), g, p, st);
            if (!args.out_channels_last) {
                if (fp32.bytes == 2) layout_detail::transpose_matrix(reinterpret_cast<const int16_t*>(bytes.data()), pixels, p.out_c,
                                                                     reinterpret_cast<int16_t*>(dst));
                else layout_detail::transpose_matrix(bytes.data(), pixels, p.out_c, reinterpret_cast<uint8_t*>(dst));
            }
            return;
        }
        acc.resize(size_t(pixels * p.cp));
        if (avx2) {
            DwStore st;
            st.acc = acc.data();
            if (p.pairs == 5) dw_image_avx2<5>(buf.data(), g, p, st);
            else if (p.pairs == 2) dw_image_avx2<2>(buf.data(), g, p, st);
            else dw_image_avx2<0>(buf.data(), g, p, st);
        } else {
            dw_image_portable(buf.data(), g, p, w_taps.data(), acc.data());
            for (Index px = 0; px < pixels; ++px)
                for (Index oc = 0; oc < p.out_c; ++oc)
                    acc[size_t(px * p.cp + oc)] = int32_t(uint32_t(acc[size_t(px * p.cp + oc)]) + uint32_t(args.bias ? args.bias[oc] : 0));
        }
        // acc holds [pixel][cp]: as channel planes [out_c][pixel], each requantized by one call (the
        // requantizer's per-channel loop), into the output (NCHW) or an image tile transposed after.
        planes.resize(size_t(out_image));
        for (Index px = 0; px < pixels; ++px)
            for (Index oc = 0; oc < p.out_c; ++oc) planes[size_t(oc * pixels + px)] = acc[size_t(px * p.cp + oc)];
        with_out_type(rq ? rq->out_type : OutType::Int32, [&](auto o) {
            using Out = decltype(o);
            Out* dst = static_cast<Out*>(args.out) + n * out_image;
            Out* tile = dst;
            if (args.out_channels_last) {
                bytes.resize(size_t(out_image) * sizeof(Out));
                tile = reinterpret_cast<Out*>(bytes.data());
            }
            for (Index oc = 0; oc < p.out_c; ++oc) {
                if (rq) rq->apply_channel(planes.data() + oc * pixels, pixels, oc, tile + oc * pixels);
                else if constexpr (std::is_same<Out, int32_t>::value)
                    std::memcpy(tile + oc * pixels, planes.data() + oc * pixels, size_t(pixels) * sizeof(int32_t));
            }
            if (args.out_channels_last) layout_detail::transpose_matrix(tile, p.out_c, pixels, dst);
        });
    });
}

template void conv2d_depthwise_nhwc<int8_t>(const int8_t*, const ConvGeometry&, const int16_t*, const DepthwiseArgs&);
template void conv2d_depthwise_nhwc<uint8_t>(const uint8_t*, const ConvGeometry&, const int16_t*, const DepthwiseArgs&);

}  // namespace fxp::kern
