// Affine int8/int16 GEMM: zero-point corrections, bias, overflow policy and fused requantization in
// the epilogue of the packed driver (gemm.cpp).
#include "kernels/gemm_affine.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/gemm_vnni.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

PackedGemmB pack_gemm_b(const int8_t* b, Index k, Index n) {
    PackedGemmB p;
    p.k = k;
    p.n = n;
    p.pairs = pack_cols(b, n, k, 1, n, Layout::Pairs);
    p.has_quads = cpu_has_avx2();
    p.quads = pack_cols(b, n, k, 1, n, Layout::Quads);  // (the int16-pair accumulation reads them on any CPU)
    p.has_flipped = p.has_quads && cpu_has_vnni();
    if (p.has_flipped) {
        std::vector<uint8_t> flipped(size_t(k * n));
        for (size_t i = 0; i < flipped.size(); ++i) flipped[i] = uint8_t(uint8_t(b[i]) ^ 0x80u);
        p.quads_flipped = pack_cols(flipped.data(), n, k, 1, n, Layout::Quads);
    }
    return p;
}

namespace {
// Exact sums of the rows of an int8 matrix: vpsadbw adds 64 bytes of x xor 0x80 = x + 128 at a time
// (into 64-bit lanes, no overflow); the sum of x is that minus 128 per byte.
__attribute__((target("avx512f,avx512bw"))) void int8_row_sums_avx512(const int8_t* a, Index m, Index k, int64_t* out) {
    const __m512i sign = _mm512_set1_epi8(char(0x80));
    for (Index i = 0; i < m; ++i) {
        const int8_t* row = a + i * k;
        __m512i acc = _mm512_setzero_si512();
        for (Index b = 0; b < k; b += 64) {
            const __mmask64 valid = k - b >= 64 ? ~__mmask64(0) : (__mmask64(1) << (k - b)) - 1;
            const __m512i v = _mm512_maskz_mov_epi8(valid, _mm512_xor_si512(_mm512_maskz_loadu_epi8(valid, row + b), sign));
            acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
        }
        out[i] = _mm512_reduce_add_epi64(acc) - 128 * int64_t(k);
    }
}

// -zb * (sum of row i) modulo 2^32 for rows [i0, i0 + rows) of the int8 matrix a (K columns), on a
// VNNI CPU (the only route that needs it): vpdpbusd of ones (unsigned) and the row (signed) adds 64
// bytes into 16 int32 lanes in one instruction; the sums are only needed modulo 2^32. Four rows at a
// time keep four independent chains in flight.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void int8_row_terms(const int8_t* a, Index k, int32_t zb, Index i0,
                                                                           Index rows, int32_t* out) {
    const __m512i ones = _mm512_set1_epi8(1);
    const __mmask64 tail = k % 64 ? (__mmask64(1) << (k % 64)) - 1 : ~__mmask64(0);
    const Index full = k / 64 * 64;
#define FXP_FINISH(r, acc) out[r] = int32_t(0u - uint32_t(zb) * uint32_t(_mm512_reduce_add_epi32(acc)))
    Index r = 0;
    for (; r + 4 <= rows; r += 4) {
        const int8_t* p = a + (i0 + r) * k;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (Index b = 0; b < full; b += 64) {
            s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_loadu_si512(p + b));
            s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_loadu_si512(p + k + b));
            s2 = _mm512_dpbusd_epi32(s2, ones, _mm512_loadu_si512(p + 2 * k + b));
            s3 = _mm512_dpbusd_epi32(s3, ones, _mm512_loadu_si512(p + 3 * k + b));
        }
        if (full < k) {
            s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_maskz_loadu_epi8(tail, p + full));
            s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_maskz_loadu_epi8(tail, p + k + full));
            s2 = _mm512_dpbusd_epi32(s2, ones, _mm512_maskz_loadu_epi8(tail, p + 2 * k + full));
            s3 = _mm512_dpbusd_epi32(s3, ones, _mm512_maskz_loadu_epi8(tail, p + 3 * k + full));
        }
        FXP_FINISH(r, s0);
        FXP_FINISH(r + 1, s1);
        FXP_FINISH(r + 2, s2);
        FXP_FINISH(r + 3, s3);
    }
    for (; r < rows; ++r) {
        const int8_t* p = a + (i0 + r) * k;
        __m512i s0 = _mm512_setzero_si512();
        for (Index b = 0; b < full; b += 64) s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_loadu_si512(p + b));
        if (full < k) s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_maskz_loadu_epi8(tail, p + full));
        FXP_FINISH(r, s0);
    }
