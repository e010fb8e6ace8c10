// com.microsoft QLinearAdd and QLinearMul (u8/s8) as ONNX Runtime's CPU kernels compute them on x86 with
// AVX2, including how broadcasting splits the work into calls of the MLAS kernel.
//
// QLinearAdd: MLAS MlasQLinearAddKernelAvx2Helper (onnxruntime/core/mlas/lib/intrinsics/avx2/qladd_avx2.cpp),
// for a call on the span a[0..n) with b either a span or one value (IsScalarB):
//     rA = sA / sC, rB = sB / sC                                  (float divisions)
//     F  = float(zC) - fma(rA, float(zA), rB * float(zB))          (the compiler contracted rA*zA + rB*zB)
//     general:   c = cvtps(fma(a, rA, fma(b, rB, F)))
//     IsScalarB: F' = fma(b, rB, F) once, c = cvtps(fma(a, rA, F'))
// then PACKSSDW to int16 and PACKUSWB/PACKSSWB to the output type (no other clamp; a value outside
// int32 or NaN converts to INT32_MIN and saturates low).
//
// QLinearMul: MLAS MlasQLinearMulKernel, SSE2 path (onnxruntime/core/mlas/lib/qlmul.cpp):
//     ratio = (sA * sB) / sC;  c = cvtps(float((a - zA) * (b - zB)) * ratio + float(zC))
// (an exact int32 product, then a multiply and an add, two roundings), packed as above.
//
// Broadcasting (qlinear_binary_op.cc + the InputBroadcaster of core/providers/cpu/math/element_wise_ops.h):
// the output is walked in spans; an input whose innermost non-trivial dimension is broadcast is a
// "scalar" for the span. When input 0 is the scalar, ORT calls the kernel with the operands swapped
// (input 1 as the kernel's A, input 0 as its scalar B), which changes the fixed part's rounding.
// Spans never split an element's formula, so thread chunking does not change results.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/onnxruntime/lanes.hpp"

namespace fxp::ort {

struct QParams {
    float scale;
    int32_t zero_point;
};

// ---- QLinearAdd ------------------------------------------------------------------------------------

struct QLinearAddCoefficients {
    float ra, rb, fixed;
    QLinearAddCoefficients(QParams a, QParams b, QParams c) {
        ra = a.scale / c.scale;
        rb = b.scale / c.scale;
        fixed = float(c.zero_point) - fmadd(ra, float(a.zero_point), rb * float(b.zero_point));
    }
};

template <class V>
FXP_ORT_LANE V qlinear_add_value(V a, V b, V ra, V rb, V fixed) { return fmadd(a, ra, fmadd(b, rb, fixed)); }
template <class V>
FXP_ORT_LANE V qlinear_add_scalar_b(V a, V ra, V fixed_with_b) { return fmadd(a, ra, fixed_with_b); }

// One MLAS kernel call: out[i] = a[i] (+) b[i], or a[i] (+) b[0] when scalar_b.
template <class Q>
void qlinear_add_kernel_portable(const Q* a, const Q* b, Q* out, std::ptrdiff_t n, bool scalar_b,
                                 const QLinearAddCoefficients& k) {
    if (scalar_b) {
        const float f = fmadd(float(int32_t(b[0])), k.rb, k.fixed);
        for (std::ptrdiff_t i = 0; i < n; ++i)
            out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_add_scalar_b(float(int32_t(a[i])), k.ra, f)));
    } else {
        for (std::ptrdiff_t i = 0; i < n; ++i)
            out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_add_value(float(int32_t(a[i])), float(int32_t(b[i])), k.ra, k.rb, k.fixed)));
    }
}

