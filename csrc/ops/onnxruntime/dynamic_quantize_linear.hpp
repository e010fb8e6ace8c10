// ONNX DynamicQuantizeLinear (float32 -> uint8, per tensor, scale and zero point from the data) as ONNX
// Runtime's CPU kernel computes it: providers/cpu/quantization/dynamicquantizelinear.cc, with
// GetQuantizationParameter<uint8_t> and ParQuantizeLinearStd of core/util/qmath.h. The same parameters are
// computed by the com.microsoft DynamicQuantizeMatMul kernel (dynamic_quantize_matmul.cc).
//
//     min, max = the tensor's minimum and maximum (MlasFindMinMaxElement; exact in any order)
//     min = std::min(min, 0.0f);  max = std::max(max, 0.0f)          (the range includes 0)
//     scale = max == min ? 1.0f : (max - min) / 255.0f               (float subtraction, float division)
//     zp = uint8(RoundHalfToEven(std::max(0.0f, std::min(255.0f, 0 - min / scale))))
//     y = MlasQuantizeLinear(x, scale, zp)                            (quantize_linear.hpp)
// RoundHalfToEven is x - remainderf(x, 1) for finite x (rint under the default rounding mode). NaN inputs
// make the minimum and maximum depend on MLAS's lane order: refused (the caller raises).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/onnxruntime/quantize_linear.hpp"

namespace fxp::ort {

// Returns false when x holds a NaN (scale and zp are then unspecified).
inline bool dynamic_quantize_linear_params(const float* x, std::ptrdiff_t n, float& scale, uint8_t& zp) {
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    bool nan = false;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const float v = x[i];
        nan |= v != v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (nan) return false;
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
    scale = hi == lo ? 1.0f : (hi - lo) / float(255 - 0);
    const float initial = float(0) - lo / scale;
    const float clamped = std::max(0.0f, std::min(255.0f, initial));
    const float rounded = std::isfinite(clamped) ? clamped - std::remainder(clamped, 1.0f) : clamped;
    zp = uint8_t(rounded);
    return true;
}

}  // namespace fxp::ort
