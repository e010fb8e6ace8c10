// Depthwise convolution on AVX-512 with VNNI and VBMI (chosen at run time): the byte kernel.
//
// Why bytes: vpdpbusd sums four uint8 x int8 products into an int32 lane exactly (no 16-bit
// intermediate that could saturate), so no widened copy of the image is built. The input is used as
// it is stored, shifted to uint8 for int8 inputs (x ^ 0x80 = x + 128, zero point + 128 alike):
//
//   sum (x - zp) * w = sum x_u * w - zp_u * sum w,
//
// and the padding is read as zp_u, so the correction -zp_u * sum(w) (+ bias) starts each accumulator
// and padded taps cancel exactly. For 16 output columns of one kernel row, one masked 64-byte load
// (columns outside the image masked to zp_u) and one vpermb gather the 4 taps of each column
// (lane i, byte k = column i * stride + k * dilation) into one vector; kernels wider than 4 taps use
// more such groups. The fp32 requantization (ONNX Runtime's) is fused into the same pass; other
// modes requantize each finished output plane at once.
#pragma once

#include "kernels/conv.hpp"

namespace fxp::kern {

// Runs the depthwise convolution (g.depthwise()) and returns true when this machine, the requested
// path (Auto, with VNNI allowed: see gemm_vnni.hpp) and the geometry suit the byte kernel; returns false, doing nothing, otherwise.
template <class T>
bool conv_depthwise_bytes(const T* x, const ConvGeometry& g, const PackedConvWeights& w, const ConvArgs& args);

}  // namespace fxp::kern
