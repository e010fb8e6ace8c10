// MLAS's float32 GEMM (MlasGemm / MlasGemmBatch, onnxruntime/core/mlas/lib/sgemm.cpp) as it runs on x86
// with AVX2 + FMA3: which kernel computes an output and in which order its products are summed.
//
// Per output C[m][n], K is cut into blocks; each block is summed by the FMA3 kernel
// (x86_64/FgemmKernelFma3Common.h) as acc = fma(a_k, b_k, acc) from acc = 0 in k order, and stored as
//     first block, ZeroMode (beta == 0):  C = acc * alpha
//     any other block:                    C = fma(acc, alpha, C)          (C holds beta * C before)
// The K blocks:
//   packed B (MlasGemmPackB: Gemm/MatMul with a constant B, ORT's prepacking): 256 wide.
//   unpacked B (MlasSgemmOperation): 128 wide, doubled while the thread's N slice is at most half of a
//     16..128 N stride (StrideN > 16 and StrideN / 2 >= N, with TransA == NoTrans), so 128..1024.
// Unpacked calls with M == 1 (TransA NoTrans, alpha 1, beta 0 or 1) take the AVX kernels
// SgemmKernelM1Avx.S / SgemmKernelM1TransposeBAvx.S instead (separate multiplies and adds, see
// m1_* below), and so do calls with N == 1 and contiguous B and C (the operands swapped).
// Threads (MlasGemmBatch) split N (in 16-column units) or M; an N split changes the unpacked K blocks,
// so `threads` (ORT's intra-op thread count) is an argument.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

constexpr std::ptrdiff_t kSgemmStrideN = 128, kSgemmStrideK = 128;
constexpr std::ptrdiff_t kSgemmPackedStrideN = 128, kSgemmPackedStrideK = 256;
constexpr std::ptrdiff_t kSgemmThreadAlign = 16;
constexpr double kSgemmThreadComplexity = 64.0 * 1024.0;
constexpr std::ptrdiff_t kMlasMaximumThreadCount = 16;

// A GEMM call: C[M x N] = alpha * op(A) op(B) + beta * C, row-major with leading dimensions.
struct Sgemm {
    bool trans_a = false, trans_b = false;
    std::ptrdiff_t M = 0, N = 0, K = 0;
    float alpha = 1.0f, beta = 0.0f;
    const float* A = nullptr;
    std::ptrdiff_t lda = 0;
    const float* B = nullptr;
    std::ptrdiff_t ldb = 0;
    float* C = nullptr;
    std::ptrdiff_t ldc = 0;
    float a(std::ptrdiff_t m, std::ptrdiff_t k) const { return trans_a ? A[k * lda + m] : A[m * lda + k]; }
    float b(std::ptrdiff_t k, std::ptrdiff_t n) const { return trans_b ? B[n * ldb + k] : B[k * ldb + n]; }
};

// ---- the FMA3 kernel over one K block ------------------------------------------------------------------

// Operands of one K block: A rows [M x kc] contiguous; B in panels of 16 columns, panel j holding
// rows k = 0..kc-1 of 16 floats (zero beyond the last column).
struct BlockOperands {
    const float* a;
    const float* b;
    std::ptrdiff_t M, nc, kc;
};

inline void fma3_block_portable(const BlockOperands& o, float alpha, bool zero_mode, float* C, std::ptrdiff_t ldc) {
    for (std::ptrdiff_t m = 0; m < o.M; ++m)
        for (std::ptrdiff_t n = 0; n < o.nc; ++n) {
            const float* bp = o.b + (n / 16) * o.kc * 16 + n % 16;
            float acc = 0.0f;
            for (std::ptrdiff_t k = 0; k < o.kc; ++k) acc = fmadd(o.a[m * o.kc + k], bp[k * 16], acc);
            float& c = C[m * ldc + n];
            c = zero_mode ? mul(acc, alpha) : fmadd(acc, alpha, c);
        }
}

