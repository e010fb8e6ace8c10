// Exact integer matrix product C = A @ B for operands that fit int16 and partial sums that fit
// int32 (the "narrow" fi matmul: both words <= 16 bits and an accumulator of <= 32 bits), with
// AVX2's vpmaddwd: one instruction multiplies 16 int16 pairs and adds adjacent products, so two
// consecutive k are done at once. Every partial sum of the true dot product fits int32, so no
// intermediate can overflow.
//
// Layout: A is packed row-major with n rounded up to even (a k pair is one int32 load); B is packed
// in panels of 16 columns, each k pair holding, per column, (b[k][j], b[k+1][j]) adjacent. The
// kernel computes 4 (AVX2) or 8 (VNNI) rows x 16 columns per pass; the B panel (n * 64 bytes)
// stays in L1 across the row blocks. m, n and p are padded with zeros, so edges need no special case.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace fxp {

struct Matmul16Packed {
    std::size_t m4, n2, p16;   // padded sizes: rows to a multiple of 8, k pairs, columns to 16
    std::vector<int16_t> a;     // m4 x (2*n2)
    std::vector<int16_t> b;     // (p16/16) panels x n2 pairs x 16 columns x 2
};

// Packs stored integers (of any integer storage type, values known to fit int16) into the
// kernel's layout.
template <class InA, class InB>
inline Matmul16Packed matmul16_pack(const InA* a, const InB* b, std::size_t m, std::size_t n, std::size_t p) {
    Matmul16Packed pk;
    pk.m4 = (m + 7) / 8 * 8;
    pk.n2 = (n + 1) / 2;
    pk.p16 = (p + 15) / 16 * 16;
    const std::size_t ne = 2 * pk.n2;
    pk.a.assign(pk.m4 * ne, 0);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t k = 0; k < n; ++k) pk.a[i * ne + k] = int16_t(a[i * n + k]);
    pk.b.assign(pk.p16 * ne, 0);
    int16_t* out = pk.b.data();
    for (std::size_t j0 = 0; j0 < pk.p16; j0 += 16)
        for (std::size_t kk = 0; kk < pk.n2; ++kk, out += 32)
            for (std::size_t t = 0; t < 2 && 2 * kk + t < n; ++t) {
                const InB* row = b + (2 * kk + t) * p;
                for (std::size_t jj = 0; jj < 16 && j0 + jj < p; ++jj) out[2 * jj + t] = int16_t(row[j0 + jj]);
            }
    return pk;
}

// C (m x p, int64) from the packed operands: ROWS x 16 tiles, each k pair added into the int32
// accumulators by STEP(acc, a_pair, b_columns). The body is written once and compiled per instruction
// set below (a template cannot carry a per-instantiation target attribute).
#define FXP_MATMUL16_TILES(ROWS, STEP)                                                                 \
    const std::size_t ne = 2 * pk.n2;                                                                  \
    alignas(32) int32_t tile[ROWS][16];                                                                \
    for (std::size_t panel = 0; panel < pk.p16 / 16; ++panel) {                                        \
        const int16_t* bp = pk.b.data() + panel * pk.n2 * 32;                                          \
        for (std::size_t i0 = 0; i0 < pk.m4; i0 += ROWS) {                                             \
            __m256i acc[ROWS][2];                                                                      \
            for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();                            \
            const int16_t* a0 = pk.a.data() + i0 * ne;                                                 \
            for (std::size_t kk = 0; kk < pk.n2; ++kk) {                                               \
                const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + kk * 32));  \
                const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + kk * 32 + 16)); \
                for (int r = 0; r < ROWS; ++r) {                                                       \
                    int32_t pair;                                                                      \
                    std::memcpy(&pair, a0 + r * ne + 2 * kk, sizeof pair);                             \
                    const __m256i av = _mm256_set1_epi32(pair);                                        \
                    acc[r][0] = STEP(acc[r][0], av, b0);                                               \
                    acc[r][1] = STEP(acc[r][1], av, b1);                                               \
                }                                                                                      \
            }                                                                                          \
            for (int r = 0; r < ROWS; ++r) {                                                           \
                _mm256_store_si256(reinterpret_cast<__m256i*>(tile[r]), acc[r][0]);                    \
                _mm256_store_si256(reinterpret_cast<__m256i*>(tile[r] + 8), acc[r][1]);                \
            }                                                                                          \
            const std::size_t j0 = panel * 16, width = p - j0 < 16 ? p - j0 : 16;                      \
            for (std::size_t r = 0; r < std::size_t(ROWS) && i0 + r < m; ++r)                          \
                for (std::size_t jj = 0; jj < width; ++jj) c[(i0 + r) * p + j0 + jj] = tile[r][jj];    \
        }                                                                                              \
    }

#define FXP_MADD_ADD(acc, a, b) _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
#define FXP_DPWSSD(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)

// AVX2: vpmaddwd + vpaddd, 4 x 16 tiles (8 of the 16 ymm registers hold accumulators).
__attribute__((target("avx2"))) inline void matmul16_avx2(const Matmul16Packed& pk, int64_t* c, std::size_t m,
                                                          std::size_t p) {
    FXP_MATMUL16_TILES(4, FXP_MADD_ADD)
}

// AVX-512 VNNI on 256-bit vectors: one vpdpwssd per step, 8 x 16 tiles (32 ymm registers).
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) inline void matmul16_vnni(const Matmul16Packed& pk,
                                                                                     int64_t* c, std::size_t m,
                                                                                     std::size_t p) {
    FXP_MATMUL16_TILES(8, FXP_DPWSSD)
}

#undef FXP_MATMUL16_TILES
#undef FXP_MADD_ADD
#undef FXP_DPWSSD

}  // namespace fxp
