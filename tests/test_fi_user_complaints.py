"""One test (or a small group) per complaint users make about existing fixed-point libraries
(issue "What users of the existing libraries complain about"), each asserting exact values."""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

import fixedpoint as fp
import fi_oracle as oracle
from fi_oracle import T, stored_of, type_of


def typ(a):
    t = type_of(a)
    return (t.signed, t.w, t.f)


# --- "slow, unvectorised arithmetic": the whole-array path is exact at scale ---------------------
# (speed itself is measured in bench/; here: a large vectorised cast equals an int64 reference)

def test_large_array_cast_equals_numpy_int64_reference():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 6, 200_000),
                        (rng.integers(-70000, 70000, 50_000) + 0.5) / 4096])   # exact ties
    a = fp.fi(x, 1, 16, 12)
    y = x * 4096.0                                       # exact: scaling by a power of two
    low = np.floor(y)
    ref = (low + (y - low >= 0.5)).clip(-32768, 32767).astype(np.int16)   # Nearest, Saturate
    assert np.asarray(a.stored_integer).dtype == np.int16
    np.testing.assert_array_equal(a.stored_integer, ref)


def test_large_array_add_and_multiply_equal_int64_reference():
    rng = np.random.default_rng(8)
    qa = rng.integers(-32768, 32768, 100_000)
    qb = rng.integers(-32768, 32768, 100_000)
    a, b = fp.fi(0, 1, 16, 12, int=qa), fp.fi(0, 1, 16, 10, int=qb)
    s, p = a + b, a * b
    assert typ(s) == (True, 19, 12) and typ(p) == (True, 32, 22)
    np.testing.assert_array_equal(np.asarray(s.stored_integer, dtype=np.int64), qa + qb * 4)
    np.testing.assert_array_equal(np.asarray(p.stored_integer, dtype=np.int64), qa * qb)


# --- "undefined tie behaviour" -------------------------------------------------------------------

@pytest.mark.parametrize("method, expected", [
    # x = [0.625, -0.625, 0.875, -0.875] in s8,2 scale to [2.5, -2.5, 3.5, -3.5] LSBs
    ("Ceiling", [3, -2, 4, -3]), ("Convergent", [2, -2, 4, -4]), ("Floor", [2, -3, 3, -4]),
    ("Nearest", [3, -2, 4, -3]), ("Round", [3, -3, 4, -4]), ("Zero", [2, -2, 3, -3]),
])
def test_ties_are_defined_for_every_method(method, expected):
    a = fp.fi([0.625, -0.625, 0.875, -0.875], 1, 8, 2, rounding_method=method)
    assert stored_of(a) == expected
    c = fp.cast(fp.fi([0.625, -0.625, 0.875, -0.875], 1, 8, 3), fp.numerictype(1, 8, 2),
                fp.fimath(rounding_method=method))
    assert stored_of(c) == expected


@pytest.mark.parametrize("method", ["Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero"])
def test_doubles_one_ulp_from_a_tie_are_not_ties(method):
    """Neighbours of k + 1/2 (and of integers) round by their exact value: 0.49999999999999994 is
    below the tie, so Nearest gives 0 although 0.49999999999999994 + 0.5 rounds to 1.0 in double."""
    centres = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1.0, -1.0, 0.0, 1000.5, -1000.5]
    x = np.array([np.nextafter(c, d) for c in centres for d in (-np.inf, np.inf)] + centres)
    for f in (0, 3, -2):
        scaled_x = np.ldexp(x, -f)                            # same LSB positions at fraction length f
        a = fp.fi(scaled_x, 1, 24, f, rounding_method=method)
        expected = [oracle.quantize(float(v), T(True, 24, f), method, "Saturate") for v in scaled_x]
        assert stored_of(a) == expected, f