// ROWS rows x one 16-column panel: the accumulators of FgemmKernelFma3 (acc = fma(a, b, acc) in k order).
template <int ROWS>
FXP_ORT_AVX2 inline void fma3_tile_avx2(const float* a, std::ptrdiff_t lda, const float* panel, std::ptrdiff_t kc,
                                        std::ptrdiff_t cols, float alpha, bool zero_mode, float* C, std::ptrdiff_t ldc) {
    __m256 acc[ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (std::ptrdiff_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_load_ps(panel + k * 16), b1 = _mm256_load_ps(panel + k * 16 + 8);
#pragma GCC unroll 6
        for (int r = 0; r < ROWS; ++r) {
            const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
        float* c = C + r * ldc;
        if (cols == 16) {
            for (int h = 0; h < 2; ++h)
                _mm256_storeu_ps(c + 8 * h, zero_mode ? _mm256_mul_ps(acc[r][h], va)
                                                      : _mm256_fmadd_ps(acc[r][h], va, _mm256_loadu_ps(c + 8 * h)));
        } else {
            alignas(32) float t[16];
            _mm256_store_ps(t, acc[r][0]);
            _mm256_store_ps(t + 8, acc[r][1]);
            for (std::ptrdiff_t j = 0; j < cols; ++j) c[j] = zero_mode ? mul(t[j], alpha) : fmadd(t[j], alpha, c[j]);
        }
    }
}

FXP_ORT_AVX2 inline void fma3_block_avx2(const BlockOperands& o, float alpha, bool zero_mode, float* C, std::ptrdiff_t ldc) {
    for (std::ptrdiff_t n = 0; n < o.nc; n += 16) {
        const float* panel = o.b + (n / 16) * o.kc * 16;
        const std::ptrdiff_t cols = std::min<std::ptrdiff_t>(16, o.nc - n);
        std::ptrdiff_t m = 0;
        for (; m + 6 <= o.M; m += 6) fma3_tile_avx2<6>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc);
        switch (o.M - m) {
            case 5: fma3_tile_avx2<5>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc); break;
            case 4: fma3_tile_avx2<4>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc); break;
            case 3: fma3_tile_avx2<3>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc); break;
            case 2: fma3_tile_avx2<2>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc); break;
            case 1: fma3_tile_avx2<1>(o.a + m * o.kc, o.kc, panel, o.kc, cols, alpha, zero_mode, C + m * ldc + n, ldc); break;
            default: break;
        }
    }
}

// Scratch of one GEMM call: the packed A block and B panels (32-byte aligned).
struct SgemmScratch {
    std::vector<float> a;
    std::vector<float> b;
    float* b_aligned(size_t n) {
        b.resize(n + 8);
        return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(b.data()) + 31) & ~uintptr_t(31));
    }
};

// B block [k0, k0 + kc) x [n0, n0 + nc) into 16-column panels (zero padded). Order-neutral copies.
inline void pack_b_panels(const Sgemm& p, std::ptrdiff_t n0, std::ptrdiff_t nc, std::ptrdiff_t k0, std::ptrdiff_t kc,
                          float* panels) {
    const std::ptrdiff_t np = (nc + 15) / 16;
    for (std::ptrdiff_t j = 0; j < np; ++j) {
        float* pj = panels + j * kc * 16;
        const std::ptrdiff_t c0 = n0 + 16 * j, cols = std::min<std::ptrdiff_t>(16, n0 + nc - c0);
        if (!p.trans_b) {
            for (std::ptrdiff_t k = 0; k < kc; ++k) {
                const float* src = p.B + (k0 + k) * p.ldb + c0;
                float* dst = pj + k * 16;
                std::memcpy(dst, src, size_t(cols) * sizeof(float));
                for (std::ptrdiff_t c = cols; c < 16; ++c) dst[c] = 0.0f;
            }
        } else {
            for (std::ptrdiff_t k = 0; k < kc * 16; ++k) pj[k] = 0.0f;
            for (std::ptrdiff_t c = 0; c < cols; ++c) {
                const float* src = p.B + (c0 + c) * p.ldb + k0;
                for (std::ptrdiff_t k = 0; k < kc; ++k) pj[k * 16 + c] = src[k];
            }
        }
    }
}

