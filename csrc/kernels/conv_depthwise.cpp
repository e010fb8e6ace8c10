// Depthwise convolution over the image bytes with vpdpbusd (AVX-512 VNNI + VBMI). See
// conv_depthwise.hpp for the design.
#include "kernels/conv_depthwise.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/features.hpp"
#include "fixed/requantize_fp32.hpp"
#include "kernels/gemm_vnni.hpp"
#include "kernels/threads.hpp"

#define FXP_AVX512_BYTES __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni")))

namespace fxp::kern {

namespace {

constexpr Index kLanes = 16;  // output columns per vector (int32 lanes)

// VNNI allowed (the process-wide switch of gemm_vnni.hpp) and vpermb present.
bool avx512_bytes_enabled() {
    return cpu::has_avx512_vbmi() && vnni_enabled();
}

// What every plane shares: per block of 16 output columns and group of 4 taps, where its load starts
// in the padded row; the vpermb index that gathers the taps.
struct BytePlan {
    Index oh = 0, ow = 0, blocks = 0, groups = 0;
    Index pitch = 0, plane_bytes = 0;  // the zero-point-padded plane: row pitch, size with slack
    bool narrow = false;               // the taps of 16 columns lie within 32 bytes
    std::vector<uint64_t> chunk_mask;  // [c]: bytes t of padded columns 64c + t that are image columns
    std::vector<Index> base;           // [block * groups + q]: padded column of byte 0 of the load
    uint8_t index[64] = {};       // lane i, byte k: i * stride_w + k * dilation_w
};

inline __mmask16 lanes_below(Index n) { return n >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// int32 output (or the plane a non-fused requantizer then reads). row<NB>() stores NB adjacent blocks.
struct StoreInt32 {
    int32_t* plane;
    Index ow;
    template <int NB>
    FXP_AVX512_BYTES inline void row(const __m512i* acc, Index oh, Index j0) const {
        for (int v = 0; v < NB; ++v) {
            const Index j = j0 + v * kLanes;
            _mm512_mask_storeu_epi32(plane + oh * ow + j, lanes_below(ow - j), acc[v]);
        }
    }
};

// ONNX Runtime's requantization, as Requantizer's MlasFp32 mode computes it: RNE(clamp(float(acc) *
// scale, lo - zp, hi - zp)) + zp. The clamp keeps every value inside Out, so narrowing (saturating
// packs or truncation) is exact.
template <class Out>
struct StoreFp32 {
    Out* plane;
    Index ow;
    float scale, lo, hi;
    int32_t zp;
    FXP_AVX512_BYTES inline __m512i requantize(__m512i acc) const {
        return requantize_fp32_avx512(acc, _mm512_set1_ps(scale), _mm512_set1_ps(lo), _mm512_set1_ps(hi),
                                      _mm512_set1_epi32(zp));
    }
    template <int NB>
    FXP_AVX512_BYTES inline void row(const __m512i* acc, Index oh, Index j0) const {
        Out* dst = plane + oh * ow + j0;
        if constexpr (NB == 4 && sizeof(Out) == 1) {
            // 64 outputs in one store: the packs interleave 128-bit lanes, the dword permute restores order.
            const __m512i lo16 = _mm512_packs_epi32(requantize(acc[0]), requantize(acc[1]));
            const __m512i hi16 = _mm512_packs_epi32(requantize(acc[2]), requantize(acc[3]));
            const __m512i bytes = std::is_signed<Out>::value ? _mm512_packs_epi16(lo16, hi16) : _mm512_packus_epi16(lo16, hi16);
            const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            const Index n = ow - j0;
            const __mmask64 m = n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
            _mm512_mask_storeu_epi8(dst, m, _mm512_permutexvar_epi32(order, bytes));
        } else {
            for (int v = 0; v < NB; ++v) {
                const Index j = v * kLanes;
                const __m512i r = requantize(acc[v]);
                if constexpr (sizeof(Out) == 1) _mm512_mask_cvtepi32_storeu_epi8(dst + j, lanes_below(ow - j0 - j), r);
                else _mm512_mask_cvtepi32_storeu_epi16(dst + j, lanes_below(ow - j0 - j), r);
            }
        }
    }
};

// The scalars the inner loops read, copied out of the plan and geometry: the kernel's vector stores
// may alias any memory, so fields read through references would be reloaded after every store.
struct PlaneLoop {
    Index kernel_h, stride_h, dilation_h, pitch, groups;
    const Index* base;
    const int32_t* wq;
};

// Taps of 16 output columns from one load: 32 bytes when they span fewer (stride 1), else 64
// (vpermb's index then never selects the undefined upper half of a 32-byte load).
template <bool Narrow>
FXP_AVX512_BYTES inline __m512i gather_taps(const uint8_t* at, __m512i index) {
    const __m512i x = Narrow ? _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)))
                             : _mm512_loadu_si512(at);
    return _mm512_permutexvar_epi8(index, x);
}

