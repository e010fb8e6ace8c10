// Exact integer GEMM C[M,N] = A[M,K] * B[K,N] for int8/uint8 operands with int32 accumulators.
//
// Both operands are packed before the multiply, in one of two layouts of a "K unit":
//   Pairs  two K steps as an int16 pair in a dword (sign- or zero-extended). The AVX2 micro-kernel
//          multiplies them with vpmaddwd, which is exact for every int8/uint8 input.
//   Quads  four K steps as four bytes in a dword, for vpmaddubsw (unsigned x signed bytes, int16
//          saturating pair sums, then vpmaddwd with ones). Exact only when the unsigned operand is at
//          most 127 (then a pair sum is at most 2*127*128 = 32512); the caller checks that. On an
//          AVX-512 VNNI CPU the quads go to vpdpbusd instead (gemm_vnni.hpp), exact for every byte.
// K is padded with zeros to a multiple of 4 in both layouts, so K blocks fall on unit boundaries.
//
// The left operand ("rows") is stored as micro-panels of MR rows, each row its K units contiguous;
// the right operand ("cols") as panels of NR columns, each K unit holding NR dwords. Rows beyond M and
// columns beyond N are zero padding. The driver computes MC x NC output tiles (the task pool of
// threads.hpp) into a per-thread int32 scratch tile and hands each finished row to an Epilogue while
// the tile is still in cache. Integer sums are associative modulo 2^32, so every path (portable, AVX2
// pairs, AVX2 quads, VNNI quads), every thread count and every blocking gives the same bits.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <emmintrin.h>