// One K block [k0, k0 + kc) of columns [n0, n0 + nc), all rows: packs the operands (order-neutral) and
// runs the FMA3 kernel.
inline void fma3_block(const Sgemm& p, std::ptrdiff_t n0, std::ptrdiff_t nc, std::ptrdiff_t k0, std::ptrdiff_t kc,
                       bool zero_mode, SgemmScratch& scratch, Isa isa) {
    scratch.a.resize(size_t(p.M * kc));
    float* a = scratch.a.data();
    if (!p.trans_a) {
        for (std::ptrdiff_t m = 0; m < p.M; ++m) std::memcpy(a + m * kc, p.A + m * p.lda + k0, size_t(kc) * sizeof(float));
    } else {
        for (std::ptrdiff_t k = 0; k < kc; ++k)
            for (std::ptrdiff_t m = 0; m < p.M; ++m) a[m * kc + k] = p.A[(k0 + k) * p.lda + m];
    }
    float* panels = scratch.b_aligned(size_t(((nc + 15) / 16) * kc * 16));
    pack_b_panels(p, n0, nc, k0, kc, panels);
    const BlockOperands o{a, panels, p.M, nc, kc};
    float* c = p.C + n0;
    if (isa == Isa::Avx2) fma3_block_avx2(o, p.alpha, zero_mode, c, p.ldc);
    else fma3_block_portable(o, p.alpha, zero_mode, c, p.ldc);
}

// MlasSgemmMultiplyBeta on columns [n0, n0 + nc)
inline void multiply_beta(const Sgemm& p, std::ptrdiff_t n0, std::ptrdiff_t nc) {
    for (std::ptrdiff_t m = 0; m < p.M; ++m)
        for (std::ptrdiff_t n = 0; n < nc; ++n) p.C[m * p.ldc + n0 + n] = mul(p.C[m * p.ldc + n0 + n], p.beta);
}

// ---- the M == 1 AVX kernels ------------------------------------------------------------------------------

// SgemmKernelM1Avx (B not transposed): K in groups of 4, then 2, then 1 (in k order); a group's
// products are summed left to right, t = ((a0*b0 + a1*b1) + a2*b2) + a3*b3, and C = t + C
// (the first group: t + 0 when beta is 0).
inline void m1_kernel_portable(const float* a, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t K,
                               std::ptrdiff_t N, bool zero) {
    std::ptrdiff_t k = 0;
    while (k < K) {
        const int g = K - k >= 4 ? 4 : ((K - k) & 2 ? 2 : 1);
        for (std::ptrdiff_t n = 0; n < N; ++n) {
            float t = mul(a[k], b[k * ldb + n]);
            for (int j = 1; j < g; ++j) t = add(t, mul(a[k + j], b[(k + j) * ldb + n]));
            c[n] = add(t, zero ? 0.0f : c[n]);
        }
        k += g;
        zero = false;
    }
}

FXP_ORT_AVX2 inline void m1_kernel_avx2(const float* a, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t K,
                                        std::ptrdiff_t N, bool zero) {
    std::ptrdiff_t k = 0;
    while (k < K) {
        const int g = K - k >= 4 ? 4 : ((K - k) & 2 ? 2 : 1);
        std::ptrdiff_t n = 0;
        for (; n + 8 <= N; n += 8) {
            __m256 t = _mm256_mul_ps(_mm256_set1_ps(a[k]), _mm256_loadu_ps(b + k * ldb + n));
            for (int j = 1; j < g; ++j)
                t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_set1_ps(a[k + j]), _mm256_loadu_ps(b + (k + j) * ldb + n)));
            _mm256_storeu_ps(c + n, _mm256_add_ps(t, zero ? _mm256_setzero_ps() : _mm256_loadu_ps(c + n)));
        }
        for (; n < N; ++n) {
            float t = mul(a[k], b[k * ldb + n]);
            for (int j = 1; j < g; ++j) t = add(t, mul(a[k + j], b[(k + j) * ldb + n]));
            c[n] = add(t, zero ? 0.0f : c[n]);
        }
        k += g;
        zero = false;
    }
}