#undef FXP_FINISH
}
}  // namespace

namespace {
// 128 bytes per step in 4 independent ORs; the sign bits of full-range data usually show in the
// first 4 KB.
__attribute__((target("avx2"))) bool bytes_below_128_avx2(const unsigned char* s, Index count) {
    __m256i any[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    Index i = 0;
    for (; i + 128 <= count; i += 128) {
        for (int t = 0; t < 4; ++t)
            any[t] = _mm256_or_si256(any[t], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 32 * t)));
        if ((i & 4095) == 3968 && _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(any[0], any[1]),
                                                                       _mm256_or_si256(any[2], any[3]))) != 0)
            return false;
    }
    if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(any[0], any[1]), _mm256_or_si256(any[2], any[3]))) != 0)
        return false;
    for (; i < count; ++i)
        if (s[i] & 0x80) return false;
    return true;
}
}  // namespace

bool bytes_below_128(const void* p, Index count) {
    const unsigned char* s = static_cast<const unsigned char*>(p);
    if (cpu_has_avx2()) {
        // Large operands in chunks on the kernels' threads (full-range data: each chunk stops early).
        constexpr Index CHUNK = Index(1) << 18;
        const Index chunks = (count + CHUNK - 1) / CHUNK;
        if (chunks <= 1) return bytes_below_128_avx2(s, count);
        std::atomic<bool> below{true};
        parallel_tasks(chunks, threads_for_work(double(count), chunks), [&](std::ptrdiff_t c, int) {
            if (below.load(std::memory_order_relaxed) &&
                !bytes_below_128_avx2(s + c * CHUNK, std::min(CHUNK, count - Index(c) * CHUNK)))
                below.store(false, std::memory_order_relaxed);
        });
        return below.load();
    }
    uint64_t any = 0;
    Index i = 0;
    for (; i + 8 <= count; i += 8) {
        uint64_t w;
        std::memcpy(&w, s + i, 8);
        any |= w;
        // Full-range data usually answers in the first block.
        if ((i & 4095) == 4088 && (any & 0x8080808080808080ull) != 0) return false;
    }
    for (; i < count; ++i) any |= s[i];
    return (any & 0x8080808080808080ull) == 0;
}

bool direct_fp32(const Requantizer& rq, DirectFp32& out) {
    if (rq.mode != RequantMode::MlasFp32 || rq.out_type == OutType::Int32) return false;
    return with_out_type(rq.out_type, [&](auto o) {
        using Out = decltype(o);
        if constexpr (sizeof(Out) < 4) {
            // As Requantizer computes it: clamp to [lo - zp, hi - zp] in float, RNE, + zp; the result
            // is inside Out, so the narrowing store is exact.
            const int64_t lo = std::max<int64_t>(rq.clamp_lo, std::numeric_limits<Out>::min());
            const int64_t hi = std::min<int64_t>(rq.clamp_hi, std::numeric_limits<Out>::max());
            out.bytes = int(sizeof(Out));
            out.lo = float(lo - rq.zero_point);
            out.hi = float(hi - rq.zero_point);
            out.zp = rq.zero_point;
            return true;
        }
        return false;
    });
}

namespace {

// Zero-point terms of output (i, j): exact value = AB + bias_j - za_i*colterm_j - zb_j*rowsum_i,
// with colterm_j = colsum_j - K*zb_j.
struct Corrections {
    const AffineArgs& args;
    const std::vector<int64_t>& row_sums;
    std::vector<int64_t> colterm;
    // The same terms modulo 2^32, per column, for the vectorisable int32 (wrap) epilogue.
    // One A zero point (per tensor): its term is per column, folded into bias32 (one add per output
    // instead of a multiply and a subtract).
    std::vector<uint32_t> bias32, colterm32, zb32;
    // One B zero point (per tensor): its term -zb * rowsum_i is per row (row32), which the direct store
    // of the VNNI driver adds like the per-column one.
    // With lazy_a (an int8 A, on VNNI CPUs) row32 is left empty: each tile computes the terms of its
    // own rows from lazy_a (row_terms), so no serial pass over A precedes the multiply.
    std::vector<int32_t> row32;
    const int8_t* lazy_a = nullptr;
    Index k = 0;
    bool any_za = false, any_zb = false, any_bias = false, zb_per_row = false;

