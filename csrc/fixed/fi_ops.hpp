// Whole-array fi primitives for words of at most 64 bits: casting doubles, requantising stored
// integers, element-wise add/multiply and an integer matrix product. Every value is formed exactly
// in __int128, then rounded and overflowed into the result word by the rules of rounding.hpp in the
// same pass. Python decides the result types; these functions only move bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fixed/rounding.hpp"

namespace fxp {

// A result word: w <= 64 bits, signedness, overflow action, and the counts a cast reports.
struct Word {
    int w;
    bool is_signed;
    Overflow o;
    i128 lo, hi;
    Word(int w_, bool s_, Overflow o_) : w(w_), is_signed(s_), o(o_), lo(word_min(w_, s_)), hi(word_max(w_, s_)) {}
};

struct Counts {
    int64_t overflow = 0, underflow = 0;
};

// Overflow an exact value x into the word, counting.
inline int64_t fit(i128 x, const Word& word, int64_t& n_overflow) {
    if (x >= word.lo && x <= word.hi) return int64_t(x);
    ++n_overflow;
    if (word.o == Overflow::Saturate) return int64_t(x < word.lo ? word.lo : word.hi);
    return int64_t(wrap_to_word(x, word.w, word.is_signed));
}

// The same for results whose exact value fits int64 and whose word's bounds fit int64 (every word
// but unsigned 64-bit): branch-free 64-bit clamp or wrap, so the loops vectorise.
template <Overflow O>
inline int64_t fit64(int64_t y, int64_t lo, int64_t hi, int w, bool is_signed, int64_t& n_overflow) {
    n_overflow += (y < lo) | (y > hi);
    if (O == Overflow::Saturate) return y < lo ? lo : (y > hi ? hi : y);
    const int up = 64 - w;
    return is_signed ? int64_t(uint64_t(y) << up) >> up : int64_t(uint64_t(y) << up >> up);
}

template <class Fn>
inline decltype(auto) with_overflow(Overflow o, Fn&& fn) {
    if (o == Overflow::Saturate) return fn(std::integral_constant<Overflow, Overflow::Saturate>{});
    return fn(std::integral_constant<Overflow, Overflow::Wrap>{});
}

// x * 2^-s rounded by R and overflowed into the word; x is exact (|x| < 2^127). Counts an underflow
// when a non-zero x rounds to zero.
template <Rounding R>
inline int64_t requantize_one(i128 x, int s, const Word& word, int64_t& n_overflow, int64_t& n_underflow) {
    if (s >= 0) {
        const i128 y = round_shift_right<R>(x, s);
        n_underflow += (y == 0 && x != 0);
        return fit(y, word, n_overflow);
    }
    const int k = -s;
    if (x == 0) return 0;
    if (k <= 63 && x >= i128(INT64_MIN) && x <= i128(INT64_MAX)) return fit(x << k, word, n_overflow);
    // |x * 2^k| >= 2^64: outside every word of <= 64 bits.
    ++n_overflow;
    if (word.o == Overflow::Saturate) return int64_t(x < 0 ? word.lo : word.hi);
    const u128 low = k >= 128 ? u128(0) : (u128(x) << k);
    return int64_t(wrap_to_word(i128(low), word.w, word.is_signed));
}

// Exact int64 values make(i), shifted right by s >= 0 with rounding r into a word with int64 bounds.
template <class Make>
inline Counts requantize_each64(std::size_t n, int s, Rounding r, const Word& word, int64_t* out, Make make) {
    int64_t n_overflow = 0, n_underflow = 0;
    const int64_t lo = int64_t(word.lo), hi = int64_t(word.hi);
    const int w = word.w;
    const bool sg = word.is_signed;
    with_rounding(r, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        return with_overflow(word.o, [&](auto oc) {
            constexpr Overflow O = decltype(oc)::value;
            if (s == 0) {
                for (std::size_t i = 0; i < n; ++i) out[i] = fit64<O>(make(i), lo, hi, w, sg, n_overflow);
            } else {
                for (std::size_t i = 0; i < n; ++i) {
                    const int64_t x = make(i);
                    const int64_t y = round_shift_right<R>(x, s);
                    n_underflow += (y == 0) & (x != 0);
                    out[i] = fit64<O>(y, lo, hi, w, sg, n_overflow);
                }
            }
            return 0;
        });
    });
    return Counts{n_overflow, n_underflow};
}