template <class Q>
FXP_ORT_AVX2 void qlinear_add_kernel_avx2(const Q* a, const Q* b, Q* out, std::ptrdiff_t n, bool scalar_b,
                                          const QLinearAddCoefficients& k) {
    const __m256 ra = _mm256_set1_ps(k.ra), rb = _mm256_set1_ps(k.rb);
    std::ptrdiff_t i = 0;
    if (scalar_b) {
        const float f = fmadd(float(int32_t(b[0])), k.rb, k.fixed);
        const __m256 fv = _mm256_set1_ps(f);
        for (; i + 8 <= n; i += 8)
            store8_packed(out + i, cvtps_epi32(qlinear_add_scalar_b(to_float(load8_epi32(a + i)), ra, fv)));
        for (; i < n; ++i) out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_add_scalar_b(float(int32_t(a[i])), k.ra, f)));
    } else {
        const __m256 fv = _mm256_set1_ps(k.fixed);
        for (; i + 8 <= n; i += 8)
            store8_packed(out + i, cvtps_epi32(qlinear_add_value(to_float(load8_epi32(a + i)), to_float(load8_epi32(b + i)), ra, rb, fv)));
        for (; i < n; ++i)
            out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_add_value(float(int32_t(a[i])), float(int32_t(b[i])), k.ra, k.rb, k.fixed)));
    }
}

// ---- QLinearMul ------------------------------------------------------------------------------------

struct QLinearMulCoefficients {
    int32_t za, zb;
    float ratio, zc;
    QLinearMulCoefficients(QParams a, QParams b, QParams c)
        : za(a.zero_point), zb(b.zero_point), ratio((a.scale * b.scale) / c.scale), zc(float(c.zero_point)) {}
};

template <class V>
FXP_ORT_LANE V qlinear_mul_value(V product, V ratio, V zc) { return add(mul(product, ratio), zc); }

template <class Q>
void qlinear_mul_kernel_portable(const Q* a, const Q* b, Q* out, std::ptrdiff_t n, bool scalar_b,
                                 const QLinearMulCoefficients& k) {
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const int32_t p = (int32_t(a[i]) - k.za) * (int32_t(b[scalar_b ? 0 : i]) - k.zb);
        out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_mul_value(float(p), k.ratio, k.zc)));
    }
}

template <class Q>
FXP_ORT_AVX2 void qlinear_mul_kernel_avx2(const Q* a, const Q* b, Q* out, std::ptrdiff_t n, bool scalar_b,
                                          const QLinearMulCoefficients& k) {
    const __m256 ratio = _mm256_set1_ps(k.ratio), zc = _mm256_set1_ps(k.zc);
    const __m256i za = _mm256_set1_epi32(k.za), zb = _mm256_set1_epi32(k.zb);
    const __m256i bs = _mm256_set1_epi32(int32_t(b[0]) - k.zb);
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i da = _mm256_sub_epi32(load8_epi32(a + i), za);
        const __m256i db = scalar_b ? bs : _mm256_sub_epi32(load8_epi32(b + i), zb);
        store8_packed(out + i, cvtps_epi32(qlinear_mul_value(to_float(_mm256_mullo_epi32(da, db)), ratio, zc)));
    }
    for (; i < n; ++i) {
        const int32_t p = (int32_t(a[i]) - k.za) * (int32_t(b[scalar_b ? 0 : i]) - k.zb);
        out[i] = pack_saturate<Q>(cvtps_epi32(qlinear_mul_value(float(p), k.ratio, k.zc)));
    }
}

// ---- broadcasting ------------------------------------------------------------------------------------

// How ORT's InputBroadcaster walks two inputs: spans of `span` output elements; for each span the
// offsets of its first element in each input; an input marked scalar contributes one element per span.
struct BroadcastPlan {
    std::vector<std::ptrdiff_t> out_shape;
    std::ptrdiff_t span = 1, total = 1;
    bool scalar0 = false, scalar1 = false;
    std::vector<std::ptrdiff_t> offset0, offset1;   // per span
};