    Corrections(const AffineArgs& a, const std::vector<int64_t>& rs, const std::vector<int64_t>& cs, Index k_,
                const int8_t* rows_from = nullptr)
        : args(a), row_sums(rs), colterm(cs.size()), bias32(cs.size(), 0), colterm32(cs.size()), zb32(cs.size()), k(k_) {
        any_za = std::any_of(a.za, a.za + a.za_count, [](int32_t z) { return z != 0; });
        any_zb = std::any_of(a.zb, a.zb + a.zb_count, [](int32_t z) { return z != 0; });
        for (size_t j = 0; j < cs.size(); ++j) {
            colterm[j] = cs[j] - k * int64_t(zb(Index(j)));
            colterm32[j] = uint32_t(uint64_t(colterm[j]));
            zb32[j] = uint32_t(zb(Index(j)));
            if (a.bias) bias32[j] = uint32_t(a.bias[j]);
        }
        any_bias = a.bias != nullptr;
        if (any_za && a.za_count == 1) {
            for (size_t j = 0; j < cs.size(); ++j) bias32[j] -= uint32_t(a.za[0]) * colterm32[j];
            any_za = false;
            any_bias = true;
        }
        if (any_zb && a.zb_count == 1 && rows_from) {
            lazy_a = rows_from;
            zb_per_row = true;
        } else if (any_zb && a.zb_count == 1) {
            row32.resize(rs.size());
            for (size_t i = 0; i < rs.size(); ++i) row32[i] = int32_t(0u - uint32_t(a.zb[0]) * uint32_t(uint64_t(rs[i])));
            zb_per_row = true;
        }
    }
    static void row_terms(const void* self, Index i0, Index rows, int32_t* out) {
        const Corrections& c = *static_cast<const Corrections*>(self);
        int8_row_terms(c.lazy_a, c.k, c.args.zb[0], i0, rows, out);
    }
    int32_t row_term(Index i) const {
        if (!lazy_a) return row32[size_t(i)];
        int32_t t;
        row_terms(this, i, 1, &t);
        return t;
    }
    int32_t za(Index i) const { return args.za[args.za_count == 1 ? 0 : i]; }
    int32_t zb(Index j) const { return args.zb[args.zb_count == 1 ? 0 : j]; }
    // The correction of (i, j) added to the raw product AB, exact in int64.
    int64_t term(Index i, Index j) const {
        return (args.bias ? args.bias[j] : 0) - int64_t(za(i)) * colterm[size_t(j)] - int64_t(zb(j)) * row_sums[size_t(i)];
    }
    // acc[j] += term(i, j0 + j) modulo 2^32, skipping the terms that are zero.
    void add_wrapped(Index i, Index j0, Index n, int32_t* acc) const {
        uint32_t* u = reinterpret_cast<uint32_t*>(acc);
        if (any_bias)
            for (Index j = 0; j < n; ++j) u[j] += bias32[size_t(j0 + j)];
        if (any_za) {
            const uint32_t z = uint32_t(za(i));
            for (Index j = 0; j < n; ++j) u[j] -= z * colterm32[size_t(j0 + j)];
        }
        if (zb_per_row) {
            const uint32_t t = uint32_t(row_term(i));
            for (Index j = 0; j < n; ++j) u[j] += t;
        } else if (any_zb) {
            const uint32_t rs = uint32_t(uint64_t(row_sums[size_t(i)]));
            for (Index j = 0; j < n; ++j) u[j] -= zb32[size_t(j0 + j)] * rs;
        }
    }
};

// Writes one finished int32 row (columns j0..j0+n of row i) to the output, requantizing if asked.
template <class Acc>
void emit_row(const AffineArgs& args, Index n_total, Index i, Index j0, Index n, Acc* acc) {
    if (args.rq) {
        with_out_type(args.rq->out_type, [&](auto o) {
            using Out = decltype(o);
            args.rq->apply_per_column(acc, n, j0, static_cast<Out*>(args.out) + i * n_total + j0);
        });
    } else {
        std::memcpy(static_cast<Acc*>(args.out) + i * n_total + j0, acc, size_t(n) * sizeof(Acc));
    }
}

// Default path: the corrections in wrapping int32 arithmetic (exact modulo 2^32).
struct WrapEpilogue : Epilogue {
    const Corrections& corr;
    Index n_total;
    const DirectFp32* fp32 = nullptr;  // the requantizer in the kernel's store form, if it has one
    WrapEpilogue(const Corrections& c, Index n) : corr(c), n_total(n) {}
    bool direct(DirectOutput& d) const override {
        if ((corr.args.rq && !fp32) || corr.any_za || (corr.any_zb && !corr.zb_per_row)) return false;
        d.out = static_cast<int32_t*>(corr.args.out);
        d.ld = n_total;
        d.add = corr.any_bias ? reinterpret_cast<const int32_t*>(corr.bias32.data()) : nullptr;
        d.add_row = corr.zb_per_row && !corr.lazy_a ? corr.row32.data() : nullptr;
        if (corr.lazy_a) {
            d.row_term = &Corrections::row_terms;
            d.row_ctx = &corr;
        }
        d.fp32 = fp32;
        return true;
    }
    void row(Index i, Index j0, Index n, int32_t* acc) const override {
        if (!corr.args.rq && !corr.any_za && !corr.any_zb && corr.any_bias) {
            // Only a per-column term and int32 output: one pass, straight into the output.
            int32_t* out = static_cast<int32_t*>(corr.args.out) + i * n_total + j0;
            const uint32_t* bias = corr.bias32.data() + j0;
            for (Index j = 0; j < n; ++j) out[j] = int32_t(uint32_t(acc[j]) + bias[j]);
            return;
        }
        corr.add_wrapped(i, j0, n, acc);
        emit_row(corr.args, n_total, i, j0, n, acc);
    }
};

// Wide path: adds each K chunk's exact int32 sums into an int64 result.
struct SumEpilogue : Epilogue {
    int64_t* total;
    Index n_total;
    SumEpilogue(int64_t* t, Index n) : total(t), n_total(n) {}
    void row(Index i, Index j0, Index n, int32_t* acc) const override {
        int64_t* t = total + i * n_total + j0;
        for (Index j = 0; j < n; ++j) t[j] += acc[j];
    }
};

// Applies the policy to exact int64 results, row by row; records the first overflow under Raise.
void finish_wide(const AffineArgs& args, Index m, Index n, std::vector<int64_t>& total,
                 const std::function<int64_t(Index, Index)>& term) {
    // The first overflowing row of each thread; the smallest index wins (the report names the first).
    const int threads = threads_for_work(double(m) * double(n), m);
    std::vector<Index> bad_of(static_cast<size_t>(threads), -1);
    std::vector<std::vector<int32_t>> rows(static_cast<size_t>(threads));
    parallel_tasks(m, threads, [&](std::ptrdiff_t task, int slot) {
        const Index i = Index(task);
        std::vector<int32_t>& row = rows[size_t(slot)];
        row.resize(static_cast<size_t>(n));
        Index& bad = bad_of[size_t(slot)];
        for (Index j = 0; j < n; ++j) {
            int64_t& v = total[size_t(i * n + j)];
            v += term(i, j);
            const bool over = v < INT32_MIN || v > INT32_MAX;
            if (over && args.overflow == AccOverflow::Raise && (bad < 0 || i * n + j < bad)) bad = i * n + j;
            row[size_t(j)] = args.overflow == AccOverflow::Saturate ? int32_t(saturate<int64_t>(v, INT32_MIN, INT32_MAX))
                                                                  : int32_t(uint32_t(uint64_t(v)));
        }
        emit_row(args, n, i, 0, n, row.data());
    });
    Index bad = -1;
    for (Index b : bad_of)
        if (b >= 0 && (bad < 0 || b < bad)) bad = b;
    if (bad >= 0) throw AccumulatorOverflow{bad / n, bad % n, total[size_t(bad)]};
}

}  // namespace

