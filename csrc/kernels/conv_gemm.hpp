// 2-D convolution as a GEMM of the packed weights by the im2col matrix, for what the direct
// convolution (conv.hpp) does not take: a weight zero point (per tensor or per output channel), uint8
// weights, and ONNX Runtime's int16-pair saturating accumulation (Accum::Int16Pairs) in the K order
// MLAS uses.
//
// Per group, out[o, p] = W[o, :] * col[:, p]: the weights (rows = output channels, K in the chosen
// order) are the left operand, packed once; the im2col columns (one per output pixel) the right
// operand, written by the GEMM driver tile by tile straight into its packed panel layout from a
// zero-point-padded copy of a chunk of images (so the panel is built in cache and no patch matrix
// exists). Rows are output channels and columns pixels, so each finished row of a tile is a run of
// one NCHW output plane: the epilogue adds the zero-point terms and the bias, requantizes and stores
// it there (no transpose, no gather pass).
//   K order Chw: (c, kh, kw), the ONNX OIHW order (ConvInteger's NCHW im2col, conv_integer.cc).
//   K order Hwc: (kh, kw, c), QLinearConv's NHWC im2col / ConvSym order (qlinearconv.cc).
// Exact accumulation does not depend on the order; the saturating one pairs K steps (4q, 4q+1) and
// (4q+2, 4q+3) of that order, K zero-padded to a multiple of 4 at its end.
// Zero points never touch the inner loop: with raw = sum of the products as multiplied,
//   sum (w - zw)(x - zx) = raw - zx * sum(w) - zw * sum(x) + K * zx * zw   (modulo 2^32),
// sum(w) per output channel (packed once), sum(x) per output pixel (box sums of the padded image,
// only when a weight zero point is not 0).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/gemm.hpp"
#include "kernels/requantize.hpp"

namespace fxp::kern {

enum class KOrder : int { Chw = 0, Hwc = 1 };

struct PackedConvGemm {
    Index out_channels = 0, in_per_group = 0, kernel_h = 0, kernel_w = 0, groups = 1;
    KOrder order = KOrder::Chw;
    Accum accum = Accum::Exact;
    bool w_unsigned = false;
    // Per group, the (O/groups) x K weight rows in the K order, with their sums.
    // Int16Pairs: the raw bytes as quads (int8, or uint8 when the weights are the unsigned operand).
    // Exact: int8 (uint8 weights stored as w - 128, i.e. byte xor 0x80: the zero points then move by
    // w_offset = -128) as int16 pairs, and as quads on AVX2 CPUs (for images whose bytes are <= 127,
    // or VNNI).
    std::vector<PackedRows> quads, pairs;
    int32_t w_offset = 0;
    // One input channel per group (depthwise, or a single-channel image) with exact accumulation: the
    // weights as given (O x kh x kw), for the depthwise kernels (conv_dw_nhwc.hpp; conv.hpp with
    // w - w_zero_point when groups > 1).
    std::vector<int16_t> depthwise;
};

// w: OIHW, int8 (w_unsigned false) or uint8.
PackedConvGemm pack_conv_gemm(const void* w, bool w_unsigned, Index o, Index cg, Index kh, Index kw, Index groups,
                              KOrder order, Accum accum);

struct ConvGemmArgs {
    int32_t x_zero_point = 0;
    const int32_t* w_zero_point = nullptr;  // one value, or one per output channel
    Index w_zero_point_count = 1;
    const int32_t* bias = nullptr;          // per output channel, or null
    const Requantizer* rq = nullptr;        // fused requantization, else int32 output
    void* out = nullptr;                    // N x O x H_out x W_out (or N x H_out x W_out x O)
    Path path = Path::Auto;
    bool x_channels_last = false;           // x is N x H x W x C memory
    bool out_channels_last = false;         // out is N x H_out x W_out x O memory
};

// x: N x C x H x W (T = int8_t or uint8_t), or N x H x W x C with args.x_channels_last; the geometry
// must already be validated. Depthwise layers with exact sums run conv_dw_nhwc.hpp's kernel on AVX2
// CPUs (either layout in and out); the GEMM route takes and writes NCHW, other layouts transposed
// around it (kernels/layout.hpp).
template <class T>
void conv2d_gemm(const T* x, const ConvGeometry& g, const PackedConvGemm& w, const ConvGemmArgs& args);

}  // namespace fxp::kern
