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

#include "cpu/features.hpp"
#include "fixed/requantize_fp32.hpp"
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
// (INT32_MIN * INT32_MIN is the only case that overflows). Truncating the int64 quotient to int32
// (exact everywhere else) lets the compiler keep only the low halves, so the loops vectorise.
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
    const int32_t r = int32_t(round_shift_right<Rounding::Nearest>(int64_t(a) * int64_t(b), 31));
    return (a == INT32_MIN && b == INT32_MIN) ? INT32_MAX : r;
}

// gemmlowp RoundingDivideByPOT: round(x / 2^e), ties away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int e) { return round_shift_right<Rounding::Round>(x, e); }

// Loops of the requantizer, compiled twice: portable and for AVX2 (chosen at run time). The body is
// inlined into each, so the same source yields the same bits on either path. f is taken by value: a
// local closure cannot alias the (char-typed) outputs, so its captures stay in registers.
template <class F>
inline void requant_loop_portable(std::ptrdiff_t n, F f) {
    for (std::ptrdiff_t i = 0; i < n; ++i) f(i);
}
template <class F>
__attribute__((target("avx2"))) inline void requant_loop_avx2(std::ptrdiff_t n, F f) {
    for (std::ptrdiff_t i = 0; i < n; ++i) f(i);
}
inline bool requant_cpu_has_avx2() {
    return cpu::has_avx2();
}

// The last step of a requantization (and of any integer kernel writing an output word):
// + zero point, overflow action into the word, clamp to [lo, hi]. Two forms: int64 in general, int32
// lanes (vectorisable) when the value and the bounds minus the zero point fit int32.
template <class Out>
struct FinishWord {
    int64_t zp, lo, hi;
    bool wrap;
    Out operator()(int64_t v) const {
        v += zp;
        if (wrap) v = int64_t(Out(std::make_unsigned_t<Out>(uint64_t(v))));  // low bits of the word
        return Out(saturate<int64_t>(v, lo, hi));
    }
};
template <class Out>
struct FinishWord32 {
    int32_t zp, lo, hi, lo_v, hi_v;  // lo_v = lo - zp, hi_v = hi - zp: the clamp before + zp
    bool wrap;
    Out operator()(int32_t v) const {
        if (wrap) return Out(saturate<int32_t>(int32_t(Out(std::make_unsigned_t<Out>(uint32_t(v) + uint32_t(zp)))), lo, hi));
        return Out(saturate<int32_t>(v, lo_v, hi_v) + zp);
    }
};