template <class T>
void gemm_affine(const T* a, Index m, const PackedGemmB& b, const AffineArgs& args) {
    const Index k = b.k, n = b.n;
    Path path = resolve(args.path);
    // vpdpbusd (VNNI) is exact for every uint8 A, and for int8 A read as A + 128 (flip); vpmaddubsw
    // is exact when the unsigned (A) operand is <= 127.
    const bool vnni = path == Path::Auto && b.has_quads && vnni_enabled();
    // With VNNI no byte check: the + 128 costs less than a pass over A (the xor is part of the copy
    // that packs each tile, and the za + 128 term is folded into the per-column term).
    const bool quads = vnni || (path == Path::Auto && b.has_quads && bytes_below_128(a, m * k));
    // A full-range int8 A with whole quads and one B zero point (int32 route) is read in place against
    // B + 128 at the cost of the uint8 route (each tile computes its rows' terms), so A >= 0 there
    // takes it too: the check would cost more than it saves (256^3: 1.5 us of 77). Otherwise int8
    // A >= 0 (activations after ReLU) is the uint8 A as it is: no + 128, no copy. The check stops
    // within the first 4 KB on full-range data.
    const bool lazy_route = vnni && std::is_signed<T>::value && b.has_flipped && k % 4 == 0 && args.zb_count == 1 &&
                            (!args.wide || args.overflow == AccOverflow::Wrap);
    const bool full_range = vnni && std::is_signed<T>::value && (lazy_route || !bytes_below_128(a, m * k));
    // A full-range int8 A with whole quads is read in place as the signed operand against B + 128
    // (packed once): (A - za)(B - zb) = A (B + 128) - ... with the B zero point zb + 128, a per-row
    // term -(zb + 128) rowsum(A) (computed by the tiles, or in one pass before). Otherwise it is copied
    // as A + 128 per tile.
    const bool flip_b = full_range && b.has_flipped && k % 4 == 0;
    const bool flip = full_range && !flip_b;
    if (vnni) path = Path::Vnni;
    RowMajorRows<T> pa(a, m, k, quads ? Layout::Quads : Layout::Pairs, (quads && !flip_b) || std::is_unsigned<T>::value, flip);
    // The VNNI kernels read only the rows that exist, so whole quads (K a multiple of 4) are read in place.
    pa.in_place = vnni && !flip && k % 4 == 0;
    const PackedCols& pb = flip_b ? b.quads_flipped : quads ? b.quads : b.pairs;
    // (A - za) = (A + 128) - (za + 128), (B - zb) = (B + 128) - (zb + 128): the flipped operand keeps
    // the exact result.
    AffineArgs eff = args;
    std::vector<int32_t> za_flipped, zb_flipped;
    if (flip) {
        za_flipped.assign(args.za, args.za + args.za_count);
        for (int32_t& z : za_flipped) z += 128;
        eff.za = za_flipped.data();
    }
    if (flip_b) {
        zb_flipped.assign(args.zb, args.zb + args.zb_count);
        for (int32_t& z : zb_flipped) z += 128;
        eff.zb = zb_flipped.data();
    }
    // Row sums (of the operand as multiplied) are needed only for a non-zero B zero point.
    std::vector<int64_t> row_sums(size_t(m), 0);
    // One B zero point and the int32 route: the tiles compute their rows' terms (Corrections::lazy_a).
    const bool lazy_rows = flip_b && lazy_route;
    if (flip_b && !lazy_rows) {
        const Index block = 64;
        parallel_tasks((m + block - 1) / block, threads_for_work(double(m) * double(k), (m + block - 1) / block),
                       [&](std::ptrdiff_t t, int) {
                           const Index i0 = Index(t) * block;
                           int8_row_sums_avx512(reinterpret_cast<const int8_t*>(a) + i0 * k, std::min(block, m - i0), k,
                                                row_sums.data() + i0);
                       });
    } else if (!flip_b && std::any_of(args.zb, args.zb + args.zb_count, [](int32_t z) { return z != 0; })) {
        parallel_tasks(m, threads_for_work(double(m) * double(k), m), [&](std::ptrdiff_t i, int) {
            row_sums[size_t(i)] = line_sum(a + i * k, k, 1) + (flip ? 128 * int64_t(k) : 0);
        });
    }
    const Corrections corr(eff, row_sums, pb.col_sums, k, lazy_rows ? reinterpret_cast<const int8_t*>(a) : nullptr);

    // Wrap, or a bound saying the exact result fits int32: the corrections in int32 arithmetic give the
    // exact result modulo 2^32 (the flipped form's raw sums may wrap on the way; the result does not).
    if (!args.wide || args.overflow == AccOverflow::Wrap) {
        WrapEpilogue ep(corr, n);
        DirectFp32 fp32;
        std::vector<float> col_scales;
        if (vnni && args.rq && direct_fp32(*args.rq, fp32)) {  // requantized in the kernel's store
            col_scales.resize(size_t(n));
            for (Index j = 0; j < n; ++j) col_scales[size_t(j)] = args.rq->params_at(j).scale;
            fp32.scale_col = col_scales.data();
            ep.fp32 = &fp32;
        }
        multiply(pa, pb, ep, path);
        return;
    }
    // Each chunk's raw sums stay below 2^15 * 255 * 128 < 2^31 (uint8 or flipped A included): exact in
    // int32; the int64 total plus the exact int64 corrections is the exact result.
    std::vector<int64_t> total(size_t(m * n), 0);
    const Index chunk = (Index(1) << 15) / (pa.layout == Layout::Pairs ? 2 : 4);
    for (Index u = 0; u < pa.units; u += chunk)
        multiply(pa, pb, SumEpilogue(total.data(), n), path, u, std::min(pa.units, u + chunk));
    finish_wide(args, m, n, total, [&](Index i, Index j) { return corr.term(i, j); });
}

