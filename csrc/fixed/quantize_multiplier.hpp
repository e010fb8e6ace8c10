// TFLite's QuantizeMultiplier (tensorflow/lite/kernels/internal/quantization_util.cc): a real
// multiplier m >= 0 as a Q0.31 integer and an exponent, m ~= multiplier * 2^(shift - 31). frexp of the
// double, the fraction rounded half away from zero to 31 bits (exact: a double has 53), a carry to 2^31
// renormalised, exponents below -31 flushed to (0, 0). Used by every TFLite-style requantizer.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fxp {

struct QuantizedMultiplier {
    int32_t multiplier;  // Q0.31, in [2^30, 2^31) (0 for a zero or tiny real multiplier)
    int32_t shift;       // exponent: real = multiplier * 2^(shift - 31)
};

inline QuantizedMultiplier quantize_multiplier(double m) {
    if (!(m >= 0.0) || std::isinf(m))
        throw std::invalid_argument("real multiplier must be finite and >= 0, got " + std::to_string(m));
    if (m == 0.0) return {0, 0};
    int shift = 0;
    const double q = std::frexp(m, &shift);
    int64_t q_fixed = int64_t(std::round(q * double(int64_t(1) << 31)));
    if (q_fixed == (int64_t(1) << 31)) {
        q_fixed /= 2;
        ++shift;
    }
    if (shift < -31) return {0, 0};
    if (shift > 30)
        throw std::invalid_argument("real multiplier " + std::to_string(m) + " too large: TFLite exponents are at most 30");
    return {int32_t(q_fixed), int32_t(shift)};
}

}  // namespace fxp
