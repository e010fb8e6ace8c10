// pybind11 binding of fixedpoint._onnxruntime: ONNX Runtime's (CPU EP, x86 AVX2) operator formulas other
// than the integer GEMM/convolution accumulation (csrc/ops/onnxruntime/*.hpp).
// fixedpoint/kernels/onnxruntime.py validates the arguments, resolves shapes and attributes and makes
// arrays C-contiguous; this layer re-checks what a memory access depends on and releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/onnxruntime/batch_norm_softmax.hpp"
#include "ops/onnxruntime/dynamic_quantize_linear.hpp"
#include "ops/onnxruntime/float_activations.hpp"
#include "ops/onnxruntime/lanes.hpp"
#include "ops/onnxruntime/lookup_table.hpp"
#include "ops/onnxruntime/mlas_conv.hpp"
#include "ops/onnxruntime/mlas_nchwc.hpp"
#include "ops/onnxruntime/mlas_pool.hpp"
#include "ops/onnxruntime/mlas_sgemm.hpp"
#include "ops/onnxruntime/mlas_transcendental.hpp"
#include "ops/onnxruntime/qlinear_binary.hpp"
#include "ops/onnxruntime/qlinear_pool.hpp"
#include "ops/onnxruntime/qlinear_softmax.hpp"
#include "ops/onnxruntime/quantize_linear.hpp"
#include "ops/onnxruntime/resize.hpp"

namespace py = pybind11;
using fxp::ort::Isa;