template <class TA>
void gemm_affine_pairs(const TA* a, Index m, const PackedCols& b, const AffineArgs& args) {
    const Index k = b.k, n = b.count;
    if (b.layout != Layout::Quads) throw std::invalid_argument("int16-pair accumulation needs B packed as quads");
    if (std::is_unsigned<TA>::value == b.is_unsigned)
        throw std::invalid_argument("int16-pair accumulation needs exactly one unsigned operand (uint8 x int8)");
    if (args.overflow != AccOverflow::Wrap) throw std::invalid_argument("int16-pair accumulation wraps like int32 hardware");
    RowMajorRows<TA> pa(a, m, k, Layout::Quads, std::is_unsigned<TA>::value);
    std::vector<int64_t> row_sums(size_t(m), 0);
    if (std::any_of(args.zb, args.zb + args.zb_count, [](int32_t z) { return z != 0; }))
        parallel_tasks(m, threads_for_work(double(m) * double(k), m),
                       [&](std::ptrdiff_t i, int) { row_sums[size_t(i)] = line_sum(a + i * k, k, 1); });
    const Corrections corr(args, row_sums, b.col_sums, k);
    WrapEpilogue ep(corr, n);
    // Path::Vnni would pick the portable kernel; any other path on an AVX2 CPU the vpmaddubsw one.
    multiply(pa, b, ep, args.path == Path::Vnni ? Path::Auto : args.path, 0, -1, Accum::Int16Pairs);
}

