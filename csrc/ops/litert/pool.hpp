// MAX_POOL_2D and AVERAGE_POOL_2D of int8 NCHW planes, as every LiteRT resolver computes them
// (reference_integer_ops / optimized_integer_ops MaxPool, AveragePool; XNNPACK's int8 max pooling
// gives the same values): the window is clipped to the input (padding taps are not counted), max
// or sum of the taps; the average is (sum +- count / 2) / count with C truncation, i.e. rounded
// half away from zero (fixed/rounding.hpp round_divide<Round>); then the activation clamp.
// Each output row first reduces its window rows column by column (vectorised), then the columns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fixed/rounding.hpp"
#include "ops/litert/quant_params.hpp"

namespace fxp {
namespace litert {

struct PoolArgs {
    std::ptrdiff_t planes, h, w, out_h, out_w;
    int fh, fw, sh, sw, pad_top, pad_left;
    Range act;
};

inline void pool2d(bool average, const PoolArgs& a, const int8_t* x, int8_t* y, bool avx2) {
    std::vector<int32_t> col(std::size_t(a.w));
    int32_t* colp = col.data();
    const std::ptrdiff_t w = a.w;
    for (std::ptrdiff_t p = 0; p < a.planes; ++p) {
        const int8_t* plane = x + p * a.h * a.w;
        int8_t* out = y + p * a.out_h * a.out_w;
        for (std::ptrdiff_t oy = 0; oy < a.out_h; ++oy) {
            const std::ptrdiff_t y0 = std::max<std::ptrdiff_t>(oy * a.sh - a.pad_top, 0);
            const std::ptrdiff_t y1 = std::min<std::ptrdiff_t>(oy * a.sh - a.pad_top + a.fh, a.h);
            const int8_t* first = plane + y0 * w;
            for_range(avx2, 0, w, [=](std::ptrdiff_t i) { colp[i] = first[i]; });
            for (std::ptrdiff_t r = y0 + 1; r < y1; ++r) {
                const int8_t* row = plane + r * w;
                if (average) for_range(avx2, 0, w, [=](std::ptrdiff_t i) { colp[i] += row[i]; });
                else for_range(avx2, 0, w, [=](std::ptrdiff_t i) { colp[i] = std::max<int32_t>(colp[i], row[i]); });
            }
            for (std::ptrdiff_t ox = 0; ox < a.out_w; ++ox) {
                const std::ptrdiff_t x0 = std::max<std::ptrdiff_t>(ox * a.sw - a.pad_left, 0);
                const std::ptrdiff_t x1 = std::min<std::ptrdiff_t>(ox * a.sw - a.pad_left + a.fw, w);
                int32_t v = colp[x0];
                if (average) {
                    for (std::ptrdiff_t c = x0 + 1; c < x1; ++c) v += colp[c];
                    v = round_divide<Rounding::Round>(v, int32_t((y1 - y0) * (x1 - x0)));
                } else {
                    for (std::ptrdiff_t c = x0 + 1; c < x1; ++c) v = std::max(v, colp[c]);
                }
                out[oy * a.out_w + ox] = int8_t(std::min(std::max(v, a.act.lo), a.act.hi));
            }
        }
    }
}

}  // namespace litert
}  // namespace fxp
