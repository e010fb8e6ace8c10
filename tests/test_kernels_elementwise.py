"""Integer elementwise kernels against exact references: a Fraction oracle for quantize and
add_shifted, numpy int64 loop nests for pooling, ONNX Runtime's MaxPool on int8."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixedpoint.kernels import add_shifted, avg_pool2d, global_avg_pool, max_pool2d, quantize
from test_kernels_requantize import DTYPES, ROUNDINGS, fit_word, rational_round


# ---- quantize ---------------------------------------------------------------------------------------
def special_floats(rng):
    v = np.concatenate([rng.normal(0, 40, 60), rng.uniform(-2, 2, 40), np.arange(-9, 10) / 4.0,
                        [0.0, -0.0, 127.5, -128.5, 1e6, -1e6, 2.0**-60, 1e300, -1e300, 0.1, 1 / 3]])
    return v


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", ["Saturate", "Wrap"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_quantize_pow2_against_fraction_oracle(rounding, overflow, dtype):
    x = special_floats(np.random.default_rng(10))
    for f in (-3, 0, 4, 7, 70):
        zp = 3 if dtype != np.int32 else -7
        got = quantize(x, fraction_length=f, zero_point=zp, rounding=rounding, overflow=overflow, dtype=dtype)
        want = [fit_word(rational_round(Fraction(float(v)) * Fraction(2) ** f, rounding) + zp, dtype, overflow)
                for v in x]
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want, err_msg=f"fraction_length={f}")


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_quantize_by_scale_rounds_the_quotient_of_the_input_precision(rounding):
    rng = np.random.default_rng(11)
    x32 = rng.normal(0, 3, 500).astype(np.float32)
    s = 0.037
    got = quantize(x32, scale=s, zero_point=-5, rounding=rounding)
    q = x32 / np.float32(s)  # float32 quotient, as ONNX QuantizeLinear forms it
    want = [fit_word(rational_round(Fraction(float(v)), rounding) - 5, np.int8, "Saturate") for v in q]
    np.testing.assert_array_equal(got, want)
    x64 = x32.astype(np.float64)
    got64 = quantize(x64, scale=s, rounding=rounding, dtype=np.int16)
    want64 = [fit_word(rational_round(Fraction(float(v)), rounding), np.int16, "Saturate") for v in x64 / s]
    np.testing.assert_array_equal(got64, want64)


def test_quantize_matches_onnx_quantize_linear():
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = np.random.default_rng(12).normal(0, 4, 4096).astype(np.float32)
    x[:64] = (np.arange(64) - 32 + 0.5).astype(np.float32) * np.float32(0.05)  # ties after division
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4096])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [4096])],
                              [helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]),
                               helper.make_tensor("z", TensorProto.INT8, [], [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    np.testing.assert_array_equal(quantize(x, scale=np.float32(0.05), zero_point=3, rounding="Convergent"), want)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(-80, 80), st.sampled_from(ROUNDINGS),
       st.sampled_from(["Saturate", "Wrap"]), st.sampled_from(DTYPES))
def test_quantize_property(v, f, rounding, overflow, dtype):
    got = quantize(np.array([v]), fraction_length=f, rounding=rounding, overflow=overflow, dtype=dtype)
    want = fit_word(rational_round(Fraction(v) * Fraction(2) ** f, rounding), dtype, overflow)
    assert got.tolist() == [want]


# ---- add_shifted ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", ["Saturate", "Wrap"])
def test_add_shifted_against_fraction_oracle(rounding, overflow):
    rng = np.random.default_rng(13)
    a = np.concatenate([rng.integers(-128, 128, 300), [-128, 127, -128, 127, 0, -1]]).astype(np.int8)
    b = np.concatenate([rng.integers(-128, 128, 300), [-128, 127, 127, -128, 0, 1]]).astype(np.int8)
    for fa, fb, fo, dtype in [(7, 3, 4, np.int8), (5, 5, 5, np.int8), (2, 9, 6, np.int16), (0, 40, 7, np.int8),
                              (7, 6, 9, np.int16), (-2, 3, 0, np.int32)]:
        got = add_shifted(a, fa, b, fb, out_fraction_length=fo, rounding=rounding, overflow=overflow, dtype=dtype)
        want = [fit_word(rational_round((Fraction(int(x)) / 2**fa + Fraction(int(y)) / 2**fb) * 2**fo, rounding),
                         dtype, overflow) for x, y in zip(a.tolist(), b.tolist())]
        np.testing.assert_array_equal(got, want, err_msg=f"fa={fa} fb={fb} fo={fo}")


def test_add_shifted_broadcasts_and_mixes_dtypes():
    a = np.array([[1], [-100]], np.int8)
    b = np.array([1000, -1000, 5], np.int16)
    got = add_shifted(a, 1, b, 4, out_fraction_length=2, dtype=np.int16)
    want = [[fit_word(rational_round((Fraction(int(x), 2) + Fraction(int(y), 16)) * 4, "Nearest"), np.int16,
                      "Saturate") for y in b.tolist()] for x in a[:, 0].tolist()]
    assert got.shape == (2, 3) and got.tolist() == want


# ---- pooling ------------------------------------------------------------------------------------------
def pool_reference(x, kernel, stride, pads, dilation, op, count_include_pad=False, rounding="Round"):
    """Explicit int64 loop nest over windows; taps outside the input are skipped."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, left, bottom, right = pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            taps = [(i * sh - top + r * dh, j * sw - left + q * dw) for r in range(kh) for q in range(kw)]
            taps = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
            vals = np.stack([x[:, :, r, q].astype(np.int64) for r, q in taps], axis=-1)
            if op == "max":
                out[:, :, i, j] = vals.max(-1)
            else:
                count = kh * kw if count_include_pad else len(taps)
                sums = vals.sum(-1)
                out[:, :, i, j] = [[rational_round(Fraction(int(s), count), rounding) for s in row] for row in sums]
    return out.astype(x.dtype)