template void gemm_affine_pairs<int8_t>(const int8_t*, Index, const PackedCols&, const AffineArgs&);
template void gemm_affine_pairs<uint8_t>(const uint8_t*, Index, const PackedCols&, const AffineArgs&);

template void gemm_affine<int8_t>(const int8_t*, Index, const PackedGemmB&, const AffineArgs&);
template void gemm_affine<uint8_t>(const uint8_t*, Index, const PackedGemmB&, const AffineArgs&);

void gemm_affine_i16(const int16_t* a, const int16_t* b, Index m, Index k, Index n, const AffineArgs& args) {
    auto za = [&](Index i) { return int64_t(args.za[args.za_count == 1 ? 0 : i]); };
    auto zb = [&](Index j) { return int64_t(args.zb[args.zb_count == 1 ? 0 : j]); };
    // B transposed with its zero point removed, so each output is one contiguous dot product.
    std::vector<int32_t> bt(size_t(n * k));
    for (Index kk = 0; kk < k; ++kk)
        for (Index j = 0; j < n; ++j) bt[size_t(j * k + kk)] = int32_t(b[kk * n + j]) - int32_t(zb(j));
    const int threads = threads_for_work(double(m) * double(n) * double(k), m);
    std::vector<std::vector<int32_t>> arows(static_cast<size_t>(threads));
    std::vector<std::vector<int64_t>> rows(static_cast<size_t>(threads));
    parallel_tasks(m, threads, [&](std::ptrdiff_t task, int slot) {
        const Index i = Index(task);
        std::vector<int32_t>& arow = arows[size_t(slot)];
        std::vector<int64_t>& row = rows[size_t(slot)];
        arow.resize(static_cast<size_t>(k));
        row.resize(static_cast<size_t>(n));
        for (Index kk = 0; kk < k; ++kk) arow[size_t(kk)] = int32_t(a[i * k + kk]) - int32_t(za(i));
        for (Index j = 0; j < n; ++j) {
            const int32_t* bj = bt.data() + j * k;
            uint64_t s = 0;  // wraps modulo 2^64 (needs K > 2^31 to matter)
            for (Index kk = 0; kk < k; ++kk) s += uint64_t(int64_t(arow[size_t(kk)]) * bj[kk]);
            row[size_t(j)] = int64_t(s + uint64_t(int64_t(args.bias ? args.bias[j] : 0)));
        }
        emit_row(args, n, i, 0, n, row.data());
    });
}

}  // namespace fxp::kern
