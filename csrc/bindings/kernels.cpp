// pybind11 binding of fixedpoint._kernels: exact int8/int16 GEMM and 2-D convolution, and the float32
// convolution for small images (fixedpoint/kernels/conv_float.py).
// fixedpoint/kernels/{gemm,conv}.py validate the arguments and make arrays C-contiguous; this layer
// re-checks everything a memory access depends on (dtype, shape, contiguity) and releases the GIL for
// the arithmetic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings/requantizer_args.hpp"
#include "cpu/features.hpp"
#include "kernels/conv.hpp"
#include "kernels/conv_gemm.hpp"
#include "kernels/conv_float.hpp"
#include "kernels/gemm_affine.hpp"
#include "kernels/gemm_ceiling.hpp"
#include "kernels/gemm_vnni.hpp"
#include "kernels/layout.hpp"
#include "kernels/threads.hpp"

namespace py = pybind11;
using fxp::kern::Index;

namespace {

template <class T>
bool has_dtype(const py::array& a) { return a.dtype().is(py::dtype::of<T>()); }

std::string describe(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    if (a.ndim() == 1) s += ",";
    return s + ") " + std::string(py::str(a.dtype()));
}

// The message is built only on failure: formatting a dtype costs microseconds, as much as a
// small layer's arithmetic.
#define FXP_REQUIRE(ok, message)                                 \
    do {                                                         \
        if (!(ok)) throw std::invalid_argument(message);         \
    } while (0)

void require_array(const py::array& a, const char* name, int ndim) {
    FXP_REQUIRE(a.ndim() == ndim, std::string(name) + " must be " + std::to_string(ndim) + "-D, got " + describe(a));
    FXP_REQUIRE(bool(a.flags() & py::array::c_style), std::string(name) + " must be C-contiguous");
}

// An int32 vector argument of length 1 or `n` (zero points), or exactly n (bias); null when None.
const int32_t* int32_vector(const std::optional<py::array>& v, const char* name, Index n, bool allow_scalar, Index& count) {
    count = 0;
    if (!v) return nullptr;
    require_array(*v, name, 1);
    FXP_REQUIRE(has_dtype<int32_t>(*v), std::string(name) + " must be int32, got " + describe(*v));
    count = v->shape(0);
    FXP_REQUIRE(count == n || (allow_scalar && count == 1),
            std::string(name) + " has " + std::to_string(count) + " entries, expected " + std::to_string(n) +
                (allow_scalar ? " or 1" : ""));
    return static_cast<const int32_t*>(v->data());
}

// Output array of the requantizer's dtype (or `wide` when there is none).
// The result's dtype: the requantizer's output type, else `wide`.
py::dtype output_dtype(const std::optional<fxp::Requantizer>& rq, const py::dtype& wide) {
    if (!rq) return wide;
    return fxp::with_out_type(rq->out_type, [](auto o) { return py::dtype::of<decltype(o)>(); });
}

py::array make_output(const std::optional<fxp::Requantizer>& rq, const py::dtype& wide, std::vector<py::ssize_t> shape) {
    return py::array(output_dtype(rq, wide), shape);
}

// The caller's `out` if given (checked: the result's shape and dtype, C-contiguous, writeable; the
// caller ensures it shares no memory with the inputs), else a new array.
py::array output_array(const std::optional<py::array>& given, const std::optional<fxp::Requantizer>& rq,
                       const py::dtype& wide, std::vector<py::ssize_t> shape) {
    if (!given) return make_output(rq, wide, shape);
    const py::array& out = *given;
    const py::dtype dtype = output_dtype(rq, wide);
    bool same = out.ndim() == py::ssize_t(shape.size()) && out.dtype().is(dtype);
    for (size_t i = 0; same && i < shape.size(); ++i) same = out.shape(py::ssize_t(i)) == shape[i];
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    FXP_REQUIRE(same, "out must be an array of shape " + want + ") dtype " + std::string(py::str(dtype)) + ", got " +
                          describe(out));
    FXP_REQUIRE(bool(out.flags() & py::array::c_style) && out.writeable(), "out must be C-contiguous and writeable");
    return out;
}

std::optional<fxp::Requantizer> requantizer(const std::optional<py::dict>& params, Index channels) {
    if (!params) return std::nullopt;
    fxp::Requantizer q = fxp::requantizer_from_params(*params);
    q.check_channels(channels);
    return q;
}

fxp::kern::Path path_of(int p) {
    FXP_REQUIRE(p >= 0 && p <= 2, "path must be 0 (auto), 1 (avx2 exact) or 2 (portable), got " + std::to_string(p));
    return fxp::kern::Path(p);
}

// FIXEDPOINT_FORCE_PORTABLE (read at every call; see fixedpoint/kernels/threads.py) checked here as
// well, so that the GEMM's fast Python route can pass the setting alone: Python's environment lookup of
// a missing name costs ~0.7 us, as much as the rest of a small call's checks.
bool env_forces_portable() {
    const char* v = std::getenv("FIXEDPOINT_FORCE_PORTABLE");
    return v && *v && std::string(v) != "0";
}

py::array gemm(const py::array& a, const fxp::kern::PackedGemmB& b, const std::optional<py::array>& bias,
               const py::array& za, const py::array& zb, int overflow, bool wide, const std::optional<py::dict>& rq_params,
               int path, const std::optional<py::array>& out_arg, int accumulation) {
    require_array(a, "a", 2);
    FXP_REQUIRE(accumulation == 0 || accumulation == 1,
                "accumulation code must be 0 (exact) or 1 (int16 pairs), got " + std::to_string(accumulation));
    FXP_REQUIRE(has_dtype<int8_t>(a) || has_dtype<uint8_t>(a), "a must be int8 or uint8, got " + describe(a));
    const Index m = a.shape(0), k = a.shape(1), n = b.n;
    FXP_REQUIRE(k == b.k, "a has K = " + std::to_string(k) + " columns but b has K = " + std::to_string(b.k) + " rows");
    FXP_REQUIRE(overflow >= 0 && overflow <= 2, "overflow code must be 0, 1 or 2");
    fxp::kern::AffineArgs args;
    Index count = 0;
    args.bias = int32_vector(bias, "bias", n, false, count);
    args.za = int32_vector(za, "a_zero_point", m, true, args.za_count);
    args.zb = int32_vector(zb, "b_zero_point", n, true, args.zb_count);
    FXP_REQUIRE(args.za && args.zb, "zero points are required");
    args.overflow = fxp::kern::AccOverflow(overflow);
    args.wide = wide;
    args.path = env_forces_portable() ? fxp::kern::Path::Portable : path_of(path);
    const auto rq = requantizer(rq_params, n);
    args.rq = rq ? &*rq : nullptr;
    py::array out = output_array(out_arg, rq, py::dtype::of<int32_t>(), {m, n});
    args.out = out.mutable_data();
    const bool is_unsigned = has_dtype<uint8_t>(a);
    if (accumulation == 1) {
        FXP_REQUIRE(is_unsigned, "int16-pair accumulation needs a uint8 A against int8 B (MLAS U8S8), got " + describe(a));
        FXP_REQUIRE(overflow == 0, "int16-pair accumulation wraps like int32 hardware: overflow must be wrap");
        py::gil_scoped_release release;
        fxp::kern::gemm_affine_pairs(static_cast<const uint8_t*>(a.data()), m, b.quads, args);
        return out;
    }
    {
        py::gil_scoped_release release;
        if (is_unsigned) fxp::kern::gemm_affine(static_cast<const uint8_t*>(a.data()), m, b, args);
        else fxp::kern::gemm_affine(static_cast<const int8_t*>(a.data()), m, b, args);
    }
    return out;
}

py::array gemm_i16(const py::array& a, const py::array& b, const std::optional<py::array>& bias, const py::array& za,
                   const py::array& zb, const std::optional<py::dict>& rq_params) {
    require_array(a, "a", 2);
    require_array(b, "b", 2);
    FXP_REQUIRE(has_dtype<int16_t>(a), "a must be int16, got " + describe(a));
    FXP_REQUIRE(has_dtype<int16_t>(b), "b must be int16, got " + describe(b));
    const Index m = a.shape(0), k = a.shape(1), n = b.shape(1);
    FXP_REQUIRE(b.shape(0) == k, "a is " + describe(a) + " but b is " + describe(b) + ": K must agree");
    fxp::kern::AffineArgs args;
    Index count = 0;
    args.bias = int32_vector(bias, "bias", n, false, count);
    args.za = int32_vector(za, "a_zero_point", m, true, args.za_count);
    args.zb = int32_vector(zb, "b_zero_point", n, true, args.zb_count);
    FXP_REQUIRE(args.za && args.zb, "zero points are required");
    const auto rq = requantizer(rq_params, n);
    args.rq = rq ? &*rq : nullptr;
    py::array out = make_output(rq, py::dtype::of<int64_t>(), {m, n});
    args.out = out.mutable_data();
    {
        py::gil_scoped_release release;
        fxp::kern::gemm_affine_i16(static_cast<const int16_t*>(a.data()), static_cast<const int16_t*>(b.data()), m, k, n, args);
    }
    return out;
}

fxp::kern::PackedGemmB pack_gemm_b(const py::array& b) {
    require_array(b, "b", 2);
    FXP_REQUIRE(has_dtype<int8_t>(b), "b must be int8, got " + describe(b));
    py::gil_scoped_release release;
    return fxp::kern::pack_gemm_b(static_cast<const int8_t*>(b.data()), b.shape(0), b.shape(1));
}

fxp::kern::PackedConvWeights pack_conv_weights(const py::array& w, Index groups) {
    require_array(w, "w", 4);
    FXP_REQUIRE(has_dtype<int8_t>(w), "w must be int8, got " + describe(w));
    FXP_REQUIRE(groups >= 1 && w.shape(0) % groups == 0,
            "groups = " + std::to_string(groups) + " must divide the " + std::to_string(w.shape(0)) + " output channels of w");
    for (int d = 0; d < 4; ++d) FXP_REQUIRE(w.shape(d) >= 1, "w must have no empty dimension, got " + describe(w));
    py::gil_scoped_release release;
    return fxp::kern::pack_conv_weights(static_cast<const int8_t*>(w.data()), w.shape(0), w.shape(1), w.shape(2), w.shape(3),
                                        groups);
}

// The geometry of a convolution of NCHW `x` by packed weights `w` (int8 or float), with the checks
// both convolutions share: channels against the weights' groups, strides, dilations, padding, and a
// dilated kernel that fits the padded input.
template <class Packed>
fxp::kern::ConvGeometry conv_geometry(const py::array& x, const Packed& w, std::array<Index, 2> stride,
                                      std::array<Index, 2> dilation, std::array<Index, 4> pads, bool channels_last = false) {
    fxp::kern::ConvGeometry g;
    g.batch = x.shape(0);
    g.channels = x.shape(channels_last ? 3 : 1);
    g.height = x.shape(channels_last ? 1 : 2);
    g.width = x.shape(channels_last ? 2 : 3);
    g.out_channels = w.out_channels;
    g.kernel_h = w.kernel_h;
    g.kernel_w = w.kernel_w;
    g.groups = w.groups;
    g.stride_h = stride[0];
    g.stride_w = stride[1];
    g.dilation_h = dilation[0];
    g.dilation_w = dilation[1];
    g.pad_top = pads[0];
    g.pad_left = pads[1];
    g.pad_bottom = pads[2];
    g.pad_right = pads[3];
    FXP_REQUIRE(g.channels == w.in_per_group * w.groups,
            "x has " + std::to_string(g.channels) + " channels but w expects " + std::to_string(w.in_per_group) + " per group x " +
                std::to_string(w.groups) + " groups");
    FXP_REQUIRE(stride[0] >= 1 && stride[1] >= 1, "stride must be >= 1");
    FXP_REQUIRE(dilation[0] >= 1 && dilation[1] >= 1, "dilation must be >= 1");
    for (Index p : pads) FXP_REQUIRE(p >= 0, "padding must be >= 0");
    const Index span_h = g.height + g.pad_top + g.pad_bottom - g.dilation_h * (g.kernel_h - 1);
    const Index span_w = g.width + g.pad_left + g.pad_right - g.dilation_w * (g.kernel_w - 1);
    FXP_REQUIRE(span_h >= 1 && span_w >= 1, "the dilated kernel does not fit in the padded input");
    return g;
}

py::array conv2d(const py::array& x, const fxp::kern::PackedConvWeights& w, int32_t x_zero_point, std::array<Index, 2> stride,
                 std::array<Index, 2> dilation, std::array<Index, 4> pads, const std::optional<py::array>& bias,
                 const std::optional<py::dict>& rq_params, int path) {
    require_array(x, "x", 4);
    FXP_REQUIRE(has_dtype<int8_t>(x) || has_dtype<uint8_t>(x), "x must be int8 or uint8, got " + describe(x));
    const fxp::kern::ConvGeometry g = conv_geometry(x, w, stride, dilation, pads);
    if (x_zero_point < (has_dtype<uint8_t>(x) ? 0 : -128) || x_zero_point > (has_dtype<uint8_t>(x) ? 255 : 127))
        throw std::invalid_argument("x_zero_point = " + std::to_string(x_zero_point) + " is outside the range of x's dtype");
    fxp::kern::ConvArgs args;
    Index count = 0;
    args.bias = int32_vector(bias, "bias", g.out_channels, false, count);
    args.x_zero_point = x_zero_point;
    args.path = path_of(path);
    const auto rq = requantizer(rq_params, g.out_channels);
    args.rq = rq ? &*rq : nullptr;
    py::array out = make_output(rq, py::dtype::of<int32_t>(), {g.batch, g.out_channels, g.out_h(), g.out_w()});
    args.out = out.mutable_data();
    const bool is_unsigned = has_dtype<uint8_t>(x);
    {
        py::gil_scoped_release release;
        if (is_unsigned) fxp::kern::conv2d(static_cast<const uint8_t*>(x.data()), g, w, args);
        else fxp::kern::conv2d(static_cast<const int8_t*>(x.data()), g, w, args);
    }
    return out;
}

// OIHW int8/uint8 weights for conv2d_gemm: order 0 (c, kh, kw) or 1 (kh, kw, c); accum 0 exact, 1 int16 pairs.
fxp::kern::PackedConvGemm pack_conv_gemm(const py::array& w, Index groups, int order, int accum) {
    require_array(w, "w", 4);
    FXP_REQUIRE(has_dtype<int8_t>(w) || has_dtype<uint8_t>(w), "w must be int8 or uint8, got " + describe(w));
    FXP_REQUIRE(groups >= 1 && w.shape(0) % groups == 0,
            "groups = " + std::to_string(groups) + " must divide the " + std::to_string(w.shape(0)) + " output channels of w");
    FXP_REQUIRE(order == 0 || order == 1, "K order code must be 0 (c, kh, kw) or 1 (kh, kw, c), got " + std::to_string(order));
    FXP_REQUIRE(accum == 0 || accum == 1, "accumulation code must be 0 (exact) or 1 (int16 pairs), got " + std::to_string(accum));
    for (int d = 0; d < 4; ++d) FXP_REQUIRE(w.shape(d) >= 1, "w must have no empty dimension, got " + describe(w));
    const bool w_unsigned = has_dtype<uint8_t>(w);
    py::gil_scoped_release release;
    return fxp::kern::pack_conv_gemm(w.data(), w_unsigned, w.shape(0), w.shape(1), w.shape(2), w.shape(3), groups,
                                     fxp::kern::KOrder(order), fxp::kern::Accum(accum));
}

// x: NCHW, or NHWC with x_channels_last; the result NCHW, or NHWC with out_channels_last.
py::array conv2d_gemm(const py::array& x, const fxp::kern::PackedConvGemm& w, int32_t x_zero_point, const py::array& w_zero_point,
                      std::array<Index, 2> stride, std::array<Index, 2> dilation, std::array<Index, 4> pads,
                      const std::optional<py::array>& bias, const std::optional<py::dict>& rq_params, int path,
                      bool x_channels_last, bool out_channels_last) {
    require_array(x, "x", 4);
    FXP_REQUIRE(has_dtype<int8_t>(x) || has_dtype<uint8_t>(x), "x must be int8 or uint8, got " + describe(x));
    fxp::kern::ConvGeometry g = conv_geometry(x, w, stride, dilation, pads, x_channels_last);
    const bool x_unsigned = has_dtype<uint8_t>(x);
    if (x_zero_point < (x_unsigned ? 0 : -128) || x_zero_point > (x_unsigned ? 255 : 127))
        throw std::invalid_argument("x_zero_point = " + std::to_string(x_zero_point) + " is outside the range of x's dtype");
    FXP_REQUIRE(w.accum != fxp::kern::Accum::Int16Pairs || x_unsigned != w.w_unsigned,
                "int16-pair accumulation needs exactly one unsigned operand: x " + describe(x) + " with " +
                    (w.w_unsigned ? "uint8" : "int8") + " weights");
    fxp::kern::ConvGemmArgs args;
    Index count = 0;
    args.w_zero_point = int32_vector(w_zero_point, "w_zero_point", g.out_channels, true, args.w_zero_point_count);
    for (Index i = 0; i < args.w_zero_point_count; ++i) {
        const int32_t z = args.w_zero_point[i];
        FXP_REQUIRE(w.w_unsigned ? (z >= 0 && z <= 255) : (z >= -128 && z <= 127),
                    "w_zero_point " + std::to_string(z) + " is outside the range of the weights' dtype");
    }
    args.bias = int32_vector(bias, "bias", g.out_channels, false, count);
    args.x_zero_point = x_zero_point;
    args.path = env_forces_portable() ? fxp::kern::Path::Portable : path_of(path);
    const auto rq = requantizer(rq_params, g.out_channels);
    args.rq = rq ? &*rq : nullptr;
    args.x_channels_last = x_channels_last;
    args.out_channels_last = out_channels_last;
    py::array out = out_channels_last ? make_output(rq, py::dtype::of<int32_t>(), {g.batch, g.out_h(), g.out_w(), g.out_channels})
                                      : make_output(rq, py::dtype::of<int32_t>(), {g.batch, g.out_channels, g.out_h(), g.out_w()});
    args.out = out.mutable_data();
    {
        py::gil_scoped_release release;
        if (x_unsigned) fxp::kern::conv2d_gemm(static_cast<const uint8_t*>(x.data()), g, w, args);
        else fxp::kern::conv2d_gemm(static_cast<const int8_t*>(x.data()), g, w, args);
    }
    return out;
}

// y[b][c][r] = x[b][r][c] of a C-contiguous (B, R, C) array of 1-, 2-, 4- or 8-byte elements (NCHW <->
// NHWC of 4-D activations: fixedpoint/kernels/layout.py); y is (B, C, R), of x's dtype.
py::array transpose_batched(const py::array& x) {
    require_array(x, "x", 3);
    const py::ssize_t b = x.shape(0), r = x.shape(1), c = x.shape(2), size = x.itemsize();
    FXP_REQUIRE(size == 1 || size == 2 || size == 4 || size == 8,
                "x must have 1-, 2-, 4- or 8-byte elements, got " + describe(x));
    FXP_REQUIRE(x.dtype().kind() != 'O', "x must not hold Python objects");
    py::array y(x.dtype(), std::vector<py::ssize_t>{b, c, r});
    const void* src = x.data();
    void* dst = y.mutable_data();
    {
        py::gil_scoped_release release;
        switch (size) {
            case 1: fxp::kern::transpose_batched(static_cast<const uint8_t*>(src), b, r, c, static_cast<uint8_t*>(dst)); break;
            case 2: fxp::kern::transpose_batched(static_cast<const uint16_t*>(src), b, r, c, static_cast<uint16_t*>(dst)); break;
            case 4: fxp::kern::transpose_batched(static_cast<const uint32_t*>(src), b, r, c, static_cast<uint32_t*>(dst)); break;
            default: fxp::kern::transpose_batched(static_cast<const uint64_t*>(src), b, r, c, static_cast<uint64_t*>(dst)); break;
        }
    }
    return y;
}

fxp::kern::PackedFloatConv pack_float_conv_weights(const py::array& w, Index groups) {
    require_array(w, "w", 4);
    FXP_REQUIRE(has_dtype<float>(w), "w must be float32, got " + describe(w));
    FXP_REQUIRE(groups >= 1 && w.shape(0) % groups == 0,
            "groups = " + std::to_string(groups) + " must divide the " + std::to_string(w.shape(0)) + " output channels of w");
    for (int d = 0; d < 4; ++d) FXP_REQUIRE(w.shape(d) >= 1, "w must have no empty dimension, got " + describe(w));
    py::gil_scoped_release release;
    return fxp::kern::pack_float_conv_weights(static_cast<const float*>(w.data()), w.shape(0), w.shape(1), w.shape(2),
                                              w.shape(3), groups);
}

// The epilogue arguments of the float convolution, checked against `channels` output channels.
fxp::kern::FloatEpilogue float_epilogue_of(Index channels, const std::optional<py::array>& bias,
                                           const std::optional<py::array>& scale, const std::optional<py::array>& shift,
                                           int activation, float lo, float hi, float alpha) {
    FXP_REQUIRE(activation >= 0 && activation <= 3,
            "activation must be 0 (none), 1 (relu), 2 (clip) or 3 (leaky), got " + std::to_string(activation));
    FXP_REQUIRE(activation != 2 || lo <= hi, "clip bounds must satisfy lo <= hi");
    fxp::kern::FloatEpilogue ep;
    if (bias) {
        require_array(*bias, "bias", 1);
        FXP_REQUIRE(has_dtype<float>(*bias), "bias must be float32, got " + describe(*bias));
        FXP_REQUIRE(bias->shape(0) == channels,
                "bias has " + std::to_string(bias->shape(0)) + " entries, expected " + std::to_string(channels));
        ep.bias = static_cast<const float*>(bias->data());
    }
    FXP_REQUIRE(bool(scale) == bool(shift), "scale and shift must be given together");
    if (scale) {
        const std::pair<const py::array*, const char*> vectors[] = {{&*scale, "scale"}, {&*shift, "shift"}};
        for (const auto& [v, name] : vectors) {
            require_array(*v, name, 1);
            FXP_REQUIRE(has_dtype<float>(*v), std::string(name) + " must be float32, got " + describe(*v));
            FXP_REQUIRE(v->shape(0) == channels, std::string(name) + " has " + std::to_string(v->shape(0)) +
                                                     " entries, expected " + std::to_string(channels));
        }
        ep.scale = static_cast<const float*>(scale->data());
        ep.shift = static_cast<const float*>(shift->data());
    }
    ep.activation = fxp::kern::FloatActivation(activation);
    ep.lo = lo;
    ep.hi = hi;
    ep.alpha = alpha;
    return ep;
}

py::array conv2d_float(const py::array& x, const fxp::kern::PackedFloatConv& w, std::array<Index, 2> stride,
                       std::array<Index, 2> dilation, std::array<Index, 4> pads, const std::optional<py::array>& bias,
                       const std::optional<py::array>& scale, const std::optional<py::array>& shift, int activation,
                       float lo, float hi, float alpha, int path) {
    require_array(x, "x", 4);
    FXP_REQUIRE(has_dtype<float>(x), "x must be float32, got " + describe(x));
    const fxp::kern::ConvGeometry g = conv_geometry(x, w, stride, dilation, pads);
    const fxp::kern::FloatEpilogue ep = float_epilogue_of(g.out_channels, bias, scale, shift, activation, lo, hi, alpha);
    py::array_t<float> out({g.batch, g.out_channels, g.out_h(), g.out_w()});
    float* o = out.mutable_data();
    const fxp::kern::Path p = path_of(path);
    {
        py::gil_scoped_release release;
        fxp::kern::conv2d_float(static_cast<const float*>(x.data()), g, w, ep, o, p);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
    m.doc() = "Exact int8/int16 GEMM and 2-D convolution (portable, AVX2, AVX-512 VNNI; threaded)";

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const fxp::kern::AccumulatorOverflow& e) {
            const std::string msg = "int32 accumulator overflow at output (" + std::to_string(e.row) + ", " +
                                    std::to_string(e.col) + "): exact value " + std::to_string(e.value);
            PyErr_SetString(PyExc_OverflowError, msg.c_str());
        }
    });

    py::class_<fxp::kern::PackedGemmB>(m, "PackedGemmB")
        .def_readonly("k", &fxp::kern::PackedGemmB::k)
        .def_readonly("n", &fxp::kern::PackedGemmB::n);
    py::class_<fxp::kern::PackedConvWeights>(m, "PackedConvWeights")
        .def_readonly("out_channels", &fxp::kern::PackedConvWeights::out_channels)
        .def_readonly("in_per_group", &fxp::kern::PackedConvWeights::in_per_group)
        .def_readonly("kernel_h", &fxp::kern::PackedConvWeights::kernel_h)
        .def_readonly("kernel_w", &fxp::kern::PackedConvWeights::kernel_w)
        .def_readonly("groups", &fxp::kern::PackedConvWeights::groups);

    py::class_<fxp::kern::PackedConvGemm>(m, "PackedConvGemm")
        .def_readonly("out_channels", &fxp::kern::PackedConvGemm::out_channels)
        .def_readonly("in_per_group", &fxp::kern::PackedConvGemm::in_per_group)
        .def_readonly("groups", &fxp::kern::PackedConvGemm::groups);

    py::class_<fxp::kern::PackedFloatConv>(m, "PackedFloatConv")
        .def_readonly("out_channels", &fxp::kern::PackedFloatConv::out_channels)
        .def_readonly("in_per_group", &fxp::kern::PackedFloatConv::in_per_group)
        .def_readonly("kernel_h", &fxp::kern::PackedFloatConv::kernel_h)
        .def_readonly("kernel_w", &fxp::kern::PackedFloatConv::kernel_w)
        .def_readonly("groups", &fxp::kern::PackedFloatConv::groups);

    m.def("cpu_features", [] {
        const fxp::cpu::Features& f = fxp::cpu::features();
        py::dict d;
        d["avx2"] = f.avx2;
        d["fma"] = f.fma;
        d["avx512f"] = f.avx512f;
        d["avx512bw"] = f.avx512bw;
        d["avx512vl"] = f.avx512vl;
        d["avx512vnni"] = f.avx512vnni;
        d["avx512vbmi"] = f.avx512vbmi;
        d["avx_vnni"] = f.avx_vnni;
        return d;
    });
    m.def("cpu_has_avx2", &fxp::kern::cpu_has_avx2);
    m.def("cpu_has_vnni", &fxp::kern::cpu_has_vnni);
    m.def("set_vnni_allowed", &fxp::kern::set_vnni_allowed, py::arg("allowed"));
    m.def("vnni_enabled", &fxp::kern::vnni_enabled);
    m.def("set_num_threads", &fxp::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &fxp::num_threads);
    m.def("pack_gemm_b", &pack_gemm_b, py::arg("b"));
    m.def("pack_conv_weights", &pack_conv_weights, py::arg("w"), py::arg("groups"));
    m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("bias"), py::arg("a_zero_point"), py::arg("b_zero_point"),
          py::arg("overflow"), py::arg("wide"), py::arg("requantizer"), py::arg("path"), py::arg("out") = py::none(),
          py::arg("accumulation") = 0);
    m.def("pack_conv_gemm", &pack_conv_gemm, py::arg("w"), py::arg("groups"), py::arg("order"), py::arg("accumulation"));
    m.def("conv2d_gemm", &conv2d_gemm, py::arg("x"), py::arg("w"), py::arg("x_zero_point"), py::arg("w_zero_point"),
          py::arg("stride"), py::arg("dilation"), py::arg("pads"), py::arg("bias"), py::arg("requantizer"), py::arg("path"),
          py::arg("x_channels_last") = false, py::arg("out_channels_last") = false);
    m.def("gemm_i16", &gemm_i16, py::arg("a"), py::arg("b"), py::arg("bias"), py::arg("a_zero_point"),
          py::arg("b_zero_point"), py::arg("requantizer"));
    m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("x_zero_point"), py::arg("stride"), py::arg("dilation"),
          py::arg("pads"), py::arg("bias"), py::arg("requantizer"), py::arg("path"));
    m.def("transpose_batched", &transpose_batched, py::arg("x"));
    m.def("pack_float_conv_weights", &pack_float_conv_weights, py::arg("w"), py::arg("groups"));
    m.def("conv2d_float", &conv2d_float, py::arg("x"), py::arg("w"), py::arg("stride"), py::arg("dilation"),
          py::arg("pads"), py::arg("bias"), py::arg("scale"), py::arg("shift"), py::arg("activation"), py::arg("lo"),
          py::arg("hi"), py::arg("alpha"), py::arg("path"));
    m.def("float_epilogue",
          [](py::array& out, const std::optional<py::array>& bias, const std::optional<py::array>& scale,
             const std::optional<py::array>& shift, int activation, float lo, float hi, float alpha, int path) {
              require_array(out, "out", 4);
              FXP_REQUIRE(has_dtype<float>(out) && out.writeable(), "out must be a writeable float32 array, got " + describe(out));
              const fxp::kern::FloatEpilogue ep =
                  float_epilogue_of(out.shape(1), bias, scale, shift, activation, lo, hi, alpha);
              float* o = static_cast<float*>(out.mutable_data());
              py::gil_scoped_release release;
              fxp::kern::float_epilogue(o, out.shape(0), out.shape(1), out.shape(2) * out.shape(3), ep, path_of(path));
          },
          py::arg("out"), py::arg("bias"), py::arg("scale"), py::arg("shift"), py::arg("activation"), py::arg("lo"),
          py::arg("hi"), py::arg("alpha"), py::arg("path"));
    m.def("ceiling_gops", [](bool quads, int threads, double seconds) {
        py::gil_scoped_release release;
        return fxp::kern::ceiling_gops(quads, threads, seconds);
    }, py::arg("quads"), py::arg("threads"), py::arg("seconds"));
    m.def("vnni_ceiling_gops", [](int threads, double seconds) {
        py::gil_scoped_release release;
        return fxp::kern::vnni_ceiling_gops(threads, seconds);
    }, py::arg("threads"), py::arg("seconds"));
}
