// pybind11 binding for fixedpoint._core: the fi primitives of fixed/fi_ops.hpp on whole numpy arrays.
// Arguments are validated here (shapes, word lengths, codes) before any memory is touched; the loops
// run with the GIL released. Stored integers travel as int64 arrays (uint64 words as their bit
// pattern, flagged by `u64`); results are int64 arrays the caller views as uint64 when needed.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cpu/features.hpp"
#include "fixed/fi_ops.hpp"
#include "fixed/matmul16.hpp"

namespace py = pybind11;
using namespace fxp;

namespace {

using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;

Word make_word(int w, bool is_signed, int o) {
    if (w < 1 || w > 64) throw std::invalid_argument("word length must be 1..64 in the compiled core, got " + std::to_string(w));
    return Word(w, is_signed, overflow_from_int(o));
}

I64 like(const py::array& a) {
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    return I64(shape);
}

void same_size(const py::array& a, const py::array& b) {
    if (a.size() != b.size())
        throw std::invalid_argument("operands must have the same number of elements (broadcast first), got " +
                                    std::to_string(a.size()) + " and " + std::to_string(b.size()));
}

// The 64-bit loop applies when the caller guarantees the exact values fit int64, no operand is a
// uint64 word, the shift is a right shift and the result word's bounds fit int64.
bool use64(bool exact64, bool any_u64, int s, const Word& word) {
    return exact64 && !any_u64 && s >= 0 && word.hi <= i128(INT64_MAX);
}

// The whole-array loops, compiled twice: for baseline x86-64 and for AVX2 (chosen at run time).
// `flatten` inlines every helper into each copy, so each copy vectorises for its own target.
bool has_avx2() {
    return fxp::cpu::has_avx2();
}

bool has_vnni() {  // AVX-512 VNNI usable on 256-bit vectors
    return fxp::cpu::has_avx512_vnni();
}

#define FXP_TWO_TARGETS(name, call, params, args)                                              \
    __attribute__((flatten)) Counts name##_portable params { return call args; }               \
    __attribute__((target("avx2"), flatten)) Counts name##_avx2 params { return call args; }   \
    Counts name params { return has_avx2() ? name##_avx2 args : name##_portable args; }

FXP_TWO_TARGETS(add_loop, add64<false>,
                (const int64_t* a, int la, const int64_t* b, int lb, std::size_t n, int s, Rounding r,
                 const Word& word, int64_t* out),
                (a, la, b, lb, n, s, r, word, out))
FXP_TWO_TARGETS(sub_loop, add64<true>,
                (const int64_t* a, int la, const int64_t* b, int lb, std::size_t n, int s, Rounding r,
                 const Word& word, int64_t* out),
                (a, la, b, lb, n, s, r, word, out))
FXP_TWO_TARGETS(mul_loop, mul64,
                (const int64_t* a, const int64_t* b, bool narrow, std::size_t n, int s, Rounding r,
                 const Word& word, int64_t* out),
                (a, b, narrow, n, s, r, word, out))
#undef FXP_TWO_TARGETS

template <class Out>
__attribute__((flatten)) Counts cast_loop_portable(const double* x, Out* out, std::size_t n, int f, Rounding r,
                                                   const Word& word) {
    return cast_double(x, out, n, f, r, word);
}
template <class Out>
__attribute__((target("avx2"), flatten)) Counts cast_loop_avx2(const double* x, Out* out, std::size_t n, int f,
                                                               Rounding r, const Word& word) {
    return cast_double(x, out, n, f, r, word);
}
template <class Out>
Counts cast_loop(const double* x, Out* out, std::size_t n, int f, Rounding r, const Word& word) {
    return has_avx2() ? cast_loop_avx2(x, out, n, f, r, word) : cast_loop_portable(x, out, n, f, r, word);
}

template <ExactOp Op, class In, class Out>
__attribute__((flatten)) void exact_loop_portable(const In* a, const In* b, Out* out, std::size_t n) {
    exact_binary<Op>(a, b, out, n);
}
template <ExactOp Op, class In, class Out>
__attribute__((target("avx2"), flatten)) void exact_loop_avx2(const In* a, const In* b, Out* out, std::size_t n) {
    exact_binary<Op>(a, b, out, n);
}

// The fi storage type of a (w, signed) word (fixedpoint/wide.py storage_dtype): the smallest signed
// integer that holds it; unsigned 64-bit words travel as int64 bit patterns.
template <class Fn>
decltype(auto) with_storage_type(int w, bool is_signed, Fn&& fn) {
    const int bits = is_signed ? w : w + 1;
    if (bits <= 8) return fn(int8_t{});
    if (bits <= 16) return fn(int16_t{});
    if (bits <= 32) return fn(int32_t{});
    return fn(int64_t{});
}

// Calls fn(T{}) for the signed integer type of a numpy array's dtype.
template <class Fn>
decltype(auto) with_int_array_type(const py::array& a, const char* what, Fn&& fn) {
    const py::dtype dt = a.dtype();
    if (dt.kind() == 'i') {
        switch (dt.itemsize()) {
            case 1: return fn(int8_t{});
            case 2: return fn(int16_t{});
            case 4: return fn(int32_t{});
            case 8: return fn(int64_t{});
        }
    }
    throw std::invalid_argument(std::string(what) + " must be a signed integer array, got dtype kind '" +
                                std::string(1, dt.kind()) + "' of " + std::to_string(dt.itemsize()) + " bytes");
}

py::tuple result(const py::array& out, const Counts& c) { return py::make_tuple(out, c.overflow, c.underflow); }

// Results come back in the fi storage type of the word (see with_storage_type).
py::tuple cast_double_py(F64 x, int w, bool is_signed, int f, int r, int o) {
    const Word word = make_word(w, is_signed, o);
    const Rounding rm = rounding_from_int(r);
    const double* px = x.data();
    const std::size_t n = std::size_t(x.size());
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    return with_storage_type(w, is_signed, [&](auto tag) {
        using Out = decltype(tag);
        py::array_t<Out> out(shape);
        Out* po = out.mutable_data();
        Counts c;
        {
            py::gil_scoped_release release;
            c = cast_loop(px, po, n, f, rm, word);
        }
        return result(out, c);
    });
}

// a op b for results the caller knows are exact in the (w, signed) word: both operands of one signed
// integer dtype, the result in the word's storage type (at least as wide as the operands).
py::array exact_py(const py::array& a, const py::array& b, int op, int w, bool is_signed) {
    same_size(a, b);
    if (op < 0 || op > 2) throw std::invalid_argument("op must be 0 (add), 1 (subtract) or 2 (multiply), got " + std::to_string(op));
    if (w < 1 || w > 64 || (w == 64 && !is_signed))
        throw std::invalid_argument("exact results need a word of 1..64 bits (not unsigned 64), got " + std::to_string(w));
    if (!a.dtype().is(b.dtype())) throw std::invalid_argument("both operands must have the same dtype");
    if (!(a.flags() & py::array::c_style) || !(b.flags() & py::array::c_style))
        throw std::invalid_argument("operands must be C-contiguous");
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    return with_int_array_type(a, "a", [&](auto in_tag) -> py::array {
        using In = decltype(in_tag);
        return with_storage_type(w, is_signed, [&](auto out_tag) -> py::array {
            using Out = decltype(out_tag);
            if constexpr (sizeof(Out) < sizeof(In)) {
                throw std::invalid_argument("the result word is narrower than the operands' storage");
            } else {
                py::array_t<Out> out(shape);
                const In *pa = static_cast<const In*>(a.data()), *pb = static_cast<const In*>(b.data());
                Out* po = out.mutable_data();
                const std::size_t n = std::size_t(a.size());
                py::gil_scoped_release release;
                const bool avx2 = has_avx2();
                switch (ExactOp(op)) {
                    case ExactOp::Add:
                        avx2 ? exact_loop_avx2<ExactOp::Add>(pa, pb, po, n) : exact_loop_portable<ExactOp::Add>(pa, pb, po, n);
                        break;
                    case ExactOp::Subtract:
                        avx2 ? exact_loop_avx2<ExactOp::Subtract>(pa, pb, po, n)
                             : exact_loop_portable<ExactOp::Subtract>(pa, pb, po, n);
                        break;
                    case ExactOp::Multiply:
                        avx2 ? exact_loop_avx2<ExactOp::Multiply>(pa, pb, po, n)
                             : exact_loop_portable<ExactOp::Multiply>(pa, pb, po, n);
                        break;
                }
                return out;
            }
        });
    });
}

py::tuple requantize_py(I64 q, bool u64, int s, int w, bool is_signed, int r, int o) {
    const Word word = make_word(w, is_signed, o);
    const Rounding rm = rounding_from_int(r);
    I64 out = like(q);
    const int64_t* pq = q.data();
    int64_t* po = out.mutable_data();
    Counts c;
    {
        py::gil_scoped_release release;
        c = requantize_each(std::size_t(q.size()), s, rm, word, po, [&](std::size_t i) { return load(pq, i, u64); });
    }
    return result(out, c);
}

// (a << la) +- (b << lb), then shifted right by s into the word. The caller guarantees the exact
// sum fits 127 bits.
py::tuple add_py(I64 a, bool ua, int la, I64 b, bool ub, int lb, bool subtract, int s, int w, bool is_signed,
                 int r, int o, bool exact64) {
    same_size(a, b);
    if (la < 0 || lb < 0 || la > 62 || lb > 62)
        throw std::invalid_argument("alignment shifts must be 0..62, got " + std::to_string(la) + ", " + std::to_string(lb));
    const Word word = make_word(w, is_signed, o);
    const Rounding rm = rounding_from_int(r);
    I64 out = like(a);
    const int64_t *pa = a.data(), *pb = b.data();
    int64_t* po = out.mutable_data();
    Counts c;
    {
        py::gil_scoped_release release;
        if (use64(exact64, ua || ub, s, word)) {
            const std::size_t n = std::size_t(a.size());
            c = subtract ? sub_loop(pa, la, pb, lb, n, s, rm, word, po) : add_loop(pa, la, pb, lb, n, s, rm, word, po);
        } else {
            c = requantize_each(std::size_t(a.size()), s, rm, word, po, [&](std::size_t i) {
                const i128 x = load(pa, i, ua) << la, y = load(pb, i, ub) << lb;
                return subtract ? x - y : x + y;
            });
        }
    }
    return result(out, c);
}

// a * b exactly, shifted right by s into the word. The caller guarantees |a*b| < 2^127, and with
// exact (1: |a*b| < 2^63; 2: also both operands fit int32) the fast 64-bit loops.
py::tuple mul_py(I64 a, bool ua, I64 b, bool ub, int s, int w, bool is_signed, int r, int o, int exact) {
    if (exact < 0 || exact > 2) throw std::invalid_argument("exact must be 0, 1 or 2, got " + std::to_string(exact));
    same_size(a, b);
    const Word word = make_word(w, is_signed, o);
    const Rounding rm = rounding_from_int(r);
    I64 out = like(a);
    const int64_t *pa = a.data(), *pb = b.data();
    int64_t* po = out.mutable_data();
    Counts c;
    {
        py::gil_scoped_release release;
        if (use64(exact != 0, ua || ub, s, word))
            c = mul_loop(pa, pb, exact == 2, std::size_t(a.size()), s, rm, word, po);
        else
            c = requantize_each(std::size_t(a.size()), s, rm, word, po,
                                [&](std::size_t i) { return load(pa, i, ua) * load(pb, i, ub); });
    }
    return result(out, c);
}

template <class In, class Acc>
void matmul_portable(const In* a, const In* b, Acc* c, std::size_t m, std::size_t n, std::size_t p) {
    matmul_rows(a, b, c, m, n, p);
}

template <class In, class Acc>
__attribute__((target("avx2"))) void matmul_avx2(const In* a, const In* b, Acc* c, std::size_t m, std::size_t n,
                                                 std::size_t p) {
    matmul_rows(a, b, c, m, n, p);
}

template <class In, class Acc>
void matmul_dispatch(const In* a, const In* b, Acc* c, std::size_t m, std::size_t n, std::size_t p) {
    if (fxp::cpu::has_avx2()) matmul_avx2(a, b, c, m, n, p);
    else matmul_portable(a, b, c, m, n, p);
}

// Exact integer matrix product of stored integers. narrow=true: operands fit int16 and every partial
// sum fits int32 (the caller checked the word lengths); otherwise every partial sum fits int64.
// Exact integer matrix product of stored integers (any signed integer dtypes). narrow=true: operands
// fit int16 and every partial sum fits int32 (the caller checked the word lengths); otherwise every
// partial sum fits int64.
I64 matmul_py(const py::array& a_in, const py::array& b_in, bool narrow) {
    if (a_in.ndim() != 2 || b_in.ndim() != 2 || a_in.shape(1) != b_in.shape(0))
        throw std::invalid_argument("matmul needs (m,n) @ (n,p) arrays");
    const std::size_t m = a_in.shape(0), n = a_in.shape(1), p = b_in.shape(1);
    I64 out({py::ssize_t(m), py::ssize_t(p)});
    int64_t* po = out.mutable_data();
    if (narrow && (has_vnni() || has_avx2())) {
        if (!(a_in.flags() & py::array::c_style) || !(b_in.flags() & py::array::c_style))
            throw std::invalid_argument("matmul operands must be C-contiguous");
        with_int_array_type(a_in, "a", [&](auto ta) {
            using InA = decltype(ta);
            with_int_array_type(b_in, "b", [&](auto tb) {
                using InB = decltype(tb);
                const InA* pa = static_cast<const InA*>(a_in.data());
                const InB* pb = static_cast<const InB*>(b_in.data());
                py::gil_scoped_release release;
                const Matmul16Packed packed = matmul16_pack(pa, pb, m, n, p);
                if (has_vnni()) matmul16_vnni(packed, po, m, p);
                else matmul16_avx2(packed, po, m, p);
            });
        });
        return out;
    }
    const I64 a = I64::ensure(a_in), b = I64::ensure(b_in);
    if (!a || !b) throw std::invalid_argument("matmul operands must be integer arrays");
    const int64_t *pa = a.data(), *pb = b.data();
    {
        py::gil_scoped_release release;
        if (narrow) {
            std::vector<int16_t> a16(pa, pa + m * n), b16(pb, pb + n * p);
            std::vector<int32_t> c32(m * p);
            matmul_dispatch<int16_t, int32_t>(a16.data(), b16.data(), c32.data(), m, n, p);
            for (std::size_t i = 0; i < m * p; ++i) po[i] = c32[i];
        } else {
            matmul_dispatch<int64_t, int64_t>(pa, pb, po, m, n, p);
        }
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "fixedpoint._core: fi primitives (casts, requantisation, add, multiply, matmul) on whole arrays";
    m.def("cast_double", &cast_double_py, py::arg("x"), py::arg("w"), py::arg("signed"), py::arg("f"),
          py::arg("rounding"), py::arg("overflow"),
          "Quantise float64 values to stored integers of (w, signed, f): returns (q, n_overflow, n_underflow).");
    m.def("requantize", &requantize_py, py::arg("q"), py::arg("u64"), py::arg("shift"), py::arg("w"),
          py::arg("signed"), py::arg("rounding"), py::arg("overflow"),
          "Stored integers times 2^-shift, rounded and overflowed into (w, signed): (q, n_overflow, n_underflow).");
    m.def("add", &add_py, py::arg("a"), py::arg("ua"), py::arg("la"), py::arg("b"), py::arg("ub"), py::arg("lb"),
          py::arg("subtract"), py::arg("shift"), py::arg("w"), py::arg("signed"), py::arg("rounding"),
          py::arg("overflow"), py::arg("exact64"), "((a<<la) +- (b<<lb)) * 2^-shift into (w, signed): (q, n_overflow, n_underflow).");
    m.def("mul", &mul_py, py::arg("a"), py::arg("ua"), py::arg("b"), py::arg("ub"), py::arg("shift"), py::arg("w"),
          py::arg("signed"), py::arg("rounding"), py::arg("overflow"), py::arg("exact"),
          "a*b * 2^-shift into (w, signed): (q, n_overflow, n_underflow); exact: 0 any, 1 product fits "
          "int64, 2 also operands fit int32.");
    m.def("exact", &exact_py, py::arg("a"), py::arg("b"), py::arg("op"), py::arg("w"), py::arg("signed"),
          "a op b (0 add, 1 subtract, 2 multiply) for results known to be exact in the (w, signed) word, "
          "returned in that word's storage dtype.");
    m.def("matmul", &matmul_py, py::arg("a"), py::arg("b"), py::arg("narrow"),
          "Exact integer matrix product of stored integers (int32 accumulation when narrow).");
}
