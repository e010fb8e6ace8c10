// gemmlowp's fixed-point transcendental functions on scalar int32 raw values (gemmlowp
// fixedpoint/fixedpoint.h), as TFLite's reference quantized SOFTMAX uses them. A FixedPoint<int32,
// I> value is the raw int32 r standing for r * 2^(I - 31); here the integer bits I are an argument.
// Products are SaturatingRoundingDoublingHighMul (kernels/requantize.hpp); sums wrap like int32.
#pragma once

#include <cstdint>

#include "kernels/requantize.hpp"
#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {
namespace gemmlowp {

inline int32_t mul(int32_t a, int32_t b) { return saturating_rounding_doubling_high_mul(a, b); }
inline int32_t add(int32_t a, int32_t b) { return wrap_add(a, b); }
inline int32_t sub(int32_t a, int32_t b) { return int32_t(uint32_t(a) - uint32_t(b)); }

// SaturatingRoundingMultiplyByPOT<e>: a saturating left shift (e > 0) or RoundingDivideByPOT (e < 0).
inline int32_t saturating_rounding_multiply_by_pot(int32_t x, int e) {
    if (e == 0) return x;
    if (e < 0) return rounding_divide_by_pot(x, -e);
    const int32_t threshold = (int32_t(1) << (31 - e)) - 1;
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return wrap_shl(x, e);
}

// Rescale<dst>(x with src integer bits).
inline int32_t rescale(int32_t x, int src_bits, int dst_bits) { return saturating_rounding_multiply_by_pot(x, src_bits - dst_bits); }

// RoundingHalfSum (int32): (a + b) / 2 rounded half away from zero.
inline int32_t rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = int64_t(a) + int64_t(b);
    return int32_t((sum + (sum >= 0 ? 1 : -1)) / 2);
}

constexpr int32_t kOneQ0 = INT32_MAX;  // FixedPoint<int32, 0>::One()

// exp(a) for a in [-1/4, 0), Q0.31 in and out.
inline int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
    const int32_t constant_term = 1895147668;   // exp(-1/8)
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = add(a, int32_t(1) << 28);  // a + 1/8
    const int32_t x2 = mul(x, x);
    const int32_t x3 = mul(x2, x);
    const int32_t x4 = mul(x2, x2);
    const int32_t x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    const int32_t poly = saturating_rounding_multiply_by_pot(add(mul(add(x4_over_4, x3), constant_1_over_3), x2), -1);
    return add(constant_term, mul(constant_term, add(x, poly)));
}

// exp(a) for a <= 0 given with `integer_bits` integer bits; Q0.31 result.
inline int32_t exp_on_negative_values(int32_t a, int integer_bits) {
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = int32_t(1) << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = sub(a & mask, one_quarter);
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0));
    const int32_t remainder = sub(a_mod_quarter_minus_one_quarter, a);
    // Barrel shifter: multiply by exp(-2^e) for each bit of the remainder.
    static const int32_t multipliers[] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int e = -2; e <= 4; ++e) {
        if (integer_bits > e) {
            const int shift = fractional_bits + e;
            if (remainder & (int32_t(1) << shift)) result = mul(result, multipliers[e + 2]);
        }
    }
    if (integer_bits > 5) {
        const int clamp_b = 36 - integer_bits;
        if (a < -(int32_t(1) << clamp_b)) result = 0;
    }
    return a == 0 ? kOneQ0 : result;
}

// 1 / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson in Q2.29).
inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    const int32_t half_denominator = rounding_half_sum(a, kOneQ0);
    const int32_t constant_48_over_17 = 1515870810, constant_neg_32_over_17 = -1010580540;
    const int32_t one_q2 = int32_t(1) << 29;
    int32_t x = add(constant_48_over_17, mul(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mul(half_denominator, x);
        const int32_t one_minus = sub(one_q2, half_denominator_times_x);
        x = add(x, rescale(mul(x, one_minus), 4, 2));
    }
    return rescale(x, 1, 0);  // ExactMulByPot<-1> (Q2 -> Q1), then Rescale<0>
}

inline int count_leading_zeros(uint32_t x) { return x == 0 ? 32 : __builtin_clz(x); }

// TFLite GetReciprocal (common.h): 1 / x for x with `x_integer_digits` integer bits, as a Q0.31
// scale and the number of bits of x above 1.
inline int32_t get_reciprocal(int32_t x, int x_integer_digits, int* num_bits_over_unit) {
    const int headroom_plus_one = count_leading_zeros(uint32_t(x));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const int32_t shifted_sum_minus_one = int32_t((uint32_t(x) << headroom_plus_one) - (uint32_t(1) << 31));
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

}  // namespace gemmlowp
}  // namespace litert
}  // namespace fxp
