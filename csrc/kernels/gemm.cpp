// Packing, micro-kernels (portable and AVX2) and the threaded tile driver of the exact GEMM.
#include "kernels/gemm.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "cpu/features.hpp"
#include "fixed/rounding.hpp"
#include "kernels/gemm_vnni.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

bool cpu_has_avx2() {
    return cpu::has_avx2();
}

Path resolve(Path requested) {
    if (requested == Path::Portable || !cpu_has_avx2()) return Path::Portable;
    return requested;
}

namespace {
__attribute__((target("avx512f,avx512bw"))) void copy_sign_flipped_avx512(const unsigned char* s, Index k, unsigned char* d,
                                                                           Index n) {
    const __m512i sign = _mm512_set1_epi8(char(0x80));
    for (Index b = 0; b < n; b += 64) {
        // Bytes [b, k) of this block are data, [k, n) zero padding.
        const Index valid = std::max<Index>(0, std::min<Index>(64, k - b)), block = std::min<Index>(64, n - b);
        const __mmask64 data = valid >= 64 ? ~__mmask64(0) : (__mmask64(1) << valid) - 1;
        const __mmask64 store = block >= 64 ? ~__mmask64(0) : (__mmask64(1) << block) - 1;
        const __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(data, s + b), sign);
        _mm512_mask_storeu_epi8(d + b, store, _mm512_maskz_mov_epi8(data, v));
    }
}
}  // namespace

void copy_sign_flipped(const unsigned char* s, Index k, unsigned char* d, Index n) {
    if (cpu::has_avx512bw()) return copy_sign_flipped_avx512(s, k, d, n);
    Index b = 0;
    const __m128i sign = _mm_set1_epi8(char(0x80));  // SSE2: baseline x86-64
    for (; b + 16 <= k; b += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + b), _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + b)), sign));
    for (; b < k; ++b) d[b] = static_cast<unsigned char>(s[b] ^ 0x80u);
    std::fill(d + k, d + n, static_cast<unsigned char>(0));
}

template <class T>
void pack_line(const T* src, Index k, Index k_stride, Layout layout, int32_t* dst, Index units) {
    if (k_stride == 1 && layout == Layout::Quads) {
        std::memcpy(dst, src, size_t(k));
        std::memset(reinterpret_cast<char*>(dst) + k, 0, size_t(units * 4 - k));
    } else if (k_stride == 1) {
        int16_t* d = reinterpret_cast<int16_t*>(dst);
        std::copy(src, src + k, d);  // sign- or zero-extension to int16
        std::fill(d + k, d + 2 * units, int16_t(0));
    } else {
        unsigned char* d = reinterpret_cast<unsigned char*>(dst);
        const int width = layout == Layout::Pairs ? 2 : 1;
        std::memset(d, 0, size_t(units * 4));
        for (Index kk = 0; kk < k; ++kk) {
            const int16_t v = int16_t(src[kk * k_stride]);
            std::memcpy(d + kk * width, &v, size_t(width));  // little-endian: the low byte first
        }
    }
}

template <class T>
int64_t line_sum(const T* src, Index k, Index k_stride) {
    int64_t total = 0;
    constexpr Index BLOCK = Index(1) << 20;  // int32 partial sums of at most 2^20 bytes cannot overflow
    for (Index k0 = 0; k0 < k; k0 += BLOCK) {
        int32_t part = 0;
        for (Index kk = k0; kk < std::min(k, k0 + BLOCK); ++kk) part += src[kk * k_stride];
        total += part;
    }
    return total;
}

template <class T>
PackedRows pack_rows(const T* src, Index rows, Index k, Index row_stride, Index k_stride, Layout layout) {
    PackedRows p;
    p.layout = layout;
    p.is_unsigned = std::is_unsigned<T>::value;
    p.count = rows;
    p.k = k;
    p.units = k_units(layout, k);
    p.data.assign(size_t(round_up(rows, MR) * p.units), 0);
    p.row_sums.assign(size_t(rows), 0);
    for (Index r = 0; r < rows; ++r) {
        pack_line(src + r * row_stride, k, k_stride, layout, p.data.data() + r * p.units, p.units);
        p.row_sums[size_t(r)] = line_sum(src + r * row_stride, k, k_stride);
    }
    return p;
}

