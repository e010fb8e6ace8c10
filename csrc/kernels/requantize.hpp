// The requantizer: int32/int64 accumulators -> int8/uint8/int16/int32 outputs, computed exactly as a
// chosen runtime computes them. One component with named modes, so that a network is emulated as a
// given target runs it (docs/requantization.md gives each formula and the runtime behind it):
//
//   Pow2Shift        round(acc * 2^-shift) with any of the six rounding methods (shift < 0: exact
//                    left shift), then Saturate or Wrap into the output word (MATLAB scaled int8).
//   GemmlowpDouble   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2^left, M), right)
//                    (TFLite reference kernels, TFLite Micro).
//   SingleRound      (acc * M + 2^(30 - shift)) >> (31 - shift) in int64 (TFLITE_SINGLE_ROUNDING).
//   RuyDoubleHalfUp  the gemmlowp pair with both roundings half-up (LiteRT's optimized ruy kernels).
//   MlasFp32         RNE(float32(acc) * float32 scale), clamped in float before rounding
//                    (ONNX Runtime MLAS, LiteRT's default XNNPACK path).
//
// then + zero point and the activation clamp [clamp_lo, clamp_hi] (already within the output type).
// Every rounding and saturation comes from fixed/rounding.hpp.
//
// Lifetime: the parameter arrays (shift, multiplier, scale) are NOT owned. They point into arrays
// held by the Python object the requantizer was built from (the dict of `Requantizer.to_params()`);
// keep that object alive while the Requantizer is used.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "fixed/rounding.hpp"

namespace fxp {

enum class RequantMode : int { Pow2Shift = 0, GemmlowpDouble = 1, SingleRound = 2, RuyDoubleHalfUp = 3, MlasFp32 = 4 };
enum class OutType : int { Int8 = 0, UInt8 = 1, Int16 = 2, Int32 = 3 };

// Calls fn(Out{}) with a value of the C++ type of `t`, so callers compile one loop per output type.
template <class Fn>
inline decltype(auto) with_out_type(OutType t, Fn&& fn) {
    switch (t) {
        case OutType::Int8: return fn(int8_t{});
        case OutType::UInt8: return fn(uint8_t{});
        case OutType::Int16: return fn(int16_t{});
        case OutType::Int32: return fn(int32_t{});
    }
    throw std::invalid_argument("unknown requantizer output type " + std::to_string(int(t)));
}

// gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31) with ties toward +inf, saturated
// (INT32_MIN * INT32_MIN is the only case that overflows).
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
    const int64_t r = round_shift_right<Rounding::Nearest>(int64_t(a) * int64_t(b), 31);
    return int32_t(saturate<int64_t>(r, INT32_MIN, INT32_MAX));
}

// gemmlowp RoundingDivideByPOT: round(x / 2^e), ties away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int e) { return round_shift_right<Rounding::Round>(x, e); }

struct Requantizer {
    RequantMode mode = RequantMode::Pow2Shift;
    Rounding rounding = Rounding::Nearest;  // Pow2Shift only
    Overflow overflow = Overflow::Saturate; // into the output word, before the activation clamp
    OutType out_type = OutType::Int8;
    std::ptrdiff_t num_channels = 1;        // 1: per tensor (index 0 serves every channel)
    const int32_t* shift = nullptr;         // Pow2Shift: right shift; others: TFLite exponent
    const int32_t* multiplier = nullptr;    // Q0.31 multipliers (integer modes but Pow2Shift)
    const float* scale = nullptr;           // MlasFp32
    int32_t zero_point = 0;
    int64_t clamp_lo = INT8_MIN, clamp_hi = INT8_MAX;  // activation clamp, inside the output range

    // Throws unless per-tensor parameters or one parameter set per channel of `channels`.
    void check_channels(std::ptrdiff_t channels) const {
        if (num_channels != 1 && num_channels != channels)
            throw std::invalid_argument("requantizer has " + std::to_string(num_channels) +
                                        " per-channel parameter sets but the tensor has " +
                                        std::to_string(channels) + " channels");
    }

    // n accumulators of one output channel (e.g. a convolution output plane).
    template <class Out, class Acc>
    void apply_channel(const Acc* acc, std::ptrdiff_t n, std::ptrdiff_t channel, Out* out) const {
        const std::ptrdiff_t p = num_channels == 1 ? 0 : channel;
        dispatch<Out, Acc>([&](auto op) {
            for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = op(acc[i], p);
        });
    }

    // One GEMM row: column j is output channel c0 + j.
    template <class Out, class Acc>
    void apply_per_column(const Acc* acc, std::ptrdiff_t n, std::ptrdiff_t c0, Out* out) const {
        if (num_channels == 1) return apply_channel(acc, n, 0, out);
        dispatch<Out, Acc>([&](auto op) {
            for (std::ptrdiff_t j = 0; j < n; ++j) out[j] = op(acc[j], c0 + j);
        });
    }

