// pybind11 binding of fixedpoint._litert: LiteRT's int8 operator arithmetic per op resolver
// (csrc/ops/litert/*.hpp). Inputs arrive with checked dtypes and shapes from
// fixedpoint/kernels/litert.py; this layer checks what memory accesses depend on and releases the
// GIL for the loops.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/litert/binary.hpp"
#include "ops/litert/conv_params.hpp"
#include "ops/litert/mean.hpp"
#include "ops/litert/pool.hpp"
#include "ops/litert/quant_params.hpp"
#include "ops/litert/softmax.hpp"
#include "ops/litert/unary.hpp"

namespace py = pybind11;
namespace lr = fxp::litert;

namespace {

template <class T>
bool has_dtype(const py::array& a) { return a.dtype().is(py::dtype::of<T>()); }

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// (qmin, qmax) of an 8-bit output dtype name.
std::pair<int32_t, int32_t> range_of(const std::string& dtype) {
    if (dtype == "int8") return {-128, 127};
    if (dtype == "uint8") return {0, 255};
    throw std::invalid_argument("dtype must be int8 or uint8, got " + dtype);
}

// Calls fn(T{}) with the 8-bit type named `dtype`.
template <class Fn>
decltype(auto) with_dtype8(const std::string& dtype, Fn&& fn) {
    if (dtype == "int8") return fn(int8_t{});
    if (dtype == "uint8") return fn(uint8_t{});
    throw std::invalid_argument("dtype must be int8 or uint8, got " + dtype);
}

template <class T>
py::array_t<T> vector_array(const std::vector<T>& v) {
    py::array_t<T> a(py::ssize_t(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

// The shapes of a, b and their broadcast output, each extended with leading 1s to one rank.
lr::BinaryShapes binary_shapes(const py::array& a, const py::array& b, const std::vector<py::ssize_t>& out) {
    lr::BinaryShapes s;
    s.rank = int(out.size());
    require(s.rank <= lr::kMaxBinaryRank, "tensors of rank above 6 are not supported");
    require(a.ndim() <= s.rank && b.ndim() <= s.rank, "the output shape must have the largest rank");
    for (int d = 0; d < s.rank; ++d) {
        const int da = d - (s.rank - int(a.ndim())), db = d - (s.rank - int(b.ndim()));
        s.a[d] = da >= 0 ? a.shape(da) : 1;
        s.b[d] = db >= 0 ? b.shape(db) : 1;
        s.out[d] = out[d];
        require((s.a[d] == s.out[d] || s.a[d] == 1) && (s.b[d] == s.out[d] || s.b[d] == 1),
                "shapes do not broadcast to the output shape");
    }
    return s;
}

lr::ByteType byte_type_of(const py::array& a, const char* name) {
    if (has_dtype<int8_t>(a)) return lr::ByteType::Int8;
    if (has_dtype<uint8_t>(a)) return lr::ByteType::UInt8;
    throw std::invalid_argument(std::string(name) + " must be int8 or uint8");
}

lr::ByteType byte_type_named(const std::string& dtype) {
    if (dtype == "int8") return lr::ByteType::Int8;
    if (dtype == "uint8") return lr::ByteType::UInt8;
    throw std::invalid_argument("dtype must be int8 or uint8, got " + dtype);
}

py::array new_byte_array(const std::vector<py::ssize_t>& shape, lr::ByteType t) {
    if (t == lr::ByteType::Int8) return py::array_t<int8_t>(shape);
    return py::array_t<uint8_t>(shape);
}

}  // namespace

PYBIND11_MODULE(_litert, m) {
    m.doc() = "fixedpoint._litert: LiteRT (TFLite interpreter) int8 operator arithmetic per op resolver "
              "(reference, optimized, xnnpack)";

    // ---- parameter derivation ------------------------------------------------------------------
    m.def("activation_range", [](int resolver, int activation, float scale, int32_t zero_point, const std::string& dtype) {
        const auto [qmin, qmax] = range_of(dtype);
        const lr::Range r = lr::activation_range(lr::resolver_from_int(resolver), lr::activation_from_int(activation),
                                                 scale, zero_point, qmin, qmax);
        return py::make_tuple(r.lo, r.hi);
    });

    m.def("conv_requant_plan",
          [](int resolver, int kind, float input_scale, const py::array_t<float, py::array::c_style | py::array::forcecast>& weight_scales,
             py::ssize_t channels, float output_scale, int32_t output_zero_point, int activation, const std::string& dtype) {
              require(kind >= 0 && kind <= 2, "kind must be 0 (conv), 1 (depthwise) or 2 (fully connected)");
              const auto [qmin, qmax] = range_of(dtype);
              const lr::ConvRequantPlan p = lr::conv_requant_plan(
                  lr::resolver_from_int(resolver), lr::ConvKind(kind), input_scale, weight_scales.data(),
                  weight_scales.size(), channels, output_scale, output_zero_point, lr::activation_from_int(activation),
                  qmin, qmax);
              py::dict d;
              d["rounding"] = vector_array(p.rounding);
              d["multiplier"] = vector_array(p.multiplier);
              d["shift"] = vector_array(p.shift);
              d["scale"] = vector_array(p.scale);
              d["real"] = vector_array(p.real);
              d["zero_point"] = p.zero_point;
              d["clamp"] = py::make_tuple(p.clamp.lo, p.clamp.hi);
              return d;
          });

    m.def("requantize_double_round",
          [](const py::array_t<int32_t, py::array::c_style>& acc, const py::array_t<double, py::array::c_style>& real,
             int32_t zero_point, int32_t lo, int32_t hi, const std::string& dtype) -> py::array {
              require(acc.ndim() == 2, "acc must be 2-D (rows, channels)");
              require(real.ndim() == 1 && real.shape(0) == acc.shape(1), "real must hold one multiplier per channel");
              return with_dtype8(dtype, [&](auto t) -> py::array {
                  using Out = decltype(t);
                  py::array_t<Out> out(shape_of(acc));
                  const int32_t* a = acc.data();
                  const double* r = real.data();
                  Out* o = out.mutable_data();
                  const py::ssize_t rows = acc.shape(0), ch = acc.shape(1);
                  {
                      py::gil_scoped_release nogil;
                      lr::requantize_double_round(a, rows, ch, r, zero_point, lr::Range{lo, hi}, o);
                  }
                  return out;
              });
          });

    // ---- ADD / SUB / MUL -----------------------------------------------------------------------
    m.def("binary",
          [](int op, int resolver, const py::array& a, float a_scale, int32_t a_zp, const py::array& b, float b_scale,
             int32_t b_zp, float out_scale, int32_t out_zp, int activation, const std::vector<py::ssize_t>& out_shape,
             bool avx2) -> py::array {
              require(op >= 0 && op <= 2, "op must be 0 (add), 1 (sub) or 2 (mul)");
              require((a.flags() & py::array::c_style) && (b.flags() & py::array::c_style), "a and b must be C-contiguous");
              require(has_dtype<int8_t>(a) && has_dtype<int8_t>(b), "a and b must be int8");
              const lr::BinaryShapes shapes = binary_shapes(a, b, out_shape);
              const lr::BinaryArgs args{lr::BinaryOp(op), lr::resolver_from_int(resolver), {a_scale, a_zp}, {b_scale, b_zp},
                                        {out_scale, out_zp}, lr::activation_from_int(activation)};
              py::array_t<int8_t> out(out_shape);
              const int8_t* pa = static_cast<const int8_t*>(a.data());
              const int8_t* pb = static_cast<const int8_t*>(b.data());
              int8_t* po = out.mutable_data();
              // Parameter errors surface before the GIL is released.
              if (!lr::runs_in_xnnpack(args))
                  lr::tflite_binary_params(args.op, args.in1, args.in2, args.out, args.act, -128, 127);
              {
                  py::gil_scoped_release nogil;
                  lr::binary_op(args, shapes, pa, pb, po, avx2);
              }
              return out;
          });
    m.def("xnnpack_takes_binary", [](int op, float a_scale, float b_scale, float out_scale) {
        return lr::xnn_binary_supported(lr::BinaryOp(op), {a_scale, 0}, {b_scale, 0}, {out_scale, 0});
    });

    // ---- one-input ops --------------------------------------------------------------------------
    m.def("unary",
          [](int op, int resolver, const py::array& x, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
             const std::string& out_dtype, float alpha, bool avx2) -> py::array {
              require(op >= 0 && op <= 7, "unknown unary op code");
              require(bool(x.flags() & py::array::c_style), "x must be C-contiguous");
              const lr::UnaryArgs args{lr::UnaryOp(op), lr::resolver_from_int(resolver), {in_scale, in_zp},
                                       {out_scale, out_zp}, byte_type_of(x, "x"), byte_type_named(out_dtype), alpha};
              const lr::UnaryTables t = lr::unary_tables(args);
              py::array out = new_byte_array(shape_of(x), args.out_type);
              const uint8_t* src = static_cast<const uint8_t*>(x.data());
              uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
              const py::ssize_t n = x.size();
              {
                  py::gil_scoped_release nogil;
                  lr::apply_unary_tables(t, src, n, dst, avx2);
              }
              return out;
          });
    m.def("unary_table", [](int op, int resolver, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                             const std::string& in_dtype, const std::string& out_dtype, float alpha) {
        const lr::UnaryArgs args{lr::UnaryOp(op), lr::resolver_from_int(resolver), {in_scale, in_zp}, {out_scale, out_zp},
                                 byte_type_named(in_dtype), byte_type_named(out_dtype), alpha};
        const lr::UnaryTables t = lr::unary_tables(args);
        py::array_t<uint8_t> vec(256), tail(256);
        std::copy(t.vec, t.vec + 256, vec.mutable_data());
        std::copy(t.tail, t.tail + 256, tail.mutable_data());
        return py::make_tuple(vec, tail, t.block, lr::unary_runs_in_xnnpack(args));
    });
    m.def("quantize",
          [](int resolver, const py::array_t<float, py::array::c_style>& x, float scale, int32_t zp, const std::string& dtype,
             bool avx2) -> py::array {
              const lr::ByteType t = byte_type_named(dtype);
              py::array out = new_byte_array(shape_of(x), t);
              const float* src = x.data();
              uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
              const py::ssize_t n = x.size();
              const lr::Resolver r = lr::resolver_from_int(resolver);
              {
                  py::gil_scoped_release nogil;
                  lr::quantize_float(r, src, n, {scale, zp}, t, dst, avx2);
              }
              return out;
          });
    m.def("dequantize", [](int resolver, const py::array& q, float scale, int32_t zp, bool avx2) -> py::array {
        require(bool(q.flags() & py::array::c_style), "q must be C-contiguous");
        const lr::ByteType t = byte_type_of(q, "q");
        py::array_t<float> out(shape_of(q));
        const uint8_t* src = static_cast<const uint8_t*>(q.data());
        float* dst = out.mutable_data();
        const py::ssize_t n = q.size();
        const lr::Resolver r = lr::resolver_from_int(resolver);
        {
            py::gil_scoped_release nogil;
            lr::dequantize(r, src, n, {scale, zp}, t, dst, avx2);
        }
        return out;
    });

    // ---- SOFTMAX, MEAN ----------------------------------------------------------------------------
    m.def("softmax",
          [](int resolver, const py::array_t<int8_t, py::array::c_style>& x, float beta, float in_scale, float out_scale,
             int32_t out_zp) -> py::array {
              require(x.ndim() >= 1 && x.shape(x.ndim() - 1) > 0, "x must have a non-empty last axis");
              const lr::Resolver r = lr::resolver_from_int(resolver);
              const lr::SoftmaxParams p = lr::softmax_params(r, beta, in_scale, out_scale, out_zp);
              py::array_t<int8_t> out(shape_of(x));
              const py::ssize_t depth = x.shape(x.ndim() - 1), rows = x.size() / depth;
              const int8_t* src = x.data();
              int8_t* dst = out.mutable_data();
              {
                  py::gil_scoped_release nogil;
                  lr::softmax(r, p, src, rows, depth, dst);
              }
              return out;
          });
    m.def("mean",
          [](int resolver, const py::array_t<int8_t, py::array::c_style>& x, const std::vector<int>& axes, bool keep_dims,
             float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, int num_threads, bool avx2) -> py::array {
              const int rank = int(x.ndim());
              require(rank >= 1 && rank <= lr::kMaxMeanRank, "MEAN supports tensors of rank 1 to 6");
              bool reduced[lr::kMaxMeanRank] = {};
              std::ptrdiff_t shape[lr::kMaxMeanRank] = {};
              for (int d = 0; d < rank; ++d) shape[d] = x.shape(d);
              for (int a : axes) {
                  require(a >= 0 && a < rank, "axis out of range");
                  reduced[a] = true;
              }
              std::vector<py::ssize_t> out_shape;
              for (int d = 0; d < rank; ++d)
                  if (!reduced[d]) out_shape.push_back(shape[d]);
                  else if (keep_dims) out_shape.push_back(1);
              py::array_t<int8_t> out(out_shape);
              const lr::MeanArgs args{lr::resolver_from_int(resolver), {in_scale, in_zp}, {out_scale, out_zp}, keep_dims,
                                      num_threads};
              const int8_t* src = x.data();
              int8_t* dst = out.mutable_data();
              {
                  py::gil_scoped_release nogil;
                  lr::mean(args, src, rank, shape, reduced, dst, avx2);
              }
              return out;
          });

    // ---- pooling ---------------------------------------------------------------------------------------
    // x: NCHW, or NHWC when channels_last (the output then NHWC too).
    m.def("pool2d",
          [](bool average, const py::array_t<int8_t, py::array::c_style>& x, int fh, int fw, int sh, int sw, int pad_top,
             int pad_left, py::ssize_t out_h, py::ssize_t out_w, int32_t lo, int32_t hi, bool avx2, bool channels_last) -> py::array {
              require(x.ndim() == 4, std::string("x must be ") + (channels_last ? "NHWC" : "NCHW") + " (4-D)");
              const py::ssize_t h = x.shape(channels_last ? 1 : 2), w = x.shape(channels_last ? 2 : 3);
              const py::ssize_t c = x.shape(channels_last ? 3 : 1);
              require(fh >= 1 && fw >= 1 && sh >= 1 && sw >= 1 && pad_top >= 0 && pad_left >= 0 && pad_top < fh &&
                          pad_left < fw && out_h >= 1 && out_w >= 1,
                      "invalid pooling geometry");
              require((out_h - 1) * sh - pad_top < h && (out_w - 1) * sw - pad_left < w,
                      "a pooling window lies outside the input");
              const lr::PoolArgs a{channels_last ? x.shape(0) : x.shape(0) * c, h, w, out_h, out_w, fh, fw, sh, sw,
                                   pad_top, pad_left, lr::Range{lo, hi}};
              py::array_t<int8_t> out = channels_last ? py::array_t<int8_t>({x.shape(0), out_h, out_w, c})
                                                      : py::array_t<int8_t>({x.shape(0), c, out_h, out_w});
              const int8_t* src = x.data();
              int8_t* dst = out.mutable_data();
              {
                  py::gil_scoped_release nogil;
                  lr::pool2d(average, a, src, dst, avx2, channels_last, c);
              }
              return out;
          }, py::arg("average"), py::arg("x"), py::arg("fh"), py::arg("fw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
          py::arg("pad_left"), py::arg("out_h"), py::arg("out_w"), py::arg("lo"), py::arg("hi"), py::arg("avx2"),
          py::arg("channels_last") = false);
}
