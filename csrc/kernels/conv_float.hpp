// Float32 2-D convolution for small images (a few dozen to a few hundred pixels per plane), NCHW in
// and out, OIHW weights, with the bias and the following activation fused into the store.
//
// Per image and group the input is copied once with its zero padding; every term of an output is
// then a load at a fixed offset from the output pixel's position, so no patch matrix is formed:
// * groups of >= 8 output channels on images whose output rows do not fill vectors of 8 pixels:
//   32 (24, 16, 8) output channels x 3 (4, 6, 8) output pixels in registers (a weight vector times
//   a broadcast input value), through a pixel-major buffer;
// * plain depthwise, unit horizontal stride: per channel plane, rows of 8 output pixels, 4 rows in
//   flight; strided: vectors of 8 channels on a channels-last padded copy of the image;
// * everything else: 6 output channels x 16 output pixels (two segments of 8 along the output
//   rows or the padded grid; strided ones gather a patch matrix first).
// Every output is one float32 sum over k = (c, ky, kx) in increasing order, started from zero, then
// plus bias, then the activation: the same operations whichever thread computes the image (threads
// split the batch; results never depend on their number). AVX2+FMA code is compiled per function
// with target attributes and chosen at run time; the portable path multiplies and adds separately,
// so its results differ from the AVX2 path's by float32 rounding only.
#pragma once

#include <vector>

#include "kernels/conv.hpp"
#include "kernels/gemm.hpp"

namespace fxp::kern {

enum class FloatActivation : int { None = 0, ReLU = 1, Clip = 2, Leaky = 3 };

// What happens to the sum of one output: + bias (when given), then, when scale is given, * scale
// and + shift (two float32 roundings, as a batch normalization layer computes them), then the
// activation: ReLU max(v, 0); Clip min(max(v, lo), hi); Leaky v < 0 ? alpha * v : v.
struct FloatEpilogue {
    const float* bias = nullptr;                             // per output channel, or null
    const float* scale = nullptr, *shift = nullptr;          // per output channel, or both null
    FloatActivation activation = FloatActivation::None;
    float lo = 0.0f, hi = 0.0f, alpha = 0.0f;
};

// OIHW float weights transposed once per group to wt[g][k][o_in_group] (k = (c, ky, kx)); with at
// least 8 output channels per group also as wide[g][k][o] with o padded with zeros to a multiple
// of 8 (out_pad), for the kernel that vectorises over output channels.
// Depthwise weights (one input and one output channel per group) also as dw[tap][channel], channels
// padded with zeros to a multiple of 8 (dw_pad).
struct PackedFloatConv {
    Index out_channels = 0, in_per_group = 0, kernel_h = 0, kernel_w = 0, groups = 1, out_pad = 0, dw_pad = 0;
    std::vector<float> wt, wide, dw;
};
PackedFloatConv pack_float_conv_weights(const float* w, Index o, Index cg, Index kh, Index kw, Index groups);

// x: N x C x H x W float32, out: N x O x OH x OW; the geometry must already be validated against w.
// Path::Portable forces the portable code; anything else uses AVX2+FMA when the CPU has it.
void conv2d_float(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const FloatEpilogue& ep,
                  float* out, Path path);

// `ep` applied in place to sums already in out (N x O x plane, bias not yet added): the same
// operations as conv2d_float's store, for convolutions computed elsewhere (BLAS).
void float_epilogue(float* out, Index batch, Index channels, Index plane, const FloatEpilogue& ep, Path path);

}  // namespace fxp::kern
