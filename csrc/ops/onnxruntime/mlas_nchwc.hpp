// MLAS's NCHWc float convolution and pooling (onnxruntime/core/mlas/lib/snchwc.cpp, MlasNchwcConv /
// MlasNchwcPool) as ONNX Runtime runs the com.microsoft.nchwc Conv / MaxPool / AveragePool /
// GlobalAveragePool / GlobalMaxPool nodes that its NchwcTransformer (optimizer/nchwc_transformer.cc,
// graph level ORT_ENABLE_ALL) puts in place of float Conv / pooling nodes, on x86-64 with AVX2 + FMA3
// (block size 8: kernels x86_64/SconvKernelFma3.S, SconvKernelAvxCommon.h, SconvKernelCommon.h,
// SconvKernelAvx.S's PostProcessBlock, SpoolKernelAvx.S, SpoolKernelCommon.h).
//
// The data sit in blocks of `block` channels; the kernels keep one accumulator per output pixel and
// output channel of a block, cleared to +0 (vxorps) for every call. Per output:
//   Nchwc      (input channels per group >= block, padded up to a multiple of it with zeros):
//              one call per block of `block` input channels; the accumulator takes
//              fma(x[c][ih][iw], w[o][c][kh][kw], acc) for the valid taps in (kh, kw) order and, per tap,
//              the block's channels in order (padded channels: fma(0, 0, acc)).
//   Pointwise  (1x1 kernel, no padding, channels >= block): one call per 128 input channels, the
//              channels in order.
//   Nchw       (group 1, fewer than `block` input channels, input left in NCHW): one call per input
//              channel, its valid taps in (kh, kw) order.
//   Depthwise  (one input and one output channel per group): one call, fma(w, x, acc) over the taps.
// A tap is valid when its input row and column lie inside the image (padding is skipped, never read
// as zero). After each call the kernel post-processes (PostProcessBlock):
//   out = acc (the first call, no residual "sum" input) or acc + out (every later call, and the first
//   one when the node's fourth input, the Add fused by the transformer, filled the output first);
// and after the last call out = out + bias, then the fused activation (Relu in the kernel:
// MAXPS(0, out); the others through MlasActivation on the stored outputs: Clip MAXPS(lo, x) then
// MINPS(hi, .), LeakyRelu, HardSigmoid min(1, x * alpha + beta) then max(0, .), Sigmoid / Tanh the
// MlasComputeLogistic / MlasComputeTanh kernels of mlas_transcendental.hpp).
// The split of the work over threads (output rows, filter sets) never splits an output's sum, so the
// results do not depend on ORT's thread count.
//
// Pooling (MLAS_NCHWC_POOL_ALGORITHM, SpoolKernelAvx.S): per output and channel, the valid taps in
// (kh, kw) order from -FLT_MAX (max: MAXPS(acc, x)) or +0 (average: acc + x); averages divide by the
// number of valid taps (exclude padding) or by kh * kw (include padding, also for ceil_mode windows past
// the padding). Global pooling is the same with the kernel spanning the image.
//
// AVX-512F hosts run the same algorithms with block size 16 (SconvKernelAvx512F.S, SpoolKernelAvx512F.S:
// ProcessOutputCountN's ComputeBlock over 16 channels per tap): Nchwc sums then take 16 channels per call
// and the Nchw algorithm serves up to 15 input channels, so their sums differ from the block-8 ones;
// depthwise and pooling sums do not depend on the block size. NchwcConvParams::block (8 or 16) selects
// the order; the data layout here stays in blocks of 8 (an AVX2 register) either way, which does not
// change any output's sum.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "ops/onnxruntime/float_activations.hpp"
#include "ops/onnxruntime/lanes.hpp"
#include "ops/onnxruntime/mlas_transcendental.hpp"

