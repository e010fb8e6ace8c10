// Packing 16 columns of K rows into one K unit of the GEMM's column-panel layout (gemm.hpp), for the
// im2col operands of the convolutions (conv.cpp, conv_gemm.cpp). SSE2 only: baseline x86-64, no
// run-time dispatch; the portable path packs the same dwords with plain loops.
#pragma once

#include <emmintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/gemm.hpp"

namespace fxp::kern {

static_assert(NR == 16, "the unit packers fill 16 columns");

// Four K rows of 16 bytes as the quad layout of one unit: dword j = (r0[j], r1[j], r2[j], r3[j]), low
// byte first. Two rounds of unpacks instead of 64 byte moves.
inline void quad_unit_sse2(const void* r0, const void* r1, const void* r2, const void* r3, int32_t* d) {
    const __m128i a = _mm_loadu_si128(static_cast<const __m128i*>(r0)), b = _mm_loadu_si128(static_cast<const __m128i*>(r1));
    const __m128i c = _mm_loadu_si128(static_cast<const __m128i*>(r2)), e = _mm_loadu_si128(static_cast<const __m128i*>(r3));
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);  // (r0, r1) byte pairs
    const __m128i ce_lo = _mm_unpacklo_epi8(c, e), ce_hi = _mm_unpackhi_epi8(c, e);  // (r2, r3) byte pairs
    __m128i* out = reinterpret_cast<__m128i*>(d);
    _mm_storeu_si128(out + 0, _mm_unpacklo_epi16(ab_lo, ce_lo));  // columns 0..3
    _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(ab_lo, ce_lo));  // 4..7
    _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(ab_hi, ce_hi));  // 8..11
    _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(ab_hi, ce_hi));  // 12..15
}

// Two K rows of 16 bytes (T = int8_t: sign-extended, uint8_t: zero-extended) as the pair layout of
// one unit: dword j = (int16 r0[j], int16 r1[j]), low half first.
template <class T>
inline void pair_unit_sse2(const void* r0, const void* r1, int32_t* d) {
    const __m128i a = _mm_loadu_si128(static_cast<const __m128i*>(r0)), b = _mm_loadu_si128(static_cast<const __m128i*>(r1));
    __m128i a_lo, a_hi, b_lo, b_hi;
    if (std::is_unsigned<T>::value) {
        const __m128i z = _mm_setzero_si128();
        a_lo = _mm_unpacklo_epi8(a, z), a_hi = _mm_unpackhi_epi8(a, z);
        b_lo = _mm_unpacklo_epi8(b, z), b_hi = _mm_unpackhi_epi8(b, z);
    } else {  // (v, v) as an int16 is v * 257; >> 8 (arithmetic) leaves v sign-extended
        a_lo = _mm_srai_epi16(_mm_unpacklo_epi8(a, a), 8), a_hi = _mm_srai_epi16(_mm_unpackhi_epi8(a, a), 8);
        b_lo = _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8), b_hi = _mm_srai_epi16(_mm_unpackhi_epi8(b, b), 8);
    }
    __m128i* out = reinterpret_cast<__m128i*>(d);
    _mm_storeu_si128(out + 0, _mm_unpacklo_epi16(a_lo, b_lo));
    _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(a_lo, b_lo));
    _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(a_hi, b_hi));
    _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(a_hi, b_hi));
}

// The same dwords with plain loops (the portable path).
template <class T>
inline void quad_unit_portable(const T* r0, const T* r1, const T* r2, const T* r3, int32_t* d) {
    for (int j = 0; j < NR; ++j)
        d[j] = int32_t(uint32_t(uint8_t(r0[j])) | (uint32_t(uint8_t(r1[j])) << 8) | (uint32_t(uint8_t(r2[j])) << 16) |
                       (uint32_t(uint8_t(r3[j])) << 24));
}
template <class T>
inline void pair_unit_portable(const T* r0, const T* r1, int32_t* d) {
    for (int j = 0; j < NR; ++j)
        d[j] = int32_t(uint32_t(uint16_t(int16_t(r0[j]))) | (uint32_t(uint16_t(int16_t(r1[j]))) << 16));
}

}  // namespace fxp::kern