// (a << la) +- (b << lb) for int64 stored integers whose exact sum fits int64, into the word.
template <bool Subtract>
inline Counts add64(const int64_t* a, int la, const int64_t* b, int lb, std::size_t n, int s, Rounding r,
                    const Word& word, int64_t* out) {
    return requantize_each64(n, s, r, word, out, [=](std::size_t i) {
        const int64_t x = int64_t(uint64_t(a[i]) << la), y = int64_t(uint64_t(b[i]) << lb);
        return Subtract ? x - y : x + y;
    });
}

// a * b for int64 stored integers whose exact product fits int64, into the word. `narrow`: both
// operands fit int32, so the product is one widening 32x32->64 multiply (vectorisable).
inline Counts mul64(const int64_t* a, const int64_t* b, bool narrow, std::size_t n, int s, Rounding r,
                    const Word& word, int64_t* out) {
    if (narrow)
        return requantize_each64(n, s, r, word, out, [=](std::size_t i) {
            return int64_t(int32_t(a[i])) * int64_t(int32_t(b[i]));
        });
    return requantize_each64(n, s, r, word, out, [=](std::size_t i) { return a[i] * b[i]; });
}

// A result the caller knows to be exact in its word (FullPrecision: no rounding, no overflow):
// out = a op b computed in the storage type Out, which holds every possible result.
enum class ExactOp : int { Add = 0, Subtract = 1, Multiply = 2 };

template <ExactOp Op, class In, class Out>
inline void exact_binary(const In* a, const In* b, Out* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const Out x = Out(a[i]), y = Out(b[i]);
        out[i] = Op == ExactOp::Add ? Out(x + y) : Op == ExactOp::Subtract ? Out(x - y) : Out(x * y);
    }
}

// Stored integers arrive as int64 bit patterns; `u64` marks a uint64 source (unsigned 64-bit words).
inline i128 load(const int64_t* p, std::size_t i, bool u64) {
    return u64 ? i128(uint64_t(p[i])) : i128(p[i]);
}

// One double the fast loop could not take (non-finite, huge, tiny or near 2^51 after scaling).
template <Rounding R>
inline int64_t cast_double_slow(double v, int f, const Word& word, int64_t& n_overflow, int64_t& n_underflow) {
    if (std::isnan(v)) return 0;
    if (std::isinf(v)) {
        ++n_overflow;
        return word.o == Overflow::Wrap ? 0 : int64_t(v < 0 ? word.lo : word.hi);
    }
    const ScaledDouble sd = round_scaled_double<R>(v, f);
    if (sd.huge) {
        ++n_overflow;
        return word.o == Overflow::Wrap ? 0 : int64_t(sd.value < 0 ? word.lo : word.hi);
    }
    n_underflow += (sd.value == 0);
    return fit(sd.value, word, n_overflow);
}