def test_ties_in_arithmetic_follow_the_fimath():
    """KeepMSB drops low product bits with the rounding method: 3*1 = 3 at f=2 -> f=1 is a tie."""
    a, b = fp.fi(0.75, 1, 4, 2), fp.fi(1, 1, 4, 0)             # 3 and 1 -> product 3 at s8,2
    results = {}
    for method in oracle.ROUNDING_METHODS:
        fm = fp.fimath(product_mode="KeepMSB", product_word_length=7, rounding_method=method)
        results[method] = stored_of(fp.mpy(fm, a, b))[0]       # s7,1: 1.5 LSB
    assert results == {"Ceiling": 2, "Convergent": 2, "Floor": 1, "Nearest": 2, "Round": 2,
                       "Zero": 1}


# --- "wrap/saturate wrong in corner ranges" ------------------------------------------------------

@pytest.mark.parametrize("value, signed, w, action, stored", [
    (1, True, 1, "Saturate", 0), (-1, True, 1, "Saturate", -1), (1, True, 1, "Wrap", -1),
    (2, False, 1, "Wrap", 0), (3, False, 1, "Wrap", 1), (-1, False, 1, "Saturate", 0),
    (2.0 ** 63, True, 64, "Saturate", 2 ** 63 - 1), (2.0 ** 63, True, 64, "Wrap", -2 ** 63),
    (-2.0 ** 63, True, 64, "Saturate", -2 ** 63), (2.0 ** 64, False, 64, "Saturate", 2 ** 64 - 1),
    (2.0 ** 64, False, 64, "Wrap", 0), (-1.0, False, 64, "Wrap", 2 ** 64 - 1),
    (2.0 ** 70 + 2.0 ** 18, True, 64, "Wrap", 2 ** 18), (2.0 ** 64, True, 65, "Wrap", -2 ** 64),
    (-3.0 * 2 ** 62, True, 64, "Wrap", 2 ** 62), (1e300, True, 64, "Saturate", 2 ** 63 - 1),
])
def test_overflow_corners(value, signed, w, action, stored):
    a = fp.fi(value, signed, w, 0, overflow_action=action)
    assert typ(a) == (signed, w, 0)
    assert stored_of(a) == [stored]


def test_most_negative_value_corners():
    lo = fp.fi(-2.0 ** 63, 1, 64, 0)
    assert stored_of(-lo) == [2 ** 63 - 1] and stored_of(abs(lo)) == [2 ** 63 - 1]
    wrap = fp.fi(-2.0 ** 63, 1, 64, 0, overflow_action="Wrap")
    assert stored_of(-wrap) == [-2 ** 63] and stored_of(abs(wrap)) == [-2 ** 63]


def test_scalar_wider_than_64_bits_saturates_into_a_narrow_result():
    big = fp.fi(0, fp.numerictype(0, 65, 0), int=2 ** 65 - 1)
    zero = fp.fi(0, fp.numerictype(0, 1, 0), int=0)
    narrow = fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=2, sum_fraction_length=1,
                       cast_before_sum=False)
    assert stored_of(fp.add(narrow, big, zero)) == [3]                     # u2,1 saturates at 3
    assert stored_of(fp.add(narrow.replace(overflow_action="Wrap"), big, zero)) == [2]
    assert stored_of(fp.cast(big, fp.numerictype(1, 8, 0))) == [127]


def test_wrap_of_a_sum_at_the_accumulator_edge():
    fm = fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=16, sum_fraction_length=0,
                   overflow_action="Wrap")
    a = fp.fi([32767, -32768, 20000], 1, 16, 0, fm)
    b = fp.fi([1, -1, 20000], 1, 16, 0)
    assert stored_of(a + b) == [-32768, 32767, 40000 - 65536]
    sat = fp.fi([32767, -32768, 20000], 1, 16, 0,
                fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=16, sum_fraction_length=0))
    assert stored_of(sat + b) == [32767, -32768, 32767]


# --- "words over 64 bits losing precision" -------------------------------------------------------

