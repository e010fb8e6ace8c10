// Float32 direct-to-registers convolution for small images. See conv_float.hpp for the design.
#include "kernels/conv_float.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/features.hpp"
#include "kernels/threads.hpp"

namespace fxp::kern {

PackedFloatConv pack_float_conv_weights(const float* w, Index o, Index cg, Index kh, Index kw, Index groups) {
    PackedFloatConv p;
    p.out_channels = o;
    p.in_per_group = cg;
    p.kernel_h = kh;
    p.kernel_w = kw;
    p.groups = groups;
    const Index og = o / groups, k = cg * kh * kw;
    p.wt.resize(size_t(o * k));
    for (Index g = 0; g < groups; ++g)
        for (Index r = 0; r < og; ++r)
            for (Index j = 0; j < k; ++j) p.wt[size_t(g * k * og + j * og + r)] = w[(g * og + r) * k + j];
    if (cg == 1 && og == 1 && groups > 1) {
        const Index taps = kh * kw;
        p.dw_pad = round_up(groups, 8);
        p.dw.assign(size_t(taps * p.dw_pad), 0.0f);
        for (Index c = 0; c < groups; ++c)
            for (Index t = 0; t < taps; ++t) p.dw[size_t(t * p.dw_pad + c)] = w[c * taps + t];
    }
    if (og >= 8) {
        p.out_pad = round_up(og, 8);
        p.wide.assign(size_t(groups * k * p.out_pad), 0.0f);
        for (Index g = 0; g < groups; ++g)
            for (Index r = 0; r < og; ++r)
                for (Index j = 0; j < k; ++j) p.wide[size_t((g * k + j) * p.out_pad + r)] = w[(g * og + r) * k + j];
    }
    return p;
}

namespace {

constexpr int kRows = 6;     // output channels per micro-tile (12 accumulators)
constexpr int kLanes = 8;    // pixels per segment (one ymm); a tile is two segments

// The pixels of one image are covered by segments of 8 lanes. Lane l of segment s reads term j at
// src[seg[s] + koff[j] + l] and is output pixel dst[8 s + l] (-1: a lane computed only to keep
// loads contiguous, dropped).
struct TileSource {
    const float* src;
    const Index* koff;
    Index k;
    const Index* seg;
    const Index* dst;
};

inline float activate(float v, const FloatEpilogue& ep) {
    switch (ep.activation) {
        case FloatActivation::ReLU: return v < 0.0f ? 0.0f : v;   // NaN stays NaN, as in NumPy
        case FloatActivation::Clip: return v < ep.lo ? ep.lo : (v > ep.hi ? ep.hi : v);
        case FloatActivation::Leaky: return v < 0.0f ? ep.alpha * v : v;
        default: return v;
    }
}

// Per-channel epilogue values from some channel on: bias (never null: zeros when the call has none)
// and scale / shift (null when the call has none).
struct Affine {
    const float* bias;
    const float* scale;
    const float* shift;
    Affine at(Index i) const { return {bias + i, scale ? scale + i : nullptr, shift ? shift + i : nullptr}; }
};

// One finished output of channel i.
inline float finish(float acc, const Affine& a, Index i, const FloatEpilogue& ep) {
    float v = acc + a.bias[i];
    if (a.scale) {
        v = v * a.scale[i];
        v = v + a.shift[i];
    }
    return activate(v, ep);
}

// Writes one segment's 8 finished values to the valid pixels of its lanes.
inline void scatter(const float* values, const Index* dst, float* out_row) {
    for (int l = 0; l < kLanes; ++l)
        if (dst[l] >= 0) out_row[dst[l]] = values[l];
}

// ---- portable: separate multiply and add, fixed k order -----------------------------------------

void tile_portable(const TileSource& t, const float* wt, Index ldw, Index s0, int rows, Index oc0,
                   const Affine& af, const FloatEpilogue& ep, float* out, Index pixels) {
    float acc[kRows][2 * kLanes] = {};
    const float* a = t.src + t.seg[s0];
    const float* b = t.src + t.seg[s0 + 1];
    for (Index j = 0; j < t.k; ++j) {
        const float* ca = a + t.koff[j];
        const float* cb = b + t.koff[j];
        const float* w = wt + j * ldw;
        for (int r = 0; r < rows; ++r) {
            const float wr = w[r];
            for (int l = 0; l < kLanes; ++l) {
                const float pa = wr * ca[l], pb = wr * cb[l];
                acc[r][l] = acc[r][l] + pa;
                acc[r][kLanes + l] = acc[r][kLanes + l] + pb;
            }
        }
    }
    for (int r = 0; r < rows; ++r) {
        for (int l = 0; l < 2 * kLanes; ++l) acc[r][l] = finish(acc[r][l], af, oc0 + r, ep);
        float* o = out + (oc0 + r) * pixels;
        scatter(acc[r], t.dst + s0 * kLanes, o);
        scatter(acc[r] + kLanes, t.dst + (s0 + 1) * kLanes, o);
    }
}

// ---- AVX2 + FMA ---------------------------------------------------------------------------------

__attribute__((target("avx2,fma"))) inline __m256 activate8(__m256 v, const FloatEpilogue& ep) {
    switch (ep.activation) {
        // max/min return their second operand when either is NaN: v second keeps NaN
        case FloatActivation::ReLU: return _mm256_max_ps(_mm256_setzero_ps(), v);
        case FloatActivation::Clip:
            return _mm256_min_ps(_mm256_set1_ps(ep.hi), _mm256_max_ps(_mm256_set1_ps(ep.lo), v));
        case FloatActivation::Leaky: {
            const __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
            return _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(ep.alpha)), neg);
        }
        default: return v;
    }
}