// The span and the scalar flags exactly as ORT's Broadcaster builds them (element_wise_ops.h): per input
// a list of (delta, count) runs from the innermost dimension outward; the first run's count is how far
// the input keeps one broadcast state; the span is the smaller first count; an input is a "scalar" when
// its first run broadcasts (delta 0). Quirk kept: trailing dimensions that are 1 in both inputs are
// skipped only up to the shorter rank, so [4, 1] with [1] gives spans of 1 with input 0 as the scalar.
struct OrtBroadcastIterator {
    std::vector<std::ptrdiff_t> deltas, counts;
    std::ptrdiff_t count = 1;
    void init(std::ptrdiff_t axis, std::ptrdiff_t largest) {
        deltas.push_back(axis > 1);
        counts.push_back(largest);
        count *= axis;
    }
    void append(std::ptrdiff_t axis, std::ptrdiff_t largest) {
        if (axis > 1) {
            if (deltas.back() <= 0) { deltas.push_back(count); counts.push_back(1); }   // stop broadcasting
        } else if (deltas.back() > 0) {
            deltas.push_back(-count);   // start broadcasting
            counts.push_back(1);
        }
        counts.back() *= largest;
        count *= axis;
    }
};

inline void ort_broadcast_span(const std::vector<std::ptrdiff_t>& shape1, const std::vector<std::ptrdiff_t>& shape2,
                               std::ptrdiff_t& span, bool& scalar0, bool& scalar1) {
    OrtBroadcastIterator it1, it2;
    const size_t dmax = std::max(shape1.size(), shape2.size()), dmin = std::min(shape1.size(), shape2.size());
    auto i1 = shape1.end(), i2 = shape2.end();
    size_t index = 0;
    if (dmin == 0) {
        if (shape1.empty()) {
            if (shape2.empty()) {
                it1.init(1, 1);
                it2.init(1, 1);
            } else {
                const std::ptrdiff_t axis = *--i2;
                it1.init(1, axis);
                it2.init(axis, axis);
            }
        } else {
            const std::ptrdiff_t axis = *--i1;
            it1.init(axis, axis);
            it2.init(1, axis);
        }
        index++;
    } else {
        for (; index < dmin; index++) {
            const std::ptrdiff_t a1 = *--i1, a2 = *--i2;
            const std::ptrdiff_t dim = std::max(a1, a2);
            if (dim <= 1 && index + 1 < dmin) continue;
            it1.init(a1, dim);
            it2.init(a2, dim);
            index++;
            break;
        }
    }
    for (; index < dmin; index++) {
        const std::ptrdiff_t a1 = *--i1, a2 = *--i2;
        const std::ptrdiff_t dim = std::max(a1, a2);
        if (dim == 1) continue;
        it1.append(a1, dim);
        it2.append(a2, dim);
    }
    for (; index < dmax; index++) {
        if (dmax == shape2.size()) {
            const std::ptrdiff_t axis = *--i2;
            it1.append(1, axis);
            it2.append(axis, axis);
        } else {
            const std::ptrdiff_t axis = *--i1;
            it1.append(axis, axis);
            it2.append(1, axis);
        }
    }
    span = std::min(it1.counts.front(), it2.counts.front());
    scalar0 = it1.deltas.front() == 0;
    scalar1 = it2.deltas.front() == 0;
}

