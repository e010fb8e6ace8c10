// AVX-512 VNNI micro-kernels for the quad layout of the exact GEMM (gemm.hpp).
//
// vpdpbusd multiplies four unsigned bytes by four signed bytes and adds the four products to an int32
// lane with no intermediate saturation, so on a VNNI CPU the quad layout is exact for every uint8
// operand (not only <= 127 as with vpmaddubsw). Signed int8 activations use it as A + 128 (the bytes
// xor 0x80) with the zero point raised by 128: the same result modulo 2^32 (gemm_affine.cpp).
// A quad unit is exactly vpdpbusd's operand layout, so the packed panels are shared with the AVX2
// kernels. Compiled per function with target attributes, chosen at run time.
#pragma once

#include <cstdint>

#include "kernels/gemm.hpp"

namespace fxp::kern {

bool cpu_has_vnni();

// Process-wide switch (default on) so that tests and benchmarks can compare the VNNI kernels with the
// AVX2 ones in one process; results are the same bits either way.
void set_vnni_allowed(bool allowed);
// True when the CPU has AVX-512 VNNI and the switch is on.
bool vnni_enabled();

// c (+)= a `rows` x `cols` block (rows <= MR, cols <= NV * NR): rows of A (row r at a + r * lda, `units`
// K quads), NV panels of B (panel v at b + v * panel_stride, unit u at + u * NR), rows of c at
// c + r * ldc. Columns past `cols` are neither read nor written (masked), so the block may end at the
// edge of the output. add (may be null): per-column int32 terms, add_row (may be null): per-row terms,
// both added (modulo 2^32) in the final store.
struct VnniBlock {
    int32_t* c;
    Index ldc;
    int rows, cols;
    bool accumulate;
    const int32_t* add;
    const int32_t* add_row;
    // Fused MlasFp32 requantization (gemm.hpp, DirectFp32) instead of the int32 store: c is then the
    // block's first element of an output of fp32->bytes-byte words, ldc in elements; scale per row
    // (scale_row) or per column (scale_col), each already offset to the block.
    const DirectFp32* fp32 = nullptr;
    const float* scale_row = nullptr;
    const float* scale_col = nullptr;
};
// Where a kernel reads the NV panels of B. Packed (gemm.hpp): unit u of panel v at panel[v] + u * NR.
// An image read in place (ColSource::unit_offsets, conv.cpp): unit u of panel v at panel[v] +
// offsets[u]; the kernels for a split panel v read the columns whose bit is set in second[v] delta
// dwords further on (a panel that continues on the next output row).
struct VnniB {
    const int32_t* panel[2] = {nullptr, nullptr};
    const Index* offsets = nullptr;
    uint16_t second[2] = {0, 0};
    Index delta = 0;
};
using VnniKernel = void (*)(const int32_t* a, Index lda, const VnniB& b, Index units, const VnniBlock& out);

// [r - 1]: the kernel for r rows; "one": one panel of NR columns, "two": two panels (more products per
// broadcast A dword).
struct VnniKernels {
    VnniKernel one[MR] = {}, two[MR] = {};  // packed B
    // An image in place, for a signed A (weights times an unsigned image): [s][NV - 1][r - 1] where
    // bit v of s says panel v is split (NV = 1: s < 2).
    VnniKernel image[4][2][MR] = {};
};

// The kernels for A unsigned (B signed) or B unsigned (A signed).
VnniKernels vnni_kernels(bool a_unsigned);

// Peak GOPS of vpdpbusd on zmm registers (12 independent accumulators, operands in registers): the
// exact int8 ceiling of a VNNI CPU. `threads` threads for about `seconds` each; 0 without VNNI.
double vnni_ceiling_gops(int threads, double seconds);

}  // namespace fxp::kern
