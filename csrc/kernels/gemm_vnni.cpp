// AVX-512 VNNI quad micro-kernels (see gemm_vnni.hpp).
#include "kernels/gemm_vnni.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <utility>

#include "cpu/features.hpp"
#include "fixed/requantize_fp32.hpp"
#include "kernels/gemm_ceiling.hpp"

namespace fxp::kern {

bool cpu_has_vnni() {
    return cpu::has_avx512_vnni();
}

namespace {
std::atomic<bool> vnni_allowed{true};
}

void set_vnni_allowed(bool allowed) { vnni_allowed.store(allowed, std::memory_order_relaxed); }
bool vnni_enabled() { return cpu_has_vnni() && vnni_allowed.load(std::memory_order_relaxed); }

namespace {

// acc += the four u8 x s8 products of each dword lane. Inline assembly with the accumulator as an
// in-out operand: with the intrinsic, GCC copied every accumulator to a fresh register each K step
// (24 extra moves per 12 vpdpbusd). The signed operand may be a dword in memory, broadcast.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline void dpbusd(__m512i& acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
}
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline void dpbusd_bcast(__m512i& acc, __m512i u8, const int32_t* s8) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u8), "m"(*s8));
}

// R x NV accumulators of 16 int32 lanes stay in zmm registers (32 of them, so no spills); per K quad
// one load per B panel, one broadcast per A row and R * NV vpdpbusd. R < MR serves the last rows of
// an operand whose row count is not a multiple of MR, without computing zero rows.
// B is read as VnniB says: Mode -1 packed, else an image in place whose panel v is split when bit v
// of Mode is set (a second, masked load merged into the first: only where needed, it costs ~12 %).
constexpr int Packed = -1;
template <bool AU, int NV, int R, int Mode>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void micro_vnni(
    const int32_t* a, Index lda, const VnniB& b, Index units, const VnniBlock& out) {
    __m512i acc[R][NV];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
    const int32_t* panel[NV];
    __mmask16 second[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
        panel[v] = b.panel[v];
        second[v] = __mmask16(b.second[v]);
    }
    const Index* offsets = b.offsets;
    const Index delta = b.delta;
    for (Index u = 0; u < units; ++u) {
        __m512i bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            if constexpr (Mode == Packed) {
                bv[v] = _mm512_loadu_si512(panel[v] + u * NR);
            } else {
                const int32_t* p = panel[v] + offsets[u];
                bv[v] = _mm512_loadu_si512(p);
                if (Mode & (1 << v)) bv[v] = _mm512_mask_loadu_epi32(bv[v], second[v], p + delta);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            if constexpr (AU) {
                const __m512i av = _mm512_set1_epi32(a[r * lda + u]);
#pragma GCC unroll 2
                for (int v = 0; v < NV; ++v) dpbusd(acc[r][v], av, bv[v]);
            } else {  // A is the signed operand: broadcast straight from memory
#pragma GCC unroll 2
                for (int v = 0; v < NV; ++v) dpbusd_bcast(acc[r][v], bv[v], a + r * lda + u);
            }
        }
    }
    __mmask16 mask[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
        const int n = std::min(NR, std::max(0, out.cols - v * NR));
        mask[v] = __mmask16((1u << n) - 1u);
    }
    __m512i add[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) add[v] = out.add ? _mm512_maskz_loadu_epi32(mask[v], out.add + v * NR) : _mm512_setzero_si512();
    if (const DirectFp32* q = out.fp32) {  // the whole sum is here (one K block): requantize and narrow
        const __m512 lo = _mm512_set1_ps(q->lo), hi = _mm512_set1_ps(q->hi);
        const __m512i zp = _mm512_set1_epi32(q->zp);
        __m512 col_scale[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v)
            col_scale[v] = out.scale_col ? _mm512_maskz_loadu_ps(mask[v], out.scale_col + v * NR) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512i row_term = _mm512_set1_epi32(out.add_row ? out.add_row[r] : 0);
            const __m512 row_scale = _mm512_set1_ps(out.scale_row ? out.scale_row[r] : 0.0f);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) {
                const __m512i x = _mm512_add_epi32(_mm512_add_epi32(acc[r][v], add[v]), row_term);
                const __m512i z = requantize_fp32_avx512(x, out.scale_row ? row_scale : col_scale[v], lo, hi, zp);
                char* dst = reinterpret_cast<char*>(out.c) + (r * out.ldc + v * NR) * q->bytes;
                if (q->bytes == 1) _mm512_mask_cvtepi32_storeu_epi8(dst, mask[v], z);
                else _mm512_mask_cvtepi32_storeu_epi16(dst, mask[v], z);
            }
        }
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m512i row_term = _mm512_set1_epi32(out.add_row ? out.add_row[r] : 0);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            int32_t* c = out.c + r * out.ldc + v * NR;
            __m512i x = _mm512_add_epi32(_mm512_add_epi32(acc[r][v], add[v]), row_term);
            if (out.accumulate) x = _mm512_add_epi32(x, _mm512_maskz_loadu_epi32(mask[v], c));
            _mm512_mask_storeu_epi32(c, mask[v], x);
        }
    }
}

