"""Requantizers and the gemmlowp primitives against exact, independently written references.

References: `fractions.Fraction` oracles (exact rational arithmetic) and vectorised numpy int64
transcriptions of the published formulas (spec Part E.4, TFLite's single-rounding and int64 code,
ONNX Runtime's float32 MLAS requantization).
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixedpoint import _requant
from fixedpoint.kernels import (Requantizer, fp32_scale, multiply_by_quantized_multiplier, quantize_multiplier,
                                requantize_fp32, requantize_shift, rounding_divide_by_pot,
                                saturating_rounding_doubling_high_mul)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ROUNDINGS = ("Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero")
DTYPES = (np.int8, np.uint8, np.int16, np.int32)


# ---- exact oracles (shared with test_kernels_elementwise) -----------------------------------------
def rational_round(v, rounding):
    """round(v) of a Fraction by a MATLAB rounding method, in exact arithmetic."""
    v = Fraction(v)
    fl = math.floor(v)
    frac = v - fl
    half = Fraction(1, 2)
    if rounding == "Floor":
        return fl
    if rounding == "Ceiling":
        return math.ceil(v)
    if rounding == "Zero":
        return math.trunc(v)
    if rounding == "Nearest":  # ties toward +inf
        return fl + (frac >= half)
    if rounding == "Round":  # ties away from zero
        return fl + (frac > half or (frac == half and v > 0))
    if rounding == "Convergent":  # ties to even
        return fl + (frac > half or (frac == half and fl % 2 == 1))
    raise AssertionError(rounding)


def fit_word(v, dtype, overflow):
    """Saturate or two's-complement wrap the Python int v into dtype."""
    info = np.iinfo(dtype)
    if overflow == "Saturate":
        return min(max(v, int(info.min)), int(info.max))
    span = 1 << info.bits
    return (v - int(info.min)) % span + int(info.min)


def srdhm_oracle(a, b):
    if a == b == INT32_MIN:
        return INT32_MAX
    return rational_round(Fraction(a * b, 2**31), "Nearest")