template <class T>
PackedCols pack_cols(const T* src, Index cols, Index k, Index col_stride, Index k_stride, Layout layout) {
    PackedCols p;
    p.layout = layout;
    p.is_unsigned = std::is_unsigned<T>::value;
    p.count = cols;
    p.k = k;
    p.units = k_units(layout, k);
    p.data.assign(size_t(round_up(cols, NR) * p.units), 0);
    p.col_sums.assign(size_t(cols), 0);
    std::vector<int32_t> line(size_t(p.units));
    for (Index c = 0; c < cols; ++c) {
        pack_line(src + c * col_stride, k, k_stride, layout, line.data(), p.units);
        int32_t* d = p.data.data() + (c / NR) * NR * p.units + c % NR;
        for (Index u = 0; u < p.units; ++u) d[u * NR] = line[size_t(u)];
        p.col_sums[size_t(c)] = line_sum(src + c * col_stride, k, k_stride);
    }
    return p;
}

template void pack_line<int8_t>(const int8_t*, Index, Index, Layout, int32_t*, Index);
template void pack_line<uint8_t>(const uint8_t*, Index, Index, Layout, int32_t*, Index);
template int64_t line_sum<int8_t>(const int8_t*, Index, Index);
template int64_t line_sum<uint8_t>(const uint8_t*, Index, Index);
template PackedRows pack_rows<int8_t>(const int8_t*, Index, Index, Index, Index, Layout);
template PackedRows pack_rows<uint8_t>(const uint8_t*, Index, Index, Index, Index, Layout);
template PackedCols pack_cols<int8_t>(const int8_t*, Index, Index, Index, Index, Layout);
template PackedCols pack_cols<uint8_t>(const uint8_t*, Index, Index, Index, Index, Layout);

