// The affine integer GEMM the Python API exposes: C = (A - za)(B - zb) + bias, exact, with the int32
// accumulator overflow policy and an optional fused requantizer, for int8/uint8 x int8 (int32) and
// int16 x int16 (int64).
//
// Zero points never touch the inner loop: (A - za)(B - zb) = AB - za_i*colsum_j - zb_j*rowsum_i
// + K*za_i*zb_j, applied per output row by the epilogue. In int32 (wrap) arithmetic every term is exact
// modulo 2^32, so the default path computes the wrapped exact result. When the caller's bound says the
// exact result may leave int32 and the policy is saturate or raise, the product is computed in K chunks
// whose int32 sums cannot overflow and added in int64 (`wide`).
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"
#include "kernels/requantize.hpp"

namespace fxp::kern {

enum class AccOverflow : int { Wrap = 0, Saturate = 1, Raise = 2 };

// Thrown (after the parallel region) by the raise policy; names the first overflowing output.
struct AccumulatorOverflow {
    Index row, col;
    int64_t value;
};

// B packed once for repeated calls: the exact pair layout and the quad layout (has_quads: the CPU has
// AVX2, so the exact route may take the quads; the int16-pair accumulation always reads them).
// quads_flipped (VNNI CPUs): the quads of B + 128 (each byte xor 0x80) as the unsigned operand, for
// a full-range int8 A read in place as the signed one (gemm_affine.cpp).
struct PackedGemmB {
    PackedCols pairs, quads, quads_flipped;
    bool has_quads = false, has_flipped = false;
    Index k = 0, n = 0;
};
PackedGemmB pack_gemm_b(const int8_t* b, Index k, Index n);

// True when every byte is <= 127 read as unsigned (uint8 <= 127, or int8 >= 0).
bool bytes_below_128(const void* p, Index count);

struct AffineArgs {
    const int32_t* bias = nullptr;     // per output column, or null
    const int32_t* za = nullptr;       // per row (za_count == rows) or one value
    Index za_count = 1;
    const int32_t* zb = nullptr;       // per column or one value
    Index zb_count = 1;
    AccOverflow overflow = AccOverflow::Wrap;
    bool wide = false;                 // the exact result may exceed int32 (caller's bound)
    const Requantizer* rq = nullptr;   // fused requantization, else int32 output
    void* out = nullptr;               // rows x n of int32, or of the requantizer's type
    Path path = Path::Auto;
};

// The fused-store form (DirectFp32: bytes, clamp, zero point; scales left to the caller) of an
// MlasFp32 requantizer into 8- or 16-bit words; false for other modes and int32 outputs.
bool direct_fp32(const Requantizer& rq, DirectFp32& out);

// A: m x k row-major (T = int8_t or uint8_t). Throws AccumulatorOverflow under the raise policy.
template <class T>
void gemm_affine(const T* a, Index m, const PackedGemmB& b, const AffineArgs& args);

// ONNX Runtime's AVX2 U8S8 accumulation (Accum::Int16Pairs, gemm.hpp): the raw bytes of A (m x k,
// row-major) and of the packed quads of B, exactly one of TA/TB unsigned, summed in saturating int16
// pairs of K steps (4q, 4q+1), (4q+2, 4q+3); zero-point corrections and bias added exactly afterwards
// (modulo 2^32, as MLAS's row/column sum buffers). args.overflow must be Wrap.
template <class TA>
void gemm_affine_pairs(const TA* a, Index m, const PackedCols& b_quads, const AffineArgs& args);

// int16 x int16 -> int64 accumulators (portable; every product is exact in int64).
void gemm_affine_i16(const int16_t* a, const int16_t* b, Index m, Index k, Index n, const AffineArgs& args);

}  // namespace fxp::kern
