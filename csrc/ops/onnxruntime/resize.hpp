// ONNX Runtime's CPU Resize (opset 10..19, no antialias) on float32, uint8 and int8, as
// core/providers/cpu/tensor/upsample.cc, upsample.h and upsamplebase.h compute it:
//   * output size  int64(scale * float(in)); scales from sizes  float(out) / float(in)
//   * coordinates  per axis in float (half_pixel ((x + 0.5f) / s) - 0.5f, asymmetric x / s, ...),
//                  an axis with scale == 1 maps x -> x; all dims unchanged -> plain copy
//   * nearest      index = nearest_mode(coordinate) clamped to [0, len-1] (data movement only)
//   * linear       4-term weights (dx2*dy2)*X11 + (dx1*dy2)*X21 + (dx2*dy1)*X12 + (dx1*dy1)*X22 in float,
//                  truncated to T (UpsampleBilinear, NCHW and 2-D); NHWC uint8/int8 uses 10-bit integer
//                  weights and an int32 division by 2^20 (NhwcUpsampleBilinearInteger); 3-D/5-D trilinear
//   * cubic        float only, Keys coefficients with ORT's per-channel 1-D interpolation cache
// Everything is scalar float code (compiled without FP contraction), so results do not depend on the ISA.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace fxp::ort {

enum class ResizeMode : int { Nearest = 0, Linear = 1, Cubic = 2 };
enum class ResizeCoord : int {
    HalfPixel = 0,
    Asymmetric = 1,
    PytorchHalfPixel = 2,
    TfHalfPixelForNN = 3,
    AlignCorners = 4,
    TfCropAndResize = 5,
    HalfPixelSymmetric = 6,
};
// Simple is opset 10's rule (ceil when downsampling, else truncation).
enum class ResizeNearest : int { RoundPreferFloor = 0, RoundPreferCeil = 1, Floor = 2, Ceil = 3, Simple = 4 };

struct ResizeSpec {
    ResizeMode mode = ResizeMode::Nearest;
    ResizeCoord coord = ResizeCoord::HalfPixel;
    ResizeNearest nearest = ResizeNearest::RoundPreferFloor;
    float cubic_coeff_a = -0.75f;
    bool exclude_outside = false;
    float extrapolation_value = 0.0f;  // used by tf_crop_and_resize only
};

// UpsampleBase::GetOriginalCoordinateFromResizedCoordinate: the input coordinate of output index x.
inline float resize_original_coordinate(ResizeCoord mode, float x, float scale, float len_resized,
                                        float len_original, float roi_start, float roi_end) {
    switch (mode) {
        case ResizeCoord::Asymmetric: return x / scale;
        case ResizeCoord::PytorchHalfPixel: return len_resized > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
        case ResizeCoord::TfHalfPixelForNN: return (x + 0.5f) / scale;
        case ResizeCoord::AlignCorners:
            return len_resized == 1 ? 0.0f : x * (len_original - 1) / (len_resized - 1);
        case ResizeCoord::TfCropAndResize: {
            // The two branches have types float and double; the conditional is double.
            const double orig =
                len_resized > 1
                    ? double(roi_start * (len_original - 1) +
                             (x * (roi_end - roi_start) * (len_original - 1)) / (len_resized - 1))
                    : 0.5 * double(roi_start + roi_end) * double(len_original - 1);
            return static_cast<float>(orig);
        }
        case ResizeCoord::HalfPixelSymmetric: {
            const float output_width = scale * len_original;
            const float adjustment = len_resized / output_width;
            const float center = len_original / 2;
            const float offset = center * (1 - adjustment);
            const double orig = double(offset) + (double(x) + 0.5) / double(scale) - 0.5;
            return static_cast<float>(orig);
        }
        default: return ((x + 0.5f) / scale) - 0.5f;
    }
}

// UpsampleBase::GetNearestPixelFromOriginal.
inline int64_t resize_nearest_pixel(ResizeNearest mode, float x, bool downsample) {
    switch (mode) {
        case ResizeNearest::Simple: return downsample ? int64_t(std::ceil(x)) : int64_t(x);
        case ResizeNearest::RoundPreferCeil: return int64_t(std::round(x));
        case ResizeNearest::Floor: return int64_t(std::floor(x));
        case ResizeNearest::Ceil: return int64_t(std::ceil(x));
        default:
            if (x == float(int64_t(x)) + 0.5f) return int64_t(std::floor(x));
            return int64_t(std::round(x));
    }
}