namespace {

// ---- micro-kernels: an MR x NR block of C (+)= A-panel(MR rows, `units` K units) * B-panel --------
// a: row r at a + r * lda; b: unit u at b + u * NR; c: row r at c + r * ldc.
using MicroKernel = void (*)(const int32_t* a, Index lda, const int32_t* b, Index units, int32_t* c, Index ldc,
                             bool accumulate);

// Sat: each pair sum saturated to int16 as vpmaddubsw does (Accum::Int16Pairs).
template <bool AU, bool BU, bool Sat = false>
void micro_portable_quads(const int32_t* a, Index lda, const int32_t* b, Index units, int32_t* c, Index ldc,
                          bool accumulate) {
    uint32_t acc[MR][NR] = {};
    auto byte = [](uint32_t w, int t, bool uns) { return uns ? int32_t(uint8_t(w >> (8 * t))) : int32_t(int8_t(w >> (8 * t))); };
    auto pair = [](int32_t s) { return Sat ? saturate<int32_t>(s, INT16_MIN, INT16_MAX) : s; };
    for (Index u = 0; u < units; ++u) {
        for (int r = 0; r < MR; ++r) {
            const uint32_t aw = uint32_t(a[r * lda + u]);
            const int32_t a0 = byte(aw, 0, AU), a1 = byte(aw, 1, AU), a2 = byte(aw, 2, AU), a3 = byte(aw, 3, AU);
            for (int j = 0; j < NR; ++j) {
                const uint32_t bw = uint32_t(b[u * NR + j]);
                acc[r][j] += uint32_t(pair(a0 * byte(bw, 0, BU) + a1 * byte(bw, 1, BU)) + pair(a2 * byte(bw, 2, BU) + a3 * byte(bw, 3, BU)));
            }
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) c[r * ldc + j] = int32_t((accumulate ? uint32_t(c[r * ldc + j]) : 0u) + acc[r][j]);
}

void micro_portable_pairs(const int32_t* a, Index lda, const int32_t* b, Index units, int32_t* c, Index ldc,
                          bool accumulate) {
    uint32_t acc[MR][NR] = {};
    for (Index u = 0; u < units; ++u) {
        for (int r = 0; r < MR; ++r) {
            const uint32_t aw = uint32_t(a[r * lda + u]);
            const int32_t a0 = int16_t(aw), a1 = int16_t(aw >> 16);
            for (int j = 0; j < NR; ++j) {
                const uint32_t bw = uint32_t(b[u * NR + j]);
                // |each product| <= 255 * 255: the pair sum fits an int32.
                acc[r][j] += uint32_t(a0 * int16_t(bw) + a1 * int16_t(bw >> 16));
            }
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) c[r * ldc + j] = int32_t((accumulate ? uint32_t(c[r * ldc + j]) : 0u) + acc[r][j]);
}

// The 6 x 16 AVX2 micro-kernels are one inline-assembly loop each: GCC spills intrinsic versions of
// this register-bound loop (12 accumulators in ymm0-11, B in ymm12-13, the broadcast A dword in ymm14,
// the product in ymm15). Row r of A is read at a0 + r * lda for r < 3 and a3 + (r - 3) * lda.
#define FXP_A0 "(%[a0])"
#define FXP_A1 "(%[a0],%[ld],1)"
#define FXP_A2 "(%[a0],%[ld],2)"
#define FXP_A3 "(%[a3])"
#define FXP_A4 "(%[a3],%[ld],1)"
#define FXP_A5 "(%[a3],%[ld],2)"
// vpmaddwd: each int32 lane += a0*b0 + a1*b1, exact for int16 inputs from bytes.
#define FXP_PAIRS_ROW(addr, x0, x1)                                                                \
    "vpbroadcastd " addr ", %%ymm14\n\t"                                                           \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\tvpaddd %%ymm15, %%ymm" #x0 ", %%ymm" #x0 "\n\t"        \
    "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\tvpaddd %%ymm15, %%ymm" #x1 ", %%ymm" #x1 "\n\t"
// vpmaddubsw (AT&T order: signed, unsigned, dst) then vpmaddwd with ones: the quad's 4 products.
#define FXP_QUADS_ROW(addr, x0, x1, s0, u0, s1, u1)                                                   \
    "vpbroadcastd " addr ", %%ymm14\n\t"                                                              \
    "vpmaddubsw " s0 ", " u0 ", %%ymm15\n\tvpmaddwd %[ones], %%ymm15, %%ymm15\n\t"                    \
    "vpaddd %%ymm15, %%ymm" #x0 ", %%ymm" #x0 "\n\t"                                                  \
    "vpmaddubsw " s1 ", " u1 ", %%ymm15\n\tvpmaddwd %[ones], %%ymm15, %%ymm15\n\t"                    \
    "vpaddd %%ymm15, %%ymm" #x1 ", %%ymm" #x1 "\n\t"
#define FXP_QROW_AU(addr, x0, x1) FXP_QUADS_ROW(addr, x0, x1, "%%ymm12", "%%ymm14", "%%ymm13", "%%ymm14")
#define FXP_QROW_BU(addr, x0, x1) FXP_QUADS_ROW(addr, x0, x1, "%%ymm14", "%%ymm12", "%%ymm14", "%%ymm13")
#define FXP_LOOP(ROW)                                                                                  \
    "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\tvpxor %%xmm2, %%xmm2, %%xmm2\n\t" \
    "vpxor %%xmm3, %%xmm3, %%xmm3\n\tvpxor %%xmm4, %%xmm4, %%xmm4\n\tvpxor %%xmm5, %%xmm5, %%xmm5\n\t" \
    "vpxor %%xmm6, %%xmm6, %%xmm6\n\tvpxor %%xmm7, %%xmm7, %%xmm7\n\tvpxor %%xmm8, %%xmm8, %%xmm8\n\t" \
    "vpxor %%xmm9, %%xmm9, %%xmm9\n\tvpxor %%xmm10, %%xmm10, %%xmm10\n\tvpxor %%xmm11, %%xmm11, %%xmm11\n\t" \
    "test %[n], %[n]\n\tjz 2f\n\t"                                                                     \
    ".p2align 5\n"                                                                                     \
    "1:\n\t"                                                                                           \
    "vmovdqu (%[b]), %%ymm12\n\tvmovdqu 32(%[b]), %%ymm13\n\t"                                         \
    ROW(FXP_A0, 0, 1) ROW(FXP_A1, 2, 3) ROW(FXP_A2, 4, 5) ROW(FXP_A3, 6, 7) ROW(FXP_A4, 8, 9) ROW(FXP_A5, 10, 11) \
    "add $4, %[a0]\n\tadd $4, %[a3]\n\tadd $64, %[b]\n\tdec %[n]\n\tjnz 1b\n"                          \
    "2:\n\t"                                                                                           \
    "test %[acc], %[acc]\n\tjz 3f\n\t"                                                               \
    "vpaddd (%[c0]), %%ymm0, %%ymm0\n\tvpaddd 32(%[c0]), %%ymm1, %%ymm1\n\t"                        \
    "vpaddd (%[c0],%[ldc],1), %%ymm2, %%ymm2\n\tvpaddd 32(%[c0],%[ldc],1), %%ymm3, %%ymm3\n\t"      \
    "vpaddd (%[c0],%[ldc],2), %%ymm4, %%ymm4\n\tvpaddd 32(%[c0],%[ldc],2), %%ymm5, %%ymm5\n\t"      \
    "vpaddd (%[c3]), %%ymm6, %%ymm6\n\tvpaddd 32(%[c3]), %%ymm7, %%ymm7\n\t"                        \
    "vpaddd (%[c3],%[ldc],1), %%ymm8, %%ymm8\n\tvpaddd 32(%[c3],%[ldc],1), %%ymm9, %%ymm9\n\t"      \
    "vpaddd (%[c3],%[ldc],2), %%ymm10, %%ymm10\n\tvpaddd 32(%[c3],%[ldc],2), %%ymm11, %%ymm11\n"    \
    "3:\n\t"                                                                                           \
    "vmovdqu %%ymm0, (%[c0])\n\tvmovdqu %%ymm1, 32(%[c0])\n\t"                                      \
    "vmovdqu %%ymm2, (%[c0],%[ldc],1)\n\tvmovdqu %%ymm3, 32(%[c0],%[ldc],1)\n\t"                    \
    "vmovdqu %%ymm4, (%[c0],%[ldc],2)\n\tvmovdqu %%ymm5, 32(%[c0],%[ldc],2)\n\t"                    \
    "vmovdqu %%ymm6, (%[c3])\n\tvmovdqu %%ymm7, 32(%[c3])\n\t"                                      \
    "vmovdqu %%ymm8, (%[c3],%[ldc],1)\n\tvmovdqu %%ymm9, 32(%[c3],%[ldc],1)\n\t"                    \
    "vmovdqu %%ymm10, (%[c3],%[ldc],2)\n\tvmovdqu %%ymm11, 32(%[c3],%[ldc],2)\n\t"                  \
    "vzeroupper\n\t"

// The 6 x 16 block is stored straight into c (rows at c0 + r * ldc, r < 3, and c3 + (r - 3) * ldc),
// added to what is there when `acc` is set (a later K block).
#define FXP_ASM_OPERANDS                                                                               \
    : [a0] "+r"(a0), [a3] "+r"(a3), [b] "+r"(b), [n] "+r"(n)                                          \
    : [ld] "r"(ld), [c0] "r"(c), [c3] "r"(c3), [ldc] "r"(ldcb), [acc] "r"(acc), [ones] "m"(ones)        \
    : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",  \
      "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

struct alignas(32) Ones16 { int16_t v[16]; };
constexpr Ones16 ones = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

template <int Kind>  // 0: pairs, 1: quads with unsigned A, 2: quads with unsigned B
__attribute__((target("avx2"))) void micro_avx2(const int32_t* a, Index lda, const int32_t* b, Index units, int32_t* c, Index ldc, bool accumulate) {
    const int32_t* a0 = a;
    const int32_t* a3 = a + 3 * lda;
    int32_t* c3 = c + 3 * ldc;
    const Index ld = lda * Index(sizeof(int32_t)), ldcb = ldc * Index(sizeof(int32_t));
    const Index acc = accumulate ? 1 : 0;
    Index n = units;
    if (Kind == 0) __asm__ volatile(FXP_LOOP(FXP_PAIRS_ROW) FXP_ASM_OPERANDS);
    else if (Kind == 1) __asm__ volatile(FXP_LOOP(FXP_QROW_AU) FXP_ASM_OPERANDS);
    else __asm__ volatile(FXP_LOOP(FXP_QROW_BU) FXP_ASM_OPERANDS);
}

// The same loop with B read in place from an image whose K unit u of a column is the dword at
// byte offset unit_bytes[u] from the column's base (conv_gemm.cpp's interleaved images): columns
// 0-7 and 8-15 from b[0] and b[2] (blocks of 8 contiguous columns), or 0-3, 4-7, 8-11, 12-15 from
// b[0..3] (blocks of 4). The 6 x 16 block goes to `tile` (row r at tile + 16 r).
#define FXP_LOAD_B8 "vmovdqu (%[b0],%[t]), %%ymm12\n\tvmovdqu (%[b2],%[t]), %%ymm13\n\t"
#define FXP_LOAD_B4                                                                                    \
    "vmovdqu (%[b0],%[t]), %%xmm12\n\tvinserti128 $1, (%[b1],%[t]), %%ymm12, %%ymm12\n\t"           \
    "vmovdqu (%[b2],%[t]), %%xmm13\n\tvinserti128 $1, (%[b3],%[t]), %%ymm13, %%ymm13\n\t"
// ROWS accumulator pairs (R = 6, 4 or 2 rows: a last block of fewer rows skips the others).
#define FXP_ZERO_2 "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\tvpxor %%xmm2, %%xmm2, %%xmm2\n\tvpxor %%xmm3, %%xmm3, %%xmm3\n\t"
#define FXP_ZERO_4 FXP_ZERO_2 "vpxor %%xmm4, %%xmm4, %%xmm4\n\tvpxor %%xmm5, %%xmm5, %%xmm5\n\tvpxor %%xmm6, %%xmm6, %%xmm6\n\tvpxor %%xmm7, %%xmm7, %%xmm7\n\t"
#define FXP_ZERO_6 FXP_ZERO_4 "vpxor %%xmm8, %%xmm8, %%xmm8\n\tvpxor %%xmm9, %%xmm9, %%xmm9\n\tvpxor %%xmm10, %%xmm10, %%xmm10\n\tvpxor %%xmm11, %%xmm11, %%xmm11\n\t"
#define FXP_ROWS_2(ROW) ROW(FXP_A0, 0, 1) ROW(FXP_A1, 2, 3)
#define FXP_ROWS_4(ROW) FXP_ROWS_2(ROW) ROW(FXP_A2, 4, 5) ROW(FXP_A3, 6, 7)
#define FXP_ROWS_6(ROW) FXP_ROWS_4(ROW) ROW(FXP_A4, 8, 9) ROW(FXP_A5, 10, 11)
#define FXP_STORE_2 "vmovdqu %%ymm0, (%[out])\n\tvmovdqu %%ymm1, 32(%[out])\n\tvmovdqu %%ymm2, 64(%[out])\n\tvmovdqu %%ymm3, 96(%[out])\n\t"
#define FXP_STORE_4 FXP_STORE_2 "vmovdqu %%ymm4, 128(%[out])\n\tvmovdqu %%ymm5, 160(%[out])\n\tvmovdqu %%ymm6, 192(%[out])\n\tvmovdqu %%ymm7, 224(%[out])\n\t"
#define FXP_STORE_6 FXP_STORE_4 "vmovdqu %%ymm8, 256(%[out])\n\tvmovdqu %%ymm9, 288(%[out])\n\tvmovdqu %%ymm10, 320(%[out])\n\tvmovdqu %%ymm11, 352(%[out])\n\t"
#define FXP_LOOP_IMAGE(R, ROW, LOAD)                                                                   \
    FXP_ZERO_##R                                                                                       \
    "test %[n], %[n]\n\tjz 2f\n\t"                                                                     \
    ".p2align 5\n"                                                                                     \
    "1:\n\t"                                                                                           \
    "mov (%[uo]), %[t]\n\t" LOAD                                                                        \
    FXP_ROWS_##R(ROW)                                                                                  \
    "add $4, %[a0]\n\tadd $4, %[a3]\n\tadd $8, %[uo]\n\tdec %[n]\n\tjnz 1b\n"                         \
    "2:\n\t"                                                                                           \
    FXP_STORE_##R                                                                                      \
    "vzeroupper\n\t"
#define FXP_IMAGE_OPERANDS                                                                             \
    : [a0] "+r"(a0), [a3] "+r"(a3), [uo] "+r"(uo), [n] "+r"(n), [t] "=&r"(t)                           \
    : [ld] "r"(ld), [b0] "r"(b[0]), [b1] "r"(b[1]), [b2] "r"(b[2]), [b3] "r"(b[3]), [out] "r"(tile),      \
      [ones] "m"(ones)                                                                                 \
    : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",  \
      "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

template <int Kind, bool Blocks8, int R>  // Kind as micro_avx2: 0 pairs, 1 quads with unsigned A, 2 with unsigned B
__attribute__((target("avx2"))) void micro_avx2_image(const int32_t* a, Index lda, const unsigned char* const* b,
                                                       const Index* unit_bytes, Index units, int32_t* tile) {
    const int32_t* a0 = a;
    const int32_t* a3 = a + 3 * lda;
    const Index ld = lda * Index(sizeof(int32_t));
    const Index* uo = unit_bytes;
    Index n = units, t;
#define FXP_IMAGE_KERNEL(RR)                                                                                          \
    if (Kind == 0 && Blocks8) __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_PAIRS_ROW, FXP_LOAD_B8) FXP_IMAGE_OPERANDS);      \
    else if (Kind == 0) __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_PAIRS_ROW, FXP_LOAD_B4) FXP_IMAGE_OPERANDS);            \
    else if (Kind == 1 && Blocks8) __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_QROW_AU, FXP_LOAD_B8) FXP_IMAGE_OPERANDS);   \
    else if (Kind == 1) __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_QROW_AU, FXP_LOAD_B4) FXP_IMAGE_OPERANDS);             \
    else if (Blocks8) __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_QROW_BU, FXP_LOAD_B8) FXP_IMAGE_OPERANDS);                \
    else __asm__ volatile(FXP_LOOP_IMAGE(RR, FXP_QROW_BU, FXP_LOAD_B4) FXP_IMAGE_OPERANDS);
    if (R == 6) {
        FXP_IMAGE_KERNEL(6)
    } else if (R == 4) {
        FXP_IMAGE_KERNEL(4)
    } else {
        FXP_IMAGE_KERNEL(2)
    }
