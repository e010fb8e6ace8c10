// The 256-entry tables of ONNX Runtime's table-driven quantized operators, and their use.
//
// contrib_ops/cpu/quantization/qlinear_lookup_table.cc (QlinearBuildLookupTable): for every byte i,
//     x[i] = x_scale * float(int(T(i)) - int(x_zero_point))            (T(i): the byte read as u8 or s8)
//     y[i] = f(x[i])                                                    (float32)
//     table[i] = MlasQuantizeLinear(y[i], y_scale, y_zero_point)       (quantize_linear.hpp)
// and the op is table[byte of x] (QLinearLookupTableTransform). f is
//     QLinearLeakyRelu   v >= 0 ? v : alpha * v                         (qlinear_activations.cc)
//     QLinearSigmoid     MlasComputeLogistic on the 256 values          (mlas_transcendental.hpp)
//     QLinearConcat      identity, or a plain copy when an input's scale and zero point equal the
//                        output's (qlinear_concat.cc, has_same_scale: exact float equality)
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/onnxruntime/lanes.hpp"
#include "ops/onnxruntime/mlas_transcendental.hpp"
#include "ops/onnxruntime/quantize_linear.hpp"

namespace fxp::ort {

enum class TableFunction : int { Identity = 0, LeakyRelu = 1, Sigmoid = 2 };

// The 256 dequantized inputs, indexed by the raw byte.
template <class Q>
void lookup_table_inputs(float x_scale, int32_t x_zero_point, float* x) {
    for (int i = 0; i < 256; ++i) x[i] = x_scale * float(int32_t(Q(uint8_t(i))) - x_zero_point);
}

// table[byte] = the quantized f(dequantized byte); table is 256 bytes, read as Q.
template <class Q>
void build_lookup_table(TableFunction f, float alpha, float x_scale, int32_t x_zero_point, float y_scale,
                        int32_t y_zero_point, Q* table) {
    float x[256], y[256];
    lookup_table_inputs<Q>(x_scale, x_zero_point, x);
    switch (f) {
        case TableFunction::Identity:
            std::memcpy(y, x, sizeof(x));
            break;
        case TableFunction::LeakyRelu:
            for (int i = 0; i < 256; ++i) y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
            break;
        case TableFunction::Sigmoid:
            // the FMA3 kernel's 8-wide loop covers all 256 values; its scalar form gives the same bits
            for (int i = 0; i < 256; ++i) y[i] = logistic_lane(x[i]);
            break;
    }
    const QuantizeLinearParams<Q> p(y_scale, y_zero_point);
    for (int i = 0; i < 256; ++i) table[i] = quantize_linear_value(y[i], p);
}

// y[i] = table[byte of x[i]]
template <class Q>
void apply_lookup_table(const Q* x, const Q* table, Q* y, std::ptrdiff_t n) {
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    const uint8_t* t = reinterpret_cast<const uint8_t*>(table);
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {   // 8 lookups gathered into one 64-bit store
        uint64_t v;
        std::memcpy(&v, xb + i, 8);
        uint64_t r = 0;
        for (int j = 0; j < 8; ++j) r |= uint64_t(t[(v >> (8 * j)) & 0xFF]) << (8 * j);
        std::memcpy(reinterpret_cast<uint8_t*>(y) + i, &r, 8);
    }
    for (; i < n; ++i) y[i] = table[xb[i]];
}

// QLinearConcat: each input [outer, axis_i * inner] placed at its offset of every output row
// [outer, sum(axis_i) * inner], through its table or copied.
template <class Q>
void qlinear_concat_part(const Q* x, std::ptrdiff_t outer, std::ptrdiff_t pitch, const Q* table, bool copy, Q* y,
                         std::ptrdiff_t out_pitch) {
    for (std::ptrdiff_t o = 0; o < outer; ++o) {
        if (copy) std::memcpy(y + o * out_pitch, x + o * pitch, size_t(pitch) * sizeof(Q));
        else apply_lookup_table(x + o * pitch, table, y + o * out_pitch, pitch);
    }
}

}  // namespace fxp::ort
