// The arithmetic primitives of fixedpoint, written once: rounding of a scaled value, rounding right
// shifts, saturation and two's-complement wrap. Every kernel (fi casts, requantizers, pooling) calls
// these; none re-implements a rounding rule.
//
// Enum values are part of the Python <-> C++ contract (fixedpoint/types.py uses the same numbers).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace fxp {

using i128 = __int128;
using u128 = unsigned __int128;

enum class Rounding : int { Ceiling = 0, Convergent = 1, Floor = 2, Nearest = 3, Round = 4, Zero = 5 };
enum class Overflow : int { Saturate = 0, Wrap = 1 };

// Unsigned twin and bit width of the integer types we shift (std traits do not cover __int128 in
// strict C++17 mode).
template <class I> struct int_traits;
template <> struct int_traits<int32_t> { using U = uint32_t; static constexpr int bits = 32; };
template <> struct int_traits<int64_t> { using U = uint64_t; static constexpr int bits = 64; };
template <> struct int_traits<i128> { using U = u128; static constexpr int bits = 128; };

// x / 2^s rounded by method R, for s >= 0. Exact for every x and every s (s may exceed the width).
// Ties: Nearest -> +inf, Round -> away from 0, Convergent -> even; Floor/Ceiling/Zero as named.
template <Rounding R, class I>
inline I round_shift_right(I x, int s) {
    using U = typename int_traits<I>::U;
    constexpr int B = int_traits<I>::bits;
    if (s <= 0) return x;
    if (s >= B) {
        // |x| <= 2^(B-1) <= 2^(s-1): the quotient lies in [-1/2, 1/2), with -1/2 only when
        // x is the most negative value and s == B.
        const bool neg_half = (s == B) && (x == std::numeric_limits<I>::min());
        switch (R) {
            case Rounding::Floor: return x < 0 ? I(-1) : I(0);
            case Rounding::Ceiling: return x > 0 ? I(1) : I(0);
            case Rounding::Round: return neg_half ? I(-1) : I(0);
            default: return I(0);  // Zero, Nearest (tie -> +inf = 0), Convergent (tie -> even 0)
        }
    }
    const I q = x >> s;  // arithmetic shift: floor(x / 2^s)
    const U mask = (U(1) << s) - U(1);
    const U r = U(x) & mask;  // x - q*2^s, in [0, 2^s)
    const U half = U(1) << (s - 1);
    switch (R) {
        case Rounding::Floor: return q;
        case Rounding::Ceiling: return q + I(r != 0);
        case Rounding::Zero: return q + I(r != 0 && x < 0);
        case Rounding::Nearest: return q + I(r >= half);
        case Rounding::Round: return q + I(r > half || (r == half && x >= 0));
        case Rounding::Convergent: return q + I(r > half || (r == half && (q & 1)));
    }
    return q;
}

// x / d rounded by method R, for d > 0, with the ties of round_shift_right (integer division by a
// count that need not be a power of two, e.g. an average pool).
template <Rounding R, class I>
inline I round_divide(I x, I d) {
    I q = x / d, r = x % d;  // truncated
    if (r < 0) { q -= 1; r += d; }  // floor: x = q*d + r, r in [0, d)
    const I rest = d - r;            // r > d/2  <=>  r > rest
    switch (R) {
        case Rounding::Floor: return q;
        case Rounding::Ceiling: return q + I(r != 0);
        case Rounding::Zero: return q + I(r != 0 && x < 0);
        case Rounding::Nearest: return q + I(r >= rest);
        case Rounding::Round: return q + I(r > rest || (r == rest && x >= 0));
        case Rounding::Convergent: return q + I(r > rest || (r == rest && (q & 1)));
    }
    return q;
}

// x * 2^-s rounded by R: s > 0 shifts right with rounding, s < 0 shifts left (the caller guarantees
// that the left shift does not overflow I).
template <Rounding R, class I>
inline I round_shift(I x, int s) {
    if (s >= 0) return round_shift_right<R>(x, s);
    using U = typename int_traits<I>::U;
    return I(U(x) << (-s));
}

// Stored-integer bounds of a fixed-point word of w bits (1 <= w <= 64 here; wider words live in the
// exact Python path).
inline i128 word_min(int w, bool is_signed) { return is_signed ? -(i128(1) << (w - 1)) : i128(0); }
inline i128 word_max(int w, bool is_signed) {
    return is_signed ? (i128(1) << (w - 1)) - 1 : (i128(1) << w) - 1;
}

template <class I>
inline I saturate(I x, I lo, I hi) { return x < lo ? lo : (x > hi ? hi : x); }

// Two's-complement wrap of x into w bits (w <= 64): keep the low w bits, sign-extend if signed.
inline i128 wrap_to_word(i128 x, int w, bool is_signed) {
    const u128 mask = (w >= 128) ? ~u128(0) : ((u128(1) << w) - 1);
    u128 u = u128(x) & mask;
    if (is_signed && ((u >> (w - 1)) & 1)) u |= ~mask;
    return i128(u);
}