// static_cast<T>(float) as GCC emits it on x86-64 for 8-bit T: cvttss2si to int32 (out of range or
// NaN -> INT32_MIN), then the low byte. Identity for float.
template <class T>
inline T resize_cast(float v) {
    if constexpr (std::is_same_v<T, float>) {
        return v;
    } else {
        int32_t i = INT32_MIN;
        if (v > -2147483904.0f && v < 2147483648.0f) i = int32_t(v);
        return static_cast<T>(static_cast<uint32_t>(i) & 0xffu);
    }
}

// ComputeOutputShape: int64(scale * float(in)).
inline std::vector<int64_t> resize_output_dims(const std::vector<int64_t>& in, const std::vector<float>& scales) {
    std::vector<int64_t> out(in.size());
    for (size_t i = 0; i < in.size(); ++i) out[i] = static_cast<int64_t>(scales[i] * float(in[i]));
    return out;
}

// ParseScalesDataFromOutputSize: float(out) / float(in), 1 for an empty axis.
inline std::vector<float> resize_scales_from_sizes(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
    std::vector<float> s(in.size());
    for (size_t i = 0; i < in.size(); ++i) s[i] = in[i] == 0 ? 1.0f : float(out[i]) / float(in[i]);
    return s;
}

// UpsampleBase::ScalesValidation for Resize (opset >= 10), without antialias.
inline void resize_validate(const std::vector<float>& s, ResizeMode mode) {
    for (float v : s)
        if (!(v > 0)) throw std::invalid_argument("Resize: scale values must be greater than 0");
    const size_t r = s.size();
    if (mode == ResizeMode::Linear) {
        const bool ok = r == 2 || r == 3 || (r == 4 && s[0] == 1 && s[1] == 1) || (r == 4 && s[0] == 1 && s[3] == 1) ||
                        (r == 5 && s[0] == 1 && s[1] == 1);
        if (!ok)
            throw std::invalid_argument(
                "Resize: linear mode supports 2-D, 3-D, 4-D with scales[0] == scales[1] == 1 or "
                "scales[0] == scales[3] == 1, and 5-D with scales[0] == scales[1] == 1");
    } else if (mode == ResizeMode::Cubic) {
        if (!(r == 2 || (r == 4 && s[0] == 1 && s[1] == 1)))
            throw std::invalid_argument("Resize: cubic mode supports 2-D or 4-D inputs with scales[0] == scales[1] == 1");
    }
}

// ---- nearest ------------------------------------------------------------------------------------------

// UpsampleNearestSetupInputMappings: per output index, the input offset (index * stride), or a negative
// number (minus the input size) where tf_crop_and_resize extrapolates.
inline std::vector<std::vector<int64_t>> resize_nearest_mappings(const std::vector<int64_t>& in,
                                                                 const std::vector<int64_t>& out,
                                                                 const std::vector<float>& scales,
                                                                 const std::vector<float>& roi,
                                                                 const ResizeSpec& spec) {
    const size_t r = in.size();
    std::vector<int64_t> stride(r, 1);
    for (size_t i = r - 1; i > 0; --i) stride[i - 1] = stride[i] * in[i];
    const int64_t input_size = stride[0] * in[0];
    const bool extrapolate = spec.coord == ResizeCoord::TfCropAndResize;
    std::vector<std::vector<int64_t>> maps(r);
    for (size_t a = 0; a < r; ++a) {
        maps[a].resize(size_t(out[a]));
        if (scales[a] == 1.0f && r > 1) {
            for (int64_t o = 0; o < out[a]; ++o) maps[a][o] = o * stride[a];
            continue;
        }
        for (int64_t o = 0; o < out[a]; ++o) {
            const float orig = resize_original_coordinate(spec.coord, float(o), scales[a], float(out[a]), float(in[a]),
                                                          roi[a], roi[r + a]);
            const bool outside = extrapolate && (orig < 0 || orig > float(in[a] - 1));
            int64_t idx = resize_nearest_pixel(spec.nearest, orig, scales[a] < 1);
            if (idx > in[a] - 1) idx = in[a] - 1;
            if (idx < 0) idx = 0;
            maps[a][o] = outside ? -input_size : idx * stride[a];
        }
    }
    return maps;
}