# ---- vectorised transcriptions of the published formulas ---------------------------------------------
def srdhm_spec(a, b):
    """Spec E.4: nudge, C division truncating toward zero, the one saturating case."""
    ab = a.astype(np.int64) * b.astype(np.int64)
    x = ab + np.where(ab >= 0, 2**30, 1 - 2**30)
    q = np.sign(x) * (np.abs(x) // 2**31)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q).astype(np.int64)


def rdbpot_spec(x, e):
    """Spec E.4: mask, remainder, threshold."""
    x = x.astype(np.int64)
    e = np.asarray(e, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


EDGES = sorted({INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 0, 1, -1, 2, -2, 3, -3, 5, -5}
               | {s * ((1 << k) + d) for k in range(1, 31) for d in (-1, 0, 1) for s in (1, -1)})


# ---- spec worked examples (E.3, E.4) -------------------------------------------------------------------
def test_spec_worked_examples():
    assert quantize_multiplier(0.0123) == (1690499128, -6)
    assert quantize_multiplier(0.5) == (1073741824, 0)
    assert quantize_multiplier(0.25) == (1073741824, -1)
    assert quantize_multiplier(1.5) == (1610612736, 1)
    assert quantize_multiplier(0.025) == (1717986918, -5)
    assert saturating_rounding_doubling_high_mul(1000, 1690499128) == 787
    assert rounding_divide_by_pot(787, 6) == 12
    assert multiply_by_quantized_multiplier(np.array([1000], np.int32), 1690499128, -6).tolist() == [12]
    assert Requantizer.gemmlowp(0.025, dtype=np.int32)(np.array([1234], np.int32)).tolist() == [31]
    srdhm = saturating_rounding_doubling_high_mul
    assert [srdhm(3, 2**30), srdhm(-3, 2**30), srdhm(2**30, 2**30), srdhm(-(2**30), 2**30)] == [2, -1, 2**29, -(2**29)]
    assert srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    xs, es = [5, -5, 6, -6, 10, -10, 7, -7], [1, 1, 2, 2, 2, 2, 2, 2]
    assert rounding_divide_by_pot(xs, es).tolist() == [3, -3, 2, -2, 3, -3, 2, -2]


# ---- SRDHM and RDBPOT against exact arithmetic --------------------------------------------------------
def test_srdhm_edges_against_fraction_oracle():
    a, b = np.meshgrid(np.array(EDGES, np.int32), np.array(EDGES, np.int32))
    got = saturating_rounding_doubling_high_mul(a, b)
    want = np.array([[srdhm_oracle(int(x), int(y)) for x, y in zip(ra, rb)] for ra, rb in zip(a, b)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, srdhm_spec(a, b))


def test_srdhm_million_random_pairs():
    rng = np.random.default_rng(1)
    a = rng.integers(INT32_MIN, INT32_MAX, 1_000_000, endpoint=True, dtype=np.int64).astype(np.int32)
    b = rng.integers(INT32_MIN, INT32_MAX, 1_000_000, endpoint=True, dtype=np.int64).astype(np.int32)
    # negative ties: b = 2^30 makes a*b/2^31 = a/2 exactly, a tie for every odd a
    b[:1000] = 2**30
    got = saturating_rounding_doubling_high_mul(a, b)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, srdhm_spec(a, b))
    for i in range(0, 1_000_000, 997):  # a sample through the rational oracle too
        assert got[i] == srdhm_oracle(int(a[i]), int(b[i]))


def test_rdbpot_edges_and_million_random():
    x = np.array(EDGES, np.int32)[:, None].repeat(32, 1)
    e = np.arange(32, dtype=np.int32)[None, :].repeat(len(EDGES), 0)
    got = rounding_divide_by_pot(x, e)
    want = [[rational_round(Fraction(int(v), 2 ** int(s)), "Round") for v, s in zip(rx, re)] for rx, re in zip(x, e)]
    np.testing.assert_array_equal(got, want)
    rng = np.random.default_rng(2)
    x = rng.integers(INT32_MIN, INT32_MAX, 1_000_000, endpoint=True, dtype=np.int64).astype(np.int32)
    e = rng.integers(0, 31, 1_000_000, endpoint=True).astype(np.int32)
    np.testing.assert_array_equal(rounding_divide_by_pot(x, e), rdbpot_spec(x, e))


# ---- quantize_multiplier ----------------------------------------------------------------------------
def quantize_multiplier_oracle(m):
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    m0 = rational_round(Fraction(q) * 2**31, "Round")
    if m0 == 2**31:
        m0, shift = 2**30, shift + 1
    if shift < -31:
        return 0, 0
    return m0, shift


def test_quantize_multiplier_near_powers_of_two_and_carry():
    values = [0.0, 2.0**-40, 2.0**-32, 2.0**-31, 1.0 - 2.0**-40, 1.0 - 2.0**-33, 1.0 - 2.0**-32, 0.75]
    for k in range(-30, 20):
        p = 2.0**k
        values += [p, math.nextafter(p, 0), math.nextafter(p, 4 * p), p * (1 - 2.0**-32), p * (1 + 2.0**-31)]
    for m in values:
        assert quantize_multiplier(m) == quantize_multiplier_oracle(m), m
    # the carry: q*2^31 rounds up to 2^31 and is renormalised
    assert quantize_multiplier(1.0 - 2.0**-40) == (2**30, 1)
    m0, shift = quantize_multiplier(np.array([0.0123, 0.5, 1.0 - 2.0**-40]))
    assert m0.tolist() == [1690499128, 2**30, 2**30] and shift.tolist() == [-6, 0, 1]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-35, max_value=2.0**29, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_property(m):
    m0, shift = quantize_multiplier(m)
    assert (m0, shift) == quantize_multiplier_oracle(m)
    if m0:
        assert 2**30 <= m0 <= INT32_MAX
        assert abs(Fraction(m0) * Fraction(2) ** (shift - 31) - Fraction(m)) <= Fraction(2) ** (shift - 32)


# ---- every requantizer mode against a reference written here ----------------------------------------
def gemmlowp_reference(acc, m0, shift, halfup):
    """MultiplyByQuantizedMultiplier from the spec formulas; ruy uses half-up in the final shift."""
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    x = ((acc.astype(np.int64) << left) + 2**31) % 2**32 - 2**31  # int32 product wraps
    h = srdhm_spec(x, np.broadcast_to(m0, x.shape).astype(np.int64))
    if halfup:
        return np.where(right > 0, (h + (np.int64(1) << np.maximum(right - 1, 0))) >> right, h)
    return rdbpot_spec(h, right)


def single_round_reference(acc, m0, shift):
    total = 31 - shift
    return (acc.astype(np.int64) * m0 + (np.int64(1) << (total - 1))) >> total


def int64_reference(acc, m0, shift):
    """TFLite's int64 MultiplyByQuantizedMultiplier (reduced 16-bit multiplier), in Python ints."""
    out = []
    for x, m, s in zip(acc.tolist(), np.broadcast_to(m0, acc.shape).tolist(), np.broadcast_to(shift, acc.shape).tolist()):
        reduced = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
        total = 15 - s
        out.append(min(max((x * reduced + (1 << (total - 1))) >> total, INT32_MIN), INT32_MAX))
    return np.array(out, dtype=np.int64)


def finish(v, zp, dtype, clamp):
    info = np.iinfo(dtype)
    lo, hi = clamp if clamp else (info.min, info.max)
    return np.clip(v + zp, lo, hi).astype(dtype)


def random_acc(rng, shape, wide=False):
    bound = 2**40 if wide else 2**31
    a = rng.integers(-bound, bound, shape, dtype=np.int64)
    small = rng.integers(-3000, 3000, shape)
    a = np.where(rng.random(shape) < 0.5, small, a)
    a.flat[:4] = [-bound, bound - 1, 0, -1]
    return a if wide else a.astype(np.int32)


@pytest.mark.parametrize("mode", ["gemmlowp_double", "ruy_double_halfup", "single_round"])
@pytest.mark.parametrize("dtype,zp,clamp", [(np.int8, -3, None), (np.uint8, 128, (128, 255)), (np.int16, 7, None),
                                            (np.int32, 0, None), (np.int8, -128, (-128, -128 + 47))])
def test_integer_modes_per_channel(mode, dtype, zp, clamp):
    rng = np.random.default_rng(3)
    reals = np.concatenate([rng.uniform(1e-6, 0.9, 6), [2.0**-20, 0.5, 1.0, 3.7, 2.0**-31 * 1.5]])
    m0, shift = quantize_multiplier(reals)
    acc = random_acc(rng, (5, len(reals), 13))
    rq = Requantizer(mode, multiplier=m0, shift=shift, zero_point=zp, dtype=dtype, clamp=clamp)
    got = rq(acc, channel_axis=1)
    m0b, shb = m0[None, :, None].astype(np.int64), shift[None, :, None].astype(np.int64)
    if mode == "single_round":
        ref = single_round_reference(acc, m0b, shb)
    else:
        ref = gemmlowp_reference(acc, m0b, shb, halfup=mode == "ruy_double_halfup")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, finish(ref, zp, dtype, clamp))
    # channels last (a GEMM output row) gives the same bits
    got_last = rq(np.ascontiguousarray(np.moveaxis(acc, 1, -1)), channel_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(got_last, -1, 1), got)


def test_modes_differ_only_on_their_roundings():
    # acc * m = -1.5, 1.5, -2.5: gemmlowp rounds -1.5 away (-2), ruy half up (-1)
    acc = np.array([-3 * 2**10, 3 * 2**10, -5 * 2**10], np.int32)
    m = 2.0**-11
    assert Requantizer.gemmlowp(m)(acc).tolist() == [-2, 2, -3]
    assert Requantizer.ruy(m)(acc).tolist() == [-1, 2, -2]
    assert Requantizer.gemmlowp(m, single_rounding=True)(acc).tolist() == [-1, 2, -2]


@pytest.mark.parametrize("mode", ["gemmlowp_double", "ruy_double_halfup", "single_round"])
def test_int64_accumulators_use_tflite_int64_overload(mode):
    rng = np.random.default_rng(4)
    m0, shift = quantize_multiplier(np.array([1e-4, 0.3, 2.0**-9, 0.999]))
    acc = random_acc(rng, (7, 4), wide=True)
    rq = Requantizer(mode, multiplier=m0, shift=shift, dtype=np.int16, zero_point=5)
    ref = int64_reference(acc.reshape(-1), np.tile(m0, 7), np.tile(shift, 7)).reshape(7, 4)
    np.testing.assert_array_equal(rq(acc), finish(ref, 5, np.int16, None))


def mlas_reference(acc, scale, zp, dtype, clamp):
    """ONNX Runtime MLAS: float32 product, clamp in float to [lo - zp, hi - zp], RNE, + zp."""
    info = np.iinfo(dtype)
    lo, hi = clamp if clamp else (int(info.min), int(info.max))
    y = acc.astype(np.float32) * np.float32(scale)
    y = np.clip(y, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(y).astype(np.int64) + zp).astype(dtype)


@pytest.mark.parametrize("dtype,zp,clamp", [(np.int8, 0, None), (np.uint8, 131, (131, 255)), (np.int16, -9, None),
                                            (np.int8, -20, (-20, 80))])
def test_mlas_fp32(dtype, zp, clamp):
    rng = np.random.default_rng(5)
    acc = random_acc(rng, (3, 4, 50))
    acc[0, :, :20] = rng.integers(2**24, 2**27, (4, 20))  # float32 conversion rounds these
    scales = fp32_scale(np.float32(0.02), np.array([0.001, 0.5, 2.0**-25, 3.1e-9], np.float32), np.float32(0.07))
    got = requantize_fp32(acc, scales, zp, dtype=dtype, clamp=clamp)
    np.testing.assert_array_equal(got, mlas_reference(acc, scales[None, :, None], zp, dtype, clamp))


def test_mlas_fp32_ties_and_float_rounding_of_large_accumulators():
    # scale 1/2: odd accumulators are exact ties, RNE sends them to even
    acc = np.array([1, 3, 5, -1, -3, 7, 9], np.int32)
    assert requantize_fp32(acc, 0.5).tolist() == [0, 2, 2, 0, -2, 4, 4]
    # 16777217 = 2^24 + 1 becomes 16777216 in float32 before the product: 0.5 -> 0 (exact: 0.50000003 -> 1)
    assert requantize_fp32(np.array([2**24 + 1], np.int32), 2.0**-25, dtype=np.int32).tolist() == [0]
    assert fp32_scale(0.1, 0.2, 0.3).dtype == np.float32
    assert fp32_scale(0.1, 0.2, 0.3) == (np.float32(0.1) * np.float32(0.2)) / np.float32(0.3)


# ---- pow2_shift: every rounding x overflow x dtype, per-channel, left shifts ------------------------------
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", ["Saturate", "Wrap"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pow2_shift_against_fraction_oracle(rounding, overflow, dtype):
    rng = np.random.default_rng(6)
    shifts = np.array([0, 1, 2, 3, 7, 12, 31, 40, -1, -5], np.int32)
    acc = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, (len(shifts), 12), endpoint=True),
                          rng.integers(-600, 600, (len(shifts), 12)),
                          np.array([[INT32_MIN, INT32_MAX, -1, 1, 0, -2, 2, -3, 3, -4, 4, 5]] * len(shifts))],
                         axis=1).astype(np.int32)
    got = requantize_shift(acc, shifts, rounding=rounding, overflow=overflow, dtype=dtype, channel_axis=0)
    want = [[fit_word(rational_round(Fraction(int(v)) / Fraction(2) ** int(s), rounding), dtype, overflow)
             for v in row] for row, s in zip(acc, shifts)]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.array(want))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20), st.integers(-32, 127),
       st.sampled_from(ROUNDINGS), st.sampled_from(["Saturate", "Wrap"]), st.sampled_from(DTYPES))
