// 2-D convolution as im2col + the affine GEMM (gemm_affine.hpp), for what the direct convolution
// (conv.hpp) does not take: a weight zero point (per tensor or per output channel), uint8 weights, and
// ONNX Runtime's int16-pair saturating accumulation (Accum::Int16Pairs) with the K order MLAS uses.
//
// Per image and group: the im2col rows (one per output pixel, the zero-point-padded taps in the
// chosen K order) are the GEMM's A, the group's weights as a (K, O/groups) matrix its B; the GEMM
// writes (pixels x channels) with the fused requantizer, transposed into the NCHW output.
//   K order Chw: (c, kh, kw), the ONNX OIHW order (ConvInteger's NCHW im2col, conv_integer.cc).
//   K order Hwc: (kh, kw, c), QLinearConv's NHWC im2col / ConvSym order (qlinearconv.cc).
// Exact accumulation does not depend on the order; the saturating one pairs K steps (4q, 4q+1) and
// (4q+2, 4q+3) of that order, K zero-padded to a multiple of 4 at its end.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/gemm_affine.hpp"
#include "kernels/requantize.hpp"

namespace fxp::kern {

enum class KOrder : int { Chw = 0, Hwc = 1 };

struct PackedConvGemm {
    Index out_channels = 0, in_per_group = 0, kernel_h = 0, kernel_w = 0, groups = 1;
    KOrder order = KOrder::Chw;
    Accum accum = Accum::Exact;
    bool w_unsigned = false;
    // Exact: per group, the weights as int8 (uint8 weights stored as w - 128, i.e. byte xor 0x80: the
    // zero points then move by -128, w_offset = -128). Int16Pairs: per group, the raw bytes as quads.
    std::vector<PackedGemmB> exact;
    std::vector<PackedCols> quads;
    int32_t w_offset = 0;
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
    void* out = nullptr;                    // N x O x H_out x W_out
    Path path = Path::Auto;
};

// x: N x C x H x W (T = int8_t or uint8_t); the geometry must already be validated.
template <class T>
void conv2d_gemm(const T* x, const ConvGeometry& g, const PackedConvGemm& w, const ConvGemmArgs& args);

}  // namespace fxp::kern