inline void m1_kernel(const float* a, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t K, std::ptrdiff_t N,
                      bool zero, Isa isa) {
    if (isa == Isa::Avx2) m1_kernel_avx2(a, b, ldb, c, K, N, zero);
    else m1_kernel_portable(a, b, ldb, c, K, N, zero);
}

// SgemmKernelM1TransposeBAvx (B transposed, rows of B are the outputs): 8 lane sums of a*b (multiply,
// then add) over K, then a reduction that depends on how the output's row was grouped (4, 2 or 1
// rows at a time), then C = sum + C.
inline void m1_transpose_b_kernel(const float* a, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t K,
                                  std::ptrdiff_t N, bool zero) {
    // lane l sums the products of k = l, l + 8, ...; the masked last vector adds +0 to its idle lanes
    auto lanes = [&](std::ptrdiff_t n, float* l) {
        for (int i = 0; i < 8; ++i) l[i] = 0.0f;
        const float* bn = b + n * ldb;
        for (std::ptrdiff_t k0 = 0; k0 < K; k0 += 8)
            for (int i = 0; i < 8; ++i) l[i] = add(l[i], k0 + i < K ? mul(a[k0 + i], bn[k0 + i]) : 0.0f);
    };
    float l[8];
    std::ptrdiff_t n = 0;
    for (const std::ptrdiff_t n4 = N / 4 * 4; n < n4; ++n) {   // 4-row groups: ((l0 + l1) + l2) + l3 per half
        lanes(n, l);
        const float lo = add(add(add(l[0], l[1]), l[2]), l[3]), hi = add(add(add(l[4], l[5]), l[6]), l[7]);
        c[n] = add(add(lo, hi), zero ? 0.0f : c[n]);
    }
    if (N - n >= 2) {   // a 2-row group
        for (int r = 0; r < 2; ++r, ++n) {
            lanes(n, l);
            const float s = add(add(add(l[2], l[0]), add(l[6], l[4])), add(add(l[3], l[1]), add(l[7], l[5])));
            c[n] = add(s, zero ? 0.0f : c[n]);
        }
    }
    if (N - n == 1) {   // the last single row: two horizontal adds, then the halves
        lanes(n, l);
        const float s = add(add(add(l[0], l[1]), add(l[2], l[3])), add(add(l[4], l[5]), add(l[6], l[7])));
        c[n] = add(s, zero ? 0.0f : c[n]);
    }
}

// ---- MlasSgemmOperation / MlasSgemmPackedOperation --------------------------------------------------------

// One thread's unpacked GEMM (MlasSgemmOperation).
inline void mlas_sgemm_operation(const Sgemm& p, Isa isa) {
    if (p.K == 0) {
        multiply_beta(p, 0, p.N);
        return;
    }
    const bool beta01 = p.beta == 0.0f || p.beta == 1.0f;
    if (p.M == 1 && !p.trans_a && p.alpha == 1.0f && beta01) {
        if (!p.trans_b) m1_kernel(p.A, p.B, p.ldb, p.C, p.K, p.N, p.beta == 0.0f, isa);
        else m1_transpose_b_kernel(p.A, p.B, p.ldb, p.C, p.K, p.N, p.beta == 0.0f);
        return;
    }
    if (p.N == 1 && p.ldb == 1 && p.ldc == 1 && p.alpha == 1.0f && beta01) {
        // C^T = B^T A^T: B is the vector, the rows of op(A) the outputs
        if (!p.trans_a) m1_transpose_b_kernel(p.B, p.A, p.lda, p.C, p.K, p.M, p.beta == 0.0f);
        else m1_kernel(p.B, p.A, p.lda, p.C, p.K, p.M, p.beta == 0.0f, isa);
        return;
    }
    std::ptrdiff_t stride_n = kSgemmStrideN, stride_k = kSgemmStrideK;
    if (p.N >= p.K) {
        while (stride_k / 2 >= p.K) {
            stride_n *= 2;
            stride_k /= 2;
        }
    } else if (!p.trans_a) {
        while (stride_n > 16 && stride_n / 2 >= p.N) {
            stride_k *= 2;
            stride_n /= 2;
        }
    }
    SgemmScratch scratch;
    for (std::ptrdiff_t n = 0; n < p.N; n += stride_n) {
        const std::ptrdiff_t nc = std::min(p.N - n, stride_n);
        if (!beta01) multiply_beta(p, n, nc);
        bool zero = p.beta == 0.0f;
        for (std::ptrdiff_t k = 0; k < p.K; k += stride_k) {
            fma3_block(p, n, nc, k, std::min(p.K - k, stride_k), zero, scratch, isa);
            zero = false;
        }
    }
}