#define FXP_DP(x) "vpdpbusd %%zmm13, %%zmm12, %%zmm" #x "\n\t"

// One round: 12 vpdpbusd = 12 * 64 multiply-accumulates = 1536 operations.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) int64_t spin_vnni(int64_t rounds) {
    int64_t n = rounds;
    __asm__ volatile(
        "vpxord %%zmm12, %%zmm12, %%zmm12\n\tvpternlogd $0xff, %%zmm13, %%zmm13, %%zmm13\n\t"
        "1:\n\t" FXP_DP(0) FXP_DP(1) FXP_DP(2) FXP_DP(3) FXP_DP(4) FXP_DP(5) FXP_DP(6) FXP_DP(7) FXP_DP(8)
        FXP_DP(9) FXP_DP(10) FXP_DP(11) "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"
        : [n] "+r"(n)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13");
    return n;
}

}  // namespace

double vnni_ceiling_gops(int threads, double seconds) {
    if (!cpu_has_vnni()) return 0.0;
    const int64_t rounds = std::max<int64_t>(1, int64_t(seconds * 3e8));
    return sum_over_threads(threads, [&] {
        const auto t0 = std::chrono::steady_clock::now();
        volatile int64_t sink = spin_vnni(rounds);
        (void)sink;
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return double(rounds) * 1536.0 / dt * 1e-9;
    });
}

namespace {
template <bool AU, int NV, int Mode, int... R>
void fill_kernels(VnniKernel* table, std::integer_sequence<int, R...>) {
    ((table[R] = micro_vnni<AU, NV, R + 1, Mode>), ...);
}
}  // namespace

VnniKernels vnni_kernels(bool a_unsigned) {
    static_assert(MR == 6, "one kernel per row count 1..MR");
    constexpr auto rows = std::make_integer_sequence<int, MR>();
    VnniKernels k;
    if (a_unsigned) {
        fill_kernels<true, 1, Packed>(k.one, rows);
        fill_kernels<true, 2, Packed>(k.two, rows);
    } else {
        fill_kernels<false, 1, Packed>(k.one, rows);
        fill_kernels<false, 2, Packed>(k.two, rows);
        fill_kernels<false, 1, 0>(k.image[0][0], rows);
        fill_kernels<false, 1, 1>(k.image[1][0], rows);
        fill_kernels<false, 2, 0>(k.image[0][1], rows);
        fill_kernels<false, 2, 1>(k.image[1][1], rows);
        fill_kernels<false, 2, 2>(k.image[2][1], rows);
        fill_kernels<false, 2, 3>(k.image[3][1], rows);
    }
    return k;
}

}  // namespace fxp::kern