template <class T>
void resize_nearest(const T* x, T* y, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                    const std::vector<float>& scales, const std::vector<float>& roi, const ResizeSpec& spec) {
    const auto maps = resize_nearest_mappings(in, out, scales, roi, spec);
    const size_t r = in.size();
    const T fill = resize_cast<T>(spec.extrapolation_value);
    const std::vector<int64_t>& last = maps[r - 1];
    const int64_t width = out[r - 1];
    int64_t rows = 1;
    for (size_t a = 0; a + 1 < r; ++a) rows *= out[a];
    std::vector<int64_t> counter(r, 0);
    for (int64_t row = 0; row < rows; ++row, y += width) {
        int64_t base = 0;
        for (size_t a = 0; a + 1 < r; ++a) base += maps[a][size_t(counter[a])];
        for (int64_t o = 0; o < width; ++o) {
            const int64_t idx = base + last[size_t(o)];
            y[o] = idx < 0 ? fill : x[idx];
        }
        for (size_t a = r - 1; a-- > 0;) {
            if (++counter[a] < out[a]) break;
            counter[a] = 0;
        }
    }
}

// ---- linear -------------------------------------------------------------------------------------------

// One axis of SetupUpsampleBilinear / SetupUpsampleTrilinear: the two neighbours, their float weights
// (0.5 each when they coincide) and the unclamped coordinate for the extrapolation test.
struct ResizeLinearAxis {
    std::vector<int64_t> i1, i2;
    std::vector<float> d1, d2, original;
    std::vector<int32_t> d1_s10, d2_s10;  // SetupUpsampleBilinearInteger's 10-bit weights
};

inline ResizeLinearAxis resize_linear_axis(int64_t len_in, int64_t len_out, float scale, float roi_start,
                                           float roi_end, ResizeCoord coord) {
    ResizeLinearAxis p;
    const size_t n = size_t(len_out);
    p.i1.resize(n), p.i2.resize(n), p.d1.resize(n), p.d2.resize(n), p.original.resize(n);
    p.d1_s10.resize(n), p.d2_s10.resize(n);
    for (int64_t o = 0; o < len_out; ++o) {
        float v = scale == 1 ? float(o)
                             : resize_original_coordinate(coord, float(o), scale, float(len_out), float(len_in),
                                                          roi_start, roi_end);
        p.original[o] = v;
        v = std::max(0.0f, std::min(v, float(len_in - 1)));
        const int32_t v_s10 = static_cast<int32_t>(v * (1 << 10));
        const int64_t a = std::min(static_cast<int64_t>(v), len_in - 1);
        const int64_t b = std::min(a + 1, len_in - 1);
        p.i1[o] = a, p.i2[o] = b;
        p.d1[o] = std::fabs(v - float(a));
        p.d2[o] = std::fabs(v - float(b));
        p.d1_s10[o] = std::abs(v_s10 - int32_t(a) * (1 << 10));
        p.d2_s10[o] = std::abs(v_s10 - int32_t(b) * (1 << 10));
        if (a == b) {
            p.d1[o] = p.d2[o] = 0.5f;
            p.d1_s10[o] = p.d2_s10[o] = 512;
        }
    }
    return p;
}

inline bool resize_outside(float original, int64_t len_in) { return original < 0 || original > float(len_in - 1); }

// UpsampleBilinear (NCHW planes, and 2-D inputs as one plane).
template <class T>
void resize_bilinear_planes(const T* x, T* y, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                            int64_t out_w, const ResizeLinearAxis& py, const ResizeLinearAxis& px, bool extrapolate,
                            float extrapolation_value) {
    const T fill = resize_cast<T>(extrapolation_value);
    for (int64_t c = 0; c < planes; ++c, x += in_h * in_w, y += out_h * out_w) {
        for (int64_t oy = 0; oy < out_h; ++oy) {
            const T* r1 = x + py.i1[oy] * in_w;
            const T* r2 = x + py.i2[oy] * in_w;
            const float dy1 = py.d1[oy], dy2 = py.d2[oy];
            const bool row_out = extrapolate && resize_outside(py.original[oy], in_h);
            T* yo = y + oy * out_w;
            for (int64_t ox = 0; ox < out_w; ++ox) {
                if (extrapolate && (row_out || resize_outside(px.original[ox], in_w))) {
                    yo[ox] = fill;
                    continue;
                }
                const float dx1 = px.d1[ox], dx2 = px.d2[ox];
                const int64_t a = px.i1[ox], b = px.i2[ox];
                const float v = dx2 * dy2 * float(r1[a]) + dx1 * dy2 * float(r1[b]) + dx2 * dy1 * float(r2[a]) +
                                dx1 * dy1 * float(r2[b]);
                yo[ox] = resize_cast<T>(v);
            }
        }
    }
}

