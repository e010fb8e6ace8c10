// MLAS's float32 convolution (MlasConvPrepare / MlasConv, onnxruntime/core/mlas/lib/convolve.cpp) as
// ONNX Runtime's Conv<float> kernel (core/providers/cpu/nn/conv.cc) runs it on x86 with AVX2 + FMA3
// when the graph is not rewritten to NCHWc (graph optimizations below ORT_ENABLE_ALL's layout level).
//
// The algorithm MlasConvPrepare picks decides the summation order of every output:
//   GemmDirect      1x1 (or a kernel spanning the input width / height with one input channel),
//                   stride 1, no padding: one SGEMM on the input as it is (mlas_sgemm.hpp).
//   ExpandThenGemm  filters > output pixels: the whole im2col matrix, then one SGEMM.
//   ExpandThenGemmSegmented (everything else): the output pixels cut into thread segments
//                   (batch 1, group 1) or one segment per image and group; a segment is cut into
//                   N slices and K blocks (128 x 128 reshaped as in SGEMM by the segment width);
//                   each (slice, block) is an im2col panel and one unpacked SGEMM call (beta 0 for
//                   the first block, then 1), so one filter per group (depthwise) takes the M = 1
//                   kernel of separate multiplies and adds.
// The bias is added after the sums (MlasActivation: y = y + bias), then an activation if fused.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/onnxruntime/lanes.hpp"
#include "ops/onnxruntime/mlas_sgemm.hpp"