GEOMETRIES = [  # kernel, stride, padding (top, left, bottom, right), dilation
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((3, 2), (2, 1), (2, 0, 1, 1), (1, 1)),
    ((3, 3), (2, 3), (0, 1, 2, 0), (2, 2)),
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((5, 4), (1, 2), (2, 3, 2, 3), (1, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,pads,dilation", GEOMETRIES)
def test_max_pool2d_against_loop_reference(dtype, kernel, stride, pads, dilation):
    info = np.iinfo(dtype)
    x = np.random.default_rng(14).integers(info.min, info.max, (2, 3, 7, 6), endpoint=True).astype(dtype)
    x[0, 0] = info.min  # a plane of minima: padding (were it zero) would win here
    got = max_pool2d(x, kernel, stride, pads, dilation)
    np.testing.assert_array_equal(got, pool_reference(x, kernel, stride, pads, dilation, "max"))


def test_max_pool2d_matches_onnx_runtime_int8():
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = np.random.default_rng(15).integers(-128, 128, (1, 4, 9, 8)).astype(np.int8)
    x[0, 1] = -128
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "p", [helper.make_tensor_value_info("x", TensorProto.INT8, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {"x": x})
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1), want)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("kernel,stride,pads", [(g[0], g[1], g[2]) for g in GEOMETRIES if g[3] == (1, 1)])
def test_avg_pool2d_against_loop_reference(rounding, count_include_pad, kernel, stride, pads):
    x = np.random.default_rng(16).integers(-128, 128, (2, 2, 7, 6)).astype(np.int8)
    got = avg_pool2d(x, kernel, stride, pads, count_include_pad=count_include_pad, rounding=rounding)
    want = pool_reference(x, kernel, stride, pads, (1, 1), "avg", count_include_pad, rounding)
    np.testing.assert_array_equal(got, want)


def test_avg_pool_ties_round_half_away_by_default():
    x = np.array([[[[1, 2], [-1, -2]]]], np.int8)  # row means 1.5 and -1.5
    assert avg_pool2d(x, (1, 2)).ravel().tolist() == [2, -2]
    assert avg_pool2d(x, (1, 2), rounding="Convergent").ravel().tolist() == [2, -2]
    assert avg_pool2d(x, (1, 2), rounding="Nearest").ravel().tolist() == [2, -1]
    assert avg_pool2d(x, (1, 2), rounding="Floor").ravel().tolist() == [1, -2]


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_avg_pool(dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(17).integers(info.min, info.max, (3, 5, 4, 7), endpoint=True).astype(dtype)
    x[0, 0] = info.max  # sums past the input type's range stay exact
    got = global_avg_pool(x)
    sums = x.astype(np.int64).sum(axis=(2, 3))
    want = [[rational_round(Fraction(int(s), 28), "Round") for s in row] for row in sums]
    assert got.shape == (3, 5, 1, 1) and got.dtype == dtype
    np.testing.assert_array_equal(got[:, :, 0, 0], want)


# ---- bad inputs ---------------------------------------------------------------------------------------
X = np.zeros((1, 1, 4, 4), np.int8)


@pytest.mark.parametrize("call,match", [
    (lambda: quantize([1.0]), "exactly one"),
    (lambda: quantize([1.0], fraction_length=1, scale=0.5), "exactly one"),
    (lambda: quantize([np.nan], fraction_length=1), "NaN"),
    (lambda: quantize(["a"], fraction_length=1), "dtype"),
    (lambda: quantize([1.0], scale=0.0), "scale"),
    (lambda: quantize([1.0], fraction_length=1.5), "fraction_length"),
    (lambda: quantize([1.0], fraction_length=1, dtype=np.float32), "dtype"),
    (lambda: quantize([1.0], fraction_length=1, zero_point=200), "zero_point"),
    (lambda: quantize([1.0], fraction_length=1, rounding="half"), "rounding"),
    (lambda: add_shifted(np.zeros(2, np.float32), 1, np.zeros(2, np.int8), 1, out_fraction_length=1), "a must"),
    (lambda: add_shifted(np.zeros(2, np.int8), 1, np.zeros(3, np.int8), 1, out_fraction_length=1), "broadcast"),
    (lambda: add_shifted(np.zeros(2, np.int8), 0, np.zeros(2, np.int8), 90, out_fraction_length=1), "differ"),
    (lambda: add_shifted(np.zeros(2, np.int8), 0, np.zeros(2, np.int8), 0, out_fraction_length=60),
     "out_fraction_length"),
    (lambda: add_shifted(np.zeros(2, np.int8), 0.5, np.zeros(2, np.int8), 0, out_fraction_length=0), "fa"),
    (lambda: max_pool2d(np.zeros((4, 4), np.int8), 2), "NCHW"),
    (lambda: max_pool2d(X.astype(np.float32), 2), "dtype"),
    (lambda: max_pool2d(X, 0), "kernel"),
    (lambda: max_pool2d(X, 2, stride=(1, 0)), "stride"),
    (lambda: max_pool2d(X, 2, padding=-1), "padding"),
    (lambda: max_pool2d(X, 2, padding=(1, 2, 3)), "padding"),
    (lambda: max_pool2d(X, 9), "larger than the padded input"),
    (lambda: max_pool2d(X, 2, 1, padding=3), "entirely in the padding"),
    (lambda: avg_pool2d(X, 2, rounding="Up"), "rounding"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