// NhwcUpsampleBilinear (float) and NhwcUpsampleBilinearInteger (uint8/int8: 20-bit integer weights,
// sum / 2^20 truncated toward zero).
template <class T>
void resize_bilinear_nhwc(const T* x, T* y, int64_t batch, int64_t channels, int64_t in_h, int64_t in_w,
                          int64_t out_h, int64_t out_w, const ResizeLinearAxis& py, const ResizeLinearAxis& px,
                          bool extrapolate, float extrapolation_value) {
    const T fill = resize_cast<T>(extrapolation_value);
    for (int64_t n = 0; n < batch; ++n, x += in_h * in_w * channels) {
        for (int64_t oy = 0; oy < out_h; ++oy) {
            for (int64_t ox = 0; ox < out_w; ++ox, y += channels) {
                if (extrapolate && (resize_outside(py.original[oy], in_h) || resize_outside(px.original[ox], in_w))) {
                    for (int64_t c = 0; c < channels; ++c) y[c] = fill;
                    continue;
                }
                const T* x11 = x + (py.i1[oy] * in_w + px.i1[ox]) * channels;
                const T* x21 = x + (py.i1[oy] * in_w + px.i2[ox]) * channels;
                const T* x12 = x + (py.i2[oy] * in_w + px.i1[ox]) * channels;
                const T* x22 = x + (py.i2[oy] * in_w + px.i2[ox]) * channels;
                if constexpr (std::is_same_v<T, float>) {
                    const float c11 = px.d2[ox] * py.d2[oy], c21 = px.d1[ox] * py.d2[oy];
                    const float c12 = px.d2[ox] * py.d1[oy], c22 = px.d1[ox] * py.d1[oy];
                    for (int64_t c = 0; c < channels; ++c)
                        y[c] = c11 * x11[c] + c21 * x21[c] + c12 * x12[c] + c22 * x22[c];
                } else {
                    const int32_t c11 = px.d2_s10[ox] * py.d2_s10[oy], c21 = px.d1_s10[ox] * py.d2_s10[oy];
                    const int32_t c12 = px.d2_s10[ox] * py.d1_s10[oy], c22 = px.d1_s10[ox] * py.d1_s10[oy];
                    for (int64_t c = 0; c < channels; ++c)
                        y[c] = T((c11 * int32_t(x11[c]) + c21 * int32_t(x21[c]) + c12 * int32_t(x12[c]) +
                                  c22 * int32_t(x22[c])) /
                                 (1 << 20));
                }
            }
        }
    }
}

// UpsampleTrilinear (5-D NCDHW volumes, and 3-D inputs as one volume).
template <class T>
void resize_trilinear_volumes(const T* x, T* y, int64_t volumes, const int64_t* in, const int64_t* out,
                              const ResizeLinearAxis& pz, const ResizeLinearAxis& py, const ResizeLinearAxis& px,
                              bool extrapolate, float extrapolation_value) {
    const T fill = resize_cast<T>(extrapolation_value);
    const int64_t in_hw = in[1] * in[2], in_w = in[2];
    for (int64_t v = 0; v < volumes; ++v, x += in[0] * in_hw) {
        for (int64_t oz = 0; oz < out[0]; ++oz)
            for (int64_t oy = 0; oy < out[1]; ++oy)
                for (int64_t ox = 0; ox < out[2]; ++ox, ++y) {
                    if (extrapolate && (resize_outside(pz.original[oz], in[0]) ||
                                        resize_outside(py.original[oy], in[1]) ||
                                        resize_outside(px.original[ox], in[2]))) {
                        *y = fill;
                        continue;
                    }
                    const int64_t z1 = pz.i1[oz] * in_hw, z2 = pz.i2[oz] * in_hw;
                    const int64_t y1 = py.i1[oy] * in_w, y2 = py.i2[oy] * in_w;
                    const int64_t x1 = px.i1[ox], x2 = px.i2[ox];
                    const float dx1 = px.d1[ox], dx2 = px.d2[ox], dy1 = py.d1[oy], dy2 = py.d2[oy];
                    const float dz1 = pz.d1[oz], dz2 = pz.d2[oz];
                    const float r = dx2 * dy2 * dz2 * float(x[z1 + y1 + x1]) + dx1 * dy2 * dz2 * float(x[z1 + y1 + x2]) +
                                    dx2 * dy1 * dz2 * float(x[z1 + y2 + x1]) + dx1 * dy1 * dz2 * float(x[z1 + y2 + x2]) +
                                    dx2 * dy2 * dz1 * float(x[z2 + y1 + x1]) + dx1 * dy2 * dz1 * float(x[z2 + y1 + x2]) +
                                    dx2 * dy1 * dz1 * float(x[z2 + y2 + x1]) + dx1 * dy1 * dz1 * float(x[z2 + y2 + x2]);
                    *y = resize_cast<T>(r);
                }
    }
}