namespace fxp::ort {

struct ConvParams {
    int dims = 2;                                         // 1..3 spatial dimensions
    std::ptrdiff_t batch = 1, groups = 1, in_channels = 1;   // in_channels per group
    std::ptrdiff_t filters = 1;                           // output channels per group
    std::array<std::ptrdiff_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, dilation{1, 1, 1}, stride{1, 1, 1};
    std::array<std::ptrdiff_t, 6> pad{0, 0, 0, 0, 0, 0};   // heads then tails
    int threads = 1;                                      // ORT's intra-op thread count
};

enum class ConvAlgorithm : int { GemmDirect = 0, ExpandThenGemm = 1, ExpandThenGemmSegmented = 2 };

struct ConvPlan {
    ConvAlgorithm algorithm = ConvAlgorithm::ExpandThenGemmSegmented;
    bool trans_b = false;              // GemmDirect
    std::ptrdiff_t ldb = 0;            // GemmDirect
    std::ptrdiff_t thread_stride_n = 0;  // ExpandThenGemmSegmented, batch 1 and group 1
    std::ptrdiff_t input_size = 1, output_size = 1, K = 1;
    // 2-D geometry after MLAS's promotion of 1-D convolutions ([1, W]); 3-D kept as is
    int dims = 2;
    std::array<std::ptrdiff_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, dilation{1, 1, 1}, stride{1, 1, 1};
    std::array<std::ptrdiff_t, 3> pad_head{0, 0, 0};
};

// MlasConvPrepare
inline ConvPlan mlas_conv_prepare(const ConvParams& c) {
    ConvPlan p;
    bool strides_one = true, dilations_one = true, pad_zero = true;
    p.K = c.in_channels;
    for (int d = 0; d < c.dims; ++d) {
        p.input_size *= c.in[size_t(d)];
        p.output_size *= c.out[size_t(d)];
        p.K *= c.kernel[size_t(d)];
        strides_one &= c.stride[size_t(d)] == 1;
        dilations_one &= c.dilation[size_t(d)] == 1;
        pad_zero &= c.pad[size_t(d)] == 0 && c.pad[size_t(d + c.dims)] == 0;
    }
    p.dims = c.dims;
    for (int d = 0; d < c.dims; ++d) {
        p.in[size_t(d)] = c.in[size_t(d)];
        p.out[size_t(d)] = c.out[size_t(d)];
        p.kernel[size_t(d)] = c.kernel[size_t(d)];
        p.dilation[size_t(d)] = c.dilation[size_t(d)];
        p.stride[size_t(d)] = c.stride[size_t(d)];
        p.pad_head[size_t(d)] = c.pad[size_t(d)];
    }
    if (c.dims == 1) {   // promoted to 2-D: a height of 1
        p.dims = 2;
        p.in = {1, c.in[0], 1};
        p.out = {1, c.out[0], 1};
        p.kernel = {1, c.kernel[0], 1};
        p.dilation = {1, c.dilation[0], 1};
        p.stride = {1, c.stride[0], 1};
        p.pad_head = {0, c.pad[0], 0};
    }
    if (strides_one && pad_zero) {
        if (p.K == c.in_channels) {
            p.algorithm = ConvAlgorithm::GemmDirect;
            p.trans_b = false;
            p.ldb = p.output_size;
            return p;
        }
        if (p.dims == 2 && dilations_one && c.in_channels == 1) {
            if (p.kernel[1] == p.in[1]) {
                p.algorithm = ConvAlgorithm::GemmDirect;
                p.trans_b = true;
                p.ldb = p.in[1];
                return p;
            }
            if (p.kernel[0] == p.in[0] && p.kernel[1] == 1) {
                p.algorithm = ConvAlgorithm::GemmDirect;
                p.trans_b = false;
                p.ldb = p.in[1];
                return p;
            }
        }
    }
    if (c.filters > p.output_size) {
        p.algorithm = ConvAlgorithm::ExpandThenGemm;
        return p;
    }
    const double complexity = double(c.filters) * double(p.output_size) * double(p.K);
    std::ptrdiff_t target;
    if (complexity < kSgemmThreadComplexity * double(kMlasMaximumThreadCount))
        target = std::ptrdiff_t(complexity / kSgemmThreadComplexity) + 1;
    else
        target = kMlasMaximumThreadCount;
    if (target >= c.threads) target = c.threads;
    std::ptrdiff_t stride_n = p.output_size / target;
    if (stride_n * target != p.output_size) stride_n++;
    if (target > 1) {
        stride_n = (stride_n + kSgemmThreadAlign - 1) & ~(kSgemmThreadAlign - 1);
        if (stride_n >= p.output_size) target = 1;
    }
    p.algorithm = ConvAlgorithm::ExpandThenGemmSegmented;
    p.thread_stride_n = stride_n;
    return p;
}

// MlasConvIm2Col / MlasConvVol2Col: rows [k0, k0 + kc) of the im2col matrix, columns [n0, n0 + nc)
// (zeros in the padding), into col[kc x nc].
inline void conv_im2col(const ConvPlan& p, const float* input, std::ptrdiff_t k0, std::ptrdiff_t kc, std::ptrdiff_t n0,
                        std::ptrdiff_t nc, float* col) {
    const bool three = p.dims == 3;
    // as 3-D (a depth of 1 for 2-D)
    const std::ptrdiff_t ID = three ? p.in[0] : 1, IH = three ? p.in[1] : p.in[0], IW = three ? p.in[2] : p.in[1];
    const std::ptrdiff_t OH = three ? p.out[1] : p.out[0], OW = three ? p.out[2] : p.out[1];
    const std::ptrdiff_t KD = three ? p.kernel[0] : 1, KH = three ? p.kernel[1] : p.kernel[0], KW = three ? p.kernel[2] : p.kernel[1];
    const std::ptrdiff_t SD = three ? p.stride[0] : 1, SH = three ? p.stride[1] : p.stride[0], SW = three ? p.stride[2] : p.stride[1];
    const std::ptrdiff_t DD = three ? p.dilation[0] : 1, DH = three ? p.dilation[1] : p.dilation[0], DW = three ? p.dilation[2] : p.dilation[1];
    const std::ptrdiff_t PD = three ? p.pad_head[0] : 0, PH = three ? p.pad_head[1] : p.pad_head[0], PW = three ? p.pad_head[2] : p.pad_head[1];
    for (std::ptrdiff_t r = 0; r < kc; ++r) {
        const std::ptrdiff_t k = k0 + r;
        const std::ptrdiff_t x = k % KW, y = (k / KW) % KH, z = (k / (KW * KH)) % KD, c = k / (KW * KH * KD);
        const float* in_c = input + c * p.input_size;
        float* row = col + r * nc;
        std::ptrdiff_t j = 0, ox = n0 % OW, oy = (n0 / OW) % OH, oz = n0 / (OW * OH);
        while (j < nc) {
            // one output row (or its part): a fixed input row, columns ix = ox * SW + x * DW - PW
            const std::ptrdiff_t run = std::min(OW - ox, nc - j);
            const std::ptrdiff_t iz = oz * SD + z * DD - PD, iy = oy * SH + y * DH - PH;
            float* dst = row + j;
            if (iz < 0 || iz >= ID || iy < 0 || iy >= IH) {
                std::fill(dst, dst + run, 0.0f);
            } else {
                const float* src = in_c + (iz * IH + iy) * IW;
                const std::ptrdiff_t ix0 = ox * SW + x * DW - PW;
                if (SW == 1) {
                    // columns before the input, inside it (a copy), after it
                    const std::ptrdiff_t lead = std::min(run, std::max<std::ptrdiff_t>(0, -ix0));
                    const std::ptrdiff_t body = std::max<std::ptrdiff_t>(0, std::min(run, IW - ix0) - lead);
                    std::fill(dst, dst + lead, 0.0f);
                    std::memcpy(dst + lead, src + ix0 + lead, size_t(body) * sizeof(float));
                    std::fill(dst + lead + body, dst + run, 0.0f);
                } else {
                    for (std::ptrdiff_t t = 0; t < run; ++t) {
                        const std::ptrdiff_t ix = ix0 + t * SW;
                        dst[t] = (ix >= 0 && ix < IW) ? src[ix] : 0.0f;
                    }
                }
            }
            j += run;
            ox += run;
            if (ox == OW) {
                ox = 0;
                if (++oy == OH) {
                    oy = 0;
                    ++oz;
                }
            }
        }
    }
}

// MlasActivation with the identity activation: y += bias per filter row.
inline void conv_add_bias(float* out, const float* bias, std::ptrdiff_t filters, std::ptrdiff_t n0, std::ptrdiff_t nc,
                          std::ptrdiff_t ldc) {
    if (!bias) return;
    for (std::ptrdiff_t f = 0; f < filters; ++f)
        for (std::ptrdiff_t j = 0; j < nc; ++j) out[f * ldc + n0 + j] = add(out[f * ldc + n0 + j], bias[f]);
}

// MlasConvOperation: output columns [start, start + count) of one image and group.
inline void mlas_conv_operation(const ConvParams& c, const ConvPlan& p, const float* input, const float* filter,
                                const float* bias, float* output, std::ptrdiff_t start, std::ptrdiff_t count,
                                std::vector<float>& col, Isa isa) {
    std::ptrdiff_t stride_n = kSgemmStrideN, stride_k = kSgemmStrideK;
    if (count >= p.K) {
        while (stride_k / 2 >= p.K) {
            stride_n *= 2;
            stride_k /= 2;
        }
    } else {
        while (stride_n > 16 && stride_n / 2 >= count) {
            stride_k *= 2;
            stride_n /= 2;
        }
    }
    for (std::ptrdiff_t n = 0; n < count; n += stride_n) {
        const std::ptrdiff_t nc = std::min(count - n, stride_n);
        float beta = 0.0f;
        for (std::ptrdiff_t k = 0; k < p.K; k += stride_k) {
            const std::ptrdiff_t kc = std::min(p.K - k, stride_k);
            col.resize(size_t(kc * nc));
            conv_im2col(p, input, k, kc, start + n, nc, col.data());
            Sgemm s;
            s.M = c.filters;
            s.N = nc;
            s.K = kc;
            s.A = filter + k;
            s.lda = p.K;
            s.B = col.data();
            s.ldb = nc;
            s.beta = beta;
            s.C = output + start + n;
            s.ldc = p.output_size;
            mlas_sgemm_operation(s, isa);
            beta = 1.0f;
        }
        conv_add_bias(output, bias, c.filters, start + n, nc, p.output_size);
    }
}

// Conv<float>::Compute -> MlasConv. x: [batch, groups * in_channels, in...]; w: [groups * filters,
// in_channels, kernel...]; bias: groups * filters or null; y: [batch, groups * filters, out...].
inline void mlas_conv(const ConvParams& c, const float* x, const float* w, const float* bias, float* y, Isa isa) {
    const ConvPlan p = mlas_conv_prepare(c);
    const std::ptrdiff_t in_group = c.in_channels * p.input_size, out_group = c.filters * p.output_size;
    const std::ptrdiff_t filter_group = c.filters * p.K;
    std::vector<float> col;
    const bool many = c.batch > 1 || c.groups > 1;
    for (std::ptrdiff_t n = 0; n < c.batch; ++n)
        for (std::ptrdiff_t g = 0; g < c.groups; ++g) {
            const float* input = x + (n * c.groups + g) * in_group;
            const float* filter = w + g * filter_group;
            const float* b = bias ? bias + g * c.filters : nullptr;
            float* output = y + (n * c.groups + g) * out_group;
            switch (p.algorithm) {
                case ConvAlgorithm::GemmDirect: {
                    Sgemm s;
                    s.trans_b = p.trans_b;
                    s.M = c.filters;
                    s.N = p.output_size;
                    s.K = p.K;
                    s.A = filter;
                    s.lda = p.K;
                    s.B = input;
                    s.ldb = p.ldb;
                    s.C = output;
                    s.ldc = p.output_size;
                    // several images or groups: one unthreaded SGEMM each; else the threaded MlasGemm
                    if (many) mlas_sgemm_operation(s, isa);
                    else mlas_gemm(s, false, c.threads, isa);
                    conv_add_bias(output, b, c.filters, 0, p.output_size, p.output_size);
                    break;
                }
                case ConvAlgorithm::ExpandThenGemm: {
                    col.resize(size_t(p.K * p.output_size));
                    conv_im2col(p, input, 0, p.K, 0, p.output_size, col.data());
                    Sgemm s;
                    s.M = c.filters;
                    s.N = p.output_size;
                    s.K = p.K;
                    s.A = filter;
                    s.lda = p.K;
                    s.B = col.data();
                    s.ldb = p.output_size;
                    s.C = output;
                    s.ldc = p.output_size;
                    mlas_gemm(s, false, c.threads, isa);
                    conv_add_bias(output, b, c.filters, 0, p.output_size, p.output_size);
                    break;
                }
                case ConvAlgorithm::ExpandThenGemmSegmented: {
                    if (many || p.thread_stride_n >= p.output_size) {
                        mlas_conv_operation(c, p, input, filter, b, output, 0, p.output_size, col, isa);
                    } else {
                        for (std::ptrdiff_t s0 = 0; s0 < p.output_size; s0 += p.thread_stride_n)
                            mlas_conv_operation(c, p, input, filter, b, output, s0,
                                                std::min(p.thread_stride_n, p.output_size - s0), col, isa);
                    }
                    break;
                }
            }
        }
}

}  // namespace fxp::ort
