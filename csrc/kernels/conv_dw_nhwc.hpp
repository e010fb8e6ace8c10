// Depthwise convolution with exact sums, vectorised over channels (XNNPACK's dwconv layout): each
// image becomes a zero-padded channels-last int16 copy of x - x_zero_point (an output channel's input
// channel repeated for a depth multiplier, channels padded to a multiple of 16), and every output
// pixel sums its taps two at a time with vpmaddwd on 16 channels:
//
//   acc[oc] = bias[oc] + sum over taps t of (x[t][oc] - zx) * (w[t][oc] - zw[oc])
//
// (padded taps read 0; |x - zx|, |w - zw| <= 255, so each int16 product pair is exact in int32 and the
// sum wraps modulo 2^32 like any int32 accumulator). Planar kernels pay a loop set-up per channel and
// row, which small images (8 x 8 at batch 64: 1024 planes of 64 pixels) cannot amortise.
// x and the output may each be NCHW or NHWC memory. The requantizer: ONNX Runtime's / XNNPACK's fp32
// form fused into the store (8/16-bit outputs); other modes per finished image.
#pragma once

#include "kernels/conv.hpp"

namespace fxp::kern {

struct DepthwiseArgs {
    int32_t x_zero_point = 0;
    const int32_t* w_zero_point = nullptr;  // one value, or one per output channel
    Index w_zero_point_count = 1;
    const int32_t* bias = nullptr;          // per output channel, or null
    const Requantizer* rq = nullptr;        // fused requantization, else int32 output
    void* out = nullptr;
    bool x_channels_last = false;           // x is N x H x W x C (else N x C x H x W)
    bool out_channels_last = false;         // out is N x H_out x W_out x O (else N x O x H_out x W_out)
};

// Whether conv2d_depthwise_nhwc runs here: groups == channels (depthwise, or one input channel and
// groups 1: a depth multiplier of O) on an AVX2 CPU.
bool depthwise_nhwc_available(const ConvGeometry& g, Path path);

// w: the raw weights, O x kh x kw (O = channels * depth multiplier), as int16 (int8 or uint8 values).
template <class T>
void conv2d_depthwise_nhwc(const T* x, const ConvGeometry& g, const int16_t* w, const DepthwiseArgs& args);

}  // namespace fxp::kern
