// SOFTMAX of int8 rows (the last axis), int8 output with scale 1/256 and zero point -128, per
// resolver. XNNPACK does not take int8 SOFTMAX, so Xnnpack runs the optimized kernel.
//
// Reference (reference_ops::Softmax, activations.cc SoftmaxPrepare): gemmlowp fixed point.
//   d = q - max(row); rows entries with d < diff_min give -128. The rest:
//   x = SRDHM(d * 2^left, M) as Q5.26 (M, left from PreprocessSoftmaxScaling: beta * s_in * 2^26,
//   capped at 2^31 - 1); e = exp_on_negative_values(x) (Q0.31); sum = sum of RDBPOT(e, 12) (Q12.19);
//   1/sum by GetReciprocal; y = RDBPOT(SRDHM(recip, e), bits_over_unit + 23) - 128, clamped.
// Optimized (optimized_ops::Softmax with PopulateSoftmaxLookupTable; TFLITE_SOFTMAX_USE_UINT16_LUT is
//   aarch64-only): t[v] = expf(-s_in * beta * v) in float, sum over the row in order (float),
//   inv = 1 / (sum * s_out), y = int(std::round(t[max - q] * inv)) - 128, clamped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ops/litert/gemmlowp_fixedpoint.hpp"
#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

struct SoftmaxParams {
    int32_t input_multiplier = 0;
    int input_left_shift = 0;
    int diff_min = 0;
    float table[256];  // optimized: table[255 - v] = expf(-s_in * beta * v)
    int32_t exp[256];  // reference: exp_on_negative_values of the rescaled difference -v, Q0.31
    float output_scale = 1.0f / 256.0f;
    int32_t output_zero_point = -128;
};

// SoftmaxPrepare: the output must be int8 with zero point -128 and scale 1/256 (+-0.1 %).
inline SoftmaxParams softmax_params(Resolver r, float beta, float input_scale, float output_scale, int32_t output_zp) {
    if (output_zp != -128 || std::fabs(output_scale - 1.0f / 256.0f) > 0.001f * (1.0f / 256.0f))
        throw std::invalid_argument("SOFTMAX: TFLite requires an int8 output with zero point -128 and scale 1/256");
    SoftmaxParams p;
    p.output_scale = output_scale;
    p.output_zero_point = output_zp;
    if (r == Resolver::Reference) {
        // PreprocessSoftmaxScaling(beta, input_scale, 5) then QuantizeMultiplierGreaterThanOne.
        const double real = std::min(double(beta) * double(input_scale) * double(int64_t(1) << 26),
                                     double((int64_t(1) << 31) - 1));
        if (!(real > 1.0)) throw std::invalid_argument("SOFTMAX: beta * input_scale * 2^26 must exceed 1 (TFLite check)");
        const QuantizedMultiplier q = quantize_multiplier(real);
        p.input_multiplier = q.multiplier;
        p.input_left_shift = q.shift;
        // CalculateInputRadius(5, left_shift): floor(31 * 2^26 / 2^left_shift).
        const double radius = 1.0 * ((1 << 5) - 1) * double(int64_t(1) << 26) / double(int64_t(1) << p.input_left_shift);
        p.diff_min = int(-1.0 * int(std::floor(radius)));
        for (int v = 0; v <= 255; ++v) {  // MultiplyByQuantizedMultiplierGreaterThanOne, then exp
            const int32_t scaled = saturating_rounding_doubling_high_mul(wrap_shl(-v, p.input_left_shift), p.input_multiplier);
            p.exp[v] = gemmlowp::exp_on_negative_values(scaled, 5);
        }
    } else {
        const float scale = -input_scale * beta;
        for (int v = 0; v <= 255; ++v) p.table[255 - v] = std::exp(scale * float(v));
    }
    return p;
}

// One row of `depth` int8 values.
inline void softmax_row(Resolver r, const SoftmaxParams& p, const int8_t* x, std::ptrdiff_t depth, int8_t* y) {
    int32_t max_in_row = -128;
    for (std::ptrdiff_t c = 0; c < depth; ++c) max_in_row = std::max<int32_t>(max_in_row, x[c]);
    if (r != Resolver::Reference) {
        const float* table_offset = &p.table[255 - max_in_row];
        float sum_exp = 0.0f;
        for (std::ptrdiff_t c = 0; c < depth; ++c) sum_exp += table_offset[x[c]];
        const float inv_sum_exp = 1.0f / (sum_exp * p.output_scale);
        for (std::ptrdiff_t c = 0; c < depth; ++c) {
            // int(std::round(prob)) for 0 <= prob <= 256: truncate, then up when the exact rest is >= 1/2.
            const float prob = table_offset[x[c]] * inv_sum_exp;
            const int32_t t = int32_t(prob);
            const int32_t q = t + (prob - float(t) >= 0.5f ? 1 : 0) + p.output_zero_point;
            y[c] = int8_t(std::max(std::min(127, q), -128));
        }
        return;
    }
    // exp of each difference d = q - max in [-255, 0] is p.exp[-d] (computed once per call).
    int32_t sum_of_exps = 0;  // Q12.19
    for (std::ptrdiff_t c = 0; c < depth; ++c) {
        const int32_t d = int32_t(x[c]) - max_in_row;
        if (d >= p.diff_min) sum_of_exps = gemmlowp::add(sum_of_exps, gemmlowp::rescale(p.exp[-d], 0, 12));
    }
    int num_bits_over_unit = 0;
    const int32_t shifted_scale = gemmlowp::get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
    const int exponent = num_bits_over_unit + 31 - 8;
    if (exponent < 0 || exponent > 31) throw std::invalid_argument("SOFTMAX: reciprocal exponent outside [0, 31] (TFLite aborts)");
    for (std::ptrdiff_t c = 0; c < depth; ++c) {
        const int32_t d = int32_t(x[c]) - max_in_row;
        if (d >= p.diff_min) {
            const int32_t e = p.exp[-d];
            const int32_t unsat = rounding_divide_by_pot(gemmlowp::mul(shifted_scale, e), exponent);
            y[c] = int8_t(std::max(std::min(unsat - 128, 127), -128));
        } else {
            y[c] = -128;
        }
    }
}

inline void softmax(Resolver r, const SoftmaxParams& p, const int8_t* x, std::ptrdiff_t rows, std::ptrdiff_t depth, int8_t* y) {
    for (std::ptrdiff_t i = 0; i < rows; ++i) softmax_row(r, p, x + i * depth, depth, y + i * depth);
}

}  // namespace litert
}  // namespace fxp