def test_full_precision_product_of_two_64_bit_words_is_exact():
    big, small = 2 ** 63 - 1, -2 ** 63
    a = fp.fi(0, 1, 64, 0, int=np.array([big, small, big], dtype=np.int64))
    b = fp.fi(0, 1, 64, 0, int=np.array([big, small, small], dtype=np.int64))
    p = a * b
    assert typ(p) == (True, 128, 0)
    assert stored_of(p) == [big * big, small * small, big * small]


def test_300_bit_type_is_exact():
    t = fp.numerictype(1, 300, 280)
    q = np.array([(1 << 299) - 1, -(1 << 299), 3 ** 180], dtype=object)
    a = fp.fi(0, t, int=q)
    assert typ(a) == (True, 300, 280) and stored_of(a) == [int(x) for x in q]
    s = a + a
    assert typ(s) == (True, 301, 280) and stored_of(s) == [2 * int(x) for x in q]
    third = fp.fi(1 / 3, 1, 300, 298)         # the double 1/3, exactly, with 246 zero bits below
    assert stored_of(third) == [int(Fraction(1 / 3) * 2 ** 298)]


def test_python_ints_beyond_53_bits_stay_exact():
    """A Python int is an exact value: it must not pass through a double on the way into a wide
    type, whether the fraction length is given or chosen (best precision, A.3/A.4)."""
    big = 2 ** 70 + 1
    given = fp.fi(big, 1, 80, 0)
    assert typ(given) == (True, 80, 0) and stored_of(given) == [big]
    chosen = fp.fi([big, -3], 1, 80)                       # 2^70 < big: needs 72 bits -> f = 8
    assert typ(chosen) == (True, 80, 8) and stored_of(chosen) == [big << 8, -3 << 8]


def test_wide_sum_and_matmul_are_exact():
    q = np.array([2 ** 62, 2 ** 62, 2 ** 62 - 1, 2 ** 62 + 5], dtype=np.int64)
    a = fp.fi(0, 1, 64, 10, int=q)
    s = fp.sum(a)
    assert typ(s) == (True, 66, 10) and stored_of(s) == [int(q.astype(object).sum())]
    m = a.reshape(1, 4) @ a.reshape(4, 1)
    assert typ(m) == (True, 130, 20)
    assert stored_of(m) == [sum(int(x) * int(x) for x in q)]


# --- "numpy 2 incompatibility" -------------------------------------------------------------------

def test_numpy_2_arrays_in_and_out():
    assert int(np.__version__.split(".")[0]) >= 2
    x = np.linspace(-1, 1, 12, dtype=np.float64).reshape(3, 4)
    a = fp.fi(x, 1, 16, 14)
    assert a.shape == (3, 4) and a.ndim == 2 and a.size == 12
    out = np.asarray(a)
    assert out.dtype == np.float64 and out.shape == (3, 4)
    np.testing.assert_array_equal(out, np.round(x * 2 ** 14) / 2 ** 14)   # no ties in this grid
    np.testing.assert_array_equal(a.double(), out)
    assert fp.fi(np.float32(0.75), 1, 8, 6).stored_integer == 48


@pytest.mark.parametrize("value, expected", [
    (np.int8(-5), (True, 8, 0)), (np.uint8(200), (False, 8, 0)), (np.int16(25), (True, 16, 0)),
    (np.uint16(60000), (False, 16, 0)), (np.int32(-7), (True, 32, 0)),
    (np.int64(-(2 ** 62)), (True, 64, 0)), (np.uint64(2 ** 64 - 1), (False, 64, 0)),
    (np.array([1, -2, 3], dtype=np.int16), (True, 16, 0)),
])
def test_integer_dtypes_keep_their_type(value, expected):
    a = fp.fi(value)
    assert typ(a) == expected
    assert stored_of(a) == [int(v) for v in np.ravel(value)]


# --- "no unsigned types" -------------------------------------------------------------------------

