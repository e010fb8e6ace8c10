// Builds an fxp::Requantizer from the dict of `fixedpoint.kernels.Requantizer.to_params()`, checking
// every field (std::invalid_argument -> ValueError naming the field).
//
// The parameter arrays must already be 1-D, C-contiguous and of the exact dtype (int32 shift and
// multiplier, float32 scale): the Requantizer points into them without copying, so the dict (or the
// Python Requantizer holding the arrays) must outlive it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "kernels/requantize.hpp"

namespace fxp {

namespace requant_args_detail {

namespace py = pybind11;

inline py::object field(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw std::invalid_argument(std::string("requantizer params: missing field '") + key + "'");
    return d[key];
}

inline std::string text(const py::dict& d, const char* key) {
    py::object v = field(d, key);
    if (!py::isinstance<py::str>(v))
        throw std::invalid_argument(std::string("requantizer params: '") + key + "' must be a str");
    return v.cast<std::string>();
}

inline long long integer(const py::dict& d, const char* key, long long lo, long long hi) {
    py::object v = field(d, key);
    if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v))
        throw std::invalid_argument(std::string("requantizer params: '") + key + "' must be an int");
    const long long x = v.cast<long long>();
    if (x < lo || x > hi)
        throw std::invalid_argument(std::string("requantizer params: '") + key + "' = " + std::to_string(x) +
                                    " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

// A 1-D C-contiguous array of exactly T, with values in [lo, hi] (checked for integers).
template <class T>
inline const T* array(const py::dict& d, const char* key, std::ptrdiff_t& n, double lo, double hi) {
    py::object v = field(d, key);
    const std::string name = std::string("requantizer params: '") + key + "'";
    if (!py::isinstance<py::array>(v)) throw std::invalid_argument(name + " must be a numpy array");
    py::array a = v.cast<py::array>();
    if (!a.dtype().is(py::dtype::of<T>()))
        throw std::invalid_argument(name + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                                    ", got " + std::string(py::str(a.dtype())));
    if (a.ndim() != 1 || a.shape(0) < 1 || !(a.flags() & py::array::c_style))
        throw std::invalid_argument(name + " must be a non-empty contiguous 1-D array");
    n = a.shape(0);
    const T* p = static_cast<const T*>(a.data());
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const double x = double(p[i]);
        if (!(x >= lo && x <= hi))  // also rejects NaN
            throw std::invalid_argument(name + "[" + std::to_string(i) + "] = " + std::to_string(x) +
                                        " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return p;
}

}  // namespace requant_args_detail

inline Requantizer requantizer_from_params(const pybind11::dict& d) {
    using namespace requant_args_detail;
    Requantizer q;

    static const char* const modes[] = {"pow2_shift", "gemmlowp_double", "single_round", "ruy_double_halfup", "mlas_fp32"};
    static const char* const roundings[] = {"Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero"};
    static const char* const overflows[] = {"Saturate", "Wrap"};
    static const char* const dtypes[] = {"int8", "uint8", "int16", "int32"};
    auto pick = [&](const char* key, const char* const* names, int count) {
        const std::string s = text(d, key);
        for (int i = 0; i < count; ++i)
            if (s == names[i]) return i;
        std::string all;
        for (int i = 0; i < count; ++i) all += std::string(i ? ", " : "") + names[i];
        throw std::invalid_argument("requantizer params: '" + std::string(key) + "' = '" + s + "', expected one of " + all);
    };
    q.mode = RequantMode(pick("mode", modes, 5));
    q.rounding = Rounding(pick("rounding", roundings, 6));
    q.overflow = Overflow(pick("overflow", overflows, 2));
    q.out_type = OutType(pick("dtype", dtypes, 4));

    std::ptrdiff_t n = 0;
    if (q.mode == RequantMode::Pow2Shift) {
        q.shift = array<int32_t>(d, "shift", n, -32, 127);
    } else if (q.mode == RequantMode::MlasFp32) {
        q.scale = array<float>(d, "scale", n, 0.0, double(std::numeric_limits<float>::max()));
    } else {
        // TFLite's ranges: Q0.31 multiplier >= 0, exponent in [-31, 30].
        std::ptrdiff_t nm = 0;
        q.multiplier = array<int32_t>(d, "multiplier", nm, 0, INT32_MAX);
        q.shift = array<int32_t>(d, "shift", n, -31, 30);
        if (nm != n)
            throw std::invalid_argument("requantizer params: 'multiplier' has " + std::to_string(nm) +
                                        " entries but 'shift' has " + std::to_string(n));
    }
    q.num_channels = n;

    const int64_t out_lo = with_out_type(q.out_type, [](auto o) { return int64_t(std::numeric_limits<decltype(o)>::min()); });
    const int64_t out_hi = with_out_type(q.out_type, [](auto o) { return int64_t(std::numeric_limits<decltype(o)>::max()); });
    q.zero_point = int32_t(integer(d, "zero_point", out_lo, out_hi));
    q.clamp_lo = integer(d, "clamp_lo", out_lo, out_hi);
    q.clamp_hi = integer(d, "clamp_hi", out_lo, out_hi);
    if (q.clamp_lo > q.clamp_hi)
        throw std::invalid_argument("requantizer params: clamp_lo = " + std::to_string(q.clamp_lo) +
                                    " exceeds clamp_hi = " + std::to_string(q.clamp_hi));
    if (d.contains("simd")) {  // optional: False forces the portable loops (tests compare both)
        py::object v = d["simd"];
        if (!py::isinstance<py::bool_>(v)) throw std::invalid_argument("requantizer params: 'simd' must be a bool");
        q.simd = v.cast<bool>();
    }
    return q;
}

}  // namespace fxp