namespace {

#define FXP_REQUIRE(ok, message)                         \
    do {                                                 \
        if (!(ok)) throw std::invalid_argument(message); \
    } while (0)

template <class T>
bool has_dtype(const py::array& a) { return a.dtype().is(py::dtype::of<T>()); }

std::string dtype_name(const py::array& a) { return std::string(py::str(a.dtype())); }

void require_contiguous(const py::array& a, const char* name) {
    FXP_REQUIRE(bool(a.flags() & py::array::c_style), std::string(name) + " must be C-contiguous");
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// Calls fn(Q{}) for a uint8 or int8 array.
template <class Fn>
py::array with_qdtype(const py::array& a, const char* name, Fn&& fn) {
    if (has_dtype<uint8_t>(a)) return fn(uint8_t{});
    if (has_dtype<int8_t>(a)) return fn(int8_t{});
    throw std::invalid_argument(std::string(name) + " must have dtype uint8 or int8, got " + dtype_name(a));
}

template <class T>
const T* typed(const py::array& a, const char* name, py::ssize_t size) {
    require_contiguous(a, name);
    FXP_REQUIRE(has_dtype<T>(a), std::string(name) + " has dtype " + dtype_name(a) + ", expected " +
                                      std::string(py::str(py::dtype::of<T>())));
    FXP_REQUIRE(a.size() == size, std::string(name) + " must have " + std::to_string(size) + " elements, got " +
                                      std::to_string(a.size()));
    return static_cast<const T*>(a.data());
}

// ---- QuantizeLinear / DequantizeLinear ----------------------------------------------------------------

py::array quantize_linear(const py::array& x, const py::array& scale, const py::array& zero_point, py::ssize_t outer,
                          py::ssize_t channels, py::ssize_t inner, int isa) {
    const float* xs = typed<float>(x, "x", outer * channels * inner);
    const float* ss = typed<float>(scale, "scale", channels);
    const Isa path = fxp::ort::isa_of(isa);
    return with_qdtype(zero_point, "zero_point", [&](auto q) -> py::array {
        using Q = decltype(q);
        const Q* zs = typed<Q>(zero_point, "zero_point", channels);
        py::array_t<Q> out(shape_of(x));
        Q* o = out.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::quantize_linear(xs, o, outer, channels, inner, ss, zs, path);
        return out;
    });
}

// (y uint8, scale, zero point) of DynamicQuantizeLinear over the whole of x.
py::tuple dynamic_quantize_linear(const py::array& x, int isa) {
    const float* xs = typed<float>(x, "x", x.size());
    py::array_t<uint8_t> y(shape_of(x));
    uint8_t* o = y.mutable_data();
    float scale = 1.0f;
    uint8_t zp = 0;
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = fxp::ort::dynamic_quantize_linear_params(xs, x.size(), scale, zp);
        if (ok) fxp::ort::quantize_linear<uint8_t>(xs, o, 1, 1, x.size(), &scale, &zp, fxp::ort::isa_of(isa));
    }
    FXP_REQUIRE(ok, "x holds NaN: DynamicQuantizeLinear's range (and ONNX Runtime's result) is then undefined");
    return py::make_tuple(y, scale, zp);
}

py::array dequantize_linear(const py::array& x, const py::array& scale, const py::array& zero_point, py::ssize_t outer,
                            py::ssize_t channels, py::ssize_t inner, int isa) {
    const float* ss = typed<float>(scale, "scale", channels);
    const Isa path = fxp::ort::isa_of(isa);
    auto run = [&](auto t) -> py::array {
        using T = decltype(t);
        const T* xs = typed<T>(x, "x", outer * channels * inner);
        const T* zs = typed<T>(zero_point, "zero_point", channels);
        py::array_t<float> out(shape_of(x));
        float* o = out.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::dequantize_linear(xs, o, outer, channels, inner, ss, zs, path);
        return out;
    };
    if (has_dtype<uint8_t>(x)) return run(uint8_t{});
    if (has_dtype<int8_t>(x)) return run(int8_t{});
    if (has_dtype<int32_t>(x)) return run(int32_t{});
    throw std::invalid_argument("x must have dtype uint8, int8 or int32, got " + dtype_name(x));
}

// ---- QLinearAdd / QLinearMul --------------------------------------------------------------------------

py::array qlinear_binary(int op, const py::array& a, float a_scale, int a_zp, const py::array& b, float b_scale, int b_zp,
                         float c_scale, int c_zp, int isa) {
    FXP_REQUIRE(op == 0 || op == 1, "op must be 0 (add) or 1 (mul)");
    const Isa path = fxp::ort::isa_of(isa);
    return with_qdtype(a, "a", [&](auto q) -> py::array {
        using Q = decltype(q);
        const Q* as = typed<Q>(a, "a", a.size());
        const Q* bs = typed<Q>(b, "b", b.size());
        std::vector<std::ptrdiff_t> sa(a.shape(), a.shape() + a.ndim()), sb(b.shape(), b.shape() + b.ndim());
        const fxp::ort::BroadcastPlan plan = fxp::ort::make_broadcast_plan(sa, sb);
        py::array_t<Q> out(std::vector<py::ssize_t>(plan.out_shape.begin(), plan.out_shape.end()));
        Q* o = out.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::qlinear_binary(fxp::ort::BinaryOp(op), as, {a_scale, a_zp}, bs, {b_scale, b_zp}, {c_scale, c_zp}, o,
                                 plan, path);
        return out;
    });
}

// ---- tables: QLinearLeakyRelu, QLinearSigmoid, QLinearConcat --------------------------------------------

py::array lookup_table(int function, float alpha, float x_scale, int x_zp, float y_scale, int y_zp, bool is_signed) {
    FXP_REQUIRE(function >= 0 && function <= 2, "function must be 0 (identity), 1 (leaky relu) or 2 (sigmoid)");
    auto build = [&](auto q) -> py::array {
        using Q = decltype(q);
        py::array_t<Q> table(256);
        fxp::ort::build_lookup_table<Q>(fxp::ort::TableFunction(function), alpha, x_scale, x_zp, y_scale, y_zp,
                                        table.mutable_data());
        return table;
    };
    return is_signed ? build(int8_t{}) : build(uint8_t{});
}

py::array apply_lookup_table(const py::array& x, const py::array& table) {
    return with_qdtype(x, "x", [&](auto q) -> py::array {
        using Q = decltype(q);
        const Q* xs = typed<Q>(x, "x", x.size());
        const Q* t = typed<Q>(table, "table", 256);
        py::array_t<Q> out(shape_of(x));
        Q* o = out.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::apply_lookup_table(xs, t, o, x.size());
        return out;
    });
}

// inputs viewed as [outer, pitch_i]; tables[i] None for a copy
py::array qlinear_concat(const std::vector<py::array>& inputs, const std::vector<std::optional<py::array>>& tables,
                         py::ssize_t outer, const std::vector<py::ssize_t>& out_shape) {
    FXP_REQUIRE(!inputs.empty() && inputs.size() == tables.size(), "one table (or None) per input");
    return with_qdtype(inputs[0], "inputs[0]", [&](auto q) -> py::array {
        using Q = decltype(q);
        py::array_t<Q> out(out_shape);
        py::ssize_t out_pitch = 0;
        for (const auto& x : inputs) out_pitch += x.size() / outer;
        FXP_REQUIRE(out_pitch * outer == out.size(), "output shape does not match the inputs");
        Q* o = out.mutable_data();
        py::ssize_t offset = 0;
        for (size_t i = 0; i < inputs.size(); ++i) {
            const std::string name = "inputs[" + std::to_string(i) + "]";
            const Q* xs = typed<Q>(inputs[i], name.c_str(), inputs[i].size());
            const py::ssize_t pitch = inputs[i].size() / outer;
            const Q* t = tables[i] ? typed<Q>(*tables[i], "table", 256) : nullptr;
            fxp::ort::qlinear_concat_part(xs, outer, pitch, t, t == nullptr, o + offset, out_pitch);
            offset += pitch;
        }
        return out;
    });
}

// ---- QLinearSoftmax -----------------------------------------------------------------------------------

py::array qlinear_softmax(const py::array& x, float x_scale, float y_scale, int y_zp, py::ssize_t reduce_len) {
    return with_qdtype(x, "x", [&](auto q) -> py::array {
        using Q = decltype(q);
        FXP_REQUIRE(reduce_len > 0 && x.size() % reduce_len == 0, "x size must be a multiple of reduce_len");
        const Q* xs = typed<Q>(x, "x", x.size());
        py::array_t<Q> out(shape_of(x));
        Q* o = out.mutable_data();
        py::gil_scoped_release nogil;
        float table[256];
        fxp::ort::qlinear_softmax_table<Q>(x_scale, reduce_len, table);
        fxp::ort::qlinear_softmax_rows(xs, o, x.size() / reduce_len, reduce_len, table, y_scale, y_zp);
        return out;
    });
}

py::array qlinear_softmax_table(float x_scale, py::ssize_t reduce_len, bool is_signed) {
    py::array_t<float> table(256);
    if (is_signed) fxp::ort::qlinear_softmax_table<int8_t>(x_scale, reduce_len, table.mutable_data());
    else fxp::ort::qlinear_softmax_table<uint8_t>(x_scale, reduce_len, table.mutable_data());
    return table;
}

// ---- pooling ------------------------------------------------------------------------------------------

fxp::ort::PoolGeometry pool_geometry(py::ssize_t batch, py::ssize_t channels, const std::vector<py::ssize_t>& in,
                                     const std::vector<py::ssize_t>& out, const std::vector<py::ssize_t>& kernel,
                                     const std::vector<py::ssize_t>& stride, const std::vector<py::ssize_t>& pad,
                                     bool count_include_pad, bool channels_last) {
    const size_t d = in.size();
    FXP_REQUIRE(d >= 1 && d <= 3 && out.size() == d && kernel.size() == d && stride.size() == d && pad.size() == d,
                "pooling takes 1 to 3 spatial dimensions, every attribute with one value per dimension");
    fxp::ort::PoolGeometry g;
    g.dims = int(d);
    g.batch = batch;
    g.channels = channels;
    for (size_t i = 0; i < d; ++i) {
        FXP_REQUIRE(in[i] > 0 && out[i] > 0 && kernel[i] > 0 && stride[i] > 0 && pad[i] >= 0, "invalid pooling geometry");
        g.in[i] = in[i];
        g.out[i] = out[i];
        g.kernel[i] = kernel[i];
        g.stride[i] = stride[i];
        g.pad[i] = pad[i];
    }
    g.count_include_pad = count_include_pad;
    g.channels_last = channels_last;
    return g;
}

py::array qlinear_average_pool(const py::array& x, float x_scale, int x_zp, float y_scale, int y_zp, py::ssize_t batch,
                               py::ssize_t channels, const std::vector<py::ssize_t>& in, const std::vector<py::ssize_t>& out,
                               const std::vector<py::ssize_t>& kernel, const std::vector<py::ssize_t>& stride,
                               const std::vector<py::ssize_t>& pad, bool count_include_pad, bool channels_last,
                               const std::vector<py::ssize_t>& out_shape) {
    const fxp::ort::PoolGeometry g = pool_geometry(batch, channels, in, out, kernel, stride, pad, count_include_pad, channels_last);
    return with_qdtype(x, "x", [&](auto q) -> py::array {
        using Q = decltype(q);
        const Q* xs = typed<Q>(x, "x", batch * channels * g.in_size());
        py::array_t<Q> y(out_shape);
        FXP_REQUIRE(y.size() == batch * channels * g.out_size(), "output shape does not match the geometry");
        Q* o = y.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::qlinear_average_pool(xs, x_scale, x_zp, y_scale, y_zp, g, o);
        return y;
    });
}

py::array qlinear_global_average_pool(const py::array& x, float x_scale, int x_zp, float y_scale, int y_zp,
                                      py::ssize_t batch, py::ssize_t channels, py::ssize_t image, bool channels_last,
                                      const std::vector<py::ssize_t>& out_shape) {
    return with_qdtype(x, "x", [&](auto q) -> py::array {
        using Q = decltype(q);
        const Q* xs = typed<Q>(x, "x", batch * channels * image);
        py::array_t<Q> y(out_shape);
        FXP_REQUIRE(y.size() == batch * channels, "output shape does not match");
        Q* o = y.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::qlinear_global_average_pool(xs, x_scale, x_zp, y_scale, y_zp, batch, channels, image, channels_last, o);
        return y;
    });
}

// ---- float kernels ---------------------------------------------------------------------------------------

py::array mlas_unary(int function, const py::array& x, int isa) {
    FXP_REQUIRE(function == 0 || function == 1, "function must be 0 (logistic) or 1 (tanh)");
    const float* xs = typed<float>(x, "x", x.size());
    const Isa path = fxp::ort::isa_of(isa);
    py::array_t<float> out(shape_of(x));
    float* o = out.mutable_data();
    py::gil_scoped_release nogil;
    fxp::ort::mlas_unary(fxp::ort::Unary(function), xs, o, x.size(), path);
    return out;
}

// a: [batch, M x K] (or K x M with trans_a), b: [batch or 1, K x N] (N x K with trans_b), c: [batch, M x N]
// holding the broadcast bias (beta != 0) or anything (beta == 0); c is overwritten with the result.
void sgemm(bool trans_a, bool trans_b, py::ssize_t batch, py::ssize_t M, py::ssize_t N, py::ssize_t K, float alpha,
           const py::array& a, const py::array& b, bool b_shared, float beta, py::array& c, bool packed_b, int threads,
           int isa) {
    FXP_REQUIRE(batch >= 1 && M >= 0 && N >= 0 && K >= 0, "invalid GEMM shape");
    FXP_REQUIRE(threads >= 1, "threads must be >= 1");
    const float* as = typed<float>(a, "a", batch * M * K);
    const float* bs = typed<float>(b, "b", (b_shared ? 1 : batch) * K * N);
    FXP_REQUIRE(has_dtype<float>(c) && c.size() == batch * M * N && (c.flags() & py::array::c_style) && c.writeable(),
                "c must be a writeable C-contiguous float32 array of batch * M * N values");
    float* cs = static_cast<float*>(c.mutable_data());
    const Isa path = fxp::ort::isa_of(isa);
    py::gil_scoped_release nogil;
    for (py::ssize_t i = 0; i < batch; ++i) {
        fxp::ort::Sgemm p;
        p.trans_a = trans_a;
        p.trans_b = trans_b;
        p.M = M;
        p.N = N;
        p.K = K;
        p.alpha = alpha;
        p.beta = beta;
        p.A = as + i * M * K;
        p.lda = trans_a ? M : K;
        p.B = bs + (b_shared ? 0 : i * K * N);
        p.ldb = trans_b ? K : N;
        p.C = cs + i * M * N;
        p.ldc = N;
        fxp::ort::mlas_gemm(p, packed_b, threads, path, batch);
    }
}

py::array conv_float(const py::array& x, const py::array& w, const std::optional<py::array>& bias, py::ssize_t batch,
                     py::ssize_t groups, py::ssize_t in_channels, py::ssize_t filters, const std::vector<py::ssize_t>& in,
                     const std::vector<py::ssize_t>& out, const std::vector<py::ssize_t>& kernel,
                     const std::vector<py::ssize_t>& dilation, const std::vector<py::ssize_t>& stride,
                     const std::vector<py::ssize_t>& pad, int threads, int isa, const std::vector<py::ssize_t>& out_shape) {
    const size_t d = in.size();
    FXP_REQUIRE(d >= 1 && d <= 3 && out.size() == d && kernel.size() == d && dilation.size() == d && stride.size() == d &&
                    pad.size() == 2 * d, "conv takes 1 to 3 spatial dimensions");
    FXP_REQUIRE(batch >= 1 && groups >= 1 && in_channels >= 1 && filters >= 1 && threads >= 1, "invalid conv geometry");
    fxp::ort::ConvParams c;
    c.dims = int(d);
    c.batch = batch;
    c.groups = groups;
    c.in_channels = in_channels;
    c.filters = filters;
    c.threads = threads;
    py::ssize_t in_size = 1, out_size = 1, k_size = 1;
    for (size_t i = 0; i < d; ++i) {
        FXP_REQUIRE(in[i] > 0 && out[i] > 0 && kernel[i] > 0 && dilation[i] > 0 && stride[i] > 0 && pad[i] >= 0 &&
                        pad[i + d] >= 0, "invalid conv geometry");
        c.in[i] = in[i];
        c.out[i] = out[i];
        c.kernel[i] = kernel[i];
        c.dilation[i] = dilation[i];
        c.stride[i] = stride[i];
        c.pad[i] = pad[i];
        c.pad[i + d] = pad[i + d];
        in_size *= in[i];
        out_size *= out[i];
        k_size *= kernel[i];
    }
    const float* xs = typed<float>(x, "x", batch * groups * in_channels * in_size);
    const float* ws = typed<float>(w, "w", groups * filters * in_channels * k_size);
    const float* bs = bias ? typed<float>(*bias, "bias", groups * filters) : nullptr;
    py::array_t<float> y(out_shape);
    FXP_REQUIRE(y.size() == batch * groups * filters * out_size, "output shape does not match the geometry");
    float* ys = y.mutable_data();
    const Isa path = fxp::ort::isa_of(isa);
    py::gil_scoped_release nogil;
    fxp::ort::mlas_conv(c, xs, ws, bs, ys, path);
    return y;
}

// NCHWc float convolution (com.microsoft.nchwc Conv): 2-D geometry; in/out/kernel/dilation/stride as
// (h, w), pad as (top, left, bottom, right); activation as NchwcActivation with its two parameters.
py::array nchwc_conv(const py::array& x, const py::array& w, const std::optional<py::array>& bias,
                     const std::optional<py::array>& sum, py::ssize_t batch, py::ssize_t groups, py::ssize_t in_channels,
                     py::ssize_t filters, const std::vector<py::ssize_t>& in, const std::vector<py::ssize_t>& out,
                     const std::vector<py::ssize_t>& kernel, const std::vector<py::ssize_t>& dilation,
                     const std::vector<py::ssize_t>& stride, const std::vector<py::ssize_t>& pad, int activation,
                     float act_a, float act_b, py::ssize_t block, int isa) {
    FXP_REQUIRE(in.size() == 2 && out.size() == 2 && kernel.size() == 2 && dilation.size() == 2 && stride.size() == 2 &&
                    pad.size() == 4, "the NCHWc convolution takes 2 spatial dimensions");
    FXP_REQUIRE(batch >= 1 && groups >= 1 && in_channels >= 1 && filters >= 1, "invalid conv geometry");
    for (size_t i = 0; i < 2; ++i)
        FXP_REQUIRE(in[i] > 0 && out[i] > 0 && kernel[i] > 0 && dilation[i] > 0 && stride[i] > 0 && pad[i] >= 0 &&
                        pad[i + 2] >= 0, "invalid conv geometry");
    FXP_REQUIRE(activation >= 0 && activation <= 6, "activation code out of range");
    FXP_REQUIRE(block == 8 || block == 16, "block must be 8 (AVX2) or 16 (AVX-512F)");
    fxp::ort::NchwcConvParams p;
    p.block = block;
    p.batch = batch;
    p.groups = groups;
    p.in_channels = in_channels;
    p.filters = filters;
    p.ih = in[0];
    p.iw = in[1];
    p.oh = out[0];
    p.ow = out[1];
    p.kh = kernel[0];
    p.kw = kernel[1];
    p.dh = dilation[0];
    p.dw = dilation[1];
    p.sh = stride[0];
    p.sw = stride[1];
    p.pad_top = pad[0];
    p.pad_left = pad[1];
    p.pad_bottom = pad[2];
    p.pad_right = pad[3];
    p.activation = {fxp::ort::NchwcActivation(activation), act_a, act_b};
    const bool depthwise = groups > 1 && in_channels == 1 && filters == 1;
    FXP_REQUIRE(groups == 1 || depthwise || (in_channels % p.block == 0 && filters % p.block == 0),
                "a grouped NCHWc convolution needs input and output channels per group that are multiples of "
                "the block (or one of each: depthwise)");
    const float* xs = typed<float>(x, "x", batch * groups * in_channels * in[0] * in[1]);
    const float* ws = typed<float>(w, "w", groups * filters * in_channels * kernel[0] * kernel[1]);
    const float* bs = bias ? typed<float>(*bias, "bias", groups * filters) : nullptr;
    const float* ss = sum ? typed<float>(*sum, "sum", batch * groups * filters * out[0] * out[1]) : nullptr;
    py::array_t<float> y(std::vector<py::ssize_t>{batch, groups * filters, out[0], out[1]});
    float* ys = y.mutable_data();
    const Isa path = fxp::ort::isa_of(isa);
    py::gil_scoped_release nogil;
    fxp::ort::nchwc_conv(p, xs, ws, bs, ss, ys, path);
    return y;
}

// NCHWc pooling (com.microsoft.nchwc MaxPool / AveragePool / Global*): x [planes, ih, iw] as NCHW.
py::array nchwc_pool(int kind, const py::array& x, py::ssize_t planes, const std::vector<py::ssize_t>& in,
                     const std::vector<py::ssize_t>& out, const std::vector<py::ssize_t>& kernel,
                     const std::vector<py::ssize_t>& dilation, const std::vector<py::ssize_t>& stride,
                     const std::vector<py::ssize_t>& pad, const std::vector<py::ssize_t>& out_shape, int isa) {
    FXP_REQUIRE(kind >= 0 && kind <= 2, "kind must be 0 (max), 1 (average excluding pads) or 2 (including pads)");
    FXP_REQUIRE(in.size() == 2 && out.size() == 2 && kernel.size() == 2 && dilation.size() == 2 && stride.size() == 2 &&
                    pad.size() == 2, "NCHWc pooling takes 2 spatial dimensions");
    FXP_REQUIRE(planes >= 1, "invalid pooling geometry");
    for (size_t i = 0; i < 2; ++i)
        FXP_REQUIRE(in[i] > 0 && out[i] > 0 && kernel[i] > 0 && dilation[i] > 0 && stride[i] > 0 && pad[i] >= 0,
                    "invalid pooling geometry");
    fxp::ort::NchwcPoolParams p;
    p.planes = planes;
    p.ih = in[0];
    p.iw = in[1];
    p.oh = out[0];
    p.ow = out[1];
    p.kh = kernel[0];
    p.kw = kernel[1];
    p.dh = dilation[0];
    p.dw = dilation[1];
    p.sh = stride[0];
    p.sw = stride[1];
    p.pad_top = pad[0];
    p.pad_left = pad[1];
    p.kind = fxp::ort::NchwcPoolKind(kind);
    const float* xs = typed<float>(x, "x", planes * in[0] * in[1]);
    py::array_t<float> y(out_shape);
    FXP_REQUIRE(y.size() == planes * out[0] * out[1], "output shape does not match the geometry");
    float* ys = y.mutable_data();
    const Isa path = fxp::ort::isa_of(isa);
    py::gil_scoped_release nogil;
    fxp::ort::nchwc_pool(p, xs, ys, path);
    return y;
}

py::array batch_norm_float(const py::array& x, const py::array& scale, const py::array& bias, const py::array& mean,
                           const py::array& var, float epsilon, py::ssize_t batch, py::ssize_t channels, py::ssize_t plane,
                           int isa) {
    const float* xs = typed<float>(x, "x", batch * channels * plane);
    const float* s = typed<float>(scale, "scale", channels);
    const float* b = typed<float>(bias, "bias", channels);
    const float* m = typed<float>(mean, "mean", channels);
    const float* v = typed<float>(var, "var", channels);
    const Isa path = fxp::ort::isa_of(isa);
    py::array_t<float> y(shape_of(x));
    float* ys = y.mutable_data();
    py::gil_scoped_release nogil;
    fxp::ort::batch_norm(xs, ys, batch, channels, plane, s, b, m, v, epsilon, path);
    return y;
}

py::array softmax_float(const py::array& x, py::ssize_t d, int isa) {
    FXP_REQUIRE(d > 0 && x.size() % d == 0, "x size must be a multiple of the row length");
    const float* xs = typed<float>(x, "x", x.size());
    const Isa path = fxp::ort::isa_of(isa);
    py::array_t<float> y(shape_of(x));
    float* ys = y.mutable_data();
    py::gil_scoped_release nogil;
    fxp::ort::mlas_softmax(xs, ys, x.size() / d, d, path);
    return y;
}

fxp::ort::MlasPoolGeometry mlas_pool_geometry(const std::vector<py::ssize_t>& in, const std::vector<py::ssize_t>& out,
                                              const std::vector<py::ssize_t>& kernel, const std::vector<py::ssize_t>& stride,
                                              const std::vector<py::ssize_t>& pad) {
    const size_t d = in.size();
    FXP_REQUIRE(d >= 1 && d <= 3 && out.size() == d && kernel.size() == d && stride.size() == d && pad.size() == 2 * d,
                "pooling takes 1 to 3 spatial dimensions");
    fxp::ort::MlasPoolGeometry g;
    g.dims = int(d);
    for (size_t i = 0; i < d; ++i) {
        FXP_REQUIRE(in[i] > 0 && out[i] > 0 && kernel[i] > 0 && stride[i] > 0 && pad[i] >= 0 && pad[i + d] >= 0 &&
                        pad[i] < kernel[i] && pad[i + d] < kernel[i],
                    "invalid pooling geometry (pads must be smaller than the kernel)");
        g.in[i] = in[i];
        g.out[i] = out[i];
        g.kernel[i] = kernel[i];
        g.stride[i] = stride[i];
        g.head[i] = pad[i];
        g.tail[i] = pad[i + d];
    }
    return g;
}

py::array mlas_pool(int kind, const py::array& x, py::ssize_t planes, const std::vector<py::ssize_t>& in,
                    const std::vector<py::ssize_t>& out, const std::vector<py::ssize_t>& kernel,
                    const std::vector<py::ssize_t>& stride, const std::vector<py::ssize_t>& pad,
                    const std::vector<py::ssize_t>& out_shape, int isa) {
    FXP_REQUIRE(kind >= 0 && kind <= 4, "kind must be 0 (max), 1 (average excluding pads), 2 (including pads), or "
                                        "pool.cc's own loop: 3 (including pads), 4 (excluding pads)");
    const fxp::ort::MlasPoolGeometry g = mlas_pool_geometry(in, out, kernel, stride, pad);
    const float* xs = typed<float>(x, "x", planes * g.in_size());
    py::array_t<float> y(out_shape);
    FXP_REQUIRE(y.size() == planes * g.out_size(), "output shape does not match the geometry");
    float* ys = y.mutable_data();
    const Isa path = fxp::ort::isa_of(isa);
    py::gil_scoped_release nogil;
    fxp::ort::mlas_pool(fxp::ort::PoolKind(kind), g, xs, ys, planes, path);
    return y;
}

py::array max_pool_dilated(const py::array& x, py::ssize_t planes, const std::vector<py::ssize_t>& in,
                           const std::vector<py::ssize_t>& out, const std::vector<py::ssize_t>& kernel,
                           const std::vector<py::ssize_t>& stride, const std::vector<py::ssize_t>& pad,
                           const std::vector<py::ssize_t>& dilation, const std::vector<py::ssize_t>& out_shape) {
    fxp::ort::MlasPoolGeometry g = mlas_pool_geometry(in, out, kernel, stride, pad);
    FXP_REQUIRE(dilation.size() == in.size(), "one dilation per spatial dimension");
    std::array<std::ptrdiff_t, 3> dil{1, 1, 1};
    for (size_t i = 0; i < dilation.size(); ++i) {
        FXP_REQUIRE(dilation[i] > 0, "dilations must be positive");
        dil[i] = dilation[i];
    }
    auto run = [&](auto t) -> py::array {
        using T = decltype(t);
        const T* xs = typed<T>(x, "x", planes * g.in_size());
        py::array_t<T> y(out_shape);
        FXP_REQUIRE(y.size() == planes * g.out_size(), "output shape does not match the geometry");
        T* ys = y.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::max_pool_dilated(g, dil, xs, ys, planes);
        return y;
    };
    if (has_dtype<float>(x)) return run(float{});
    if (has_dtype<uint8_t>(x)) return run(uint8_t{});
    if (has_dtype<int8_t>(x)) return run(int8_t{});
    throw std::invalid_argument("x must be float32, uint8 or int8, got " + dtype_name(x));
}

py::array float_activation(int kind, const py::array& x, float lo, float hi, float alpha, int isa) {
    FXP_REQUIRE(kind >= 0 && kind <= 2, "kind must be 0 (relu), 1 (clip) or 2 (leaky relu)");
    const float* xs = typed<float>(x, "x", x.size());
    const Isa path = fxp::ort::isa_of(isa);
    py::array_t<float> y(shape_of(x));
    float* ys = y.mutable_data();
    const fxp::ort::ActivationParams p{fxp::ort::Activation(kind), lo, hi, alpha};
    py::gil_scoped_release nogil;
    fxp::ort::float_activation(xs, ys, x.size(), p, path);
    return y;
}

// ---- Resize -------------------------------------------------------------------------------------------

py::array resize(const py::array& x, const std::optional<std::vector<float>>& scales,
                 const std::optional<std::vector<int64_t>>& sizes, const std::optional<std::vector<float>>& roi,
                 int mode, int coord, int nearest, float cubic_coeff_a, bool exclude_outside,
                 float extrapolation_value) {
    FXP_REQUIRE(mode >= 0 && mode <= 2, "mode must be 0 (nearest), 1 (linear) or 2 (cubic)");
    FXP_REQUIRE(coord >= 0 && coord <= 6, "coordinate_transformation_mode code out of range");
    FXP_REQUIRE(nearest >= 0 && nearest <= 4, "nearest_mode code out of range");
    FXP_REQUIRE(x.ndim() >= 1, "x must have at least one dimension");
    FXP_REQUIRE(scales.has_value() != sizes.has_value(), "exactly one of scales and sizes must be given");
    const size_t r = size_t(x.ndim());
    std::vector<int64_t> in(x.shape(), x.shape() + r), out;
    std::vector<float> s;
    if (scales) {
        FXP_REQUIRE(scales->size() == r, "scales must have one value per input dimension");
        s = *scales;
        fxp::ort::resize_validate(s, fxp::ort::ResizeMode(mode));
        out = fxp::ort::resize_output_dims(in, s);
    } else {
        FXP_REQUIRE(sizes->size() == r, "sizes must have one value per input dimension");
        out = *sizes;
        for (size_t i = 0; i < r; ++i) {
            FXP_REQUIRE(out[i] >= 0, "sizes must be non-negative");
            FXP_REQUIRE(in[i] != 0 || out[i] == 0, "an empty input dimension can only have size 0");
        }
        s = fxp::ort::resize_scales_from_sizes(in, out);
        fxp::ort::resize_validate(s, fxp::ort::ResizeMode(mode));
    }
    std::vector<float> region(2 * r, 0.0f);
    for (size_t i = 0; i < r; ++i) region[r + i] = 1.0f;
    if (roi) {
        FXP_REQUIRE(roi->size() == 2 * r, "roi must have 2 * rank values (starts, then ends)");
        region = *roi;
    }
    fxp::ort::ResizeSpec spec;
    spec.mode = fxp::ort::ResizeMode(mode);
    spec.coord = fxp::ort::ResizeCoord(coord);
    spec.nearest = fxp::ort::ResizeNearest(nearest);
    spec.cubic_coeff_a = cubic_coeff_a;
    spec.exclude_outside = exclude_outside;
    spec.extrapolation_value = extrapolation_value;
    auto run = [&](auto t) -> py::array {
        using T = decltype(t);
        const T* xs = typed<T>(x, "x", x.size());
        py::array_t<T> y(std::vector<py::ssize_t>(out.begin(), out.end()));
        T* ys = y.mutable_data();
        py::gil_scoped_release nogil;
        fxp::ort::resize(xs, ys, in, out, s, region, spec);
        return y;
    };
    if (has_dtype<float>(x)) return run(float{});
    if (has_dtype<uint8_t>(x)) return run(uint8_t{});
    if (has_dtype<int8_t>(x)) return run(int8_t{});
    throw std::invalid_argument("x must be float32, uint8 or int8, got " + dtype_name(x));
}

}  // namespace