def test_unsigned_types_end_to_end():
    a = fp.fi([0, 100, 255], 0, 8, 0)
    b = fp.fi([255, 1, 255], 0, 8, 0)
    assert typ(a + b) == (False, 9, 0) and stored_of(a + b) == [255, 101, 510]
    assert typ(a * b) == (False, 16, 0) and stored_of(a * b) == [0, 100, 65025]
    # unsigned - unsigned stays unsigned and saturates below zero (spec A.8.1, Q3 [I])
    assert typ(a - b) == (False, 9, 0) and stored_of(a - b) == [0, 99, 0]
    mixed = a + fp.fi(-1, 1, 8, 0)
    assert typ(mixed) == (True, 10, 0) and stored_of(mixed) == [-1, 99, 254]
    assert stored_of(-fp.fi([0, 3], 0, 8, 0)) == [0, 0]


# --- "no control over matmul/sum accumulators" ---------------------------------------------------

def test_accumulator_control_for_sum_and_matmul():
    a = fp.fi([[100, 100, 100], [-100, 50, 25]], 1, 8, 0)
    b = fp.fi([[1], [1], [1]], 1, 8, 0)
    full = a @ b
    assert typ(full) == (True, 18, 0) and stored_of(full) == [300, -25]       # 16 + ceil(log2 3)
    narrow = fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=8, sum_fraction_length=0,
                       overflow_action="Wrap", product_mode="KeepLSB", product_word_length=16)
    with fp.fimath_context(narrow):
        wrapped = a @ b
        summed = fp.sum(a, 1)
    assert typ(wrapped) == (True, 8, 0) and stored_of(wrapped) == [300 - 256, -25]
    assert typ(summed) == (True, 8, 0) and stored_of(summed) == [300 - 256, -25]
    coarse = fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=12, sum_fraction_length=-2,
                       rounding_method="Floor", cast_before_sum=False)
    s = fp.sum(fp.fi([5, 6, 7], 1, 8, 0, coarse))
    # one a + b per element in the sum type, each rounded (Floor) to a multiple of 4:
    # 5 -> 4; 4 + 6 = 10 -> 8; 8 + 7 = 15 -> 12 (stored 3), not floor(18 / 4) = 4
    assert typ(s) == (True, 12, -2) and stored_of(s) == [3]


# --- "no two's-complement bin/hex input and output" ----------------------------------------------

def test_twos_complement_bin_and_hex_in_and_out():
    t = fp.numerictype(1, 4, 0)
    assert stored_of(fp.fi(0, t, bin="1000")) == [-8]
    assert stored_of(fp.fi(0, t, bin="0111")) == [7]
    assert stored_of(fp.fi(0, fp.numerictype(0, 4, 0), bin="1000")) == [8]
    assert stored_of(fp.fi(0, fp.numerictype(1, 14, 6), hex="3F0E")) == [-242]
    a = fp.fi([-1, -0.5, 0.25], 1, 8, 7)
    assert a.bin.split() == ["10000000", "11000000", "00100000"]
    assert a.hex.split() == ["80", "C0", "20"]
    wide = fp.fi(0, fp.numerictype(1, 72, 0), int=np.array([-1], dtype=object))
    assert wide.bin == "1" * 72 and wide.hex == "F" * 18


# --- "no choice of rounding when building from floats" -------------------------------------------

def test_rounding_choice_at_construction_and_not_from_the_default_fimath():
    x = [1.3, -1.3, 1.7, -1.7]
    assert stored_of(fp.fi(x, 1, 8, 0, rounding_method="Floor")) == [1, -2, 1, -2]
    assert stored_of(fp.fi(x, 1, 8, 0, rounding_method="Ceiling")) == [2, -1, 2, -1]
    assert stored_of(fp.fi(x, 1, 8, 0, rounding_method="Zero")) == [1, -1, 1, -1]
    assert stored_of(fp.fi(x, 1, 8, 0, rounding_method="nearest")) == [1, -1, 2, -2]
    assert stored_of(fp.fi(x, fp.numerictype(1, 8, 0),
                           fp.fimath(rounding_method=fp.RoundingMethod.Floor))) == [1, -2, 1, -2]
    # a default fimath never changes construction (spec A.2 rule 1): Nearest/Saturate
    with fp.fimath_context(fp.fimath(rounding_method="Floor", overflow_action="Wrap")):
        assert stored_of(fp.fi([2.5, 200], 1, 8, 0)) == [3, 127]