// shape0/shape1 right-aligned as numpy; every dimension pair equal or one of them 1; no zero sizes.
inline BroadcastPlan make_broadcast_plan(const std::vector<std::ptrdiff_t>& shape0, const std::vector<std::ptrdiff_t>& shape1) {
    BroadcastPlan p;
    const size_t rank = std::max(shape0.size(), shape1.size());
    std::vector<std::ptrdiff_t> d0(rank, 1), d1(rank, 1);
    std::copy(shape0.begin(), shape0.end(), d0.begin() + (rank - shape0.size()));
    std::copy(shape1.begin(), shape1.end(), d1.begin() + (rank - shape1.size()));
    p.out_shape.resize(rank);
    for (size_t i = 0; i < rank; ++i) {
        if (d0[i] <= 0 || d1[i] <= 0) throw std::invalid_argument("inputs with zero-size dimensions are not supported");
        if (d0[i] != d1[i] && d0[i] != 1 && d1[i] != 1)
            throw std::invalid_argument("shapes do not broadcast: dimension " + std::to_string(i) + " is " +
                                        std::to_string(d0[i]) + " and " + std::to_string(d1[i]));
        p.out_shape[i] = std::max(d0[i], d1[i]);
        p.total *= p.out_shape[i];
    }
    ort_broadcast_span(shape0, shape1, p.span, p.scalar0, p.scalar1);
    // input strides (0 where broadcast) and the offsets of every span's first element
    std::vector<std::ptrdiff_t> s0(rank, 0), s1(rank, 0);
    std::ptrdiff_t a0 = 1, a1 = 1;
    for (std::ptrdiff_t i = std::ptrdiff_t(rank) - 1; i >= 0; --i) {
        s0[size_t(i)] = d0[size_t(i)] == 1 ? 0 : a0;
        s1[size_t(i)] = d1[size_t(i)] == 1 ? 0 : a1;
        a0 *= d0[size_t(i)];
        a1 *= d1[size_t(i)];
    }
    const std::ptrdiff_t spans = p.total / p.span;
    p.offset0.resize(size_t(spans));
    p.offset1.resize(size_t(spans));
    std::vector<std::ptrdiff_t> idx(rank, 0);
    for (std::ptrdiff_t s = 0; s < spans; ++s) {
        std::ptrdiff_t rem = s * p.span, o0 = 0, o1 = 0;
        for (std::ptrdiff_t i = std::ptrdiff_t(rank) - 1; i >= 0; --i) {
            const std::ptrdiff_t d = p.out_shape[size_t(i)], k = rem % d;
            rem /= d;
            o0 += k * s0[size_t(i)];
            o1 += k * s1[size_t(i)];
        }
        p.offset0[size_t(s)] = o0;
        p.offset1[size_t(s)] = o1;
    }
    return p;
}

enum class BinaryOp : int { Add = 0, Mul = 1 };

// out = a (op) b over the plan, each span one kernel call as ORT makes it.
template <class Q>
void qlinear_binary(BinaryOp op, const Q* a, QParams pa, const Q* b, QParams pb, QParams pc, Q* out,
                    const BroadcastPlan& plan, Isa isa) {
    const std::ptrdiff_t spans = std::ptrdiff_t(plan.offset0.size());
    // input 0 a scalar: the kernel's A is input 1 and its scalar B is input 0
    const bool swap = plan.scalar0;
    const bool scalar_b = plan.scalar0 || plan.scalar1;
    const QParams ka = swap ? pb : pa, kb = swap ? pa : pb;
    if (op == BinaryOp::Add) {
        const QLinearAddCoefficients k(ka, kb, pc);
        for (std::ptrdiff_t s = 0; s < spans; ++s) {
            const Q* x = swap ? b + plan.offset1[size_t(s)] : a + plan.offset0[size_t(s)];
            const Q* y = swap ? a + plan.offset0[size_t(s)] : b + plan.offset1[size_t(s)];
            Q* o = out + s * plan.span;
            if (isa == Isa::Avx2) qlinear_add_kernel_avx2(x, y, o, plan.span, scalar_b, k);
            else qlinear_add_kernel_portable(x, y, o, plan.span, scalar_b, k);
        }
    } else {
        const QLinearMulCoefficients k(ka, kb, pc);
        for (std::ptrdiff_t s = 0; s < spans; ++s) {
            const Q* x = swap ? b + plan.offset1[size_t(s)] : a + plan.offset0[size_t(s)];
            const Q* y = swap ? a + plan.offset0[size_t(s)] : b + plan.offset1[size_t(s)];
            Q* o = out + s * plan.span;
            if (isa == Isa::Avx2) qlinear_mul_kernel_avx2(x, y, o, plan.span, scalar_b, k);
            else qlinear_mul_kernel_portable(x, y, o, plan.span, scalar_b, k);
        }
    }
}

}  // namespace fxp::ort
