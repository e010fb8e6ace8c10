// Exact 2-D convolution, NCHW input (int8/uint8 with a zero point), OIHW int8 weights (the ONNX
// layout), int32 accumulators, optional bias and fused requantization.
//
// Generic groups run as one GEMM per image and group, out[o, p] = W[o, :] * col[:, p], with the
// weights packed once as the left operand and the im2col matrix written straight into the packed
// right-operand layout from a zero-point-padded copy of the image (so padding is exact and the inner
// loop has no bounds checks). For stride 1 the column grid uses the padded width, which makes every
// panel of 16 columns a contiguous byte run; the few extra columns are computed and dropped.
// Depthwise (groups == C) is a direct kernel: each padded plane of x - zp is stored once as int16
// pairs of horizontally adjacent taps and vpmaddwd sums two taps for 8 output columns at a time.
// On AVX-512 VNNI + VBMI CPUs (path Auto) depthwise runs on the image bytes instead
// (conv_depthwise.hpp): vpdpbusd sums four taps of 16 output columns, requantization fused.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/requantize.hpp"

namespace fxp::kern {

struct ConvGeometry {
    Index batch = 0, channels = 0, height = 0, width = 0;
    Index out_channels = 0, kernel_h = 0, kernel_w = 0, groups = 1;
    Index stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
    Index pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
    Index out_h() const { return (height + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
    Index out_w() const { return (width + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
    bool depthwise() const { return groups == channels && groups > 1; }
};

// OIHW weights packed once: per group the left GEMM operand in both layouts (quads with AVX2), and the
// raw weights for the depthwise kernel.
// quads_c4 (VNNI CPUs): the quads with K ordered (channel / 4, kh, kw, channel % 4), channels padded
// with zero weights to a multiple of 4, for images interleaved by 4 channels (conv.cpp).
struct PackedConvWeights {
    Index out_channels = 0, in_per_group = 0, kernel_h = 0, kernel_w = 0, groups = 1;
    std::vector<PackedRows> pairs, quads, quads_c4;
    std::vector<int8_t> raw;
    bool has_quads = false;
};
PackedConvWeights pack_conv_weights(const int8_t* w, Index o, Index cg, Index kh, Index kw, Index groups);

struct ConvArgs {
    int32_t x_zero_point = 0;
    const int32_t* bias = nullptr;    // per output channel, or null
    const Requantizer* rq = nullptr;  // fused requantization, else int32 output
    void* out = nullptr;              // N x O x H_out x W_out
    Path path = Path::Auto;
};

// x: N x C x H x W (T = int8_t or uint8_t); the geometry must already be validated.
template <class T>
void conv2d(const T* x, const ConvGeometry& g, const PackedConvWeights& w, const ConvArgs& args);

// Depthwise (g.depthwise()) by the direct kernel with int16 weights (O x kh x kw), e.g. w - w_zero_point
// of uint8 weights or of weights with a zero point (|w| <= 255: every pair of products is exact in int32).
template <class T>
void conv2d_depthwise_int16(const T* x, const ConvGeometry& g, const int16_t* weights, const ConvArgs& args);

}  // namespace fxp::kern