// NB blocks of 16 output columns of row oh, from block b0: NB independent vpdpbusd chains, so the
// adds of one chain overlap the others' latency.
template <int KH, int NB, bool Narrow, class Store>
FXP_AVX512_BYTES inline void depthwise_row(const uint8_t* plane, const PlaneLoop l, Index oh, Index b0, __m512i index,
                                           __m512i start, const Store& store) {
    const Index kh = KH ? KH : l.kernel_h, groups = KH ? 1 : l.groups;
    __m512i acc[NB];
    for (int v = 0; v < NB; ++v) acc[v] = start;
    for (Index ki = 0; ki < kh; ++ki) {
        const uint8_t* row = plane + (oh * l.stride_h + ki * l.dilation_h) * l.pitch;
        for (Index q = 0; q < groups; ++q) {
            const __m512i wv = _mm512_set1_epi32(l.wq[ki * groups + q]);
            for (int v = 0; v < NB; ++v)
                acc[v] = _mm512_dpbusd_epi32(acc[v], gather_taps<Narrow>(row + l.base[(b0 + v) * groups + q], index), wv);
        }
    }
    store.template row<NB>(acc, oh, b0 * kLanes);
}

// Rows oh and oh + 1 when stride_h == dilation_h: kernel row ki of the second is kernel row ki + 1
// of the first, so each of the kernel_h + 1 input rows is gathered once for both.
template <int KH, int NB, bool Narrow, class Store>
FXP_AVX512_BYTES inline void depthwise_row_pair(const uint8_t* plane, const PlaneLoop l, Index oh, Index b0, __m512i index,
                                                __m512i start, const Store& store) {
    const Index kh = KH ? KH : l.kernel_h, groups = KH ? 1 : l.groups;
    __m512i a[NB], b[NB];
    for (int v = 0; v < NB; ++v) a[v] = b[v] = start;
    for (Index j = 0; j <= kh; ++j) {
        const uint8_t* row = plane + (oh * l.stride_h + j * l.dilation_h) * l.pitch;
        for (Index q = 0; q < groups; ++q) {
            const __m512i wa = _mm512_set1_epi32(j < kh ? l.wq[j * groups + q] : 0);
            const __m512i wb = _mm512_set1_epi32(j > 0 ? l.wq[(j - 1) * groups + q] : 0);
            for (int v = 0; v < NB; ++v) {
                const __m512i x = gather_taps<Narrow>(row + l.base[(b0 + v) * groups + q], index);
                if (j < kh) a[v] = _mm512_dpbusd_epi32(a[v], x, wa);
                if (j > 0) b[v] = _mm512_dpbusd_epi32(b[v], x, wb);
            }
        }
    }
    store.template row<NB>(a, oh, b0 * kLanes);
    store.template row<NB>(b, oh + 1, b0 * kLanes);
}

// One output plane from the padded uint8 plane, weights wq (kernel_h x groups quads of int8 taps),
// accumulators starting at `term` (bias - zp_u * sum(w)).
template <int KH, bool Narrow, class Store>
FXP_AVX512_BYTES void depthwise_plane_as(const uint8_t* plane, const ConvGeometry& g, const BytePlan& p, const int32_t* wq,
                                         uint32_t term, const Store store) {
    const PlaneLoop l{g.kernel_h, g.stride_h, g.dilation_h, p.pitch, p.groups, p.base.data(), wq};
    const Index oh_count = p.oh, blocks = p.blocks;
    const bool pairs = g.stride_h == g.dilation_h;
    const __m512i index = _mm512_loadu_si512(p.index);
    const __m512i start = _mm512_set1_epi32(int32_t(term));
    Index oh = 0;
    if (pairs)
        for (; oh + 2 <= oh_count; oh += 2) {
            Index b = 0;
            for (; b + 4 <= blocks; b += 4) depthwise_row_pair<KH, 4, Narrow>(plane, l, oh, b, index, start, store);
            for (; b < blocks; ++b) depthwise_row_pair<KH, 1, Narrow>(plane, l, oh, b, index, start, store);
        }
    for (; oh < oh_count; ++oh) {
        Index b = 0;
        for (; b + 4 <= blocks; b += 4) depthwise_row<KH, 4, Narrow>(plane, l, oh, b, index, start, store);
        for (; b < blocks; ++b) depthwise_row<KH, 1, Narrow>(plane, l, oh, b, index, start, store);
    }
}