PYBIND11_MODULE(_onnxruntime, m) {
    m.doc() = "fixedpoint._onnxruntime: ONNX Runtime (CPU, x86 AVX2) operator formulas, bit for bit";
    m.def("quantize_linear", &quantize_linear, py::arg("x"), py::arg("scale"), py::arg("zero_point"), py::arg("outer"),
          py::arg("channels"), py::arg("inner"), py::arg("isa"));
    m.def("dynamic_quantize_linear", &dynamic_quantize_linear, py::arg("x"), py::arg("isa"));
    m.def("dequantize_linear", &dequantize_linear, py::arg("x"), py::arg("scale"), py::arg("zero_point"), py::arg("outer"),
          py::arg("channels"), py::arg("inner"), py::arg("isa"));
    m.def("qlinear_binary", &qlinear_binary, py::arg("op"), py::arg("a"), py::arg("a_scale"), py::arg("a_zero_point"),
          py::arg("b"), py::arg("b_scale"), py::arg("b_zero_point"), py::arg("c_scale"), py::arg("c_zero_point"),
          py::arg("isa"));
    m.def("lookup_table", &lookup_table, py::arg("function"), py::arg("alpha"), py::arg("x_scale"), py::arg("x_zero_point"),
          py::arg("y_scale"), py::arg("y_zero_point"), py::arg("is_signed"));
    m.def("apply_lookup_table", &apply_lookup_table, py::arg("x"), py::arg("table"));
    m.def("qlinear_concat", &qlinear_concat, py::arg("inputs"), py::arg("tables"), py::arg("outer"), py::arg("out_shape"));
    m.def("qlinear_softmax", &qlinear_softmax, py::arg("x"), py::arg("x_scale"), py::arg("y_scale"),
          py::arg("y_zero_point"), py::arg("reduce_len"));
    m.def("qlinear_softmax_table", &qlinear_softmax_table, py::arg("x_scale"), py::arg("reduce_len"), py::arg("is_signed"));
    m.def("qlinear_average_pool", &qlinear_average_pool, py::arg("x"), py::arg("x_scale"), py::arg("x_zero_point"),
          py::arg("y_scale"), py::arg("y_zero_point"), py::arg("batch"), py::arg("channels"), py::arg("in_shape"),
          py::arg("out_spatial"), py::arg("kernel"), py::arg("stride"), py::arg("pad"), py::arg("count_include_pad"),
          py::arg("channels_last"), py::arg("out_shape"));
    m.def("qlinear_global_average_pool", &qlinear_global_average_pool, py::arg("x"), py::arg("x_scale"),
          py::arg("x_zero_point"), py::arg("y_scale"), py::arg("y_zero_point"), py::arg("batch"), py::arg("channels"),
          py::arg("image"), py::arg("channels_last"), py::arg("out_shape"));
    m.def("sgemm", &sgemm, py::arg("trans_a"), py::arg("trans_b"), py::arg("batch"), py::arg("M"), py::arg("N"),
          py::arg("K"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("b_shared"), py::arg("beta"), py::arg("c"),
          py::arg("packed_b"), py::arg("threads"), py::arg("isa"));
    m.def("conv_float", &conv_float, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("batch"), py::arg("groups"),
          py::arg("in_channels"), py::arg("filters"), py::arg("in_shape"), py::arg("out_spatial"), py::arg("kernel"),
          py::arg("dilation"), py::arg("stride"), py::arg("pad"), py::arg("threads"), py::arg("isa"), py::arg("out_shape"));
    m.def("nchwc_conv", &nchwc_conv, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("sum"), py::arg("batch"),
          py::arg("groups"), py::arg("in_channels"), py::arg("filters"), py::arg("in_shape"), py::arg("out_spatial"),
          py::arg("kernel"), py::arg("dilation"), py::arg("stride"), py::arg("pad"), py::arg("activation"),
          py::arg("act_a"), py::arg("act_b"), py::arg("block"), py::arg("isa"));
    m.def("nchwc_pool", &nchwc_pool, py::arg("kind"), py::arg("x"), py::arg("planes"), py::arg("in_shape"),
          py::arg("out_spatial"), py::arg("kernel"), py::arg("dilation"), py::arg("stride"), py::arg("pad"),
          py::arg("out_shape"), py::arg("isa"));
    m.def("batch_norm_float", &batch_norm_float, py::arg("x"), py::arg("scale"), py::arg("bias"), py::arg("mean"),
          py::arg("var"), py::arg("epsilon"), py::arg("batch"), py::arg("channels"), py::arg("plane"), py::arg("isa"));
    m.def("softmax_float", &softmax_float, py::arg("x"), py::arg("d"), py::arg("isa"));
    m.def("mlas_pool", &mlas_pool, py::arg("kind"), py::arg("x"), py::arg("planes"), py::arg("in_shape"),
          py::arg("out_spatial"), py::arg("kernel"), py::arg("stride"), py::arg("pad"), py::arg("out_shape"), py::arg("isa"));
    m.def("max_pool_dilated", &max_pool_dilated, py::arg("x"), py::arg("planes"), py::arg("in_shape"),
          py::arg("out_spatial"), py::arg("kernel"), py::arg("stride"), py::arg("pad"), py::arg("dilation"),
          py::arg("out_shape"));
    m.def("float_activation", &float_activation, py::arg("kind"), py::arg("x"), py::arg("lo"), py::arg("hi"),
          py::arg("alpha"), py::arg("isa"));
    m.def("resize", &resize, py::arg("x"), py::arg("scales"), py::arg("sizes"), py::arg("roi"), py::arg("mode"),
          py::arg("coord"), py::arg("nearest"), py::arg("cubic_coeff_a"), py::arg("exclude_outside"),
          py::arg("extrapolation_value"));
    m.def("mlas_unary", &mlas_unary, py::arg("function"), py::arg("x"), py::arg("isa"));
}
