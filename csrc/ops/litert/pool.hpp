// MAX_POOL_2D and AVERAGE_POOL_2D of int8 NCHW planes, as every LiteRT resolver computes them
// (reference_integer_ops / optimized_integer_ops MaxPool, AveragePool; XNNPACK's int8 max pooling
// gives the same values): the window is clipped to the input (padding taps are not counted), max
// or sum of the taps; the average is (sum +- count / 2) / count with C truncation, i.e. rounded
// half away from zero (fixed/rounding.hpp round_divide<Round>); then the activation clamp.
// Each output row first reduces its window rows column by column (vectorised), then the columns.
#pragma once

#include <algorithm>
#include <cmath>
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

// round_divide<Round>(sum, count) for |sum| < 2^24 and 0 < count < 2^24 without an integer division:
// the double quotient is within 2^-29 relative of sum / count, while a quotient that is not a tie
// lies at least 1 / (2 count) from the nearest k + 1/2 and a tie is exact, so floor(|q| + 1/2)
// decides as the exact quotient would (the + 1/2 adds an error below 2^-28).
inline int32_t divide_round_half_away(int32_t sum, int32_t count) {
    const double q = double(sum) / double(count);
    const int32_t r = int32_t(std::fabs(q) + 0.5);
    return sum < 0 ? -r : r;
}

inline void pool2d(bool average, const PoolArgs& a, const int8_t* x, int8_t* y, bool avx2) {
    const std::ptrdiff_t w = a.w, out_h = a.out_h, out_w = a.out_w;
    // Window rows of each output row and window columns of each output column, clipped to the input.
    const std::size_t nh = std::size_t(out_h), nw = std::size_t(out_w);
    std::vector<std::ptrdiff_t> row_lo(nh), row_hi(nh);
    std::vector<int32_t> col_count(nw), row_count(nh);
    for (std::ptrdiff_t oy = 0; oy < out_h; ++oy) {
        row_lo[std::size_t(oy)] = std::max<std::ptrdiff_t>(oy * a.sh - a.pad_top, 0);
        row_hi[std::size_t(oy)] = std::min<std::ptrdiff_t>(oy * a.sh - a.pad_top + a.fh, a.h);
        row_count[std::size_t(oy)] = int32_t(row_hi[std::size_t(oy)] - row_lo[std::size_t(oy)]);
    }
    for (std::ptrdiff_t ox = 0; ox < out_w; ++ox)
        col_count[std::size_t(ox)] = int32_t(std::min<std::ptrdiff_t>(ox * a.sw - a.pad_left + a.fw, w) -
                                             std::max<std::ptrdiff_t>(ox * a.sw - a.pad_left, 0));
    // Column reductions of each output row, stored with the left padding and enough right padding
    // for the last window, the pads holding the operation's neutral value (so the columns need no
    // clipping): a padded row has wp = pad_left + w + pad_right entries.
    const std::ptrdiff_t pad_right = std::max<std::ptrdiff_t>((out_w - 1) * a.sw + a.fw - a.pad_left - w, 0);
    const std::ptrdiff_t wp = a.pad_left + w + pad_right;
    const int32_t neutral = average ? 0 : INT32_MIN;
    std::vector<int32_t> col(std::size_t(out_h * wp), neutral);
    std::vector<int32_t> acc(std::size_t(out_h * out_w));
    int32_t* colp = col.data() + a.pad_left;  // colp[oy * wp + x] for x in [-pad_left, w + pad_right)
    int32_t* accp = acc.data();
    const std::ptrdiff_t* py0 = row_lo.data();
    const std::ptrdiff_t* py1 = row_hi.data();
    const int32_t* rc = row_count.data();
    const int32_t* cc = col_count.data();
    const std::ptrdiff_t sw = a.sw, fw = a.fw;
    const Range act = a.act;
    for (std::ptrdiff_t p = 0; p < a.planes; ++p) {
        const int8_t* plane = x + p * a.h * w;
        int8_t* out = y + p * out_h * out_w;
        for_rows(avx2, out_h, w, [=](std::ptrdiff_t oy, std::ptrdiff_t i) { colp[oy * wp + i] = plane[py0[oy] * w + i]; });
        for (int ky = 1; ky < a.fh; ++ky) {
            // Rows past the clip repeat the first row: weight 0 in a sum, a harmless repeat in a max.
            if (average)
                for_rows(avx2, out_h, w, [=](std::ptrdiff_t oy, std::ptrdiff_t i) {
                    const std::ptrdiff_t r = py0[oy] + ky;
                    const int32_t use = r < py1[oy];
                    colp[oy * wp + i] += use * plane[(use ? r : py0[oy]) * w + i];
                });
            else
                for_rows(avx2, out_h, w, [=](std::ptrdiff_t oy, std::ptrdiff_t i) {
                    const std::ptrdiff_t r = py0[oy] + ky < py1[oy] ? py0[oy] + ky : py0[oy];
                    colp[oy * wp + i] = std::max<int32_t>(colp[oy * wp + i], plane[r * w + i]);
                });
        }
        const int32_t* cfirst = colp - a.pad_left;  // cfirst[oy * wp + ox * sw + kx]: window column kx
        for_rows(avx2, out_h, out_w, [=](std::ptrdiff_t oy, std::ptrdiff_t ox) { accp[oy * out_w + ox] = cfirst[oy * wp + ox * sw]; });
        for (std::ptrdiff_t kx = 1; kx < fw; ++kx) {
            if (average)
                for_rows(avx2, out_h, out_w, [=](std::ptrdiff_t oy, std::ptrdiff_t ox) {
                    accp[oy * out_w + ox] += cfirst[oy * wp + ox * sw + kx];
                });
            else
                for_rows(avx2, out_h, out_w, [=](std::ptrdiff_t oy, std::ptrdiff_t ox) {
                    accp[oy * out_w + ox] = std::max(accp[oy * out_w + ox], cfirst[oy * wp + ox * sw + kx]);
                });
        }
        if (average)
            for_rows(avx2, out_h, out_w, [=](std::ptrdiff_t oy, std::ptrdiff_t ox) {
                const int32_t v = divide_round_half_away(accp[oy * out_w + ox], rc[oy] * cc[ox]);
                out[oy * out_w + ox] = int8_t(std::min(std::max(v, act.lo), act.hi));
            });
        else
            for_rows(avx2, out_h, out_w, [=](std::ptrdiff_t oy, std::ptrdiff_t ox) {
                out[oy * out_w + ox] = int8_t(std::min(std::max(accp[oy * out_w + ox], act.lo), act.hi));
            });
    }
}

}  // namespace litert
}  // namespace fxp