// The parameters of one output channel, loaded once per channel so that loops over its
// accumulators keep them in registers.
struct ChannelParams {
    int32_t shift = 0, multiplier = 0;
    float scale = 0.0f;
};

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
    bool simd = true;                       // use the AVX2 loops when the CPU has AVX2

    // Throws unless per-tensor parameters or one parameter set per channel of `channels`.
    void check_channels(std::ptrdiff_t channels) const {
        if (num_channels != 1 && num_channels != channels)
            throw std::invalid_argument("requantizer has " + std::to_string(num_channels) +
                                        " per-channel parameter sets but the tensor has " +
                                        std::to_string(channels) + " channels");
    }

    ChannelParams params_at(std::ptrdiff_t channel) const {
        const std::ptrdiff_t c = num_channels == 1 ? 0 : channel;
        return {shift ? shift[c] : 0, multiplier ? multiplier[c] : 0, scale ? scale[c] : 0.0f};
    }

    // n accumulators of one output channel (e.g. a convolution output plane).
    template <class Out, class Acc>
    void apply_channel(const Acc* acc, std::ptrdiff_t n, std::ptrdiff_t channel, Out* out) const {
        const ChannelParams cp = params_at(channel);
        dispatch<Out, Acc>(int32_fits(cp), [&](auto op, auto fin) {
            loop(n, [=](std::ptrdiff_t i) { out[i] = fin(op(acc[i], cp)); });
        });
    }

    // One GEMM row: column j is output channel c0 + j.
    template <class Out, class Acc>
    void apply_per_column(const Acc* acc, std::ptrdiff_t n, std::ptrdiff_t c0, Out* out) const {
        if (num_channels == 1) return apply_channel(acc, n, 0, out);
        if constexpr (std::is_same<Acc, int32_t>::value && sizeof(Out) < 4) {
            if (mode == RequantMode::MlasFp32) {  // one scale per column: a loop that vectorises
                const int64_t lo = std::max<int64_t>(clamp_lo, std::numeric_limits<Out>::min());
                const int64_t hi = std::min<int64_t>(clamp_hi, std::numeric_limits<Out>::max());
                const float flo = float(lo - zero_point), fhi = float(hi - zero_point);
                const float* s = scale + c0;
                const int32_t zp = zero_point;
                loop(n, [=](std::ptrdiff_t j) { out[j] = Out(requantize_fp32(acc[j], s[j], flo, fhi, zp)); });
                return;
            }
        }
        bool fits = true;
        for (std::ptrdiff_t j = 0; j < n; ++j) fits = fits && int32_fits(params_at(c0 + j));
        dispatch<Out, Acc>(fits, [&](auto op, auto fin) {
            loop(n, [=, this](std::ptrdiff_t j) { out[j] = fin(op(acc[j], params_at(c0 + j))); });
        });
    }

    // rows x n accumulators (row r at acc + r * lda), column j being output channel c0 + j, into out
    // (row r at out + r * ldo): apply_per_column of every row with one dispatch (channels-last data:
    // a row is a pixel's channels, and a dispatch per row would cost as much as its few values).
    template <class Out, class Acc>
    void apply_tile(const Acc* acc, std::ptrdiff_t rows, std::ptrdiff_t lda, std::ptrdiff_t n, std::ptrdiff_t c0, Out* out,
                    std::ptrdiff_t ldo) const {
        if (rows <= 0 || n <= 0) return;
        if constexpr (std::is_same<Acc, int32_t>::value && sizeof(Out) < 4) {
            if (mode == RequantMode::MlasFp32) {
                const int64_t lo = std::max<int64_t>(clamp_lo, std::numeric_limits<Out>::min());
                const int64_t hi = std::min<int64_t>(clamp_hi, std::numeric_limits<Out>::max());
                const float flo = float(lo - zero_point), fhi = float(hi - zero_point);
                const int32_t zp = zero_point;
                if (num_channels == 1) {
                    const float s = scale[0];
                    for (std::ptrdiff_t r = 0; r < rows; ++r) {
                        const Acc* a = acc + r * lda;
                        Out* o = out + r * ldo;
                        loop(n, [=](std::ptrdiff_t j) { o[j] = Out(requantize_fp32(a[j], s, flo, fhi, zp)); });
                    }
                    return;
                }
                const float* s = scale + c0;
                for (std::ptrdiff_t r = 0; r < rows; ++r) {
                    const Acc* a = acc + r * lda;
                    Out* o = out + r * ldo;
                    loop(n, [=](std::ptrdiff_t j) { o[j] = Out(requantize_fp32(a[j], s[j], flo, fhi, zp)); });
                }
                return;
            }
        }
        bool fits = true;
        for (std::ptrdiff_t j = 0; j < n; ++j) fits = fits && int32_fits(params_at(c0 + j));
        dispatch<Out, Acc>(fits, [&](auto op, auto fin) {
            for (std::ptrdiff_t r = 0; r < rows; ++r) {
                const Acc* a = acc + r * lda;
                Out* o = out + r * ldo;
                loop(n, [=, this](std::ptrdiff_t j) { o[j] = fin(op(a[j], params_at(c0 + j))); });
            }
        });
    }

  private:
    template <class F>
    void loop(std::ptrdiff_t n, const F& f) const {
        if (simd && requant_cpu_has_avx2()) requant_loop_avx2(n, f);
        else requant_loop_portable(n, f);
    }

    // Whether an int32 accumulator of this channel can be requantized in 32-bit lanes (8/16-bit
    // outputs only): the pre-zero-point value then fits int32 and every step vectorises.
    // The right shifts then lie in [1, 31] (resp. [31, 62]), which the loops tell the compiler
    // (assume_in) so that the range branches of round_shift_right fold away.
    bool int32_fits(const ChannelParams& cp) const {
        switch (mode) {
            case RequantMode::Pow2Shift: return cp.shift >= 1 && cp.shift <= 31;
            case RequantMode::SingleRound: return cp.shift <= 0;
            case RequantMode::MlasFp32: return true;
            default: return cp.shift < 0;  // gemmlowp/ruy: no left shift, RDBPOT by 1..31
        }
    }
    static int assume_in(int s, int lo, int hi) {
        if (s < lo || s > hi) __builtin_unreachable();
        return s;
    }

    // Calls body(op, finish): op(acc, ChannelParams) is this mode's value before the zero point
    // (int32 when `fits32` and the output is 8/16-bit, else int64), compiled once per mode (and per rounding method of
    // Pow2Shift) so the loops in body carry no branch on the mode.
    template <class Out, class Acc, class Body>
    void dispatch(bool fits32, Body&& body) const {
        static_assert(std::is_same<Acc, int32_t>::value || std::is_same<Acc, int64_t>::value,
                      "accumulators are int32 or int64");
        constexpr bool wide = std::is_same<Acc, int64_t>::value;
        const int64_t lo = std::max<int64_t>(clamp_lo, std::numeric_limits<Out>::min());
        const int64_t hi = std::min<int64_t>(clamp_hi, std::numeric_limits<Out>::max());
        const bool wrap = overflow == Overflow::Wrap;
        const FinishWord<Out> fin{zero_point, lo, hi, wrap};
        // MLAS clamps in float before rounding: to [lo - zp, hi - zp] (fixed/requantize_fp32.hpp).
        const float flo = float(lo - zero_point), fhi = float(hi - zero_point);

        if constexpr (!wide && sizeof(Out) < 4) {
            if (fits32) {
                const FinishWord32<Out> fin32{zero_point, int32_t(lo), int32_t(hi), int32_t(lo - zero_point),
                                          int32_t(hi - zero_point), wrap};
                switch (mode) {
                    case RequantMode::Pow2Shift:
                        with_rounding(rounding, [&](auto rc) {
                            constexpr Rounding R = decltype(rc)::value;
                            body([](int32_t a, const ChannelParams& cp) { return round_shift_right<R>(a, assume_in(cp.shift, 1, 31)); }, fin32);
                        });
                        return;
                    case RequantMode::GemmlowpDouble:
                    case RequantMode::RuyDoubleHalfUp: {
                        auto pair = [&](auto rc) {
                            constexpr Rounding R = decltype(rc)::value;
                            body([](int32_t a, const ChannelParams& cp) {
                                return round_shift_right<R>(saturating_rounding_doubling_high_mul(a, cp.multiplier),
                                                            assume_in(-cp.shift, 1, 31));
                            }, fin32);
                        };
                        if (mode == RequantMode::GemmlowpDouble) pair(std::integral_constant<Rounding, Rounding::Round>{});
                        else pair(std::integral_constant<Rounding, Rounding::Nearest>{});
                        return;
                    }
                    case RequantMode::SingleRound:
                        // shift <= 0: the total shift is >= 31 and the result fits int32 (multiplier >= 0).
                        body([](int32_t a, const ChannelParams& cp) {
                            return int32_t(round_shift_right<Rounding::Nearest>(int64_t(a) * cp.multiplier, assume_in(31 - cp.shift, 31, 62)));
                        }, fin32);
                        return;
                    case RequantMode::MlasFp32:
                        body([=](int32_t a, const ChannelParams& cp) {
                            return fp32_scale_clamp_rne_i32(a, cp.scale, flo, fhi);
                        }, fin32);
                        return;
                }
            }
        }

        switch (mode) {
            case RequantMode::Pow2Shift:
                with_rounding(rounding, [&](auto rc) {
                    constexpr Rounding R = decltype(rc)::value;
                    // int32 acc: int64 holds any left shift by <= 32; int64 acc: __int128 by <= 64.
                    using W = std::conditional_t<wide, i128, int64_t>;
                    body([wrap](Acc a, const ChannelParams& cp) {
                        const W v = round_shift<R>(W(a), cp.shift);
                        // To int64 without changing the result: saturate far outside any output word,
                        // or keep the low bits for a wrap.
                        return wrap ? int64_t(uint64_t(v)) : int64_t(saturate<W>(v, W(INT64_MIN / 2), W(INT64_MAX / 2)));
                    }, fin);
                });
                return;
            case RequantMode::GemmlowpDouble:
            case RequantMode::RuyDoubleHalfUp:
            case RequantMode::SingleRound:
                if constexpr (wide) {
                    // TFLite's int64 MultiplyByQuantizedMultiplier (int16 activations): one rounding
                    // (half up) with the multiplier reduced to 16 bits; the result is an int32.
                    body([](Acc a, const ChannelParams& cp) {
                        const int32_t m = cp.multiplier;
                        const int64_t reduced = m < 0x7FFF0000 ? (int64_t(m) + (1 << 15)) >> 16 : 0x7FFF;
                        const i128 r = round_shift<Rounding::Nearest>(i128(a) * reduced, 15 - cp.shift);
                        return int64_t(saturate<i128>(r, INT32_MIN, INT32_MAX));
                    }, fin);
                } else if (mode == RequantMode::SingleRound) {
                    body([](Acc a, const ChannelParams& cp) {
                        const int64_t r = round_shift_right<Rounding::Nearest>(int64_t(a) * cp.multiplier, 31 - cp.shift);
                        return saturate<int64_t>(r, INT32_MIN, INT32_MAX);
                    }, fin);
                } else {
                    // x * 2^left is an int32 product in TFLite; it wraps on two's-complement hardware.
                    auto pair = [&](auto rc) {
                        constexpr Rounding R = decltype(rc)::value;
                        body([](Acc a, const ChannelParams& cp) {
                            const int s = cp.shift;
                            const int32_t x = int32_t(uint32_t(a) << (s > 0 ? s : 0));
                            return int64_t(round_shift_right<R>(saturating_rounding_doubling_high_mul(x, cp.multiplier),
                                                                s < 0 ? -s : 0));
                        }, fin);
                    };
                    if (mode == RequantMode::GemmlowpDouble) pair(std::integral_constant<Rounding, Rounding::Round>{});
                    else pair(std::integral_constant<Rounding, Rounding::Nearest>{});
                }
                return;
            case RequantMode::MlasFp32:
                // The integer clamp in fin is then a no-op but for int32 outputs, where it keeps the
                // float bound's rounding from leaving the range.
                body([=](Acc a, const ChannelParams& cp) {
                    return fp32_scale_clamp_rne(a, cp.scale, flo, fhi);
                }, fin);
                return;
        }
        throw std::invalid_argument("unknown requantizer mode " + std::to_string(int(mode)));
    }
};

}  // namespace fxp