// Eight finished outputs: b, s, t hold the bias, scale and shift of their channels.
__attribute__((target("avx2,fma"))) inline __m256 finish8(__m256 acc, __m256 b, __m256 s, __m256 t, bool affine,
                                                          const FloatEpilogue& ep) {
    __m256 v = _mm256_add_ps(acc, b);
    if (affine) {
        v = _mm256_mul_ps(v, s);
        asm("" : "+x"(v));   // two roundings, as the batch normalization layer: no contraction to FMA
        v = _mm256_add_ps(v, t);
    }
    return activate8(v, ep);
}

__attribute__((target("avx2,fma"))) inline void store8(__m256 v, const Index* dst, float* out_row) {
    if (dst[0] >= 0 && dst[kLanes - 1] == dst[0] + kLanes - 1) {
        _mm256_storeu_ps(out_row + dst[0], v);
    } else {
        alignas(32) float tmp[kLanes];
        _mm256_store_ps(tmp, v);
        scatter(tmp, dst, out_row);
    }
}

// ROWS output channels x segments s0 and s0 + 1.
template <int ROWS>
__attribute__((target("avx2,fma"))) void tile_avx2(const TileSource& t, const float* wt, Index ldw, Index s0,
                                                   Index oc0, const Affine& af, const FloatEpilogue& ep, float* out,
                                                   Index pixels) {
    __m256 lo[ROWS], hi[ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    const float* a = t.src + t.seg[s0];
    const float* b = t.src + t.seg[s0 + 1];
    const Index* koff = t.koff;
    const Index k = t.k;
    for (Index j = 0; j < k; ++j) {
        const __m256 c0 = _mm256_loadu_ps(a + koff[j]), c1 = _mm256_loadu_ps(b + koff[j]);
        const float* w = wt + j * ldw;
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; ++r) {
            const __m256 wr = _mm256_broadcast_ss(w + r);
            lo[r] = _mm256_fmadd_ps(wr, c0, lo[r]);
            hi[r] = _mm256_fmadd_ps(wr, c1, hi[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
        const Index c = oc0 + r;
        const __m256 b = _mm256_set1_ps(af.bias[c]);
        const __m256 sc = _mm256_set1_ps(af.scale ? af.scale[c] : 1.0f), sh = _mm256_set1_ps(af.scale ? af.shift[c] : 0.0f);
        float* o = out + c * pixels;
        store8(finish8(lo[r], b, sc, sh, af.scale, ep), t.dst + s0 * kLanes, o);
        store8(finish8(hi[r], b, sc, sh, af.scale, ep), t.dst + (s0 + 1) * kLanes, o);
    }
}

template <int ROWS>
void tile(bool avx2, const TileSource& t, const float* wt, Index ldw, Index s0, Index oc0, const Affine& af,
          const FloatEpilogue& ep, float* out, Index pixels) {
    if (avx2) tile_avx2<ROWS>(t, wt, ldw, s0, oc0, af, ep, out, pixels);
    else tile_portable(t, wt, ldw, s0, ROWS, oc0, af, ep, out, pixels);
}

// ---- how an image is read -----------------------------------------------------------------------

// With unit strides the source is the zero-padded image itself (term (c, ky, kx) at offset
// c * plane + ky * dh * padded_w + kx * dw), no patch matrix is formed, and the segments are either
// 8-pixel pieces of output rows (exact when OW is a multiple of 8) or 8 consecutive positions of the
// padded-width grid oy * padded_w + ox (fewer segments on narrow images; the padded_w - OW columns
// of each row are computed and dropped), whichever needs fewer. Strided convolutions gather the
// patch matrix col[(c, ky, kx)][oy * OW + ox] and cut its rows into segments.
struct Plan {
    bool padded = false;
    Index pw = 0, plane = 0, buffer = 0;
    std::vector<Index> koff, seg, dst;   // seg: an even count (a dummy segment pads an odd one)
};

Plan make_plan(const ConvGeometry& g, Index cg) {
    Plan p;
    const Index oh = g.out_h(), ow = g.out_w(), kh = g.kernel_h, kw = g.kernel_w, pixels = oh * ow;
    auto add_segment = [&](Index src, const Index* lanes) {
        p.seg.push_back(src);
        p.dst.insert(p.dst.end(), lanes, lanes + kLanes);
    };
    Index lanes[kLanes];
    p.padded = g.stride_h == 1 && g.stride_w == 1;
    if (p.padded) {
        const Index ph = g.height + g.pad_top + g.pad_bottom;
        p.pw = g.width + g.pad_left + g.pad_right;
        p.plane = ph * p.pw;
        for (Index c = 0; c < cg; ++c)
            for (Index ky = 0; ky < kh; ++ky)
                for (Index kx = 0; kx < kw; ++kx) p.koff.push_back(c * p.plane + ky * g.dilation_h * p.pw + kx * g.dilation_w);
        const Index row_segments = oh * ((ow + kLanes - 1) / kLanes);
        const Index grid_segments = (oh * p.pw + kLanes - 1) / kLanes;
        if (row_segments <= grid_segments) {
            for (Index oy = 0; oy < oh; ++oy)
                for (Index ox = 0; ox < ow; ox += kLanes) {
                    for (Index l = 0; l < kLanes; ++l) lanes[l] = ox + l < ow ? oy * ow + ox + l : -1;
                    add_segment(oy * p.pw + ox, lanes);
                }
        } else {
            for (Index q = 0; q < grid_segments * kLanes; q += kLanes) {
                for (Index l = 0; l < kLanes; ++l) {
                    const Index oy = (q + l) / p.pw, ox = (q + l) % p.pw;
                    lanes[l] = oy < oh && ox < ow ? oy * ow + ox : -1;
                }
                add_segment(q, lanes);
            }
        }
    } else {
        const Index grid = round_up(pixels, kLanes), k = cg * kh * kw;
        for (Index j = 0; j < k; ++j) p.koff.push_back(j * grid);
        for (Index q = 0; q < grid; q += kLanes) {
            for (Index l = 0; l < kLanes; ++l) lanes[l] = q + l < pixels ? q + l : -1;
            add_segment(q, lanes);
        }
    }
    if (p.seg.size() % 2) {
        std::fill(lanes, lanes + kLanes, Index(-1));
        add_segment(0, lanes);
    }
    // every load stays inside the zero-filled buffer
    const Index reach = *std::max_element(p.seg.begin(), p.seg.end()) + p.koff.back() + kLanes;
    p.buffer = std::max(reach, p.padded ? cg * p.plane : p.koff.back() + kLanes);
    return p;
}

// The group's cg channels (planes of H x W at x) written zero-padded into buf.
void pad_image(const float* x, const ConvGeometry& g, Index cg, const Plan& p, float* buf) {
    std::fill(buf, buf + p.buffer, 0.0f);
    for (Index c = 0; c < cg; ++c)
        for (Index y = 0; y < g.height; ++y)
            std::memcpy(buf + c * p.plane + (y + g.pad_top) * p.pw + g.pad_left, x + (c * g.height + y) * g.width,
                        size_t(g.width) * sizeof(float));
}

// The patch matrix of the group's cg channels (strided convolutions); padding and the tail are zero.
void gather_columns(const float* x, const ConvGeometry& g, Index cg, const Plan& p, float* col) {
    const Index h = g.height, w = g.width, oh = g.out_h(), ow = g.out_w();
    std::fill(col, col + p.buffer, 0.0f);
    Index row = 0;
    for (Index c = 0; c < cg; ++c) {
        const float* plane = x + c * h * w;
        for (Index ky = 0; ky < g.kernel_h; ++ky) {
            for (Index kx = 0; kx < g.kernel_w; ++kx, ++row) {
                float* dst = col + p.koff[size_t(row)];
                const Index x_off = kx * g.dilation_w - g.pad_left;
                for (Index oy = 0; oy < oh; ++oy) {
                    const Index iy = oy * g.stride_h + ky * g.dilation_h - g.pad_top;
                    if (iy < 0 || iy >= h) continue;
                    for (Index ox = 0; ox < ow; ++ox) {
                        const Index ix = ox * g.stride_w + x_off;
                        if (ix >= 0 && ix < w) dst[oy * ow + ox] = plane[iy * w + ix];
                    }
                }
            }
        }
    }
}

// One image: every group, every output channel.
void conv_image(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const Plan& plan, const Affine& af,
                const FloatEpilogue& ep, float* out, bool avx2, std::vector<float>& buf) {
    const Index pixels = g.out_h() * g.out_w();
    const Index cg = w.in_per_group, og = w.out_channels / w.groups, k = cg * w.kernel_h * w.kernel_w;
    const Index segments = Index(plan.seg.size());
    buf.resize(size_t(plan.buffer));
    for (Index grp = 0; grp < w.groups; ++grp) {
        const float* xg = x + grp * cg * g.height * g.width;
        if (plan.padded) pad_image(xg, g, cg, plan, buf.data());
        else gather_columns(xg, g, cg, plan, buf.data());
        const TileSource t{buf.data(), plan.koff.data(), k, plan.seg.data(), plan.dst.data()};
        const float* wt = w.wt.data() + grp * k * og;
        for (Index o0 = 0; o0 < og; o0 += kRows) {
            const Index oc0 = grp * og + o0;
            const float* wo = wt + o0;
            for (Index s0 = 0; s0 < segments; s0 += 2) {
                switch (std::min<Index>(kRows, og - o0)) {
                    case 6: tile<6>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                    case 5: tile<5>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                    case 4: tile<4>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                    case 3: tile<3>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                    case 2: tile<2>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                    default: tile<1>(avx2, t, wo, og, s0, oc0, af, ep, out, pixels); break;
                }
            }
        }
    }
}


// ---- wide groups: vectors of output channels times broadcast input values ------------------------

// Pixel p of the output reads term j at src[poff[p] + koff[j]] of the zero-padded image; poff has
// kMaxPix dummy entries past the last pixel so that a tile never runs short.
constexpr int kMaxPix = 8;

struct WidePlan {
    Index ph = 0, pw = 0, plane = 0, pixels = 0;
    std::vector<Index> koff, poff;
};

WidePlan make_wide_plan(const ConvGeometry& g, Index cg) {
    WidePlan p;
    const Index oh = g.out_h(), ow = g.out_w();
    p.ph = g.height + g.pad_top + g.pad_bottom;
    p.pw = g.width + g.pad_left + g.pad_right;
    p.plane = p.ph * p.pw;
    p.pixels = oh * ow;
    for (Index c = 0; c < cg; ++c)
        for (Index ky = 0; ky < g.kernel_h; ++ky)
            for (Index kx = 0; kx < g.kernel_w; ++kx) p.koff.push_back(c * p.plane + ky * g.dilation_h * p.pw + kx * g.dilation_w);
    for (Index oy = 0; oy < oh; ++oy)
        for (Index ox = 0; ox < ow; ++ox) p.poff.push_back(oy * g.stride_h * p.pw + ox * g.stride_w);
    p.poff.insert(p.poff.end(), kMaxPix, 0);
    return p;
}

// PIX pixels from p0 x VEC vectors of 8 output channels from wt (rows ldw apart): finished values
// (bias, activation) to rows p0.. of the pixel-major buffer (ldb floats per pixel).
template <int VEC, int PIX>
__attribute__((target("avx2,fma"))) void wide_tile_avx2(const float* src, const Index* poff, const Index* koff, Index k,
                                                        const float* wt, Index ldw, const Affine& af,
                                                        const FloatEpilogue& ep, float* buf, Index ldb) {
    __m256 acc[PIX][VEC];
#pragma GCC unroll 8
    for (int i = 0; i < PIX; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < VEC; ++v) acc[i][v] = _mm256_setzero_ps();
    const float* at[PIX];
#pragma GCC unroll 8
    for (int i = 0; i < PIX; ++i) at[i] = src + poff[i];
    for (Index j = 0; j < k; ++j) {
        const Index kj = koff[j];
        __m256 wv[VEC];
#pragma GCC unroll 8
        for (int v = 0; v < VEC; ++v) wv[v] = _mm256_loadu_ps(wt + j * ldw + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < PIX; ++i) {
            const __m256 xi = _mm256_broadcast_ss(at[i] + kj);
#pragma GCC unroll 8
            for (int v = 0; v < VEC; ++v) acc[i][v] = _mm256_fmadd_ps(wv[v], xi, acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < VEC; ++v) {
        const __m256 b = _mm256_loadu_ps(af.bias + 8 * v);
        const __m256 sc = af.scale ? _mm256_loadu_ps(af.scale + 8 * v) : b, sh = af.scale ? _mm256_loadu_ps(af.shift + 8 * v) : b;
#pragma GCC unroll 8
        for (int i = 0; i < PIX; ++i) _mm256_storeu_ps(buf + i * ldb + 8 * v, finish8(acc[i][v], b, sc, sh, af.scale, ep));
    }
}

void wide_tile_portable(int vec, int pix, const float* src, const Index* poff, const Index* koff, Index k,
                        const float* wt, Index ldw, const Affine& af, const FloatEpilogue& ep, float* buf, Index ldb) {
    float acc[kMaxPix][32] = {};
    const int lanes = 8 * vec;
    for (Index j = 0; j < k; ++j) {
        const float* w = wt + j * ldw;
        for (int i = 0; i < pix; ++i) {
            const float xi = src[poff[i] + koff[j]];
            for (int l = 0; l < lanes; ++l) {
                const float prod = w[l] * xi;
                acc[i][l] = acc[i][l] + prod;
            }
        }
    }
    for (int i = 0; i < pix; ++i)
        for (int l = 0; l < lanes; ++l) buf[i * ldb + l] = finish(acc[i][l], af, l, ep);
}

template <int VEC, int PIX>
void wide_tiles(bool avx2, const float* src, const WidePlan& p, Index k, const float* wt, Index ldw,
                const Affine& af, const FloatEpilogue& ep, float* buf, Index ldb) {
    for (Index p0 = 0; p0 < p.pixels; p0 += PIX) {
        if (avx2) wide_tile_avx2<VEC, PIX>(src, p.poff.data() + p0, p.koff.data(), k, wt, ldw, af, ep, buf + p0 * ldb, ldb);
        else wide_tile_portable(VEC, PIX, src, p.poff.data() + p0, p.koff.data(), k, wt, ldw, af, ep, buf + p0 * ldb, ldb);
    }
}

// One image with at least 8 output channels per group.
void conv_image_wide(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const WidePlan& plan,
                     const Affine& padded, const FloatEpilogue& ep, float* out, bool avx2, std::vector<float>& img,
                     std::vector<float>& buf) {
    const Index cg = w.in_per_group, og = w.out_channels / w.groups, k = cg * w.kernel_h * w.kernel_w;
    const Index ldb = w.out_pad, pixels = plan.pixels;
    img.assign(size_t(cg * plan.plane), 0.0f);
    buf.resize(size_t((pixels + kMaxPix) * ldb));
    for (Index grp = 0; grp < w.groups; ++grp) {
        const float* xg = x + grp * cg * g.height * g.width;
        for (Index c = 0; c < cg; ++c)
            for (Index y = 0; y < g.height; ++y)
                std::memcpy(img.data() + c * plan.plane + (y + g.pad_top) * plan.pw + g.pad_left,
                            xg + (c * g.height + y) * g.width, size_t(g.width) * sizeof(float));
        const float* wt = w.wide.data() + grp * k * ldb;
        const Affine af = padded.at(grp * ldb);
        for (Index o0 = 0; o0 < ldb; o0 += 32) {
            switch (std::min<Index>(4, (ldb - o0) / 8)) {
                case 4: wide_tiles<4, 3>(avx2, img.data(), plan, k, wt + o0, ldb, af.at(o0), ep, buf.data() + o0, ldb); break;
                case 3: wide_tiles<3, 4>(avx2, img.data(), plan, k, wt + o0, ldb, af.at(o0), ep, buf.data() + o0, ldb); break;
                case 2: wide_tiles<2, 6>(avx2, img.data(), plan, k, wt + o0, ldb, af.at(o0), ep, buf.data() + o0, ldb); break;
                default: wide_tiles<1, 8>(avx2, img.data(), plan, k, wt + o0, ldb, af.at(o0), ep, buf.data() + o0, ldb); break;
            }
        }
        // pixel-major buffer -> the group's NCHW output planes
        float* og_out = out + grp * og * pixels;
        for (Index o = 0; o < og; ++o)
            for (Index q = 0; q < pixels; ++q) og_out[o * pixels + q] = buf[size_t(q * ldb + o)];
    }
}


// ---- depthwise: vectors of 8 channels on a channels-last padded image -------------------------------

constexpr int kDwPix = 4;   // output pixels per depthwise tile

struct DepthwisePlan {
    Index ph = 0, pw = 0, pixels = 0, cpad = 0;
    std::vector<Index> toff, poff;   // tap and pixel offsets into the channels-last image
};

DepthwisePlan make_depthwise_plan(const ConvGeometry& g, Index cpad) {
    DepthwisePlan p;
    p.ph = g.height + g.pad_top + g.pad_bottom;
    p.pw = g.width + g.pad_left + g.pad_right;
    p.cpad = cpad;
    p.pixels = g.out_h() * g.out_w();
    for (Index ky = 0; ky < g.kernel_h; ++ky)
        for (Index kx = 0; kx < g.kernel_w; ++kx) p.toff.push_back((ky * g.dilation_h * p.pw + kx * g.dilation_w) * cpad);
    for (Index oy = 0; oy < g.out_h(); ++oy)
        for (Index ox = 0; ox < g.out_w(); ++ox) p.poff.push_back((oy * g.stride_h * p.pw + ox * g.stride_w) * cpad);
    p.poff.insert(p.poff.end(), kDwPix, 0);
    return p;
}

__attribute__((target("avx2,fma"))) void depthwise_tile_avx2(const float* img, const Index* poff, const Index* toff,
                                                             Index taps, const float* wdw, Index cpad,
                                                             const Affine& af, const FloatEpilogue& ep, float* buf) {
    __m256 acc[kDwPix];
#pragma GCC unroll 8
    for (int i = 0; i < kDwPix; ++i) acc[i] = _mm256_setzero_ps();
    for (Index t = 0; t < taps; ++t) {
        const __m256 wv = _mm256_loadu_ps(wdw + t * cpad);
#pragma GCC unroll 8
        for (int i = 0; i < kDwPix; ++i) acc[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(img + poff[i] + toff[t]), acc[i]);
    }
    const __m256 b = _mm256_loadu_ps(af.bias);
    const __m256 sc = af.scale ? _mm256_loadu_ps(af.scale) : b, sh = af.scale ? _mm256_loadu_ps(af.shift) : b;
#pragma GCC unroll 8
    for (int i = 0; i < kDwPix; ++i) _mm256_storeu_ps(buf + i * cpad, finish8(acc[i], b, sc, sh, af.scale, ep));
}

void depthwise_tile_portable(const float* img, const Index* poff, const Index* toff, Index taps, const float* wdw,
                             Index cpad, const Affine& af, const FloatEpilogue& ep, float* buf) {
    float acc[kDwPix][kLanes] = {};
    for (Index t = 0; t < taps; ++t)
        for (int i = 0; i < kDwPix; ++i)
            for (int l = 0; l < kLanes; ++l) {
                const float prod = wdw[t * cpad + l] * img[poff[i] + toff[t] + l];
                acc[i][l] = acc[i][l] + prod;
            }
    for (int i = 0; i < kDwPix; ++i)
        for (int l = 0; l < kLanes; ++l) buf[i * cpad + l] = finish(acc[i][l], af, l, ep);
}

void conv_image_depthwise(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const DepthwisePlan& plan,
                          const Affine& padded, const FloatEpilogue& ep, float* out, bool avx2, std::vector<float>& img,
                          std::vector<float>& buf) {
    const Index c_count = g.channels, cpad = plan.cpad, pixels = plan.pixels, taps = Index(plan.toff.size());
    img.assign(size_t(plan.ph * plan.pw * cpad), 0.0f);
    for (Index c = 0; c < c_count; ++c)
        for (Index y = 0; y < g.height; ++y) {
            float* row = img.data() + ((y + g.pad_top) * plan.pw + g.pad_left) * cpad + c;
            const float* src = x + (c * g.height + y) * g.width;
            for (Index xx = 0; xx < g.width; ++xx) row[xx * cpad] = src[xx];
        }
    buf.resize(size_t((pixels + kDwPix) * cpad));
    for (Index c0 = 0; c0 < cpad; c0 += kLanes)
        for (Index p0 = 0; p0 < pixels; p0 += kDwPix) {
            if (avx2)
                depthwise_tile_avx2(img.data() + c0, plan.poff.data() + p0, plan.toff.data(), taps, w.dw.data() + c0, cpad,
                                    padded.at(c0), ep, buf.data() + p0 * cpad + c0);
            else
                depthwise_tile_portable(img.data() + c0, plan.poff.data() + p0, plan.toff.data(), taps, w.dw.data() + c0,
                                        cpad, padded.at(c0), ep, buf.data() + p0 * cpad + c0);
        }
    for (Index c = 0; c < c_count; ++c)
        for (Index q = 0; q < pixels; ++q) out[c * pixels + q] = buf[size_t(q * cpad + c)];
}


// ---- depthwise with unit horizontal stride: rows of 8 output pixels per channel plane --------------

constexpr int kDwRows = 4;   // output rows in flight (independent FMA chains)

__attribute__((target("avx2,fma"))) void depthwise_rows_avx2(const float* plane, const ConvGeometry& g, Index pw,
                                                             const float* wc, const Affine& af, const FloatEpilogue& ep,
                                                             float* out) {
    const Index oh = g.out_h(), ow = g.out_w();
    const __m256 b = _mm256_set1_ps(af.bias[0]);
    const __m256 sc = _mm256_set1_ps(af.scale ? af.scale[0] : 1.0f), sh = _mm256_set1_ps(af.scale ? af.shift[0] : 0.0f);
    for (Index oy = 0; oy < oh; oy += kDwRows)   // rows past oh read the buffer's slack, are dropped
        for (Index ox = 0; ox < ow; ox += kLanes) {
            __m256 acc[kDwRows];
#pragma GCC unroll 8
            for (int r = 0; r < kDwRows; ++r) acc[r] = _mm256_setzero_ps();
            Index t = 0;
            for (Index ky = 0; ky < g.kernel_h; ++ky) {
                const float* row = plane + (oy * g.stride_h + ky * g.dilation_h) * pw + ox;
                for (Index kx = 0; kx < g.kernel_w; ++kx, ++t) {
                    const __m256 wv = _mm256_broadcast_ss(wc + t);
                    const float* at = row + kx * g.dilation_w;
#pragma GCC unroll 8
                    for (int r = 0; r < kDwRows; ++r)
                        acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(at + r * g.stride_h * pw), acc[r]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < kDwRows; ++r) {
                if (oy + r >= oh) break;
                const __m256 v = finish8(acc[r], b, sc, sh, af.scale, ep);
                float* o = out + (oy + r) * ow + ox;
                if (ox + kLanes <= ow) {
                    _mm256_storeu_ps(o, v);
                } else {
                    alignas(32) float tmp[kLanes];
                    _mm256_store_ps(tmp, v);
                    std::memcpy(o, tmp, size_t(ow - ox) * sizeof(float));
                }
            }
        }
}

void depthwise_rows_portable(const float* plane, const ConvGeometry& g, Index pw, const float* wc, const Affine& af,
                             const FloatEpilogue& ep, float* out) {
    const Index oh = g.out_h(), ow = g.out_w();
    for (Index oy = 0; oy < oh; ++oy)
        for (Index ox = 0; ox < ow; ox += kLanes) {
            float acc[kLanes] = {};
            Index t = 0;
            for (Index ky = 0; ky < g.kernel_h; ++ky) {
                const float* r = plane + (oy * g.stride_h + ky * g.dilation_h) * pw + ox;
                for (Index kx = 0; kx < g.kernel_w; ++kx, ++t)
                    for (int l = 0; l < kLanes; ++l) {
                        const float prod = wc[t] * r[kx * g.dilation_w + l];
                        acc[l] = acc[l] + prod;
                    }
            }
            for (Index l = 0; l < kLanes && ox + l < ow; ++l) out[oy * ow + ox + l] = finish(acc[l], af, 0, ep);
        }
}

// One image, every channel: each plane zero-padded into buf (with room for the last row's overreach).
void conv_image_depthwise_rows(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const Affine& af,
                               const FloatEpilogue& ep, float* out, bool avx2, std::vector<float>& buf) {
    const Index ph = g.height + g.pad_top + g.pad_bottom, pw = g.width + g.pad_left + g.pad_right;
    const Index taps = g.kernel_h * g.kernel_w, pixels = g.out_h() * g.out_w();
    buf.resize(size_t((ph + kDwRows * g.stride_h) * pw + round_up(g.out_w(), kLanes) + kLanes));
    for (Index c = 0; c < g.channels; ++c) {
        std::fill(buf.begin(), buf.end(), 0.0f);
        for (Index y = 0; y < g.height; ++y)
            std::memcpy(buf.data() + (y + g.pad_top) * pw + g.pad_left, x + (c * g.height + y) * g.width,
                        size_t(g.width) * sizeof(float));
        if (avx2) depthwise_rows_avx2(buf.data(), g, pw, w.wt.data() + c * taps, af.at(c), ep, out + c * pixels);
        else depthwise_rows_portable(buf.data(), g, pw, w.wt.data() + c * taps, af.at(c), ep, out + c * pixels);
    }
}

// fn(n, img, buf) for every image n of the batch, images split statically over `threads` threads;
// img and buf are scratch vectors owned by the running thread.
template <class Fn>
void for_each_image(int threads, Index batch, Fn fn) {
    std::vector<std::vector<float>> img(size_t(std::max(threads, 1))), buf(img.size());
    parallel_tasks(batch, threads, [&](std::ptrdiff_t n, int slot) { fn(Index(n), img[size_t(slot)], buf[size_t(slot)]); });
}

bool cpu_has_avx2_fma() {
    return cpu::has_avx2_fma();
}

// The epilogue on sums already stored in out (one plane of `plane` values per image and channel).
__attribute__((target("avx2,fma"))) void epilogue_planes_avx2(float* out, Index planes, Index channels, Index plane,
                                                              const Affine& af, const FloatEpilogue& ep) {
    for (Index p = 0; p < planes; ++p) {
        const Index c = p % channels;
        const __m256 b = _mm256_set1_ps(af.bias[c]);
        const __m256 s = _mm256_set1_ps(af.scale ? af.scale[c] : 1.0f), t = _mm256_set1_ps(af.shift ? af.shift[c] : 0.0f);
        float* v = out + p * plane;
        Index i = 0;
        for (; i + kLanes <= plane; i += kLanes)
            _mm256_storeu_ps(v + i, finish8(_mm256_loadu_ps(v + i), b, s, t, af.scale != nullptr, ep));
        if (i < plane) {   // the tail through a vector too (scalar code here could contract to FMA)
            alignas(32) float tail[kLanes] = {};
            std::copy(v + i, v + plane, tail);
            _mm256_store_ps(tail, finish8(_mm256_load_ps(tail), b, s, t, af.scale != nullptr, ep));
            std::copy(tail, tail + (plane - i), v + i);
        }
    }
}

void epilogue_planes_portable(float* out, Index planes, Index channels, Index plane, const Affine& af,
                              const FloatEpilogue& ep) {
    for (Index p = 0; p < planes; ++p)
        for (Index i = 0; i < plane; ++i) out[p * plane + i] = finish(out[p * plane + i], af, p % channels, ep);
}

}  // namespace

void float_epilogue(float* out, Index batch, Index channels, Index plane, const FloatEpilogue& ep, Path path) {
    std::vector<float> zeros(size_t(channels), 0.0f);
    const Affine af{ep.bias ? ep.bias : zeros.data(), ep.scale, ep.scale ? ep.shift : nullptr};
    if (path != Path::Portable && cpu_has_avx2_fma()) epilogue_planes_avx2(out, batch * channels, channels, plane, af, ep);
    else epilogue_planes_portable(out, batch * channels, channels, plane, af, ep);
}

void conv2d_float(const float* x, const ConvGeometry& g, const PackedFloatConv& w, const FloatEpilogue& ep,
                  float* out, Path path) {
    const bool avx2 = path != Path::Portable && cpu_has_avx2_fma();
    const Index in_size = g.channels * g.height * g.width, out_size = g.out_channels * g.out_h() * g.out_w();
    const double macs = double(g.batch) * double(out_size) * double(w.in_per_group * w.kernel_h * w.kernel_w);
    const int threads = threads_for_work(macs, g.batch);
    // bias, scale and shift per output channel (natural order), and padded to the channel vectors
    // of the wide kernel (per group, out_pad each) or of the channels-last depthwise one (dw_pad)
    const Index o_count = g.out_channels;
    std::vector<float> zeros(size_t(o_count), 0.0f);
    const Affine natural{ep.bias ? ep.bias : zeros.data(), ep.scale, ep.scale ? ep.shift : nullptr};
    const bool depthwise = w.dw_pad > 0;
    const Index slots = depthwise ? 1 : w.groups, slot_width = depthwise ? w.dw_pad : w.out_pad;
    const Index per_slot = depthwise ? o_count : o_count / w.groups;
    std::vector<float> pad_b(size_t(slots * slot_width), 0.0f), pad_s, pad_t;
    if (natural.scale) {
        pad_s.assign(pad_b.size(), 1.0f);
        pad_t.assign(pad_b.size(), 0.0f);
    }
    for (Index k = 0; k < slots && slot_width > 0; ++k)
        for (Index o = 0; o < per_slot; ++o) {
            const size_t to = size_t(k * slot_width + o);
            pad_b[to] = natural.bias[k * per_slot + o];
            if (natural.scale) {
                pad_s[to] = natural.scale[k * per_slot + o];
                pad_t[to] = natural.shift[k * per_slot + o];
            }
        }
    const Affine padded{pad_b.data(), natural.scale ? pad_s.data() : nullptr, natural.scale ? pad_t.data() : nullptr};

    if (depthwise && g.stride_w == 1) {
        for_each_image(threads, g.batch, [&](Index n, std::vector<float>&, std::vector<float>& buf) {
            conv_image_depthwise_rows(x + n * in_size, g, w, natural, ep, out + n * out_size, avx2, buf);
        });
        return;
    }
    if (depthwise) {
        const DepthwisePlan plan = make_depthwise_plan(g, w.dw_pad);
        for_each_image(threads, g.batch, [&](Index n, std::vector<float>& img, std::vector<float>& buf) {
            conv_image_depthwise(x + n * in_size, g, w, plan, padded, ep, out + n * out_size, avx2, img, buf);
        });
        return;
    }
    // Pixel vectors fill their lanes on images whose output rows are multiples of 8 wide, and then
    // beat the channel vectors (no transposing store: 1.3-2.3x on 8x8 images); on narrower images
    // (4x4: half the lanes idle) the channel vectors win.
    const Plan plan = make_plan(g, w.in_per_group);
    const bool lanes_full = 4 * g.out_h() * g.out_w() >= 3 * kLanes * Index(plan.seg.size());
    if (w.out_pad > 0 && !lanes_full) {
        const WidePlan wide = make_wide_plan(g, w.in_per_group);
        for_each_image(threads, g.batch, [&](Index n, std::vector<float>& img, std::vector<float>& buf) {
            conv_image_wide(x + n * in_size, g, w, wide, padded, ep, out + n * out_size, avx2, img, buf);
        });
        return;
    }
    for_each_image(threads, g.batch, [&](Index n, std::vector<float>&, std::vector<float>& buf) {
        conv_image(x + n * in_size, g, w, plan, natural, ep, out + n * out_size, avx2, buf);
    });
}

}  // namespace fxp::kern
