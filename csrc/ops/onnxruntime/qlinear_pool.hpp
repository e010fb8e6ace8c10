// com.microsoft QLinearAveragePool and QLinearGlobalAveragePool (u8/s8) as ONNX Runtime's CPU kernels
// compute them.
//
// QLinearAveragePool (contrib_ops/cpu/quantization/qlinear_pool.cc, QLinearPool{1,2,3}DTask and the
// Nhwc tasks): the input is dequantized to float (dequantize_value: x_scale * float(x - zp)), each window
// summed in float over its valid cells in index order (h, then w, then d), divided by the count
// (the kernel size with count_include_pad, else the valid cells), then quantized with
//     q = clamp(trunc_int(nearbyintf(avg / y_scale + float(y_zp))), lo, hi)          (quantize_value)
// A window that covers the whole image without padding falls back to the global pool below.
//
// QLinearGlobalAveragePool (qlinear_global_average_pool.cc -> MLAS qlgavgpool.cpp,
// MlasQLinearGlobalAveragePoolNchw/Nhwc): an exact int32 sum of (x - x_zp) per channel, then the fp32
// requantizer (MlasRequantizeOutput) with scale = x_scale / (y_scale * float(image_size)):
//     q = cvtps(clamp(float(sum) * scale, lo - y_zp, hi - y_zp)) + y_zp
// MLAS rejects image_size >= 2^24 and scales outside [2^-32, 256) ("parameter out of computation range").
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/requantize.hpp"
#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

struct PoolGeometry {
    int dims = 2;                                   // spatial dimensions, 1..3
    std::array<std::ptrdiff_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1}, pad{0, 0, 0};
    std::ptrdiff_t batch = 1, channels = 1;
    bool count_include_pad = false;
    bool channels_last = false;
    std::ptrdiff_t in_size() const { return in[0] * in[1] * in[2]; }
    std::ptrdiff_t out_size() const { return out[0] * out[1] * out[2]; }
    std::ptrdiff_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// quantize_value of qlinear_pool.cc
template <class Q>
FXP_ORT_LANE Q pool_quantize_value(float y, float y_scale, int32_t y_zp) {
    const int32_t v = cvttps_epi32(std::nearbyint(y / y_scale + float(y_zp)));
    constexpr int32_t lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
    return Q(std::max(lo, std::min(v, hi)));
}

template <class Q>
void qlinear_average_pool(const Q* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp, const PoolGeometry& g,
                          Q* y) {
    float lut[256];
    for (int i = 0; i < 256; ++i) lut[i] = x_scale * float(int32_t(Q(uint8_t(i))) - x_zp);
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x);
    const std::ptrdiff_t in_size = g.in_size(), out_size = g.out_size(), C = g.channels;
    std::vector<float> acc(static_cast<size_t>(C), 0.0f);
    for (std::ptrdiff_t n = 0; n < g.batch; ++n)
        for (std::ptrdiff_t o0 = 0; o0 < g.out[0]; ++o0)
            for (std::ptrdiff_t o1 = 0; o1 < g.out[1]; ++o1)
                for (std::ptrdiff_t o2 = 0; o2 < g.out[2]; ++o2) {
                    std::array<std::ptrdiff_t, 3> lo{}, hi{};
                    const std::array<std::ptrdiff_t, 3> o{o0, o1, o2};
                    std::ptrdiff_t valid = 1;
                    for (int d = 0; d < 3; ++d) {
                        const std::ptrdiff_t start = o[size_t(d)] * g.stride[size_t(d)] - g.pad[size_t(d)];
                        hi[size_t(d)] = std::min(start + g.kernel[size_t(d)], g.in[size_t(d)]);
                        lo[size_t(d)] = std::max<std::ptrdiff_t>(start, 0);
                        valid *= hi[size_t(d)] - lo[size_t(d)];
                    }
                    const float count = float(g.count_include_pad ? g.kernel_size() : valid);
                    const std::ptrdiff_t opos = (o0 * g.out[1] + o1) * g.out[2] + o2;
                    std::fill(acc.begin(), acc.end(), 0.0f);
                    for (std::ptrdiff_t i0 = lo[0]; i0 < hi[0]; ++i0)
                        for (std::ptrdiff_t i1 = lo[1]; i1 < hi[1]; ++i1)
                            for (std::ptrdiff_t i2 = lo[2]; i2 < hi[2]; ++i2) {
                                const std::ptrdiff_t ipos = (i0 * g.in[1] + i1) * g.in[2] + i2;
                                if (g.channels_last) {
                                    const uint8_t* px = xb + (n * in_size + ipos) * C;
                                    for (std::ptrdiff_t c = 0; c < C; ++c) acc[size_t(c)] += lut[px[c]];
                                } else {
                                    for (std::ptrdiff_t c = 0; c < C; ++c) acc[size_t(c)] += lut[xb[(n * C + c) * in_size + ipos]];
                                }
                            }
                    for (std::ptrdiff_t c = 0; c < C; ++c) {
                        const Q q = pool_quantize_value<Q>(acc[size_t(c)] / count, y_scale, y_zp);
                        if (g.channels_last) y[(n * out_size + opos) * C + c] = q;
                        else y[(n * C + c) * out_size + opos] = q;
                    }
                }
}

// ---- global average pool (MLAS integer path) ---------------------------------------------------------

inline float qlinear_global_average_pool_scale(float x_scale, float y_scale, std::ptrdiff_t image_size) {
    if (image_size >= 0x1000000) throw std::invalid_argument("QLinearGlobalAveragePool image size too large (>= 2^24), as ORT rejects it");
    const float scale = x_scale / (y_scale * float(image_size));
    if (!(scale >= 0x1.0p-32f && scale < 256.0f))
        throw std::invalid_argument("QLinearGlobalAveragePool scale x_scale / (y_scale * image_size) outside [2^-32, 256): "
                                    "ORT rejects it as out of computation range");
    return scale;
}

// x as [batch, channels, image] (or [batch, image, channels] when channels_last); y as [batch, channels].
template <class Q>
void qlinear_global_average_pool(const Q* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                                 std::ptrdiff_t batch, std::ptrdiff_t channels, std::ptrdiff_t image, bool channels_last,
                                 Q* y) {
    const float scale = qlinear_global_average_pool_scale(x_scale, y_scale, image);
    // int32 sums with the bias -x_zp * image, wrapping as MLAS's int32 lanes do
    std::vector<int32_t> sums(size_t(batch * channels));
    const uint32_t bias = uint32_t(-x_zp) * uint32_t(image);
    for (std::ptrdiff_t n = 0; n < batch; ++n)
        for (std::ptrdiff_t c = 0; c < channels; ++c) {
            uint32_t s = bias;
            if (channels_last)
                for (std::ptrdiff_t i = 0; i < image; ++i) s += uint32_t(int32_t(x[(n * image + i) * channels + c]));
            else
                for (std::ptrdiff_t i = 0; i < image; ++i) s += uint32_t(int32_t(x[(n * channels + c) * image + i]));
            sums[size_t(n * channels + c)] = int32_t(s);
        }
    Requantizer rq;
    rq.mode = RequantMode::MlasFp32;
    rq.out_type = std::is_signed<Q>::value ? OutType::Int8 : OutType::UInt8;
    rq.scale = &scale;
    rq.zero_point = y_zp;
    rq.clamp_lo = std::numeric_limits<Q>::min();
    rq.clamp_hi = std::numeric_limits<Q>::max();
    rq.apply_channel(sums.data(), std::ptrdiff_t(sums.size()), 0, y);
}

}  // namespace fxp::ort