#undef FXP_IMAGE_KERNEL
}

MicroKernel pick_kernel(const RowSource& a, const ColSource& b, Path path, Accum accum) {
    const bool avx2 = resolve(path) != Path::Portable && path != Path::Vnni;
    if (accum == Accum::Int16Pairs && a.layout != Layout::Quads)
        throw std::invalid_argument("int16-pair accumulation needs the quad layout");
    if (a.layout == Layout::Pairs) return avx2 ? micro_avx2<0> : micro_portable_pairs;
    if (a.is_unsigned == b.is_unsigned)
        throw std::invalid_argument("quad layout needs exactly one unsigned operand");
    // vpmaddubsw saturates its pair sums: the AVX2 quad kernels are Int16Pairs for every byte.
    if (avx2) return a.is_unsigned ? micro_avx2<1> : micro_avx2<2>;
    if (accum == Accum::Int16Pairs)
        return a.is_unsigned ? micro_portable_quads<true, false, true> : micro_portable_quads<false, true, true>;
    return a.is_unsigned ? micro_portable_quads<true, false> : micro_portable_quads<false, true>;
}

// Counts of row blocks and column chunks: blocks near the cache-friendly sizes, and (when that costs
// little) a tile count divisible by the thread count so that the schedule is balanced.
void choose_tiles(Index m, Index n, int threads, Index& mc, Index& nc) {
    constexpr Index MC_MAX = 120, NC_MAX = 256;
    const Index mt0 = (m + MC_MAX - 1) / MC_MAX, nt0 = (n + NC_MAX - 1) / NC_MAX;
    const Index max_mt = (m + MR - 1) / MR, max_nt = (n + NR - 1) / NR;
    Index mt = mt0, nt = nt0;
    for (int step = 0; step < threads && (mt * nt) % threads != 0; ++step) {
        if (nt < max_nt && (nt >= mt || mt >= max_mt)) ++nt;
        else if (mt < max_mt) ++mt;
        else break;
    }
    mc = round_up((m + mt - 1) / mt, MR);
    nc = round_up((n + nt - 1) / nt, NR);
    if (threads <= 1 || mt * nt >= 4 * Index(threads)) return;
    // Few tiles per thread: the last tile decides when the call ends, and MR-row granularity can leave
    // one thread a panel row more (256 rows in 4 blocks: 66 + 66 against 66 + 58). Take the split whose
    // busiest thread has the fewest micro-panels (tiles taken in turn), among up to `threads` more row
    // blocks and column chunks; e.g. 256 x 256 on 2 threads: 3 x 2 tiles, each thread one column half.
    auto busiest = [&](Index mc_, Index nc_) {
        const Index mt_ = (m + mc_ - 1) / mc_, nt_ = (n + nc_ - 1) / nc_;
        std::vector<Index> load(size_t(threads), 0);
        for (Index t = 0; t < mt_ * nt_; ++t) {
            const Index rows = std::min(mc_, m - (t / nt_) * mc_), cols = std::min(nc_, n - (t % nt_) * nc_);
            load[size_t(t % threads)] += ((rows + MR - 1) / MR) * ((cols + NR - 1) / NR);
        }
        return *std::max_element(load.begin(), load.end());
    };
    Index best = busiest(mc, nc);
    for (Index a = mt0; a <= std::min(max_mt, mt0 + threads); ++a) {
        for (Index b = nt0; b <= std::min(max_nt, nt0 + threads); ++b) {
            const Index mc_ = round_up((m + a - 1) / a, MR), nc_ = round_up((n + b - 1) / b, NR);
            const Index load = busiest(mc_, nc_);
            if (load < best) {
                best = load;
                mc = mc_;
                nc = nc_;
            }
        }
    }
}

}  // namespace

