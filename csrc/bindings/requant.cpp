// pybind11 binding of fixedpoint._requant: requantizers and the integer elementwise kernels.
// Inputs arrive C-contiguous with checked dtypes from fixedpoint/kernels/*.py; this layer checks what
// the memory accesses depend on (shapes, dtypes, parameters) and releases the GIL for the loops.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/requantizer_args.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/float_pool.hpp"
#include "fixed/quantize_multiplier.hpp"
#include "kernels/requantize.hpp"

namespace py = pybind11;

namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

void require_contiguous(const py::array& a, const char* name) {
    if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
}

template <class T>
bool has_dtype(const py::array& a) { return a.dtype().is(py::dtype::of<T>()); }

// Calls fn(T{}) for the integer dtype of `a` among int8, uint8, int16, int32.
template <class Fn>
py::array with_int_dtype(const py::array& a, const char* name, Fn&& fn) {
    if (has_dtype<int8_t>(a)) return fn(int8_t{});
    if (has_dtype<uint8_t>(a)) return fn(uint8_t{});
    if (has_dtype<int16_t>(a)) return fn(int16_t{});
    if (has_dtype<int32_t>(a)) return fn(int32_t{});
    throw std::invalid_argument(std::string(name) + " must have dtype int8, uint8, int16 or int32, got " +
                                std::string(py::str(a.dtype())));
}

fxp::OutType out_type_of(const std::string& dtype) {
    if (dtype == "int8") return fxp::OutType::Int8;
    if (dtype == "uint8") return fxp::OutType::UInt8;
    if (dtype == "int16") return fxp::OutType::Int16;
    if (dtype == "int32") return fxp::OutType::Int32;
    throw std::invalid_argument("dtype must be int8, uint8, int16 or int32, got " + dtype);
}

// acc viewed as [outer, channels, inner] around channel_axis; output of the requantizer's type.
py::array requantize(const py::array& acc, const fxp::Requantizer& rq, int channel_axis) {
    require_contiguous(acc, "acc");
    const bool wide = has_dtype<int64_t>(acc);
    if (!wide && !has_dtype<int32_t>(acc))
        throw std::invalid_argument("acc must have dtype int32 or int64, got " + std::string(py::str(acc.dtype())));
    if (acc.ndim() == 0) throw std::invalid_argument("acc must have at least one dimension");
    if (channel_axis < 0 || channel_axis >= acc.ndim())
        throw std::invalid_argument("channel_axis " + std::to_string(channel_axis) + " out of range for acc with " +
                                    std::to_string(acc.ndim()) + " dimensions");
    py::ssize_t outer = 1, inner = 1;
    for (int i = 0; i < channel_axis; ++i) outer *= acc.shape(i);
    for (int i = channel_axis + 1; i < acc.ndim(); ++i) inner *= acc.shape(i);
    const py::ssize_t channels = acc.shape(channel_axis);
    rq.check_channels(channels);

    return fxp::with_out_type(rq.out_type, [&](auto o) -> py::array {
        using Out = decltype(o);
        py::array_t<Out> out(shape_of(acc));
        Out* dst = out.mutable_data();
        const void* src = acc.data();
        {
            py::gil_scoped_release nogil;
            // One thread: requantization runs at memory speed (GB/s); threads add only overhead.
            auto run = [&](auto* a) {
                const py::ssize_t planes = outer * channels;
                if (inner == 1) {  // channels are the last axis: one row per outer index
                    for (py::ssize_t r = 0; r < outer; ++r)
                        rq.apply_per_column(a + r * channels, channels, 0, dst + r * channels);
                } else {
                    for (py::ssize_t p = 0; p < planes; ++p)
                        rq.apply_channel(a + p * inner, inner, p % channels, dst + p * inner);
                }
            };
            if (wide) run(static_cast<const int64_t*>(src));
            else run(static_cast<const int32_t*>(src));
        }
        return out;
    });
}

// Elementwise binary int32 op over two equally shaped contiguous arrays.
template <class Op>
py::array_t<int32_t> int32_binary(const py::array_t<int32_t, py::array::c_style>& a,
                                  const py::array_t<int32_t, py::array::c_style>& b, Op op) {
    if (shape_of(a) != shape_of(b)) throw std::invalid_argument("operands must have the same shape");
    py::array_t<int32_t> out(shape_of(a));
    const int32_t* pa = a.data();
    const int32_t* pb = b.data();
    int32_t* po = out.mutable_data();
    const py::ssize_t n = a.size();
    {
        py::gil_scoped_release nogil;
        for (py::ssize_t i = 0; i < n; ++i) po[i] = op(pa[i], pb[i]);
    }
    return out;
}