namespace fxp::kern {

using Index = std::ptrdiff_t;

constexpr int MR = 6;   // rows per micro-panel
constexpr int NR = 16;  // columns per panel (two ymm of int32)

enum class Layout : int { Pairs = 0, Quads = 1 };

// Highest instruction set a call may use; Portable is plain C++ (bit-identical, for tests). Auto may use
// VNNI for quads when vnni_enabled(); Vnni is what a caller passes once it has chosen quads whose
// unsigned bytes may exceed 127 (only valid when vnni_enabled()).
enum class Path : int { Auto = 0, Avx2Exact = 1, Portable = 2, Vnni = 3 };

// How the quad layout's four products reach the int32 sum. Exact: every product exactly (vpdpbusd,
// or vpmaddubsw where the caller proved no pair can saturate). Int16Pairs: as ONNX Runtime's MLAS
// U8S8 kernels on CPUs without VNNI (QgemmU8S8KernelAvx2, ConvSymKernelAvx2, the Avx512Core ones)
// compute it: vpmaddubsw adds the products of K steps (4q, 4q+1) and (4q+2, 4q+3) of the unsigned by
// the signed bytes into int16 lanes with signed saturation, then vpmaddwd with ones adds the two
// pair sums into int32. Never on the VNNI kernels; the portable kernel saturates the same pairs.
enum class Accum : int { Exact = 0, Int16Pairs = 1 };

bool cpu_has_avx2();
// The path a request resolves to on this machine (Auto -> Avx2Exact without AVX2 -> Portable).
Path resolve(Path requested);

inline Index round_up(Index x, Index m) { return (x + m - 1) / m * m; }
inline Index padded_k(Index k) { return round_up(k, 4); }
inline Index k_units(Layout l, Index k) { return padded_k(k) / (l == Layout::Pairs ? 2 : 4); }

// The left operand ("rows") of a multiply: hands out rows [i0, i0 + n) packed as micro-panels of MR
// rows (rows beyond `count` zero), each row `units` dwords. Either already packed (PackedRows) or packed
// by the driver tile by tile into the thread's scratch (cache-hot, no extra pass over memory).
struct RowSource {
    Layout layout = Layout::Pairs;
    bool is_unsigned = false;  // how the bytes are read (zero- vs sign-extension)
    Index count = 0, k = 0, units = 0;
    virtual const int32_t* rows(Index i0, Index n, std::vector<int32_t>& scratch) const = 0;
    virtual ~RowSource() = default;
};

// The right operand ("cols"): columns [j0, j0 + n) (j0 a multiple of NR) as panels of NR columns, each
// K unit holding NR dwords; columns beyond `count` zero.
struct ColSource {
    Layout layout = Layout::Pairs;
    bool is_unsigned = false;
    Index count = 0, k = 0, units = 0;
    virtual const int32_t* cols(Index j0, Index n, std::vector<int32_t>& scratch) const = 0;
    // Or, for the VNNI kernels of a signed A: the operand read in place, never packed (an image,
    // conv.cpp). Set unit_offsets (per K unit, in dwords) and image(): the panel at column j0 (see
    // VnniB in gemm_vnni.hpp); the driver then calls image() and never cols().
    const Index* unit_offsets = nullptr;
    virtual const int32_t* image(Index /*j0*/, uint16_t& /*second*/, Index& /*delta*/) const { return nullptr; }
    virtual ~ColSource() = default;
};

// Packs one row (or column) src[kk * k_stride], kk < k, into `units` dwords of the layout, zero padded.
template <class T>
void pack_line(const T* src, Index k, Index k_stride, Layout layout, int32_t* dst, Index units);

// Exact sum of src[kk * k_stride] over kk < k.
template <class T>
int64_t line_sum(const T* src, Index k, Index k_stride);

struct PackedRows : RowSource {
    std::vector<int32_t> data;      // round_up(count, MR) * units dwords
    std::vector<int64_t> row_sums;  // sum over K of each row, for zero-point corrections
    const int32_t* rows(Index i0, Index, std::vector<int32_t>&) const override { return data.data() + i0 * units; }
};

struct PackedCols : ColSource {
    std::vector<int32_t> data;      // round_up(count, NR) * units dwords
    std::vector<int64_t> col_sums;
    const int32_t* cols(Index j0, Index, std::vector<int32_t>&) const override { return data.data() + j0 * units; }
};

// d[0..k) = s[0..k) xor 0x80, d[k..n) = 0 (64 bytes at a time with AVX-512 BW, else 16).
void copy_sign_flipped(const unsigned char* s, Index k, unsigned char* d, Index n);

// Rows of a row-major byte matrix, packed by the driver per tile.
// flip_sign: store each byte xor 0x80, i.e. int8 A as the uint8 A + 128 (VNNI quads; see gemm_vnni.hpp).
// in_place: quads with K a multiple of 4 are already the packed layout (row r at src + r * k); only for
// kernels that never read past the last row (the VNNI ones), since nothing pads the rows to MR.
template <class T>
struct RowMajorRows : RowSource {
    const T* src = nullptr;
    bool flip_sign = false;
    bool in_place = false;
    RowMajorRows(const T* a, Index m, Index k_, Layout l, bool read_unsigned, bool flip = false) : src(a), flip_sign(flip) {
        layout = l;
        is_unsigned = read_unsigned;
        count = m;
        k = k_;
        units = k_units(l, k_);
    }
    const int32_t* rows(Index i0, Index n, std::vector<int32_t>& scratch) const override {
        if (in_place) return reinterpret_cast<const int32_t*>(src + i0 * k);
        scratch.resize(size_t(round_up(n, MR) * units));
        for (Index r = 0; r < round_up(n, MR); ++r) {
            int32_t* d = scratch.data() + r * units;
            if (i0 + r >= count) {
                std::fill(d, d + units, 0);
            } else if (flip_sign) {  // quads only (VNNI CPUs): bytes xor 0x80 in the copy, K padding zero
                copy_sign_flipped(reinterpret_cast<const unsigned char*>(src + (i0 + r) * k), k,
                                  reinterpret_cast<unsigned char*>(d), units * 4);
            } else {
                pack_line(src + (i0 + r) * k, k, 1, layout, d, units);
            }
        }
        return scratch.data();
    }
};

// Packs src(r, k) = src[r * row_stride + k * k_stride] (T = int8_t or uint8_t), with exact line sums.
template <class T>
PackedRows pack_rows(const T* src, Index rows, Index k, Index row_stride, Index k_stride, Layout layout);
template <class T>
PackedCols pack_cols(const T* src, Index cols, Index k, Index col_stride, Index k_stride, Layout layout);

// Receives each finished output row: acc[0..n) are the raw sums A*B of row i, columns j0..j0+n.
// It may overwrite acc (scratch). Called concurrently for different rows.
// An epilogue that is a plain int32 store (plus a per-column and a per-row term) may offer its output
// instead: the VNNI driver then stores every micro-block straight into it (masked at the right edge,
// with a kernel per row count for the last rows), adding add[j] + add_row[i] in the final K block's
// store, and never calls row(). Saves the copy of every tile out of the scratch.
// ONNX Runtime's requantization (Requantizer mode MlasFp32) into 8/16-bit words, fused into the
// store: RNE(clamp(float(acc) * scale, lo, hi)) + zp, where acc already includes the terms and
// [lo, hi] is the output clamp minus zp (so the result is inside the word and narrowing is exact).
// Only for a single K block (the kernel must see the whole sum).
struct DirectFp32 {
    int bytes = 1;                     // 1 (int8/uint8) or 2 (int16)
    bool unsigned_bytes = false;       // uint8 words (set by callers that pack bytes themselves)
    float lo = 0.0f, hi = 0.0f;
    int32_t zp = 0;
    const float* scale_row = nullptr;  // per row, or
    const float* scale_col = nullptr;  // per column
};

struct DirectOutput {
    int32_t* out = nullptr;            // row i, column j at out[i * ld + j] (words of fp32->bytes bytes if fp32)
    Index ld = 0;
    const int32_t* add = nullptr;      // per column, or null
    const int32_t* add_row = nullptr;  // per row, or null
    // Or, in place of add_row: the per-row term of rows [i0, i0 + rows), computed into out by the tile
    // that stores them. Fused into the tiles, no serial pass over A precedes the multiply (a tile's A
    // rows are read again by its kernel while in cache).
    void (*row_term)(const void* ctx, Index i0, Index rows, int32_t* out) = nullptr;
    const void* row_ctx = nullptr;
    const DirectFp32* fp32 = nullptr;  // fused requantization, or null (int32 output)
};

struct Epilogue {
    virtual void row(Index i, Index j0, Index n, int32_t* acc) const = 0;
    virtual bool direct(DirectOutput&) const { return false; }
    virtual ~Epilogue() = default;
};

// One MR x NR block on AVX2 with the right operand read in place from an image: unit u of columns
// 4i..4i+3 is the 16 bytes at b[i] + unit_bytes[u] (blocks8: columns 0-7 at b[0], 8-15 at b[2], 32
// bytes each), in the layout's form (pairs: two int16 per dword, vpmaddwd, exact; quads: four bytes,
// vpmaddubsw, i.e. Accum::Int16Pairs, exact when the unsigned operand is <= 127). a: the packed rows
// (row r at a + r * lda; a_unsigned for quads); the image is the other operand. tile: the 6 x 16
// int32 sums, row r at tile + 16 r; only the first `rows` are computed when rows <= 4 (2 or 4 rows
// of the kernel run). Requires AVX2.
void block_from_image_avx2(const int32_t* a, Index lda, Layout layout, bool a_unsigned, const unsigned char* const b[4],
                           bool blocks8, const Index* unit_bytes, Index units, Index rows, int32_t* tile);

// Runs the multiply over K units [u0, u1) (the whole K by default) and calls ep for every output row.
// Requires a.layout == b.layout, a.k == b.k, and for Quads exactly one unsigned operand whose bytes
// are <= 127 unless path is Vnni. Every path computes every layout (the portable one in plain C++).
// accum Int16Pairs (quads only): the saturating pair sums above, whatever the bytes.
void multiply(const RowSource& a, const ColSource& b, const Epilogue& ep, Path path, Index u0 = 0, Index u1 = -1,
              Accum accum = Accum::Exact);

}  // namespace fxp::kern