template <class Store>
void depthwise_plane(const uint8_t* plane, const ConvGeometry& g, const BytePlan& p, const int32_t* wq, uint32_t term,
                     const Store& store) {
    // 3 x (up to 4) kernels, the common case, with the kernel rows unrolled at compile time.
    const bool k3 = g.kernel_h == 3 && p.groups == 1;
    if (p.narrow) k3 ? depthwise_plane_as<3, true>(plane, g, p, wq, term, store) : depthwise_plane_as<0, true>(plane, g, p, wq, term, store);
    else k3 ? depthwise_plane_as<3, false>(plane, g, p, wq, term, store) : depthwise_plane_as<0, false>(plane, g, p, wq, term, store);
}

// The channel as uint8 (x ^ 0x80 for int8) inside a border of zp_u: every load of the kernel is
// then in bounds and unmasked (loads run past a row into the next one, or the slack at the end,
// only for bytes vpermb does not select). Written 64 bytes at a time, in row order, so a chunk
// running past its row is overwritten by the next; the image columns of a chunk come from one
// masked load (the other bytes are never read from x).
template <class T>
FXP_AVX512_BYTES void pad_plane(const T* xc, const ConvGeometry& g, const BytePlan& p, uint8_t zp_u, uint8_t* plane) {
    const Index rows = g.pad_top + g.height + g.pad_bottom, pitch = p.pitch, left = g.pad_left, width = g.width;
    const Index top = g.pad_top, height = g.height;
    const uint64_t* chunk_mask = p.chunk_mask.data();
    const __m512i fill = _mm512_set1_epi8(char(zp_u));
    const __m512i flip = _mm512_set1_epi8(char(std::is_signed<T>::value ? 0x80 : 0));
    for (Index r = 0; r < rows; ++r) {
        const Index h = r - top;
        uint8_t* dst = plane + r * pitch;
        if (h < 0 || h >= height) {
            for (Index i = 0; i < pitch; i += 64) _mm512_storeu_si512(dst + i, fill);
            continue;
        }
        const uintptr_t src = reinterpret_cast<uintptr_t>(xc + h * width);
        for (Index i = 0, c = 0; i < pitch; i += 64, ++c) {
            const __mmask64 m = chunk_mask[c];
            const __m512i x = _mm512_maskz_loadu_epi8(m, reinterpret_cast<const void*>(src + uintptr_t(i - left)));
            _mm512_storeu_si512(dst + i, _mm512_mask_blend_epi8(m, fill, _mm512_xor_si512(x, flip)));
        }
    }
}

}  // namespace