# --- "NaN/Inf turning into garbage" --------------------------------------------------------------

def test_nan_inf_rules():
    a = fp.fi([math.nan, math.inf, -math.inf, 1.5], 1, 8, 4)
    assert stored_of(a) == [0, 127, -128, 24]
    w = fp.fi([math.nan, math.inf, -math.inf, 1.5], 1, 8, 4, overflow_action="Wrap")
    assert stored_of(w) == [0, 0, 0, 24]
    assert stored_of(fp.fi(math.inf, 0, 8, 0)) == [255]


@pytest.mark.parametrize("make", [lambda: fp.fi(math.nan), lambda: fp.fi(math.inf, 1, 16),
                                  lambda: fp.fi([1.0, -math.inf])])
def test_non_finite_without_full_type_is_a_clear_error(make):
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite"):
        make()


# --- "no negative fraction lengths or slope/bias" ------------------------------------------------

def test_negative_fraction_lengths():
    a = fp.fi(1000, 1, 8, -3)
    assert typ(a) == (True, 8, -3) and stored_of(a) == [125] and float(a.double()) == 1000.0
    b = fp.fi(1004, 1, 8, -3)                               # 125.5 LSB -> 126 (Nearest)
    assert stored_of(b) == [126] and float(b.double()) == 1008.0
    s = a + fp.fi(0.75, 1, 8, 2)                            # IL 11 and 6 -> s14,2
    assert typ(s) == (True, 14, 2) and stored_of(s) == [4003]
    p = a * fp.fi(0.75, 1, 8, 2)
    assert typ(p) == (True, 16, -1) and stored_of(p) == [375]
    assert stored_of(fp.fi(16000, 1, 8)) == [125] and typ(fp.fi(16000, 1, 8)) == (True, 8, -7)


def test_slope_bias_scaling():
    t = fp.numerictype(1, 8, slope=0.5, bias=10)
    a = fp.fi([10, 11.25, 100, -60], t)                     # (V - 10) / 0.5
    assert stored_of(a) == [0, 3, 127, -128]               # 2.5 -> 3 (Nearest); saturations
    np.testing.assert_array_equal(a.double(), [10.0, 11.5, 73.5, -54.0])
    b = fp.fi(math.pi, 1, 16, 3, 2)
    assert stored_of(b) == [0] and float(b.double()) == 2.0
    assert b.numerictype.slope == 3 and b.numerictype.bias == 2


# --- "no overflow counts" ------------------------------------------------------------------------

def test_overflow_and_underflow_counts_with_logging():
    with fp.logging_mode(True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = fp.fi([1, 2, 3, 4, 5, -3, 0.5], 1, 8, 6)        # 2..5 and -3 leave [-2, 1.984375]
        tiny = fp.fi([2.0 ** -9, -(2.0 ** -9), 0.0, 2.0 ** -6], 1, 8, 7)   # two quantise to zero
        b = fp.fi([100, 100], 1, 8, 0)
        s = fp.add(fp.fimath(sum_mode="SpecifyPrecision", sum_word_length=8, sum_fraction_length=0),
                   b, b)
    assert fp.noverflows(a) == 5 and fp.nunderflows(a) == 0
    assert fp.minlog(a) == -2.0 and fp.maxlog(a) == 1.984375
    assert fp.noverflows(tiny) == 0 and fp.nunderflows(tiny) == 2
    assert fp.noverflows(s) == 2 and stored_of(s) == [127, 127]
    assert any("5 overflow(s)" in str(w.message) for w in caught)
    c = fp.fi([1, 2, 3], 1, 8, 6)                           # logging off: nothing counted
    assert fp.noverflows(c) == 0