// One thread's GEMM on a prepacked B (MlasSgemmPackedOperation): fixed 128 x 256 slices, no M == 1 path.
inline void mlas_sgemm_packed_operation(const Sgemm& p, Isa isa) {
    const bool beta01 = p.beta == 0.0f || p.beta == 1.0f;
    SgemmScratch scratch;
    for (std::ptrdiff_t n = 0; n < p.N; n += kSgemmPackedStrideN) {
        const std::ptrdiff_t nc = std::min(p.N - n, kSgemmPackedStrideN);
        if (!beta01) multiply_beta(p, n, nc);
        bool zero = p.beta == 0.0f;
        for (std::ptrdiff_t k = 0; k < p.K; k += kSgemmPackedStrideK) {
            fma3_block(p, n, nc, k, std::min(p.K - k, kSgemmPackedStrideK), zero, scratch, isa);
            zero = false;
        }
    }
}

// MlasPartitionWork
inline void partition_work(std::ptrdiff_t id, std::ptrdiff_t count, std::ptrdiff_t total, std::ptrdiff_t& start,
                           std::ptrdiff_t& n) {
    const std::ptrdiff_t per = total / count, extra = total % count;
    if (id < extra) {
        start = (per + 1) * id;
        n = per + 1;
    } else {
        start = per * id + extra;
        n = per;
    }
}

// MlasGemmBatch for one of `batch` equal-shaped GEMMs: the thread split of ORT's intra-op pool
// (`threads`), then each thread's part. Every output is computed as its thread computes it, run here in
// sequence.
inline void mlas_gemm(const Sgemm& p, bool packed_b, int threads, Isa isa, std::ptrdiff_t batch = 1) {
    if (p.M == 0 || p.N == 0) return;
    const double complexity = double(p.M) * double(p.N) * double(p.K);
    std::ptrdiff_t target = std::ptrdiff_t(complexity / kSgemmThreadComplexity) + 1;
    if (target >= threads) target = threads;
    target = (target + batch - 1) / batch;   // threads per GEMM
    std::ptrdiff_t tcm = 1, tcn = 1;
    const std::ptrdiff_t blocked_n = (p.N + kSgemmThreadAlign - 1) / kSgemmThreadAlign;
    if (p.N > p.M) tcn = std::min(target, blocked_n);
    else tcm = std::min<std::ptrdiff_t>(target, p.M);
    for (std::ptrdiff_t t = 0; t < tcm * tcn; ++t) {
        std::ptrdiff_t m0, mc, nb0, nbc;
        partition_work(t / tcn, tcm, p.M, m0, mc);
        partition_work(t % tcn, tcn, blocked_n, nb0, nbc);
        const std::ptrdiff_t n0 = nb0 * kSgemmThreadAlign;
        const std::ptrdiff_t nc = std::min(p.N - n0, nbc * kSgemmThreadAlign);
        if (mc <= 0 || nc <= 0) continue;
        Sgemm s = p;
        s.M = mc;
        s.N = nc;
        s.A = p.trans_a ? p.A + m0 : p.A + m0 * p.lda;
        s.B = p.trans_b ? p.B + n0 * p.ldb : p.B + n0;
        s.C = p.C + m0 * p.ldc + n0;
        if (packed_b) mlas_sgemm_packed_operation(s, isa);
        else mlas_sgemm_operation(s, isa);
    }
}

}  // namespace fxp::ort