// ---- cubic (float) ------------------------------------------------------------------------------------

// GetCubicCoeffs: Keys' kernel at distances 1+s, s, 1-s, 2-s, in float.
inline std::array<float, 4> resize_cubic_coeffs(float s, float a) {
    const float t = std::abs(s);
    std::array<float, 4> c;
    c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
    c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
    return c;
}

// ResizeBiCubic, including its per-channel cache of 1-D interpolations keyed by (fraction, y * W + x - 1):
// the key is not unique at the left/right borders, and ORT reuses whatever it cached first.
inline void resize_bicubic_planes(const float* x, float* y, int64_t planes, int64_t in_h, int64_t in_w,
                                  int64_t out_h, int64_t out_w, float scale_h, float scale_w,
                                  const std::vector<float>& roi_h, const std::vector<float>& roi_w,
                                  const ResizeSpec& spec) {
    const bool extrapolate = spec.coord == ResizeCoord::TfCropAndResize;
    std::vector<float> yo(static_cast<size_t>(out_h)), xo(static_cast<size_t>(out_w));
    std::unordered_map<float, std::array<float, 4>> coeffs;
    for (int64_t o = 0; o < out_h; ++o) {
        yo[o] = scale_h == 1 ? float(o)
                             : resize_original_coordinate(spec.coord, float(o), scale_h, float(out_h), float(in_h),
                                                          roi_h[0], roi_h[1]);
        const float s = yo[o] - std::floor(yo[o]);
        if (!coeffs.count(s)) coeffs[s] = resize_cubic_coeffs(s, spec.cubic_coeff_a);
    }
    for (int64_t o = 0; o < out_w; ++o) {
        xo[o] = scale_w == 1 ? float(o)
                             : resize_original_coordinate(spec.coord, float(o), scale_w, float(out_w), float(in_w),
                                                          roi_w[0], roi_w[1]);
        const float s = xo[o] - std::floor(xo[o]);
        if (!coeffs.count(s)) coeffs[s] = resize_cubic_coeffs(s, spec.cubic_coeff_a);
    }
    auto at = [&](const float* plane, int64_t cx, int64_t cy) {
        cx = std::max<int64_t>(0, std::min(cx, in_w - 1));
        cy = std::max<int64_t>(0, std::min(cy, in_h - 1));
        return plane[cy * in_w + cx];
    };
    std::unordered_map<float, std::unordered_map<int64_t, float>> cache;
    for (int64_t p = 0; p < planes; ++p, x += in_h * in_w, y += out_h * out_w) {
        cache.clear();
        for (int64_t oy = 0; oy < out_h; ++oy) {
            const float in_y = yo[oy];
            if (extrapolate && resize_outside(in_y, in_h)) {
                for (int64_t ox = 0; ox < out_w; ++ox) y[oy * out_w + ox] = spec.extrapolation_value;
                continue;
            }
            const int64_t y_int = int64_t(std::floor(in_y));
            std::array<float, 4> cy = coeffs[in_y - float(y_int)];
            float cy_sum = 1;
            if (spec.exclude_outside) {
                cy_sum = 0;
                for (int i = 0; i < 4; ++i) {
                    const int64_t v = y_int - 1 + i;
                    if (v < 0 || float(v) >= float(in_h)) cy[size_t(i)] = 0.0f;
                    cy_sum += cy[size_t(i)];
                }
            }
            for (int64_t ox = 0; ox < out_w; ++ox) {
                const float in_x = xo[ox];
                if (extrapolate && resize_outside(in_x, in_w)) {
                    y[oy * out_w + ox] = spec.extrapolation_value;
                    continue;
                }
                const int64_t x_int = int64_t(std::floor(in_x));
                const float s_x = float(in_x - float(x_int));
                std::array<float, 4> cx = coeffs[s_x];
                float cx_sum = 1;
                if (spec.exclude_outside) {
                    cx_sum = 0;
                    for (int i = 0; i < 4; ++i) {
                        const int64_t v = x_int - 1 + i;
                        if (v < 0 || float(v) >= float(in_w)) cx[size_t(i)] = 0.0f;
                        cx_sum += cx[size_t(i)];
                    }
                }
                auto& row_cache = cache[s_x];
                float result = 0;
                for (int i = 0; i < 4; ++i) {
                    const int64_t yv = y_int - 1 + i;
                    const int64_t key = yv * in_w + (x_int - 1);
                    float h;
                    auto it = row_cache.find(key);
                    if (it != row_cache.end()) {
                        h = it->second;
                    } else {
                        h = 0;
                        for (int j = 0; j < 4; ++j) h += cx[size_t(j)] / cx_sum * at(x, x_int - 1 + j, yv);
                        row_cache[key] = h;
                    }
                    result += h * cy[size_t(i)] / cy_sum;
                }
                y[oy * out_w + ox] = result;
            }
        }
    }
}