void block_from_image_avx2(const int32_t* a, Index lda, Layout layout, bool a_unsigned, const unsigned char* const b[4],
                           bool blocks8, const Index* unit_bytes, Index units, Index rows, int32_t* tile) {
    using Kernel = void (*)(const int32_t*, Index, const unsigned char* const*, const Index*, Index, int32_t*);
#define FXP_KINDS(R)                                                                                    \
    {{micro_avx2_image<0, false, R>, micro_avx2_image<0, true, R>},                                      \
     {micro_avx2_image<1, false, R>, micro_avx2_image<1, true, R>},                                      \
     {micro_avx2_image<2, false, R>, micro_avx2_image<2, true, R>}}
    static const Kernel kernels[3][3][2] = {FXP_KINDS(2), FXP_KINDS(4), FXP_KINDS(6)};
#undef FXP_KINDS
    const int kind = layout == Layout::Pairs ? 0 : a_unsigned ? 1 : 2;
    const int r = rows <= 2 ? 0 : rows <= 4 ? 1 : 2;
    kernels[r][kind][blocks8 ? 1 : 0](a, lda, b, unit_bytes, units, tile);
}

void multiply(const RowSource& a, const ColSource& b, const Epilogue& ep, Path path, Index u0, Index u1, Accum accum) {
    if (a.layout != b.layout || a.k != b.k || a.units != b.units)
        throw std::invalid_argument("packed operands disagree on layout or K");
    if (u1 < 0) u1 = a.units;
    const Index m = a.count, n = b.count;
    if (m == 0 || n == 0) return;
    const MicroKernel kernel = pick_kernel(a, b, path, accum);
    // Quads on a VNNI CPU: vpdpbusd kernels, two B panels per call where there are two.
    VnniKernels vnni;
    // (Path::Vnni without VNNI hardware falls back to the portable kernel, which is exact for any byte.)
    if (a.layout == Layout::Quads && accum == Accum::Exact && vnni_enabled() &&
        (path == Path::Vnni || resolve(path) == Path::Auto))
        vnni = vnni_kernels(a.is_unsigned);

    const double work = double(m) * double(n) * double(a.k) * double(u1 - u0) / double(std::max<Index>(1, a.units));
    const int threads = threads_for_work(work, m * n);
    Index mc = 0, nc = 0;
    choose_tiles(m, n, threads, mc, nc);
    const Index mt = (m + mc - 1) / mc, nt = (n + nc - 1) / nc, tiles = mt * nt;
    // K blocks of at most 576 K steps (a 3x3x64 convolution in one block) keep a B panel
    // (NR x 576 x 2 bytes) and the six A rows in L1. The VNNI kernels take blocks of up to 1024 K
    // steps (a B pair of 32 KB): at 1024^3, one block instead of two is 2.4 % faster on 1 thread and
    // ~6 % on 2 (fewer kernel calls, no second pass over C); smaller K is unchanged.
    const Index kc_max = a.layout == Layout::Pairs ? 288 : vnni.one[0] ? 256 : 144;
    const Index kb_count = std::max<Index>(1, (u1 - u0 + kc_max - 1) / kc_max);
    const Index kc = (u1 - u0 + kb_count - 1) / kb_count;

    // Tiles are independent and each output is summed by the same instruction sequence whichever
    // thread takes its tile, so a dynamic schedule (robust when cores are shared) stays deterministic.
    // A right operand read in place by the VNNI kernels (ColSource::image) is never packed.
    const bool in_place = vnni.image[0][0][0] && b.unit_offsets;
    DirectOutput dout;
    // A fused requantization needs the whole sum in one kernel call (one K block).
    const bool direct = vnni.one[0] && u1 > u0 && ep.direct(dout) && (!dout.fp32 || kb_count == 1);
    const int team = int(std::min<Index>(threads, tiles));
    struct Scratch {
        std::vector<int32_t> tile, a_buf, b_buf, row_terms;
        Index terms_of = -1;  // the first row of the tile whose row terms row_terms holds
    };
    std::vector<Scratch> per_thread(static_cast<size_t>(std::max(team, 1)));
    parallel_tasks(tiles, team, [&](std::ptrdiff_t task, int slot) {
        const Index t = Index(task);
        Scratch& own = per_thread[size_t(slot)];
        if (!direct) own.tile.resize(size_t(mc * nc));  // (direct blocks never touch the scratch tile)
        std::vector<int32_t>& scratch = own.tile;
        std::vector<int32_t>& a_buf = own.a_buf;
        std::vector<int32_t>& b_buf = own.b_buf;
        {
            const Index i0 = (t / nt) * mc, j0 = (t % nt) * nc;
            const Index rows = std::min(mc, m - i0), cols = std::min(nc, n - j0);
            const int32_t* ap = a.rows(i0, rows, a_buf);
            const int32_t* bp = in_place ? nullptr : b.cols(j0, cols, b_buf);
            const Index panels_m = (rows + MR - 1) / MR, panels_n = (cols + NR - 1) / NR;
            const int32_t* add_row = direct && dout.add_row ? dout.add_row + i0 : nullptr;
            if (direct && dout.row_term) {  // tiles in turn share their rows: reuse the last tile's terms
                if (own.terms_of != i0) {
                    own.row_terms.resize(size_t(rows));
                    dout.row_term(dout.row_ctx, i0, rows, own.row_terms.data());
                    own.terms_of = i0;
                }
                add_row = own.row_terms.data();
            }
            if (u1 == u0) std::fill(scratch.begin(), scratch.end(), 0);
            for (Index ku = u0; ku < u1; ku += kc) {
                const Index units = std::min(kc, u1 - ku);
                for (Index np = 0; np < panels_n;) {
                    if (vnni.one[0]) {
                        const bool pair = np + 1 < panels_n;
                        const bool last = ku + units >= u1;
                        VnniBlock blk;
                        blk.cols = int(std::min<Index>((pair ? 2 : 1) * NR, cols - np * NR));
                        blk.accumulate = ku != u0;
                        VnniB vb;
                        const VnniKernel* table = pair ? vnni.two : vnni.one;
                        if (in_place) {
                            vb.offsets = b.unit_offsets + ku;
                            for (int v = 0; v < (pair ? 2 : 1); ++v)
                                vb.panel[v] = b.image(j0 + (np + v) * NR, vb.second[v], vb.delta);
                            table = vnni.image[(vb.second[0] ? 1 : 0) | (vb.second[1] ? 2 : 0)][pair ? 1 : 0];
                        } else {
                            vb.panel[0] = bp + np * NR * b.units + ku * NR;
                            vb.panel[1] = vb.panel[0] + NR * b.units;
                        }
                        for (Index mp = 0; mp < panels_m; ++mp) {
                            blk.rows = int(std::min<Index>(MR, rows - mp * MR));
                            const VnniKernel vk = table[blk.rows - 1];
                            if (direct) {
                                const Index i = i0 + mp * MR, j = j0 + np * NR;
                                blk.c = dout.fp32 ? reinterpret_cast<int32_t*>(reinterpret_cast<char*>(dout.out) +
                                                                               (i * dout.ld + j) * dout.fp32->bytes)
                                                  : dout.out + i * dout.ld + j;
                                blk.ldc = dout.ld;
                                blk.add = last && dout.add ? dout.add + j : nullptr;
                                blk.add_row = last && add_row ? add_row + mp * MR : nullptr;
                                blk.fp32 = dout.fp32;
                                blk.scale_row = dout.fp32 && dout.fp32->scale_row ? dout.fp32->scale_row + i : nullptr;
                                blk.scale_col = dout.fp32 && dout.fp32->scale_col ? dout.fp32->scale_col + j : nullptr;
                            } else {
                                blk.c = scratch.data() + mp * MR * nc + np * NR;
                                blk.ldc = nc;
                                blk.add = blk.add_row = nullptr;
                            }
                            vk(ap + mp * MR * a.units + ku, a.units, vb, units, blk);
                        }
                        np += pair ? 2 : 1;
                        continue;
                    }
                    const int32_t* bpanel = bp + np * NR * b.units + ku * NR;
                    for (Index mp = 0; mp < panels_m; ++mp)
                        kernel(ap + mp * MR * a.units + ku, a.units, bpanel, units,
                               scratch.data() + mp * MR * nc + np * NR, nc, ku != u0);
                    ++np;
                }
            }
            if (direct) return;
            for (Index r = 0; r < rows; ++r) ep.row(i0 + r, j0, cols, scratch.data() + r * nc);
        }
    });
}

}  // namespace fxp::kern