def test_pow2_shift_int64_property(values, shift, rounding, overflow, dtype):
    acc = np.array(values, np.int64)
    got = requantize_shift(acc, shift, rounding=rounding, overflow=overflow, dtype=dtype)
    want = [fit_word(rational_round(Fraction(v) / Fraction(2) ** shift, rounding), dtype, overflow) for v in values]
    assert got.tolist() == want


def test_pow2_zero_point_and_clamp_after_wrap():
    rq = Requantizer.pow2_shift(2, rounding="Floor", overflow="Wrap", dtype=np.int8, zero_point=10, clamp=(0, 100))
    # floor(acc/4) + 10, wrapped into int8, then ReLU-like clamp
    acc = np.array([-100, 400, 470, 1000], np.int32)
    want = [min(max(fit_word(v // 4 + 10, np.int8, "Wrap"), 0), 100) for v in acc.tolist()]
    assert rq(acc).tolist() == want


def test_scalar_and_0d_inputs_keep_shape():
    assert requantize_shift(np.int32(10), 2).shape == ()
    assert requantize_shift(np.arange(6, dtype=np.int32).reshape(2, 3), 1).shape == (2, 3)


def test_params_dict_round_trip_shares_arrays():
    rq = Requantizer.gemmlowp(np.array([0.1, 0.2]), zero_point=3, clamp=(3, 127))
    p = rq.to_params()
    assert p["mode"] == "gemmlowp_double" and p["dtype"] == "int8" and (p["clamp_lo"], p["clamp_hi"]) == (3, 127)
    assert p["multiplier"].dtype == np.int32 and p["shift"].dtype == np.int32
    acc = np.arange(-20, 20, dtype=np.int32).reshape(20, 2) * 1000
    np.testing.assert_array_equal(_requant.requantize(acc, p, 1), rq(acc))


# ---- bad inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: Requantizer("gemmlowp"), "mode"),
    (lambda: Requantizer.pow2_shift(1, dtype=np.float32), "dtype"),
    (lambda: Requantizer.pow2_shift(1, dtype=np.int64), "dtype"),
    (lambda: Requantizer.pow2_shift(200), "shift"),
    (lambda: Requantizer.pow2_shift(1.5), "shift"),
    (lambda: Requantizer.pow2_shift(1, rounding="Up"), "rounding"),
    (lambda: Requantizer.pow2_shift(1, overflow="Clip"), "overflow"),
    (lambda: Requantizer.pow2_shift(1, zero_point=300), "zero_point"),
    (lambda: Requantizer.pow2_shift(1, clamp=(10, 5)), "clamp"),
    (lambda: Requantizer.pow2_shift(1, clamp=(0, 1000)), "clamp"),
    (lambda: Requantizer.pow2_shift(np.ones((2, 2), np.int32)), "shift"),
    (lambda: Requantizer("gemmlowp_double", multiplier=-5, shift=0), "multiplier"),
    (lambda: Requantizer("gemmlowp_double", multiplier=[1, 2], shift=[0]), "channels"),
    (lambda: Requantizer("gemmlowp_double", multiplier=2**30, shift=0, rounding="Floor"), "pow2_shift"),
    (lambda: Requantizer.fp32(-1.0), "scale"),
    (lambda: Requantizer.fp32(float("nan")), "scale"),
    (lambda: quantize_multiplier(-0.5), "multiplier"),
    (lambda: quantize_multiplier(2.0**40), "too large"),
    (lambda: rounding_divide_by_pot(5, 32), "exponent"),
    (lambda: saturating_rounding_doubling_high_mul(2**31, 1), "a"),
    (lambda: saturating_rounding_doubling_high_mul([1, 2], [1, 2, 3]), "broadcast"),
])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_accumulators_raise_value_error():
    rq = Requantizer.pow2_shift([1, 2, 3])
    with pytest.raises(ValueError, match="dtype int32 or int64"):
        rq(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="3 per-channel"):
        rq(np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match="channel_axis"):
        rq(np.zeros((2, 3), np.int32), channel_axis=5)


@pytest.mark.parametrize("edit,match", [
    (dict(shift=np.array([1], np.int64)), "dtype int32"),
    (dict(shift=np.array([[1]], np.int32)), "1-D"),
    (dict(shift=np.array([500], np.int32)), "outside"),
    (dict(mode="fast"), "expected one of"),
    (dict(dtype="int64"), "expected one of"),
    (dict(zero_point=1000), "zero_point"),
    (dict(clamp_lo=5, clamp_hi=4), "exceeds"),
    (dict(zero_point="0"), "must be an int"),
])
def test_compiled_params_parser_rejects_bad_fields(edit, match):
    p = Requantizer.pow2_shift(1).to_params()
    p.update(edit)
    with pytest.raises(ValueError, match=match):
        _requant.requantize(np.zeros(4, np.int32), p, 0)
    p = Requantizer.pow2_shift(1).to_params()
    del p["shift"]
    with pytest.raises(ValueError, match="missing field 'shift'"):
        _requant.requantize(np.zeros(4, np.int32), p, 0)


# ---- code paths: AVX2 and portable loops, 32-bit lanes and the general int64 path agree ---------------
@pytest.mark.parametrize("rq", [
    Requantizer.pow2_shift(np.array([0, 1, 5, 31, 33, -3], np.int32), rounding="Convergent"),
    Requantizer.pow2_shift(np.array([2, 9, 17, 0, 1, 4], np.int32), rounding="Zero", overflow="Wrap", zero_point=-7),
    Requantizer.gemmlowp(np.array([1e-3, 0.3, 0.7, 1.2, 5.0, 2.0**-30]), zero_point=4, clamp=(4, 127)),
    Requantizer.gemmlowp(np.array([1e-3, 0.3, 0.7, 1.2, 5.0, 2.0**-30]), single_rounding=True, dtype=np.int16),
    Requantizer.ruy(np.array([1e-3, 0.3, 0.7, 1.2, 5.0, 2.0**-30]), dtype=np.uint8, zero_point=128),
    Requantizer.fp32(np.array([1e-3, 0.3, 0.7, 1.2, 5.0, 2.0**-30], np.float32), zero_point=-1),
], ids=lambda rq: repr(rq))
def test_simd_and_portable_paths_give_identical_bits(rq):
    acc = random_acc(np.random.default_rng(7), (3, 6, 37))
    results = []
    for simd in (True, False):
        p = rq.to_params()
        p["simd"] = simd
        results.append(_requant.requantize(acc, p, 1))
        results.append(_requant.requantize(np.ascontiguousarray(np.moveaxis(acc, 1, -1)), p, 2).transpose(0, 2, 1))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    np.testing.assert_array_equal(results[0], rq(acc))


def test_clamped_requantizer_is_the_clamp_after_requantization():
    rng = np.random.default_rng(21)
    acc = rng.integers(-(1 << 20), 1 << 20, (4, 6, 5), dtype=np.int64).astype(np.int32)
    for base in (Requantizer.pow2_shift(np.arange(6) + 8, rounding="Floor"),
                 Requantizer.pow2_shift(9, clamp=(-100, 90)),
                 Requantizer.fp32(np.linspace(1e-4, 1e-3, 6).astype(np.float32), zero_point=3)):
        plain = base(acc, channel_axis=1).astype(np.int64)
        np.testing.assert_array_equal(base.clamped(0, 50)(acc, channel_axis=1), np.clip(plain, 0, 50))
        assert base.clamped(-128, 127)(acc, channel_axis=1).tobytes() == base(acc, channel_axis=1).tobytes()
    with pytest.raises(ValueError, match="empty"):
        Requantizer.pow2_shift(9, clamp=(-100, 90)).clamped(95, 127)