  private:
    // Output word bounds and the final step shared by every mode: + zero point, overflow action
    // into the output word, activation clamp.
    template <class Out>
    struct Finish {
        int64_t zp, lo, hi;
        bool wrap;
        Out operator()(int64_t v) const {
            v += zp;
            if (wrap) {
                using U = std::make_unsigned_t<Out>;
                v = int64_t(Out(U(uint64_t(v))));  // keep the low bits of the word (two's complement)
            }
            return Out(saturate<int64_t>(v, lo, hi));
        }
    };

    // Calls body(op) with op(acc, channel_index) -> Out for this mode, compiled once per mode (and
    // per rounding method for Pow2Shift) so the loops in body carry no branch on the mode.
    template <class Out, class Acc, class Body>
    void dispatch(Body&& body) const {
        static_assert(std::is_same<Acc, int32_t>::value || std::is_same<Acc, int64_t>::value,
                      "accumulators are int32 or int64");
        constexpr bool wide = std::is_same<Acc, int64_t>::value;
        const Finish<Out> fin{zero_point, std::max<int64_t>(clamp_lo, std::numeric_limits<Out>::min()),
                              std::min<int64_t>(clamp_hi, std::numeric_limits<Out>::max()),
                              overflow == Overflow::Wrap};
        const int32_t* sh = shift;
        const int32_t* mul = multiplier;
        switch (mode) {
            case RequantMode::Pow2Shift:
                with_rounding(rounding, [&](auto rc) {
                    constexpr Rounding R = decltype(rc)::value;
                    // int32 acc: int64 holds any left shift by <= 32; int64 acc: __int128 by <= 64.
                    using W = std::conditional_t<wide, i128, int64_t>;
                    const bool sat = overflow == Overflow::Saturate;
                    body([=](Acc a, std::ptrdiff_t c) {
                        const W v = round_shift<R>(W(a), sh[c]);
                        // Bring to int64 without changing the result: saturate far outside any
                        // output word, or keep the low bits for a wrap.
                        const int64_t v64 = sat ? int64_t(saturate<W>(v, W(INT64_MIN / 2), W(INT64_MAX / 2)))
                                                : int64_t(uint64_t(v));
                        return fin(v64);
                    });
                });
                return;
            case RequantMode::GemmlowpDouble:
            case RequantMode::RuyDoubleHalfUp:
            case RequantMode::SingleRound:
                if constexpr (wide) {
                    // TFLite's int64 MultiplyByQuantizedMultiplier (int16 activations): one rounding
                    // (half up) with the multiplier reduced to 16 bits; the result is an int32.
                    body([=](Acc a, std::ptrdiff_t c) {
                        const int32_t m = mul[c];
                        const int64_t reduced = m < 0x7FFF0000 ? (int64_t(m) + (1 << 15)) >> 16 : 0x7FFF;
                        const i128 r = round_shift<Rounding::Nearest>(i128(a) * reduced, 15 - sh[c]);
                        return fin(int64_t(saturate<i128>(r, INT32_MIN, INT32_MAX)));
                    });
                } else if (mode == RequantMode::SingleRound) {
                    body([=](Acc a, std::ptrdiff_t c) {
                        const int64_t r = round_shift_right<Rounding::Nearest>(int64_t(a) * mul[c], 31 - sh[c]);
                        return fin(saturate<int64_t>(r, INT32_MIN, INT32_MAX));
                    });
                } else {
                    // x * 2^left is an int32 product in TFLite; it wraps on two's-complement hardware.
                    auto pair = [=](auto rc) {
                        constexpr Rounding R = decltype(rc)::value;
                        return [=](Acc a, std::ptrdiff_t c) {
                            const int s = sh[c];
                            const int32_t x = int32_t(uint32_t(a) << (s > 0 ? s : 0));
                            const int32_t h = saturating_rounding_doubling_high_mul(x, mul[c]);
                            return fin(round_shift_right<R>(h, s < 0 ? -s : 0));
                        };
                    };
                    if (mode == RequantMode::GemmlowpDouble)
                        body(pair(std::integral_constant<Rounding, Rounding::Round>{}));
                    else
                        body(pair(std::integral_constant<Rounding, Rounding::Nearest>{}));
                }
                return;
            case RequantMode::MlasFp32: {
                const float* sc = scale;
                // Clamp in float before rounding, as MLAS does; the integer clamp in fin is then a
                // no-op for 8/16-bit outputs and keeps int32 outputs in range.
                const float flo = float(fin.lo - fin.zp), fhi = float(fin.hi - fin.zp);
                body([=](Acc a, std::ptrdiff_t c) {
                    float y = float(a) * sc[c];
                    y = y < flo ? flo : (y > fhi ? fhi : y);
                    return fin(int64_t(std::nearbyint(y)));  // RNE in the default rounding mode
                });
                return;
            }
        }
        throw std::invalid_argument("unknown requantizer mode " + std::to_string(int(mode)));
    }
};

}  // namespace fxp