namespace fxp::ort {

// The activation of a NchwcConv node (MLAS_ACTIVATION_KIND of the FusedConv "activation" attribute).
enum class NchwcActivation : int { Identity = 0, Relu = 1, Clip = 2, LeakyRelu = 3, HardSigmoid = 4, Logistic = 5, Tanh = 6 };

struct NchwcActivationParams {
    NchwcActivation kind = NchwcActivation::Identity;
    float a = 0.0f, b = 0.0f;   // Clip: minimum, maximum; LeakyRelu: alpha; HardSigmoid: alpha, beta
};

template <class V>
FXP_ORT_LANE V nchwc_activate(V x, const NchwcActivationParams& p) {
    switch (p.kind) {
        case NchwcActivation::Relu: return relu_lane(x);
        case NchwcActivation::Clip: return clip_lane(x, splat(p.a, x), splat(p.b, x));
        case NchwcActivation::LeakyRelu: return leaky_relu_lane(x, splat(p.a, x));
        case NchwcActivation::HardSigmoid:   // activate.cpp: MlasMultiplyAddFloat32x4 is mul + add (SSE build)
            return max_ps(splat(0.0f, x), min_ps(splat(1.0f, x), add(mul(x, splat(p.a, x)), splat(p.b, x))));
        case NchwcActivation::Logistic: return logistic_lane(x);
        case NchwcActivation::Tanh: return tanh_lane(x);
        default: return x;
    }
}

// ---- lanes: one float (a single output channel) or 8 (an AVX2 register) ----------------------------

FXP_ORT_LANE float load_lanes(const float* p, float) { return *p; }
FXP_ORT_LANE_AVX2 __m256 load_lanes(const float* p, __m256) { return _mm256_loadu_ps(p); }
FXP_ORT_LANE void store_lanes(float* p, float v) { *p = v; }
FXP_ORT_LANE_AVX2 void store_lanes(float* p, __m256 v) { _mm256_storeu_ps(p, v); }

// ---- convolution ------------------------------------------------------------------------------------

enum class NchwcConvAlgorithm : int { Nchwc = 0, Nchw = 1, Pointwise = 2, Depthwise = 3 };

struct NchwcConvParams {
    std::ptrdiff_t block = 8;
    std::ptrdiff_t batch = 1, groups = 1, in_channels = 1, filters = 1;   // per group, as in the ONNX node
    std::ptrdiff_t ih = 1, iw = 1, oh = 1, ow = 1, kh = 1, kw = 1, dh = 1, dw = 1, sh = 1, sw = 1;
    std::ptrdiff_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
    NchwcActivationParams activation;
};

// What MlasNchwcConv runs after the transformer's padding: the algorithm, the channels each group's sums
// loop over (padded to the block for Nchwc / Pointwise) and how many of them one kernel call sums.
struct NchwcConvPlan {
    NchwcConvAlgorithm algorithm = NchwcConvAlgorithm::Nchwc;
    std::ptrdiff_t channels = 1, chunk = 1;
};

inline std::ptrdiff_t round_up(std::ptrdiff_t v, std::ptrdiff_t m) { return (v + m - 1) / m * m; }

inline NchwcConvPlan nchwc_conv_plan(const NchwcConvParams& p) {
    NchwcConvPlan plan;
    if (p.groups > 1 && p.in_channels == 1 && p.filters == 1) {
        plan.algorithm = NchwcConvAlgorithm::Depthwise;
    } else if (p.in_channels >= p.block) {
        plan.channels = round_up(p.in_channels, p.block);
        const bool pointwise = p.kh == 1 && p.kw == 1 && p.pad_top == 0 && p.pad_left == 0 && p.pad_bottom == 0 &&
                               p.pad_right == 0;
        plan.algorithm = pointwise ? NchwcConvAlgorithm::Pointwise : NchwcConvAlgorithm::Nchwc;
        plan.chunk = pointwise ? 128 : p.block;   // MaximumInputChannelBatch of the pointwise algorithm
    } else {
        plan.algorithm = NchwcConvAlgorithm::Nchw;
        plan.channels = p.in_channels;
        plan.chunk = 1;
    }
    return plan;
}

// The convolution's operands as the kernels read them. Weights per (group, block of 8 filters) as
// [channel block][kh][kw][channel in block][8 filters] (MLAS's OIHWBiBo; blocks of one channel for the
// Nchw algorithm, of 8 otherwise; zero for padded channels and filters); depthwise: [group block][kh][kw][8].
// The bias as [group][filters rounded up to 8]; the output (and a fused sum) as [batch][group][filter
// block][oh][ow][8]. Input: the NCHW tensor (portable path, and the AVX2 Nchw algorithm), blocked as
// [batch][group][channel block][ih][iw][8] with zero channels (AVX2 Nchwc / Pointwise), or for depthwise
// [batch][group block][ih][iw][8].
struct NchwcConvOperands {
    const float* x;
    const float* w;
    const float* bias;
    const float* sum;
    float* y;
};

inline std::ptrdiff_t nchwc_weight_block(const NchwcConvPlan& plan) {
    return plan.algorithm == NchwcConvAlgorithm::Nchw ? 1 : 8;
}

// Index (in floats) of the weight vector of channel c, tap t.
inline std::ptrdiff_t nchwc_weight_index(std::ptrdiff_t c, std::ptrdiff_t t, std::ptrdiff_t taps, std::ptrdiff_t wb) {
    return ((c / wb * taps + t) * wb + c % wb) * 8;
}

// ---- the reference form: one output at a time, for 1 or 8 lanes (the portable path) -------------------

// One output (oh, ow) of one (image, group, filter block) for the lanes of V: the sums of the plan.
// x: the NCHW channels of the image's group.
template <class V>
FXP_ORT_LANE V nchwc_conv_sums(const NchwcConvParams& p, const NchwcConvPlan& plan, const float* x, const float* w,
                               std::ptrdiff_t oh, std::ptrdiff_t ow, V out, bool accumulate) {
    const std::ptrdiff_t plane = p.ih * p.iw, C = p.in_channels, taps = p.kh * p.kw, wb = nchwc_weight_block(plan);
    const std::ptrdiff_t ih0 = oh * p.sh - p.pad_top, iw0 = ow * p.sw - p.pad_left;
    for (std::ptrdiff_t c0 = 0; c0 < plan.channels; c0 += plan.chunk) {
        const std::ptrdiff_t c1 = std::min(plan.channels, c0 + plan.chunk);
        V acc = splat(0.0f, out);
        for (std::ptrdiff_t kh = 0; kh < p.kh; ++kh) {
            const std::ptrdiff_t ih = ih0 + kh * p.dh;
            if (ih < 0 || ih >= p.ih) continue;
            for (std::ptrdiff_t kw = 0; kw < p.kw; ++kw) {
                const std::ptrdiff_t iw = iw0 + kw * p.dw;
                if (iw < 0 || iw >= p.iw) continue;
                const float* xs = x + ih * p.iw + iw;
                for (std::ptrdiff_t c = c0; c < c1; ++c) {
                    const float v = c < C ? xs[c * plane] : 0.0f;
                    acc = fmadd(splat(v, out), load_lanes(w + nchwc_weight_index(c, kh * p.kw + kw, taps, wb), out), acc);
                }
            }
        }
        out = accumulate ? add(acc, out) : acc;
        accumulate = true;
    }
    return out;
}

template <class V>
FXP_ORT_LANE V nchwc_depthwise_sums(const NchwcConvParams& p, const float* x, const float* w, std::ptrdiff_t oh,
                                    std::ptrdiff_t ow, V out, bool accumulate) {
    V acc = splat(0.0f, out);
    const std::ptrdiff_t ih0 = oh * p.sh - p.pad_top, iw0 = ow * p.sw - p.pad_left;
    for (std::ptrdiff_t kh = 0; kh < p.kh; ++kh) {
        const std::ptrdiff_t ih = ih0 + kh * p.dh;
        if (ih < 0 || ih >= p.ih) continue;
        for (std::ptrdiff_t kw = 0; kw < p.kw; ++kw) {
            const std::ptrdiff_t iw = iw0 + kw * p.dw;
            if (iw < 0 || iw >= p.iw) continue;
            acc = fmadd(load_lanes(w + (kh * p.kw + kw) * 8, out), load_lanes(x + (ih * p.iw + iw) * 8, out), acc);
        }
    }
    return accumulate ? add(acc, out) : acc;
}

// Depthwise: the blocks run over 8 groups at a time; otherwise over 8 filters of one group.
struct NchwcBlocks {
    std::ptrdiff_t outer, blocks, w_block;
};

inline NchwcBlocks nchwc_blocks(const NchwcConvParams& p, const NchwcConvPlan& plan) {
    const std::ptrdiff_t taps = p.kh * p.kw;
    if (plan.algorithm == NchwcConvAlgorithm::Depthwise) return {1, round_up(p.groups, 8) / 8, taps * 8};
    return {p.groups, round_up(p.filters, 8) / 8, plan.channels * taps * 8};
}

inline void nchwc_conv_portable(const NchwcConvParams& p, const NchwcConvPlan& plan, const NchwcConvOperands& o) {
    const bool depthwise = plan.algorithm == NchwcConvAlgorithm::Depthwise;
    const NchwcBlocks nb = nchwc_blocks(p, plan);
    const std::ptrdiff_t out_plane = p.oh * p.ow;
    for (std::ptrdiff_t n = 0; n < p.batch; ++n)
        for (std::ptrdiff_t g = 0; g < nb.outer; ++g)
            for (std::ptrdiff_t b = 0; b < nb.blocks; ++b)
                for (std::ptrdiff_t lane = 0; lane < 8; ++lane) {
                    const std::ptrdiff_t block_index = (n * nb.outer + g) * nb.blocks + b;
                    const float* w = o.w + (g * nb.blocks + b) * nb.w_block + lane;
                    const float* x = depthwise ? o.x + (n * nb.blocks + b) * p.ih * p.iw * 8 + lane
                                               : o.x + (n * p.groups + g) * p.in_channels * p.ih * p.iw;
                    float* y = o.y + block_index * out_plane * 8 + lane;
                    const float* s = o.sum ? o.sum + block_index * out_plane * 8 + lane : nullptr;
                    for (std::ptrdiff_t oh = 0; oh < p.oh; ++oh)
                        for (std::ptrdiff_t ow = 0; ow < p.ow; ++ow) {
                            const std::ptrdiff_t at = (oh * p.ow + ow) * 8;
                            float out = s ? s[at] : 0.0f;
                            out = depthwise ? nchwc_depthwise_sums(p, x, w, oh, ow, out, s != nullptr)
                                            : nchwc_conv_sums(p, plan, x, w, oh, ow, out, s != nullptr);
                            if (o.bias) out = add(out, o.bias[(g * nb.blocks + b) * 8 + lane]);
                            y[at] = nchwc_activate(out, p.activation);
                        }
                }
}

// ---- the AVX2 form: tiles of up to 4 filter blocks x 3 outputs, as the assembly kernels keep them ------

// The taps of one tile: tap index and input pixel offset, valid for every output of the tile.
struct NchwcTaps {
    std::ptrdiff_t n = 0;
    std::vector<std::ptrdiff_t> t, d;
    explicit NchwcTaps(std::ptrdiff_t taps) : t(size_t(taps)), d(size_t(taps)) {}
};

// Input channel c at pixel q of the tile's image and group: x + (c / xb) * xc + q * xb + c % xb, with
// xb = 8 (blocked input) or 1 (NCHW, xc = the plane).
struct NchwcTile {
    const float* x;
    std::ptrdiff_t xb, xc;
    const float* w[4];
    std::ptrdiff_t taps, wb;
    std::ptrdiff_t pix[3];          // the outputs' input pixel at tap (0, 0)
    float* y[4];                    // the outputs' blocked row position, per filter block
    const float* bias[4];
    bool accumulate, last;
};

template <int FC, int OC>
FXP_ORT_AVX2 inline void nchwc_conv_tile(const NchwcTile& a, const NchwcTaps& taps, std::ptrdiff_t c0, std::ptrdiff_t c1,
                                         const NchwcActivationParams& act) {
    __m256 acc[FC][OC];
#pragma GCC unroll 4
    for (int f = 0; f < FC; ++f)
#pragma GCC unroll 3
        for (int j = 0; j < OC; ++j) acc[f][j] = _mm256_setzero_ps();
    for (std::ptrdiff_t k = 0; k < taps.n; ++k) {
        const std::ptrdiff_t t = taps.t[k], d = taps.d[k];
        for (std::ptrdiff_t c = c0; c < c1;) {
            // the channels of one input block: contiguous in x and in the weights (xb == wb: 8, or 1)
            const std::ptrdiff_t cb = c / a.xb, ci0 = c - cb * a.xb, count = std::min(c1, (cb + 1) * a.xb) - c;
            const float* xs[OC];
#pragma GCC unroll 3
            for (int j = 0; j < OC; ++j) xs[j] = a.x + cb * a.xc + (a.pix[j] + d) * a.xb + ci0;
            const std::ptrdiff_t wrow = ((cb * a.taps + t) * a.wb + ci0) * 8;
            for (std::ptrdiff_t i = 0; i < count; ++i) {
                __m256 xv[OC];
#pragma GCC unroll 3
                for (int j = 0; j < OC; ++j) xv[j] = _mm256_broadcast_ss(xs[j] + i);
#pragma GCC unroll 4
                for (int f = 0; f < FC; ++f) {
                    const __m256 wv = _mm256_loadu_ps(a.w[f] + wrow + i * 8);
#pragma GCC unroll 3
                    for (int j = 0; j < OC; ++j) acc[f][j] = _mm256_fmadd_ps(xv[j], wv, acc[f][j]);
                }
            }
            c += count;
        }
    }
#pragma GCC unroll 4
    for (int f = 0; f < FC; ++f) {
        const __m256 bias = a.bias[f] ? _mm256_loadu_ps(a.bias[f]) : _mm256_setzero_ps();
#pragma GCC unroll 3
        for (int j = 0; j < OC; ++j) {
            float* y = a.y[f] + j * 8;
            __m256 v = a.accumulate ? _mm256_add_ps(acc[f][j], _mm256_loadu_ps(y)) : acc[f][j];
            if (a.last) {
                if (a.bias[f]) v = _mm256_add_ps(v, bias);
                v = nchwc_activate(v, act);
            }
            _mm256_storeu_ps(y, v);
        }
    }
}

template <int FC>
FXP_ORT_AVX2 inline void nchwc_conv_tile_oc(int oc, const NchwcTile& a, const NchwcTaps& taps, std::ptrdiff_t c0,
                                            std::ptrdiff_t c1, const NchwcActivationParams& act) {
    if (oc == 3) nchwc_conv_tile<FC, 3>(a, taps, c0, c1, act);
    else if (oc == 2) nchwc_conv_tile<FC, 2>(a, taps, c0, c1, act);
    else nchwc_conv_tile<FC, 1>(a, taps, c0, c1, act);
}

FXP_ORT_AVX2 inline void nchwc_conv_tile_any(int fc, int oc, const NchwcTile& a, const NchwcTaps& taps,
                                             std::ptrdiff_t c0, std::ptrdiff_t c1, const NchwcActivationParams& act) {
    switch (fc) {
        case 4: nchwc_conv_tile_oc<4>(oc, a, taps, c0, c1, act); break;
        case 3: nchwc_conv_tile_oc<3>(oc, a, taps, c0, c1, act); break;
        case 2: nchwc_conv_tile_oc<2>(oc, a, taps, c0, c1, act); break;
        default: nchwc_conv_tile_oc<1>(oc, a, taps, c0, c1, act); break;
    }
}

// The valid taps of output column ow in a row whose valid kernel rows are [kh0, kh1).
inline void nchwc_row_taps(const NchwcConvParams& p, std::ptrdiff_t kh0, std::ptrdiff_t kh1, std::ptrdiff_t ow,
                           NchwcTaps& taps) {
    taps.n = 0;
    const std::ptrdiff_t iw0 = ow * p.sw - p.pad_left;
    for (std::ptrdiff_t kh = kh0; kh < kh1; ++kh)
        for (std::ptrdiff_t kw = 0; kw < p.kw; ++kw) {
            const std::ptrdiff_t iw = iw0 + kw * p.dw;
            if (iw < 0 || iw >= p.iw) continue;
            taps.t[taps.n] = kh * p.kw + kw;
            taps.d[taps.n] = kh * p.dh * p.iw + kw * p.dw;
            ++taps.n;
        }
}

// The rows of the kernel inside the image for output row oh: [kh0, kh1) (contiguous).
inline void nchwc_valid_rows(const NchwcConvParams& p, std::ptrdiff_t oh, std::ptrdiff_t& kh0, std::ptrdiff_t& kh1) {
    const std::ptrdiff_t ih0 = oh * p.sh - p.pad_top;
    kh0 = 0;
    while (kh0 < p.kh && ih0 + kh0 * p.dh < 0) ++kh0;
    kh1 = kh0;
    while (kh1 < p.kh && ih0 + kh1 * p.dh >= 0 && ih0 + kh1 * p.dh < p.ih) ++kh1;
}

// Output columns [lo, hi) whose kernel lies inside the image horizontally.
inline void nchwc_interior_columns(const NchwcConvParams& p, std::ptrdiff_t& lo, std::ptrdiff_t& hi) {
    lo = 0;
    while (lo < p.ow && lo * p.sw - p.pad_left < 0) ++lo;
    hi = lo;
    while (hi < p.ow && hi * p.sw - p.pad_left + (p.kw - 1) * p.dw < p.iw) ++hi;
}

FXP_ORT_AVX2 inline void nchwc_conv_avx2(const NchwcConvParams& p, const NchwcConvPlan& plan, const NchwcConvOperands& o,
                                         const float* x_blocked) {
    const NchwcBlocks nb = nchwc_blocks(p, plan);
    const std::ptrdiff_t out_plane = p.oh * p.ow, in_plane = p.ih * p.iw, taps_count = p.kh * p.kw;
    std::ptrdiff_t lo, hi;
    nchwc_interior_columns(p, lo, hi);
    NchwcTaps taps(p.kh * p.kw), inner(p.kh * p.kw);
    for (std::ptrdiff_t n = 0; n < p.batch; ++n)
        for (std::ptrdiff_t g = 0; g < nb.outer; ++g)
            for (std::ptrdiff_t b0 = 0; b0 < nb.blocks; b0 += 4) {
                const int fc = int(std::min<std::ptrdiff_t>(4, nb.blocks - b0));
                NchwcTile a;
                if (plan.algorithm == NchwcConvAlgorithm::Nchw) {
                    a.x = o.x + (n * p.groups + g) * p.in_channels * in_plane;
                    a.xb = 1;
                    a.xc = in_plane;
                } else {
                    a.x = x_blocked + (n * p.groups + g) * plan.channels * in_plane;
                    a.xb = 8;
                    a.xc = in_plane * 8;
                }
                a.taps = taps_count;
                a.wb = nchwc_weight_block(plan);
                for (int f = 0; f < fc; ++f) {
                    a.w[f] = o.w + (g * nb.blocks + b0 + f) * nb.w_block;
                    a.bias[f] = o.bias ? o.bias + (g * nb.blocks + b0 + f) * 8 : nullptr;
                }
                for (std::ptrdiff_t oh = 0; oh < p.oh; ++oh) {
                    std::ptrdiff_t kh0, kh1;
                    nchwc_valid_rows(p, oh, kh0, kh1);
                    const std::ptrdiff_t row0 = (oh * p.sh - p.pad_top) * p.iw - p.pad_left;
                    if (lo < hi) nchwc_row_taps(p, kh0, kh1, lo, inner);   // every kernel column is inside
                    for (std::ptrdiff_t c0 = 0; c0 < plan.channels; c0 += plan.chunk) {
                        const std::ptrdiff_t c1 = std::min(plan.channels, c0 + plan.chunk);
                        a.accumulate = c0 > 0 || o.sum != nullptr;
                        a.last = c1 == plan.channels;
                        std::ptrdiff_t ow = 0;
                        while (ow < p.ow) {
                            int oc = 1;
                            const bool interior = ow >= lo && ow < hi;
                            if (interior) oc = int(std::min<std::ptrdiff_t>(3, hi - ow));
                            else nchwc_row_taps(p, kh0, kh1, ow, taps);
                            for (int j = 0; j < oc; ++j) a.pix[j] = row0 + (ow + j) * p.sw;
                            for (int f = 0; f < fc; ++f)
                                a.y[f] = o.y + (((n * nb.outer + g) * nb.blocks + b0 + f) * out_plane + oh * p.ow + ow) * 8;
                            nchwc_conv_tile_any(fc, oc, a, interior ? inner : taps, c0, c1, p.activation);
                            ow += oc;
                        }
                    }
                }
            }
}

// Depthwise: 8 groups per vector, up to 4 outputs at a time (independent chains).
template <int OC>
FXP_ORT_AVX2 inline void nchwc_depthwise_tile(const float* x, const float* w, const std::ptrdiff_t* pix,
                                              const NchwcTaps& taps, float* y, const float* s, const float* bias,
                                              const NchwcActivationParams& act) {
    __m256 acc[OC];
#pragma GCC unroll 4
    for (int j = 0; j < OC; ++j) acc[j] = _mm256_setzero_ps();
    for (std::ptrdiff_t k = 0; k < taps.n; ++k) {
        const __m256 wv = _mm256_loadu_ps(w + taps.t[k] * 8);
#pragma GCC unroll 4
        for (int j = 0; j < OC; ++j) acc[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (pix[j] + taps.d[k]) * 8), acc[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < OC; ++j) {
        __m256 v = s ? _mm256_add_ps(acc[j], _mm256_loadu_ps(s + j * 8)) : acc[j];
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
        _mm256_storeu_ps(y + j * 8, nchwc_activate(v, act));
    }
}

FXP_ORT_AVX2 inline void nchwc_depthwise_avx2(const NchwcConvParams& p, const NchwcConvPlan& plan,
                                              const NchwcConvOperands& o) {
    const NchwcBlocks nb = nchwc_blocks(p, plan);
    const std::ptrdiff_t out_plane = p.oh * p.ow, in_plane = p.ih * p.iw;
    std::ptrdiff_t lo, hi;
    nchwc_interior_columns(p, lo, hi);
    NchwcTaps taps(p.kh * p.kw), inner(p.kh * p.kw);
    for (std::ptrdiff_t n = 0; n < p.batch; ++n)
        for (std::ptrdiff_t b = 0; b < nb.blocks; ++b) {
            const float* x = o.x + (n * nb.blocks + b) * in_plane * 8;
            const float* w = o.w + b * nb.w_block;
            const float* bias = o.bias ? o.bias + b * 8 : nullptr;
            const std::ptrdiff_t block_index = n * nb.blocks + b;
            for (std::ptrdiff_t oh = 0; oh < p.oh; ++oh) {
                std::ptrdiff_t kh0, kh1;
                nchwc_valid_rows(p, oh, kh0, kh1);
                const std::ptrdiff_t row0 = (oh * p.sh - p.pad_top) * p.iw - p.pad_left;
                if (lo < hi) nchwc_row_taps(p, kh0, kh1, lo, inner);
                std::ptrdiff_t ow = 0;
                while (ow < p.ow) {
                    int oc = 1;
                    const bool interior = ow >= lo && ow < hi;
                    if (interior) oc = int(std::min<std::ptrdiff_t>(4, hi - ow));
                    else nchwc_row_taps(p, kh0, kh1, ow, taps);
                    const NchwcTaps& use = interior ? inner : taps;
                    std::ptrdiff_t pix[4];
                    for (int j = 0; j < oc; ++j) pix[j] = row0 + (ow + j) * p.sw;
                    const std::ptrdiff_t at = (block_index * out_plane + oh * p.ow + ow) * 8;
                    float* y = o.y + at;
                    const float* s = o.sum ? o.sum + at : nullptr;
                    switch (oc) {
                        case 4: nchwc_depthwise_tile<4>(x, w, pix, use, y, s, bias, p.activation); break;
                        case 3: nchwc_depthwise_tile<3>(x, w, pix, use, y, s, bias, p.activation); break;
                        case 2: nchwc_depthwise_tile<2>(x, w, pix, use, y, s, bias, p.activation); break;
                        default: nchwc_depthwise_tile<1>(x, w, pix, use, y, s, bias, p.activation); break;
                    }
                    ow += oc;
                }
            }
        }
}

// ReorderInput / ReorderOutput of one block: `count` (<= 8) NCHW planes of `plane` floats, `stride` apart,
// to / from the lanes of a [plane][8] block (lanes from `count` on are left as they are). Copies only.
inline void nchwc_pack_planes(const float* src, std::ptrdiff_t stride, std::ptrdiff_t count, std::ptrdiff_t plane,
                              float* dst) {
    if (count == 8) {
        for (std::ptrdiff_t i = 0; i < plane; ++i)
            for (std::ptrdiff_t l = 0; l < 8; ++l) dst[i * 8 + l] = src[l * stride + i];
        return;
    }
    for (std::ptrdiff_t i = 0; i < plane; ++i)
        for (std::ptrdiff_t l = 0; l < count; ++l) dst[i * 8 + l] = src[l * stride + i];
}

inline void nchwc_unpack_planes(const float* src, std::ptrdiff_t count, std::ptrdiff_t plane, float* dst,
                                std::ptrdiff_t stride) {
    if (count == 8) {
        for (std::ptrdiff_t i = 0; i < plane; ++i)
            for (std::ptrdiff_t l = 0; l < 8; ++l) dst[l * stride + i] = src[i * 8 + l];
        return;
    }
    for (std::ptrdiff_t i = 0; i < plane; ++i)
        for (std::ptrdiff_t l = 0; l < count; ++l) dst[l * stride + i] = src[i * 8 + l];
}

// MlasNchwcConv with the transformer's reordering: x NCHW [batch, groups * in_channels, ih, iw], w
// [groups * filters, in_channels, kh, kw], bias [groups * filters] or null, sum (the fused Add's
// other operand) NCHW like y or null; y NCHW [batch, groups * filters, oh, ow].
inline void nchwc_conv(const NchwcConvParams& p, const float* x, const float* w, const float* bias, const float* sum,
                       float* y, Isa isa) {
    const NchwcConvPlan plan = nchwc_conv_plan(p);
    const bool depthwise = plan.algorithm == NchwcConvAlgorithm::Depthwise;
    const NchwcBlocks nb = nchwc_blocks(p, plan);
    const std::ptrdiff_t taps = p.kh * p.kw, in_plane = p.ih * p.iw, out_plane = p.oh * p.ow;
    const std::ptrdiff_t out_channels = p.groups * p.filters, blocks = nb.blocks, outer = nb.outer;
    const std::ptrdiff_t wb = nchwc_weight_block(plan);
    // the output channel of lane l of block b of group g (-1: padding)
    auto channel_of = [&](std::ptrdiff_t g, std::ptrdiff_t b, std::ptrdiff_t l) -> std::ptrdiff_t {
        const std::ptrdiff_t f = b * 8 + l;
        if (depthwise) return f < p.groups ? f : -1;
        return f < p.filters ? g * p.filters + f : -1;
    };
    // packed weights and bias (order-neutral copies)
    std::vector<float> wp(size_t(outer * blocks * nb.w_block), 0.0f), bp;
    for (std::ptrdiff_t g = 0; g < outer; ++g)
        for (std::ptrdiff_t b = 0; b < blocks; ++b)
            for (std::ptrdiff_t l = 0; l < 8; ++l) {
                const std::ptrdiff_t o = channel_of(g, b, l);
                if (o < 0) continue;
                float* dst = wp.data() + (g * blocks + b) * nb.w_block + l;
                if (depthwise) {
                    for (std::ptrdiff_t t = 0; t < taps; ++t) dst[t * 8] = w[o * taps + t];
                } else {
                    for (std::ptrdiff_t c = 0; c < p.in_channels; ++c)
                        for (std::ptrdiff_t t = 0; t < taps; ++t)
                            dst[nchwc_weight_index(c, t, taps, wb)] = w[(o * p.in_channels + c) * taps + t];
                }
            }
    if (bias) {
        bp.assign(size_t(outer * blocks * 8), 0.0f);
        for (std::ptrdiff_t g = 0; g < outer; ++g)
            for (std::ptrdiff_t b = 0; b < blocks; ++b)
                for (std::ptrdiff_t l = 0; l < 8; ++l) {
                    const std::ptrdiff_t o = channel_of(g, b, l);
                    if (o >= 0) bp[size_t((g * blocks + b) * 8 + l)] = bias[o];
                }
    }
    // blocked input (depthwise; and the AVX2 Nchwc / Pointwise algorithms), blocked sum and output
    std::vector<float> xb, sb, yb(size_t(p.batch * outer * blocks * out_plane * 8));
    if (depthwise) {
        xb.assign(size_t(p.batch * blocks * in_plane * 8), 0.0f);
        for (std::ptrdiff_t n = 0; n < p.batch; ++n)
            for (std::ptrdiff_t b = 0; b < blocks; ++b)
                nchwc_pack_planes(x + (n * p.groups + b * 8) * in_plane, in_plane, std::min<std::ptrdiff_t>(8, p.groups - b * 8),
                                  in_plane, xb.data() + (n * blocks + b) * in_plane * 8);
    } else if (isa == Isa::Avx2 && plan.algorithm != NchwcConvAlgorithm::Nchw) {
        xb.assign(size_t(p.batch * p.groups * plan.channels * in_plane), 0.0f);   // ReorderInput (zero channels)
        for (std::ptrdiff_t n = 0; n < p.batch; ++n)
            for (std::ptrdiff_t g = 0; g < p.groups; ++g)
                for (std::ptrdiff_t c = 0; c < p.in_channels; c += 8)
                    nchwc_pack_planes(x + ((n * p.groups + g) * p.in_channels + c) * in_plane, in_plane,
                                      std::min<std::ptrdiff_t>(8, p.in_channels - c), in_plane,
                                      xb.data() + ((n * p.groups + g) * plan.channels + c) * in_plane);
    }
    auto blocked = [&](std::ptrdiff_t n, std::ptrdiff_t g, std::ptrdiff_t b) {
        return ((n * outer + g) * blocks + b) * out_plane * 8;
    };
    if (sum) {
        sb.assign(yb.size(), 0.0f);
        for (std::ptrdiff_t n = 0; n < p.batch; ++n)
            for (std::ptrdiff_t g = 0; g < outer; ++g)
                for (std::ptrdiff_t b = 0; b < blocks; ++b)
                    for (std::ptrdiff_t l = 0; l < 8; ++l) {
                        const std::ptrdiff_t o = channel_of(g, b, l);
                        if (o < 0) continue;
                        const float* src = sum + (n * out_channels + o) * out_plane;
                        float* dst = sb.data() + blocked(n, g, b) + l;
                        for (std::ptrdiff_t i = 0; i < out_plane; ++i) dst[i * 8] = src[i];
                    }
    }
    NchwcConvOperands ops{depthwise ? xb.data() : x, wp.data(), bias ? bp.data() : nullptr, sum ? sb.data() : nullptr,
                          yb.data()};
    if (isa == Isa::Avx2) {
        if (depthwise) {
            nchwc_depthwise_avx2(p, plan, ops);
        } else {
            if (sum) yb = sb;   // the AVX2 tiles accumulate into the output buffer
            ops.sum = sum ? yb.data() : nullptr;
            nchwc_conv_avx2(p, plan, ops, xb.data());
        }
    } else {
        nchwc_conv_portable(p, plan, ops);
    }
    // ReorderOutput: the real channels back to NCHW (lane l of block b holds channel_of(g, b, l), consecutive)
    for (std::ptrdiff_t n = 0; n < p.batch; ++n)
        for (std::ptrdiff_t g = 0; g < outer; ++g)
            for (std::ptrdiff_t b = 0; b < blocks; ++b) {
                const std::ptrdiff_t o = channel_of(g, b, 0);
                const std::ptrdiff_t count = depthwise ? std::min<std::ptrdiff_t>(8, p.groups - b * 8)
                                                       : std::min<std::ptrdiff_t>(8, p.filters - b * 8);
                nchwc_unpack_planes(yb.data() + blocked(n, g, b), count, out_plane, y + (n * out_channels + o) * out_plane,
                                    out_plane);
            }
}

// ---- pooling ------------------------------------------------------------------------------------------

enum class NchwcPoolKind : int { Max = 0, AverageExcludePad = 1, AverageIncludePad = 2 };

struct NchwcPoolParams {
    std::ptrdiff_t planes = 1;   // batch * channels: each plane pools alone
    std::ptrdiff_t ih = 1, iw = 1, oh = 1, ow = 1, kh = 1, kw = 1, dh = 1, dw = 1, sh = 1, sw = 1;
    std::ptrdiff_t pad_top = 0, pad_left = 0;
    NchwcPoolKind kind = NchwcPoolKind::Max;
};

template <class V>
FXP_ORT_LANE void nchwc_pool_lanes(const NchwcPoolParams& p, const float* x, float* y, std::ptrdiff_t lane0) {
    const V tag{};
    const std::ptrdiff_t blocks = round_up(p.planes, 8) / 8;
    const float initial = p.kind == NchwcPoolKind::Max ? -std::numeric_limits<float>::max() : 0.0f;
    const V kernel_size = splat(float(p.kh * p.kw), tag);
    for (std::ptrdiff_t b = 0; b < blocks; ++b) {
        const float* xb = x + b * p.ih * p.iw * 8 + lane0;
        float* yb = y + b * p.oh * p.ow * 8 + lane0;
        for (std::ptrdiff_t oh = 0; oh < p.oh; ++oh)
            for (std::ptrdiff_t ow = 0; ow < p.ow; ++ow) {
                V acc = splat(initial, tag);
                std::ptrdiff_t count = 0;
                const std::ptrdiff_t ih0 = oh * p.sh - p.pad_top, iw0 = ow * p.sw - p.pad_left;
                for (std::ptrdiff_t kh = 0; kh < p.kh; ++kh) {
                    const std::ptrdiff_t ih = ih0 + kh * p.dh;
                    if (ih < 0 || ih >= p.ih) continue;
                    for (std::ptrdiff_t kw = 0; kw < p.kw; ++kw) {
                        const std::ptrdiff_t iw = iw0 + kw * p.dw;
                        if (iw < 0 || iw >= p.iw) continue;
                        const V v = load_lanes(xb + (ih * p.iw + iw) * 8, tag);
                        acc = p.kind == NchwcPoolKind::Max ? max_ps(acc, v) : add(acc, v);
                        ++count;
                    }
                }
                if (p.kind == NchwcPoolKind::AverageExcludePad) acc = div(acc, splat(float(count), tag));
                else if (p.kind == NchwcPoolKind::AverageIncludePad) acc = div(acc, kernel_size);
                store_lanes(yb + (oh * p.ow + ow) * 8, acc);
            }
    }
}

FXP_ORT_AVX2 inline void nchwc_pool_avx2(const NchwcPoolParams& p, const float* x, float* y) {
    nchwc_pool_lanes<__m256>(p, x, y, 0);
}

inline void nchwc_pool_portable(const NchwcPoolParams& p, const float* x, float* y) {
    for (std::ptrdiff_t lane = 0; lane < 8; ++lane) nchwc_pool_lanes<float>(p, x, y, lane);
}

// MlasNchwcPool over NCHW planes x [planes, ih, iw] -> y [planes, oh, ow] (ReorderInput / ReorderOutput
// around it are copies).
inline void nchwc_pool(const NchwcPoolParams& p, const float* x, float* y, Isa isa) {
    const std::ptrdiff_t blocks = round_up(p.planes, 8) / 8, in_plane = p.ih * p.iw, out_plane = p.oh * p.ow;
    std::vector<float> xb(size_t(blocks * in_plane * 8), 0.0f), yb(size_t(blocks * out_plane * 8));
    for (std::ptrdiff_t b = 0; b < blocks; ++b)
        nchwc_pack_planes(x + b * 8 * in_plane, in_plane, std::min<std::ptrdiff_t>(8, p.planes - b * 8), in_plane,
                          xb.data() + b * in_plane * 8);
    if (isa == Isa::Avx2) nchwc_pool_avx2(p, xb.data(), yb.data());
    else nchwc_pool_portable(p, xb.data(), yb.data());
    for (std::ptrdiff_t b = 0; b < blocks; ++b)
        nchwc_unpack_planes(yb.data() + b * out_plane * 8, std::min<std::ptrdiff_t>(8, p.planes - b * 8), out_plane,
                            y + b * 8 * out_plane, out_plane);
}

}  // namespace fxp::ort
