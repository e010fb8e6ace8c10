// Requantization of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED int8 accumulators, per resolver:
// which rounding each output channel gets and the parameters derived from the float scales, in the
// precision each runtime uses. The accumulation itself is exact int32 (fixedpoint.kernels.conv2d /
// gemm); the requantization runs in kernels/requantize.hpp (three modes) or, for the reference
// FULLY_CONNECTED, in `requantize_double_round` below.
//
//   Reference  CONV_2D, DEPTHWISE: reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel,
//              MultiplyByQuantizedMultiplier (gemmlowp double rounding) with
//              M[c] = double(s_in) * double(s_w[c]) / double(s_out) (PopulateConvolutionQuantizationParams,
//              per-tensor weights broadcast to every channel).
//              FULLY_CONNECTED: reference_integer_ops::FullyConnected(PerChannel) with float scales:
//              round(double(acc) * M) half away from zero, M the double above (per channel) or
//              double(float(s_in * s_w)) / double(s_out) (per tensor, GetQuantizedConvolutionMultipler).
//   Optimized  CONV_2D, FULLY_CONNECTED: cpu_backend_gemm -> ruy (x86 AVX2/AVX-512 kernels) or the
//              NEON custom GEMV (batch 1): SRDHM then a half-up rounding shift (ruy_double_halfup),
//              multipliers as the reference derives them.
//              DEPTHWISE: optimized_integer_ops::DepthwiseConvGeneral + optimized_ops::Quantize: the
//              NEON loop (vqrdmulh, vrshl: half-up) on channels [0, 8 * floor(C / 8)), the scalar
//              MultiplyByQuantizedMultiplier (gemmlowp) on the remaining C % 8 channels.
//   Xnnpack    fp32 requantization: RNE(float(acc) * scale[c]) with scale[c] = s_in * s_w[c] / s_out
//              in float (convolution-nhwc.c init_requantization_scale_*, fully-connected-nc.c), the
//              activation bounds quantized by xnn_qs8_quantize.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

enum class ConvKind : int { Conv2D = 0, DepthwiseConv2D = 1, FullyConnected = 2 };

// Per-channel rounding of a plan; the codes are shared with fixedpoint/kernels/litert.py.
enum class ConvRounding : int { GemmlowpDouble = 0, RuyDoubleHalfUp = 1, Fp32 = 2, DoubleRound = 3 };

struct ConvRequantPlan {
    std::vector<int32_t> rounding;    // ConvRounding per output channel
    std::vector<int32_t> multiplier;  // Q0.31 (integer roundings)
    std::vector<int32_t> shift;       // TFLite exponent
    std::vector<float> scale;         // fp32 scale (Xnnpack)
    std::vector<double> real;         // the double multiplier (DoubleRound)
    int32_t zero_point = 0;
    Range clamp{-128, 127};
};

// `weight_scales` has 1 (per tensor) or `channels` entries.
inline ConvRequantPlan conv_requant_plan(Resolver resolver, ConvKind kind, float input_scale, const float* weight_scales,
                                         std::ptrdiff_t num_weight_scales, std::ptrdiff_t channels,
                                         float output_scale, int32_t output_zero_point, Activation act,
                                         int32_t qmin, int32_t qmax) {
    if (channels < 1) throw std::invalid_argument("a convolution needs at least one output channel");
    if (num_weight_scales != 1 && num_weight_scales != channels)
        throw std::invalid_argument("weight_scales has " + std::to_string(num_weight_scales) +
                                    " entries; expected 1 or one per output channel (" + std::to_string(channels) + ")");
    const bool per_channel = num_weight_scales > 1;
    ConvRequantPlan p;
    p.zero_point = output_zero_point;
    p.clamp = activation_range(resolver, act, output_scale, output_zero_point, qmin, qmax);
    const std::size_t n = std::size_t(channels);
    p.rounding.resize(n);
    p.multiplier.resize(n);
    p.shift.resize(n);
    p.scale.resize(n);
    p.real.resize(n);
    // Channels [0, neon_end) of the optimized depthwise kernel take the NEON (half-up) loop.
    const std::ptrdiff_t neon_end = kind == ConvKind::DepthwiseConv2D ? channels / 8 * 8 : channels;
    for (std::ptrdiff_t c = 0; c < channels; ++c) {
        const float sw = weight_scales[per_channel ? c : 0];
        double real = double(input_scale) * double(sw) / double(output_scale);
        // Per-tensor FULLY_CONNECTED takes the legacy multiplier: the scale product in float.
        if (kind == ConvKind::FullyConnected && !per_channel) real = double(input_scale * sw) / double(output_scale);
        const QuantizedMultiplier qm = quantize_multiplier(real);
        p.multiplier[c] = qm.multiplier;
        p.shift[c] = qm.shift;
        p.real[c] = real;
        p.scale[c] = input_scale * sw / output_scale;  // float, left to right (XNNPACK)
        ConvRounding r = ConvRounding::GemmlowpDouble;
        switch (resolver) {
            case Resolver::Reference:
                r = kind == ConvKind::FullyConnected ? ConvRounding::DoubleRound : ConvRounding::GemmlowpDouble;
                break;
            case Resolver::Optimized:
                r = c < neon_end ? ConvRounding::RuyDoubleHalfUp : ConvRounding::GemmlowpDouble;
                break;
            case Resolver::Xnnpack: r = ConvRounding::Fp32; break;
        }
        p.rounding[c] = int32_t(r);
    }
    return p;
}

// TFLite reference FULLY_CONNECTED's requantization with float scales: the int32 accumulator times
// the double multiplier, rounded half away from zero (std::round) and cast to int32 (out of range:
// x86 gives INT32_MIN), then + zero point (int32, wrapping) and the activation clamp.
template <class Out>
inline void requantize_double_round(const int32_t* acc, std::ptrdiff_t rows, std::ptrdiff_t channels,
                                    const double* real, int32_t zero_point, Range clamp, Out* out) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
        const int32_t* a = acc + r * channels;
        Out* o = out + r * channels;
        for (std::ptrdiff_t c = 0; c < channels; ++c) {
            const double y = double(a[c]) * real[c];
            // round_small_double is exact for |y| < 2^51; beyond 2^31 the cast is x86's INT32_MIN.
            const int32_t q = std::fabs(y) < 2147483648.0 ? int32_t(round_small_double<Rounding::Round>(y)) : INT32_MIN;
            const int32_t v = wrap_add(q, zero_point);
            o[c] = Out(std::min(std::max(v, clamp.lo), clamp.hi));
        }
    }
}

}  // namespace litert
}  // namespace fxp