// ---- dispatch (Upsample<T>::BaseCompute) --------------------------------------------------------------

template <class T>
void resize(const T* x, T* y, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
            const std::vector<float>& scales, const std::vector<float>& roi, const ResizeSpec& spec) {
    const size_t r = in.size();
    if (r == 0 || out.size() != r || scales.size() != r || roi.size() != 2 * r)
        throw std::invalid_argument("Resize: rank mismatch between input, output, scales and roi");
    int64_t out_size = 1, in_size = 1;
    for (size_t i = 0; i < r; ++i) out_size *= out[i], in_size *= in[i];
    if (out_size == 0) return;
    if (in == out) {
        std::memcpy(y, x, size_t(in_size) * sizeof(T));
        return;
    }
    if (in_size == 0) throw std::invalid_argument("Resize: empty input with a non-empty output");
    const bool extrapolate = spec.coord == ResizeCoord::TfCropAndResize;
    auto axis = [&](size_t a) {
        return resize_linear_axis(in[a], out[a], scales[a], roi[a], roi[r + a], spec.coord);
    };
    switch (spec.mode) {
        case ResizeMode::Nearest: resize_nearest(x, y, in, out, scales, roi, spec); return;
        case ResizeMode::Linear:
            if (r == 2 || r == 4) {
                const size_t h = r == 2 ? 0 : (scales[1] == 1.0f ? 2 : 1);
                if (r == 2 || scales[1] == 1.0f) {
                    const int64_t planes = r == 2 ? 1 : in[0] * in[1];
                    resize_bilinear_planes(x, y, planes, in[h], in[h + 1], out[h], out[h + 1], axis(h), axis(h + 1),
                                           extrapolate, spec.extrapolation_value);
                } else {
                    resize_bilinear_nhwc(x, y, in[0], in[3], in[1], in[2], out[1], out[2], axis(1), axis(2),
                                         extrapolate, spec.extrapolation_value);
                }
            } else {
                const size_t d = r == 3 ? 0 : 2;
                const int64_t volumes = r == 3 ? 1 : in[0] * in[1];
                resize_trilinear_volumes(x, y, volumes, in.data() + d, out.data() + d, axis(d), axis(d + 1),
                                         axis(d + 2), extrapolate, spec.extrapolation_value);
            }
            return;
        case ResizeMode::Cubic:
            if constexpr (std::is_same_v<T, float>) {
                const size_t h = r == 2 ? 0 : 2;
                const int64_t planes = r == 2 ? 1 : in[0] * in[1];
                resize_bicubic_planes(x, y, planes, in[h], in[h + 1], out[h], out[h + 1], scales[h], scales[h + 1],
                                      {roi[h], roi[r + h]}, {roi[h + 1], roi[r + h + 1]}, spec);
                return;
            } else {
                throw std::invalid_argument("Resize: cubic mode is float32 only in ONNX Runtime");
            }
    }
}

}  // namespace fxp::ort