// Fits x into a w-bit word with the overflow action; sets `overflowed` when x was out of range.
inline i128 overflow_to_word(i128 x, int w, bool is_signed, Overflow o, bool& overflowed) {
    const i128 lo = word_min(w, is_signed), hi = word_max(w, is_signed);
    overflowed = x < lo || x > hi;
    if (!overflowed) return x;
    return o == Overflow::Saturate ? (x < lo ? lo : hi) : wrap_to_word(x, w, is_signed);
}

// Exact round(v * 2^f) for a finite double v, with rounding R.
// A double is m * 2^e with an integer |m| < 2^53, so v * 2^f = m * 2^(e+f) exactly. When the result
// needs more than 117 bits (`huge`), `value` holds only its sign (+-1); its low 64 bits are all zero,
// which is what a wrap into <= 64 bits needs.
struct ScaledDouble {
    i128 value;
    bool huge;
};

template <Rounding R>
inline ScaledDouble round_scaled_double(double v, int f) {
    if (v == 0.0) return {0, false};
    int e = 0;
    const double m = std::frexp(v, &e);                 // v = m * 2^e, 0.5 <= |m| < 1
    const int64_t mi = static_cast<int64_t>(std::ldexp(m, 53));  // exact
    const long sh = long(e) - 53 + long(f);             // v * 2^f = mi * 2^sh
    if (sh >= 64) return {mi < 0 ? i128(-1) : i128(1), true};
    if (sh >= 0) return {i128(mi) << sh, false};
    const long rs = -sh;
    return {round_shift_right<R>(i128(mi), rs > 1000 ? 1000 : int(rs)), false};
}

// Integer rounding by R of a double y that is already the exact scaled value, for |y| < 2^51.
// Only additions, compares and bit moves (no libm call, no double->int64 conversion, no
// floating-point select), so loops that call it vectorise on baseline x86-64 and with AVX2:
//   * adding and subtracting 1.5*2^52 rounds y to the nearest integer n, ties to even (|y| < 2^51
//     keeps both steps exact), and n is the low bits of n + 1.5*2^52;
//   * d = y - n is exact (Sterbenz, or n = 0) and lies in [-1/2, 1/2], so every method is n plus a
//     correction decided on exact values (y + 0.5 is not exact: y just below 1/2 would round up).
// Arithmetic is unsigned so that a value outside the range (which the caller discards) is harmless.
constexpr double kRoundMagic = 0x1.8p52;
constexpr uint64_t kRoundMagicBits = 0x4338000000000000ULL;

inline uint64_t small_integer_double_bits(double d) {
    const double t = d + kRoundMagic;
    uint64_t bits;
    __builtin_memcpy(&bits, &t, sizeof bits);
    return bits - kRoundMagicBits;
}

template <Rounding R>
inline int64_t round_small_double(double y) {
    const double n = (y + kRoundMagic) - kRoundMagic;
    const double d = y - n;
    const uint64_t q = small_integer_double_bits(n);
    switch (R) {
        case Rounding::Floor: return int64_t(q - uint64_t(d < 0.0));
        case Rounding::Ceiling: return int64_t(q + uint64_t(d > 0.0));
        case Rounding::Zero: return int64_t(q - uint64_t((d < 0.0) & (y > 0.0)) + uint64_t((d > 0.0) & (y < 0.0)));
        case Rounding::Nearest: return int64_t(q + uint64_t(d == 0.5));
        case Rounding::Round: return int64_t(q + uint64_t((d == 0.5) & (y > 0.0)) - uint64_t((d == -0.5) & (y < 0.0)));
        case Rounding::Convergent: return int64_t(q);
    }
    return int64_t(q);
}

// Calls fn(std::integral_constant<Rounding, R>{}) for the run-time method r, so inner loops are
// compiled once per method with no branch on the method inside them.
template <class Fn>
inline decltype(auto) with_rounding(Rounding r, Fn&& fn) {
    switch (r) {
        case Rounding::Ceiling: return fn(std::integral_constant<Rounding, Rounding::Ceiling>{});
        case Rounding::Convergent: return fn(std::integral_constant<Rounding, Rounding::Convergent>{});
        case Rounding::Floor: return fn(std::integral_constant<Rounding, Rounding::Floor>{});
        case Rounding::Nearest: return fn(std::integral_constant<Rounding, Rounding::Nearest>{});
        case Rounding::Round: return fn(std::integral_constant<Rounding, Rounding::Round>{});
        case Rounding::Zero: return fn(std::integral_constant<Rounding, Rounding::Zero>{});
    }
    throw std::invalid_argument("unknown rounding method " + std::to_string(int(r)));
}

inline Rounding rounding_from_int(int r) {
    if (r < 0 || r > 5) throw std::invalid_argument("rounding method code must be 0..5, got " + std::to_string(r));
    return Rounding(r);
}
inline Overflow overflow_from_int(int o) {
    if (o < 0 || o > 1) throw std::invalid_argument("overflow action code must be 0 or 1, got " + std::to_string(o));
    return Overflow(o);
}

}  // namespace fxp