std::array<int64_t, 4> pads_of(const std::vector<int64_t>& p) {
    if (p.size() != 4) throw std::invalid_argument("padding must have 4 entries (top, left, bottom, right)");
    return {p[0], p[1], p[2], p[3]};
}

fxp::PoolGeometry geometry(const py::array& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                           const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
    require_contiguous(x, "x");
    if (x.ndim() != 4) throw std::invalid_argument("x must be NCHW (4-D), got " + std::to_string(x.ndim()) + "-D");
    if (kernel.size() != 2 || stride.size() != 2 || dilation.size() != 2)
        throw std::invalid_argument("kernel, stride and dilation must have 2 entries");
    return fxp::PoolGeometry::make(x.shape(0), x.shape(1), x.shape(2), x.shape(3), {kernel[0], kernel[1]},
                                   {stride[0], stride[1]}, pads_of(padding), {dilation[0], dilation[1]});
}

}  // namespace

PYBIND11_MODULE(_requant, m) {
    m.doc() = "fixedpoint._requant: requantizers (pow2 shift, gemmlowp, single rounding, ruy, fp32) and integer "
              "elementwise kernels, and the float32 pooling and softmax of float inference";

    // A requantizer parsed once from its parameter dict (which it keeps alive: it reads the dict's
    // per-channel arrays in place), for calls where parsing would cost as much as the work.
    py::class_<fxp::Requantizer>(m, "CompiledRequantizer");
    m.def("compile_requantizer", &fxp::requantizer_from_params, py::arg("params"), py::keep_alive<0, 1>());
    m.def("requantize", &requantize, py::arg("acc"), py::arg("requantizer"), py::arg("channel_axis"));
    m.def("requantize",
          [](const py::array& acc, const py::dict& params, int channel_axis) {
              return requantize(acc, fxp::requantizer_from_params(params), channel_axis);
          },
          py::arg("acc"), py::arg("params"), py::arg("channel_axis"));

    m.def("saturating_rounding_doubling_high_mul",
          [](const py::array_t<int32_t, py::array::c_style>& a, const py::array_t<int32_t, py::array::c_style>& b) {
              return int32_binary(a, b, fxp::saturating_rounding_doubling_high_mul);
          });
    m.def("rounding_divide_by_pot",
          [](const py::array_t<int32_t, py::array::c_style>& x, const py::array_t<int32_t, py::array::c_style>& e) {
              return int32_binary(x, e, [](int32_t v, int32_t s) { return fxp::rounding_divide_by_pot(v, s); });
          });

    m.def("quantize_multiplier", [](const py::array_t<double, py::array::c_style>& real) {
        py::array_t<int32_t> m0(real.size()), shift(real.size());
        const double* r = real.data();
        int32_t* mp = m0.mutable_data();
        int32_t* sp = shift.mutable_data();
        for (py::ssize_t i = 0; i < real.size(); ++i) {
            const fxp::QuantizedMultiplier q = fxp::quantize_multiplier(r[i]);
            mp[i] = q.multiplier;
            sp[i] = q.shift;
        }
        return py::make_tuple(m0, shift);
    }, py::arg("real"));

    m.def("quantize",
          [](const py::array& x, bool by_scale, double scale, int fraction_length, int64_t zero_point, int rounding,
             int overflow, const std::string& dtype) -> py::array {
              require_contiguous(x, "x");
              const fxp::QuantizeParams qp{by_scale, scale, fraction_length, zero_point, fxp::rounding_from_int(rounding),
                                           fxp::overflow_from_int(overflow)};
              return fxp::with_out_type(out_type_of(dtype), [&](auto o) -> py::array {
                  using Out = decltype(o);
                  py::array_t<Out> out(shape_of(x));
                  Out* dst = out.mutable_data();
                  const py::ssize_t n = x.size();
                  auto run = [&](auto* src) {
                      py::gil_scoped_release nogil;
                      fxp::quantize(src, n, qp, dst);
                  };
                  if (has_dtype<float>(x)) run(static_cast<const float*>(x.data()));
                  else if (has_dtype<double>(x)) run(static_cast<const double*>(x.data()));
                  else throw std::invalid_argument("x must have dtype float32 or float64, got " + std::string(py::str(x.dtype())));
                  return out;
              });
          });

    m.def("add_shifted",
          [](const py::array& a, int fa, const py::array& b, int fb, int out_fraction_length, int rounding, int overflow,
             const std::string& dtype) -> py::array {
              require_contiguous(a, "a");
              require_contiguous(b, "b");
              if (shape_of(a) != shape_of(b)) throw std::invalid_argument("a and b must have the same shape");
              const fxp::AddShiftedParams ap{fa, fb, out_fraction_length, fxp::rounding_from_int(rounding),
                                             fxp::overflow_from_int(overflow)};
              ap.check();
              return fxp::with_out_type(out_type_of(dtype), [&](auto o) -> py::array {
                  using Out = decltype(o);
                  py::array_t<Out> out(shape_of(a));
                  Out* dst = out.mutable_data();
                  const py::ssize_t n = a.size();
                  return with_int_dtype(a, "a", [&](auto ta) -> py::array {
                      using A = decltype(ta);
                      return with_int_dtype(b, "b", [&](auto tb) -> py::array {
                          using B = decltype(tb);
                          const A* pa = static_cast<const A*>(a.data());
                          const B* pb = static_cast<const B*>(b.data());
                          {
                              py::gil_scoped_release nogil;
                              fxp::add_shifted(pa, pb, n, ap, dst);
                          }
                          return out;
                      });
                  });
              });
          });

    m.def("max_pool2d",
          [](const py::array& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
             const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) -> py::array {
              const fxp::PoolGeometry g = geometry(x, kernel, stride, padding, dilation);
              return with_int_dtype(x, "x", [&](auto t) -> py::array {
                  using T = decltype(t);
                  py::array_t<T> out({g.n, g.c, g.out_h, g.out_w});
                  const T* src = static_cast<const T*>(x.data());
                  T* dst = out.mutable_data();
                  {
                      py::gil_scoped_release nogil;
                      fxp::max_pool2d(src, g, dst);
                  }
                  return out;
              });
          });

    m.def("avg_pool2d",
          [](const py::array& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
             const std::vector<int64_t>& padding, bool count_include_pad, int rounding) -> py::array {
              const fxp::PoolGeometry g = geometry(x, kernel, stride, padding, {1, 1});
              const fxp::Rounding r = fxp::rounding_from_int(rounding);
              return with_int_dtype(x, "x", [&](auto t) -> py::array {
                  using T = decltype(t);
                  py::array_t<T> out({g.n, g.c, g.out_h, g.out_w});
                  const T* src = static_cast<const T*>(x.data());
                  T* dst = out.mutable_data();
                  {
                      py::gil_scoped_release nogil;
                      fxp::avg_pool2d(src, g, count_include_pad, r, dst);
                  }
                  return out;
              });
          });

    // Float32 pooling and softmax of float inference (kernels/float_pool.hpp).
    m.def("max_pool2d_float",
          [](const py::array_t<float, py::array::c_style>& x, const std::vector<int64_t>& kernel,
             const std::vector<int64_t>& stride, const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation) {
              const fxp::PoolGeometry g = geometry(x, kernel, stride, padding, dilation);
              py::array_t<float> out({g.n, g.c, g.out_h, g.out_w});
              const float* src = x.data();
              float* dst = out.mutable_data();
              {
                  py::gil_scoped_release nogil;
                  fxp::max_pool2d_float(src, g, dst);
              }
              return out;
          });

    m.def("avg_pool2d_float",
          [](const py::array_t<float, py::array::c_style>& x, const std::vector<int64_t>& kernel,
             const std::vector<int64_t>& stride, const std::vector<int64_t>& padding, bool count_include_pad,
             int64_t counted_bottom, int64_t counted_right) {
              const fxp::PoolGeometry g = geometry(x, kernel, stride, padding, {1, 1});
              if (counted_bottom < 0 || counted_bottom > g.pads[2] || counted_right < 0 || counted_right > g.pads[3])
                  throw std::invalid_argument("counted padding must lie within the padding");
              py::array_t<float> out({g.n, g.c, g.out_h, g.out_w});
              const float* src = x.data();
              float* dst = out.mutable_data();
              {
                  py::gil_scoped_release nogil;
                  fxp::avg_pool2d_float(src, g, count_include_pad, counted_bottom, counted_right, dst);
              }
              return out;
          });

    m.def("softmax_float", [](const py::array_t<float, py::array::c_style>& x, int axis) {
        if (axis < 0 || axis >= x.ndim()) throw std::invalid_argument("axis out of range");
        py::ssize_t outer = 1, inner = 1;
        for (int i = 0; i < axis; ++i) outer *= x.shape(i);
        for (int i = axis + 1; i < x.ndim(); ++i) inner *= x.shape(i);
        py::array_t<float> out(shape_of(x));
        const float* src = x.data();
        float* dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            fxp::softmax_float(src, outer, x.shape(axis), inner, dst);
        }
        return out;
    });
}