// Quantise doubles into the word at fraction length f (binary-point scaling). The main loop is
// branch-free: v * 2^f is exact in double while it stays in the normal range, and a scaled value
// below 2^51 rounds exactly in double; the few other values are redone one by one.
// `Out` is the fi storage type of the word (int8 ... int64; uint64 words as int64 bit patterns), so
// the result is written once, in its final size.
template <class Out>
inline Counts cast_double(const double* x, Out* out, std::size_t n, int f, Rounding r, const Word& word) {
    int64_t n_overflow = 0, n_underflow = 0;
    const bool fast = f > -900 && f < 900 && word.hi <= i128(INT64_MAX);
    const double scale = fast ? std::ldexp(1.0, f) : 0.0;
    const int64_t lo = int64_t(word.lo), hi = fast ? int64_t(word.hi) : 0;
    with_rounding(r, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        std::size_t n_slow = n;
        if (fast) {
            n_slow = 0;
            with_overflow(word.o, [&](auto oc) {
                constexpr Overflow O = decltype(oc)::value;
                // Written without branches or floating-point selects so that it vectorises: values
                // outside the fast range (`ok` = 0) get a meaningless result here, are not counted,
                // and are redone below.
                int64_t n_ov = 0, n_un = 0, n_bad = 0;
                const int up = 64 - word.w;
                const bool sg = word.is_signed;
                for (std::size_t i = 0; i < n; ++i) {
                    const double v = x[i], y = v * scale, a = std::fabs(y);
                    const int64_t ok = (a < 0x1p51) & ((a >= 0x1p-1000) | (v == 0.0));
                    const int64_t q = round_small_double<R>(y);
                    n_un += (q == 0) & (v != 0.0) & ok;
                    n_bad += 1 - ok;
                    n_ov += ((q < lo) | (q > hi)) & ok;
                    int64_t fitted;
                    if (O == Overflow::Saturate) fitted = q < lo ? lo : (q > hi ? hi : q);
                    else fitted = sg ? int64_t(uint64_t(q) << up) >> up : int64_t(uint64_t(q) << up >> up);
                    out[i] = Out(fitted);
                }
                n_overflow += n_ov;
                n_underflow += n_un;
                n_slow = std::size_t(n_bad);
                return 0;
            });
        }
        if (n_slow == 0) return 0;
        for (std::size_t i = 0; i < n; ++i) {
            const double v = x[i], a = std::fabs(v * scale);
            if (fast && (a < 0x1p51) & ((a >= 0x1p-1000) | (v == 0.0))) continue;
            out[i] = Out(cast_double_slow<R>(v, f, word, n_overflow, n_underflow));
        }
        return 0;
    });
    return Counts{n_overflow, n_underflow};
}

// Any exact per-element value make(i) (an i128), shifted right by s with rounding r into the word.
template <class Make>
inline Counts requantize_each(std::size_t n, int s, Rounding r, const Word& word, int64_t* out, Make make) {
    int64_t n_overflow = 0, n_underflow = 0;
    with_rounding(r, [&](auto rc) {
        constexpr Rounding R = decltype(rc)::value;
        for (std::size_t i = 0; i < n; ++i) out[i] = requantize_one<R>(make(i), s, word, n_overflow, n_underflow);
        return 0;
    });
    return Counts{n_overflow, n_underflow};
}

// C[m,p] = A[m,n] @ B[n,p] exactly, for operands and an accumulator that fit Acc (int32 or int64):
// i-k-j order with the row of B contiguous so the inner loop vectorises; four k per pass.
template <class In, class Acc>
[[gnu::always_inline]] inline void matmul_rows(const In* a, const In* b, Acc* c, std::size_t m, std::size_t n, std::size_t p) {
    for (std::size_t i = 0; i < m; ++i) {
        Acc* ci = c + i * p;
        for (std::size_t j = 0; j < p; ++j) ci[j] = 0;
        const In* ai = a + i * n;
        std::size_t k = 0;
        for (; k + 4 <= n; k += 4) {
            const Acc a0 = ai[k], a1 = ai[k + 1], a2 = ai[k + 2], a3 = ai[k + 3];
            const In *b0 = b + k * p, *b1 = b0 + p, *b2 = b1 + p, *b3 = b2 + p;
            for (std::size_t j = 0; j < p; ++j)
                ci[j] += a0 * Acc(b0[j]) + a1 * Acc(b1[j]) + a2 * Acc(b2[j]) + a3 * Acc(b3[j]);
        }
        for (; k < n; ++k) {
            const Acc ak = ai[k];
            const In* bk = b + k * p;
            for (std::size_t j = 0; j < p; ++j) ci[j] += ak * Acc(bk[j]);
        }
    }
}

}  // namespace fxp