template <class T>
bool conv_depthwise_bytes(const T* x, const ConvGeometry& g, const PackedConvWeights& w, const ConvArgs& args) {
    if (args.path != Path::Auto || !avx512_bytes_enabled() || !g.depthwise()) return false;
    if ((kLanes - 1) * g.stride_w + 3 * g.dilation_w >= 64) return false;  // the taps of 16 columns span one load

    BytePlan p;
    p.oh = g.out_h();
    p.ow = g.out_w();
    p.blocks = (p.ow + kLanes - 1) / kLanes;
    p.groups = (g.kernel_w + 3) / 4;
    for (Index b = 0; b < p.blocks; ++b)
        for (Index q = 0; q < p.groups; ++q) p.base.push_back(b * kLanes * g.stride_w + 4 * q * g.dilation_w);
    p.pitch = g.pad_left + g.width + g.pad_right;
    p.plane_bytes = (g.pad_top + g.height + g.pad_bottom) * p.pitch + p.base.back() + 64;  // >= the last chunk of pad_plane
    for (Index i = 0; i < p.pitch; i += 64) {
        const Index lo = std::max<Index>(0, g.pad_left - i), hi = std::min<Index>(64, g.pad_left + g.width - i);
        uint64_t m = 0;
        for (Index t = lo; t < hi; ++t) m |= uint64_t(1) << t;
        p.chunk_mask.push_back(m);
    }
    for (Index i = 0; i < kLanes; ++i)
        for (Index k = 0; k < 4; ++k) p.index[4 * i + k] = uint8_t(i * g.stride_w + k * g.dilation_w);
    p.narrow = (kLanes - 1) * g.stride_w + 3 * g.dilation_w < 32;

    // Per output channel: the weight quads (taps beyond kernel_w are 0) and the starting value.
    const int32_t zp_u = std::is_signed<T>::value ? args.x_zero_point + 128 : args.x_zero_point;
    const Index oc_count = g.out_channels, per_oc = g.kernel_h * p.groups;
    std::vector<int32_t> wq(size_t(oc_count * per_oc));
    std::vector<uint32_t> term(static_cast<size_t>(oc_count));
    for (Index oc = 0; oc < oc_count; ++oc) {
        const int8_t* wk = w.raw.data() + oc * g.kernel_h * g.kernel_w;
        uint32_t sum = 0;
        for (Index ki = 0; ki < g.kernel_h; ++ki)
            for (Index q = 0; q < p.groups; ++q) {
                uint32_t quad = 0;
                for (Index k = 0; k < 4; ++k) {
                    const Index kj = 4 * q + k;
                    const int8_t v = kj < g.kernel_w ? wk[ki * g.kernel_w + kj] : 0;
                    quad |= uint32_t(uint8_t(v)) << (8 * k);
                    sum += uint32_t(int32_t(v));
                }
                wq[size_t(oc * per_oc + ki * p.groups + q)] = int32_t(quad);
            }
        term[size_t(oc)] = uint32_t(args.bias ? args.bias[oc] : 0) - uint32_t(zp_u) * sum;
    }

    const Requantizer* rq = args.rq;
    const bool fused = rq && rq->mode == RequantMode::MlasFp32 && rq->out_type != OutType::Int32;
    const Index mult = g.out_channels / g.channels, plane_size = p.oh * p.ow;
    const Index planes = g.batch * g.channels;
    const double work = double(planes) * double(mult) * double(plane_size) * double(g.kernel_h * g.kernel_w);
    const int threads = threads_for_work(work, planes);
    std::vector<std::vector<int32_t>> scratches(static_cast<size_t>(threads));
    std::vector<std::vector<uint8_t>> plane_bufs(static_cast<size_t>(threads));
    parallel_tasks(planes, threads, [&](std::ptrdiff_t task, int slot) {
        const Index pc = Index(task);
        std::vector<int32_t>& scratch = scratches[size_t(slot)];
        std::vector<uint8_t>& plane = plane_bufs[size_t(slot)];
        scratch.resize(rq && !fused ? size_t(plane_size) : 0);
        plane.resize(static_cast<size_t>(p.plane_bytes));
        {
            const Index n = pc / g.channels, c = pc % g.channels;
            pad_plane(x + pc * g.height * g.width, g, p, uint8_t(zp_u), plane.data());
            for (Index oc = c * mult; oc < (c + 1) * mult; ++oc) {
                const Index offset = (n * g.out_channels + oc) * plane_size;
                const int32_t* wo = wq.data() + oc * per_oc;
                const uint32_t t = term[size_t(oc)];
                if (!rq) {
                    depthwise_plane(plane.data(), g, p, wo, t, StoreInt32{static_cast<int32_t*>(args.out) + offset, p.ow});
                } else if (!fused) {
                    depthwise_plane(plane.data(), g, p, wo, t, StoreInt32{scratch.data(), p.ow});
                    with_out_type(rq->out_type, [&](auto o) {
                        using Out = decltype(o);
                        rq->apply_channel(scratch.data(), plane_size, oc, static_cast<Out*>(args.out) + offset);
                    });
                } else {
                    with_out_type(rq->out_type, [&](auto o) {
                        using Out = decltype(o);
                        if constexpr (sizeof(Out) < 4) {
                            const int64_t lo = std::max<int64_t>(rq->clamp_lo, std::numeric_limits<Out>::min());
                            const int64_t hi = std::min<int64_t>(rq->clamp_hi, std::numeric_limits<Out>::max());
                            const StoreFp32<Out> store{static_cast<Out*>(args.out) + offset, p.ow, rq->params_at(oc).scale,
                                                       float(lo - rq->zero_point), float(hi - rq->zero_point), rq->zero_point};
                            depthwise_plane(plane.data(), g, p, wo, t, store);
                        }
                    });
                }
            }
        }
    });
    return true;
}

template bool conv_depthwise_bytes<int8_t>(const int8_t*, const ConvGeometry&, const PackedConvWeights&, const ConvArgs&);
template bool conv_depthwise_bytes<uint8_t>(const uint8_t*, const ConvGeometry&, const PackedConvWeights&, const ConvArgs&);

}  // namespace fxp::kern
