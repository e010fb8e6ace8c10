"""Every row of the fi golden cases (spec/fi_golden_cases.md, Part fi) as an explicit test, plus the
worked examples of spec Part A that the table does not repeat.

Each test states the expected type, stored integers and real-world values literally; nothing here
is computed by the library or the oracle. Rows marked I in the table rest on an inferred rule: each
one says in a comment how it was reasoned.
"""
import math

import numpy as np
import pytest

import fixedpoint as fp
from fi_oracle import stored_of, type_of

PI, E = math.pi, math.e


def check(a, signed, w, f, stored, values=None):
    """a has type (signed, w, f), the given stored integers and exactly the given values."""
    t = type_of(a)
    assert (t.signed, t.w, t.f) == (bool(signed), w, f)
    stored = stored if isinstance(stored, list) else [stored]
    assert stored_of(a) == stored
    if values is None:
        values = [q * 2.0 ** -f for q in stored]
    values = values if isinstance(values, list) else [values]
    assert [float(v) for v in np.ravel(a.double())] == values


def patterns(text):
    """The per-element tokens of a bin/hex rendering (a string, or an array of strings)."""
    if isinstance(text, str):
        return text.split()
    return [str(t) for t in np.ravel(np.asarray(text))]


# --- best precision (spec A.3) -------------------------------------------------------------------

@pytest.mark.parametrize("row, make, signed, w, f, stored, values", [
    ("BP-01", lambda: fp.fi(PI), 1, 16, 13, 25736, 3.1416015625),
    ("BP-02", lambda: fp.fi(0.1), 1, 16, 18, 26214, 26214 / 2 ** 18),
    ("BP-03", lambda: fp.fi(1), 1, 16, 14, 16384, 1.0),
    ("BP-04", lambda: fp.fi(-1), 1, 16, 15, -32768, -1.0),
    ("BP-05", lambda: fp.fi(0), 1, 16, 15, 0, 0.0),
    ("BP-06", lambda: fp.fi(1024), 1, 16, 4, 16384, 1024.0),
    ("BP-07", lambda: fp.fi(-1024), 1, 16, 5, -32768, -1024.0),
    ("BP-08", lambda: fp.fi(-128), 1, 16, 8, -32768, -128.0),
    ("BP-09", lambda: fp.fi(16000, 1, 8), 1, 8, -7, 125, 16000.0),
    ("BP-10", lambda: fp.fi(0.0234, 1, 8), 1, 8, 12, 96, 0.0234375),
    ("BP-12", lambda: fp.fi(E, 0, 20), 0, 20, 18, 712581, 712581 / 2 ** 18),
    ("BP-15", lambda: fp.fi([1, 2, 5, 8, 5]), 1, 16, 11, [2048, 4096, 10240, 16384, 10240],
     [1.0, 2.0, 5.0, 8.0, 5.0]),
    ("BP-16", lambda: fp.fi(PI, 1, 8), 1, 8, 5, 101, 3.15625),
    # spec A.3 worked examples not repeated in the table
    ("A3-pi-s8", lambda: fp.fi(PI, 1, 8), 1, 8, 5, 101, 3.15625),
    ("A3-[-3 1]", lambda: fp.fi([-3, 1]), 1, 16, 13, [-24576, 8192], [-3.0, 1.0]),
    # the minimum rule, not "largest magnitude, negative first": +2 needs one bit more than -2
    ("A3-[-2 2]", lambda: fp.fi([-2, 2]), 1, 16, 13, [-16384, 16384], [-2.0, 2.0]),
])
def test_best_precision(row, make, signed, w, f, stored, values):
    check(make(), signed, w, f, stored, values)


def test_bp_12_value_matches_documented_display():
    assert f"{fp.fi(E, 0, 20).double():.15g}" == "2.71828079223633"


# --- rounding methods at exact ties (spec A.5) ---------------------------------------------------

ROUNDING_ROWS = [
    ("RND-01", 2.5, "Ceiling", 3), ("RND-02", 2.5, "Convergent", 2), ("RND-03", 2.5, "Floor", 2),
    ("RND-04", 2.5, "Nearest", 3), ("RND-05", 2.5, "Round", 3), ("RND-06", 2.5, "Zero", 2),
    ("RND-07", -2.5, "Ceiling", -2), ("RND-08", -2.5, "Convergent", -2),
    ("RND-09", -2.5, "Floor", -3), ("RND-10", -2.5, "Nearest", -2), ("RND-11", -2.5, "Round", -3),
    ("RND-12", -2.5, "Zero", -2),
    ("RND-19", -4.6, "Ceiling", -4), ("RND-20", -4.6, "Convergent", -5),
    ("RND-21", -4.6, "Floor", -5), ("RND-22", -4.6, "Nearest", -5), ("RND-23", -4.6, "Round", -5),
    ("RND-24", -4.6, "Zero", -4),
    # the rest of the spec's tie table (3.5 / -3.5)
    ("A5-3.5-Ceiling", 3.5, "Ceiling", 4), ("A5-3.5-Convergent", 3.5, "Convergent", 4),
    ("A5-3.5-Floor", 3.5, "Floor", 3), ("A5-3.5-Nearest", 3.5, "Nearest", 4),
    ("A5-3.5-Round", 3.5, "Round", 4), ("A5-3.5-Zero", 3.5, "Zero", 3),
    ("A5--3.5-Ceiling", -3.5, "Ceiling", -3), ("A5--3.5-Convergent", -3.5, "Convergent", -4),
    ("A5--3.5-Floor", -3.5, "Floor", -4), ("A5--3.5-Nearest", -3.5, "Nearest", -3),
    ("A5--3.5-Round", -3.5, "Round", -4), ("A5--3.5-Zero", -3.5, "Zero", -3),
]


@pytest.mark.parametrize("row, value, method, stored", ROUNDING_ROWS)
def test_rounding(row, value, method, stored):
    check(fp.fi(value, 1, 8, 0, rounding_method=method), 1, 8, 0, stored, float(stored))
    fm = fp.fimath(rounding_method=method)
    check(fp.fi(value, fp.numerictype(1, 8, 0), fm), 1, 8, 0, stored, float(stored))


def test_a2_changing_the_fimath_never_requantises():
    """A.2 rule 3: b = fi(1, T) saturates to 127; attaching Floor/Wrap afterwards keeps 127."""
    b = fp.fi(1, fp.numerictype(1, 8, 7))
    b.fimath = fp.fimath(rounding_method="Floor", overflow_action="Wrap")
    check(b, 1, 8, 7, 127, 0.9921875)
    assert b.fimath.overflow_action == fp.OverflowAction.Wrap


def test_a7_which_fimath_an_operation_uses():
    """A local fimath wins and is inherited; add/sub/mpy(F, ...) results carry no local fimath."""
    wrap = fp.fimath(overflow_action="Wrap", sum_mode="SpecifyPrecision", sum_word_length=8,
                     sum_fraction_length=0)
    a, b = fp.fi(100, 1, 8, 0, wrap), fp.fi(100, 1, 8, 0)
    for c in (a + b, b + a):
        check(c, 1, 8, 0, 200 - 256, -56.0)
        assert c.has_local_fimath and c.fimath == wrap
    plain = b + b
    check(plain, 1, 9, 0, 200, 200.0)
    assert not plain.has_local_fimath
    d = fp.add(wrap, b, b)
    check(d, 1, 8, 0, -56, -56.0)
    assert not d.has_local_fimath


# --- overflow actions, NaN and Inf (spec A.2-5, A.6) ---------------------------------------------

def test_ovf_01_floor_saturate():
    fm = fp.fimath(rounding_method="Floor", overflow_action="Saturate")
    check(fp.fi(1, fp.numerictype(1, 8, 7), fm), 1, 8, 7, 127, 0.9921875)


def test_ovf_02_floor_wrap():
    fm = fp.fimath(rounding_method="Floor", overflow_action="Wrap")
    check(fp.fi(1, fp.numerictype(1, 8, 7), fm), 1, 8, 7, -128, -1.0)


def test_a2_construction_ignores_no_fimath_defaults():
    """Without a fimath the constructor rounds Nearest and saturates (A.2 rule 1)."""
    check(fp.fi(1, fp.numerictype(1, 8, 7)), 1, 8, 7, 127, 0.9921875)


@pytest.mark.parametrize("row, value, signed, action, stored", [
    ("OVF-03", 200, 1, "Wrap", -56),
    ("OVF-04", -129, 1, "Wrap", 127),
    ("OVF-05", -129, 1, "Saturate", -128),
    ("OVF-06", 300, 0, "Wrap", 44),
    ("OVF-07", -5, 0, "Saturate", 0),
    ("OVF-08", -5, 0, "Wrap", 251),
    ("A6-200-sat", 200, 1, "Saturate", 127),
    ("A6-300-sat", 300, 0, "Saturate", 255),
])
def test_overflow_actions(row, value, signed, action, stored):
    check(fp.fi(value, signed, 8, 0, overflow_action=action), signed, 8, 0, stored, float(stored))


@pytest.mark.parametrize("row, value, action, stored, real", [
    ("OVF-11", math.nan, "Saturate", 0, 0.0),
    ("OVF-11-wrap", math.nan, "Wrap", 0, 0.0),
    ("OVF-12", math.inf, "Saturate", 127, 7.9375),
    ("OVF-13", -math.inf, "Saturate", -128, -8.0),
    ("OVF-14", math.inf, "Wrap", 0, 0.0),
    ("OVF-14-neg", -math.inf, "Wrap", 0, 0.0),
])
def test_non_finite(row, value, action, stored, real):
    check(fp.fi(value, 1, 8, 4, overflow_action=action), 1, 8, 4, stored, real)


def test_a4_exact_input_then_saturate():
    """fi(0.1,1,8,12): 0.1*4096 = 409.6 -> 410 > 127 -> 127 (spec A.4)."""
    check(fp.fi(0.1, 1, 8, 12), 1, 8, 12, 127, 0.031005859375)


def test_a6_wrap_with_scaling():
    a = fp.fi([1.1, 2.2, 3.3, 4.4, 5.5], 0, 6, 4, overflow_action="Wrap")
    check(a, 0, 6, 4, [18, 35, 53, 6, 24], [1.125, 2.1875, 3.3125, 0.375, 1.5])


def test_a0_slope_bias():
    """fi(pi,1,16,3,2): Q = round((pi-2)/3) = 0, value 2; bounds 3*32767+2 and 3*(-32768)+2."""
    a = fp.fi(PI, 1, 16, 3, 2)
    assert stored_of(a) == [0]
    assert float(a.double()) == 2.0
    assert float(fp.upperbound(a).double()) == 98303.0
    assert float(fp.lowerbound(a).double()) == -98302.0


# --- sums and differences (spec A.8.1) -----------------------------------------------------------

def keep(mode, **kw):
    """The fimath of the documentation topic behind ADD-10..12: Floor, Wrap, CastBeforeSum false."""
    return fp.fimath(rounding_method="Floor", overflow_action="Wrap", cast_before_sum=False,
                     sum_mode=mode, **kw)


def test_add_01():
    check(fp.fi(PI, 1, 8) + fp.fi(E, 1, 8), 1, 9, 5, 188, 5.875)


def test_add_02():
    check(fp.fi(PI, 1, 8) - fp.fi(E, 1, 8), 1, 9, 5, 14, 0.4375)


def test_add_03_unsigned():
    a = fp.fi(0.234375, 0, 4, 6)
    check(a + a, 0, 5, 6, 30, 0.46875)


def test_add_04():
    check(fp.fi(0.078125, 1, 4, 6) + fp.fi(-0.125, 1, 4, 6), 1, 5, 6, -3, -0.046875)


def test_add_07_mixed_sign_upperbounds():
    a, b = fp.upperbound(fp.numerictype(0, 4, 4)), fp.upperbound(fp.numerictype(1, 4, 0))
    check(a + b, 1, 10, 4, 127, 7.9375)


def test_add_08_mixed_sign_lowerbounds():
    a, b = fp.lowerbound(fp.numerictype(0, 4, 4)), fp.lowerbound(fp.numerictype(1, 4, 0))
    check(a + b, 1, 10, 4, -128, -8.0)


def test_a81_more_documented_sum_types():
    check(fp.fi(1, 1, 16, 13) + fp.fi(0.1, 1, 12, 14), 1, 18, 14, [18022])   # IL 3, -2 -> 4
    check(fp.fi(0.5, 0, 4, 4) + fp.fi(0.5, 1, 4, 3), 1, 7, 4, [16])          # u4,4 + s4,3


def test_add_10_keep_lsb():
    check(fp.add(keep("KeepLSB", sum_word_length=12), fp.fi(PI, 1, 8), fp.fi(E, 1, 8)),
          1, 12, 5, 188, 5.875)


def test_add_11_keep_msb():
    check(fp.add(keep("KeepMSB", sum_word_length=12), fp.fi(PI, 1, 8), fp.fi(E, 1, 8)),
          1, 12, 8, 1504, 5.875)


def test_a81_specify_precision_wraps():
    """SumWordLength 8, SumFractionLength 7, Wrap: 188*4 = 752 -> 240 -> -16 -> -0.125."""
    fm = keep("SpecifyPrecision", sum_word_length=8, sum_fraction_length=7)
    check(fp.add(fm, fp.fi(PI, 1, 8), fp.fi(E, 1, 8)), 1, 8, 7, -16, -0.125)


def test_add_13_fi_plus_double():
    check(fp.fi(PI) + 1, 1, 17, 13, 33928, 4.1416015625)
    check(1 + fp.fi(PI), 1, 17, 13, 33928, 4.1416015625)


def test_add_14_double_saturates_into_fi_type():
    # Row marked I: the rule "the double takes the fi operand's numerictype" is documented (A.8.3);
    # that it is quantised with the constructor's Nearest/Saturate (so 10 saturates to 32767 in
    # s16,13 before the exact full-precision addition) is the inference this row rests on. We
    # follow it as written: any other reading would make fi + double depend on the magnitude of
    # the double in a way the documented type rule does not describe.
    check(fp.fi(PI) + 10, 1, 17, 13, 58503, 7.1414794921875)


def test_add_15_sum_keep_lsb():
    fm = fp.fimath(sum_mode="KeepLSB", sum_word_length=32)
    check(fp.sum(fp.fi([1, 2, 5, 8, 5], 1, 16, 11, fm)), 1, 32, 11, 43008, 21.0)


def test_a81_sum_growth():
    """16 elements of s32,30 sum to s36,30; three rows of s16,11 sum to s18,11 (A.8.1)."""
    total = fp.sum(fp.fi(np.full(16, 0.25), 1, 32, 30))
    check(total, 1, 36, 30, 1 << 32, 4.0)
    cols = fp.sum(fp.fi(np.arange(6).reshape(3, 2), 1, 16, 11), 0)
    check(cols, 1, 18, 11, [6 << 11, 9 << 11], [6.0, 9.0])


# --- products (spec A.8.2) -----------------------------------------------------------------------

def test_mul_01():
    check(fp.fi(PI, 1, 8) * fp.fi(E, 1, 8), 1, 16, 10, 8787, 8.5810546875)


def test_mul_02_keep_lsb_wrap():
    fm = fp.fimath(product_mode="KeepLSB", product_word_length=12, overflow_action="Wrap")
    check(fp.mpy(fm, fp.fi(PI, 1, 8), fp.fi(E, 1, 8)), 1, 12, 10, 595, 0.5810546875)


def test_mul_03_keep_msb_floor():
    fm = fp.fimath(product_mode="KeepMSB", product_word_length=12, rounding_method="Floor")
    check(fp.mpy(fm, fp.fi(PI, 1, 8), fp.fi(E, 1, 8)), 1, 12, 6, 549, 8.578125)


def test_mul_04_specify_precision():
    fm = fp.fimath(product_mode="SpecifyPrecision", product_word_length=8,
                   product_fraction_length=7, rounding_method="Floor", overflow_action="Wrap")
    check(fp.mpy(fm, fp.fi(PI, 1, 8), fp.fi(E, 1, 8)), 1, 8, 7, 74, 0.578125)


def test_a82_mpy_specify_precision_wide():
    """mpy(F, fi(pi), fi(e)) with (40,30): 25736*22268 at f=26, shifted left 4."""
    fm = fp.fimath(product_mode="SpecifyPrecision", product_word_length=40,
                   product_fraction_length=30)
    check(fp.mpy(fm, fp.fi(PI), fp.fi(E)), 1, 40, 30, 9169427968)


def test_a82_full_precision_36_bits():
    check(fp.fi(PI, 1, 20) * fp.fi(E, 1, 16), 1, 36, 30, 9169405700)


def test_a82_signed_times_unsigned():
    check(fp.fi(-1, 1, 8, 7) * fp.fi(255, 0, 8, 0), 1, 16, 7, -32640, -255.0)


def test_mul_07_double_times_fi():
    """4 becomes s16,12 (best precision at the fi's word length): 16384 * stored -> s32,23."""
    a = fp.fi([[2, 4, 7], [9, 0, 2]])
    assert (type_of(a).w, type_of(a).f) == (16, 11)
    expected = [16384 * q for q in (4096, 8192, 14336, 18432, 0, 4096)]
    check(4 * a, 1, 32, 23, expected, [8.0, 16.0, 28.0, 36.0, 0.0, 8.0])
    check(a * 4, 1, 32, 23, expected, [8.0, 16.0, 28.0, 36.0, 0.0, 8.0])
    check((4 * a)[0, 0], 1, 32, 23, 67108864, 8.0)


def test_mul_08():
    check(fp.fi(-3, 1, 16, 3) * fp.fi(2, 1, 16, 3), 1, 32, 6, -384, -6.0)


# --- division (spec A.8.4) -----------------------------------------------------------------------

MAGIC3 = [[8, 1, 6], [3, 5, 7], [4, 9, 2]]


def test_div_01():
    check(fp.fi(8, 1, 16, 11) / fp.fi(3, 1, 12, 8), 1, 16, 3, 21, 2.625)


def test_a84_magic_over_fi_scalar():
    q = fp.fi(MAGIC3) / fp.fi(3, 1, 12, 8)
    # 8/3*8=21.33->21, 1/3*8=2.67->3, 6/3*8=16, 3/3*8=8, 5/3*8=13.33->13, 7/3*8=18.67->19,
    # 4/3*8=10.67->11, 9/3*8=24, 2/3*8=5.33->5
    check(q, 1, 16, 3, [21, 3, 16, 8, 13, 19, 11, 24, 5])


def test_a84_magic_over_int8_keeps_type():
    q = fp.fi(MAGIC3) / np.int8(3)
    assert (type_of(q).signed, type_of(q).w, type_of(q).f) == (True, 16, 11)
    assert stored_of(q)[0] == 5461 and float(np.ravel(q.double())[0]) == 2.66650390625


def test_a84_divide_into_80_bits_exact():
    """1/10 into u80,83: exactly round(2^83/10), far beyond a double's 53 bits."""
    q = fp.divide(fp.numerictype(0, 80, 83), fp.fi(1, 0, 8, 0), fp.fi(10, 0, 8, 0))
    assert (type_of(q).signed, type_of(q).w, type_of(q).f) == (False, 80, 83)
    assert stored_of(q) == [967140655691703339764941]          # round(2^83 / 10)
    assert format(stored_of(q)[0], "080b").endswith("1101")


# --- unary minus and abs (spec A.8.5) ------------------------------------------------------------

def test_un_01_negate_saturates():
    check(-fp.fi(-1, 1, 8, 7), 1, 8, 7, 127, 0.9921875)


def test_un_02_negate_wraps():
    check(-fp.fi(-1, 1, 8, 7, overflow_action="Wrap"), 1, 8, 7, -128, -1.0)


def test_un_03_abs_saturates():
    check(abs(fp.fi(-128)), 1, 16, 8, 32767, 127.99609375)


def test_a85_abs_wraps():
    check(abs(fp.fi(-128, overflow_action="Wrap")), 1, 16, 8, -32768, -128.0)


# --- accumpos / accumneg (spec A.12) -------------------------------------------------------------

def test_acc_01_accumpos_floor_wrap():
    check(fp.accumpos(fp.fi(PI, 1, 16, 13), fp.fi(1.5, 1, 16, 14)), 1, 16, 13, -27512,
          -3.3583984375)


def test_acc_02_accumpos_nearest_saturate():
    check(fp.accumpos(fp.fi(PI, 1, 16, 13), fp.fi(1.5, 1, 16, 14), "Nearest", "Saturate"),
          1, 16, 13, 32767, 3.9998779296875)


def test_a12_accumneg():
    check(fp.accumneg(fp.fi(PI, 1, 16, 13), fp.fi(1.5, 1, 16, 14)), 1, 16, 13, 13448,
          1.6416015625)


# --- bit operations (spec A.10) ------------------------------------------------------------------

@pytest.mark.parametrize("row, make, signed, w, stored", [
    ("BIT-01", lambda: fp.bitsra(fp.fi(-8, 1, 4, 0), 1), 1, 4, -4),
    ("BIT-02", lambda: fp.bitsrl(fp.fi(-8, 1, 4, 0), 1), 1, 4, 4),
    ("BIT-03", lambda: fp.bitsll(fp.fi(10, 0, 4, 0), 1), 0, 4, 4),
    ("BIT-04", lambda: fp.bitshift(fp.fi(3, 1, 16, 0), 14), 1, 16, 32767),
    ("BIT-05", lambda: fp.bitshift(fp.fi(3, 1, 16, 0, overflow_action="Wrap"), 14), 1, 16, -16384),
    ("BIT-06", lambda: fp.bitconcat(fp.fi(5, 0, 4, 0), fp.fi(10, 0, 4, 0)), 0, 8, 90),
    ("BIT-08", lambda: fp.bitget(fp.fi(85, 0, 8, 0), 3), 0, 1, 1),
    ("A10-bitcmp", lambda: fp.bitcmp(fp.fi(5, 1, 4, 0)), 1, 4, -6),
    ("A10-bitsliceget", lambda: fp.bitsliceget(fp.fi(85, 0, 8, 0), 6, 2), 0, 5, 10),
    ("A10-bitshift-16-wrap", lambda: fp.bitshift(fp.fi(3, 1, 16, 0, overflow_action="Wrap"), 16),
     1, 16, 0),
])
def test_bit_operations(row, make, signed, w, stored):
    check(make(), signed, w, 0, stored, float(stored))


def test_bit_05_pattern():
    a = fp.bitshift(fp.fi(3, 1, 16, 0, overflow_action="Wrap"), 14)
    assert patterns(a.bin) == ["1100000000000000"]


# --- conversions and representations (spec A.9) --------------------------------------------------

def test_cnv_01_stored_integer_int16():
    q = fp.fi(PI, 1, 16, 12).stored_integer
    assert np.asarray(q).dtype == np.int16 and int(q) == 12868


def test_cnv_02_stored_integer_int32():
    a = fp.fi(PI, 1, 20)
    assert (type_of(a).w, type_of(a).f) == (20, 17)
    assert np.asarray(a.stored_integer).dtype == np.int32 and int(a.stored_integer) == 411775


@pytest.mark.parametrize("signed, w, dtype", [
    (1, 1, np.int8), (1, 8, np.int8), (0, 8, np.uint8), (1, 9, np.int16), (0, 16, np.uint16),
    (1, 17, np.int32), (0, 32, np.uint32), (1, 33, np.int64), (0, 64, np.uint64),
])
def test_a9_stored_integer_container(signed, w, dtype):
    assert np.asarray(fp.fi(1, signed, w, 0).stored_integer).dtype == dtype


def test_cnv_03_hex():
    assert patterns(fp.fi(PI).hex) == ["6488"]


def test_a9_hex_negative():
    a = fp.fi(-3.785, 1, 14, 6, rounding_method="Zero")
    assert stored_of(a) == [-242] and patterns(a.hex) == ["3F0E"]


def test_cnv_05_bin():
    a = fp.fi([-1, 1], 1, 8, 7)
    assert stored_of(a) == [-128, 127]
    assert patterns(a.bin) == ["10000000", "01111111"]


def test_cnv_06_unsigned_saturation_at_construction():
    # the uint8() conversion of the real values [0, 0.5, 3.140625] gives [0 1 3] (A.9); the stored
    # integers and the u8,6 type are what the fi itself must hold
    check(fp.fi([-PI, 0.5, PI], 0, 8), 0, 8, 6, [0, 32, 201], [0.0, 0.5, 3.140625])


def test_cnv_07_set_stored_integer():
    c = fp.fi(PI, 1, 8)
    c.int = 6
    check(c, 1, 8, 5, 6, 0.1875)


def test_a9_reinterpretcast():
    b = fp.reinterpretcast(fp.fi(65436, 0, 16, 0), fp.numerictype(1, 16, 0))
    check(b, 1, 16, 0, -100, -100.0)


# --- rounding functions (spec A.5) ---------------------------------------------------------------

def test_a5_nearest_types():
    check(fp.nearest(fp.fi(PI, 1, 8, 3)), 1, 6, 0, 3, 3.0)
    check(fp.nearest(fp.fi(0.025, 1, 8, 12)), 1, 2, 0, 0, 0.0)


# --- bounds and resolution (spec A.11) -----------------------------------------------------------

def test_bnd_01_range():
    r = fp.range(fp.fi(0, 1, 4, 2))
    check(r, 1, 4, 2, [-8, 7], [-2.0, 1.75])


def test_bnd_04_intmax():
    check(fp.intmax(fp.fi(PI, 1, 16, 12)), 1, 16, 0, 32767, 32767.0)


def test_bnd_05_eps():
    # Row marked I: one documentation page prints 0.1250 for eps(fi(pi,1,8)); the documented
    # definition (one LSB, 2^-f) and fi(pi,1,8) being s8,5 give 2^-5. We follow the definition.
    check(fp.eps(fp.fi(PI, 1, 8)), 1, 8, 5, 1, 0.03125)


def test_bnd_06_upperbound():
    check(fp.upperbound(fp.fi(PI)), 1, 16, 13, 32767, 3.9998779296875)
    check(fp.lowerbound(fp.fi(PI)), 1, 16, 13, -32768, -4.0)


# --- limits and error cases (spec A.14 and the error list) -------------------------------

@pytest.mark.parametrize("make, names", [
    (lambda: fp.numerictype(1, 0, 0), r"word_length.*0|0.*word_length"),
    (lambda: fp.numerictype(1, 65536, 0), r"65536"),
    (lambda: fp.numerictype(1, 16.5, 0), r"word_length|16\.5"),
    (lambda: fp.fi(1, 1, 0, 0), r"word_length.*0|0.*word_length"),
    (lambda: fp.fimath(rounding_method="Stochastic"), r"Stochastic"),
    (lambda: fp.fimath(overflow_action="Clip"), r"Clip"),
    (lambda: fp.fimath(sum_mode="KeepAll"), r"KeepAll"),
    (lambda: fp.reinterpretcast(fp.fi(1, 1, 16, 0), fp.numerictype(1, 8, 0)), r"16|8"),
    (lambda: fp.bitsliceget(fp.fi(85, 0, 8, 0), 9, 1), r"9"),
    (lambda: fp.bitsliceget(fp.fi(85, 0, 8, 0), 3, 4), r"3|4"),
    (lambda: fp.bitsliceget(fp.fi(85, 0, 8, 0), 2, 0), r"0"),
    (lambda: fp.fi([1, 2, 3], 1, 8, 0) + fp.fi([1, 2], 1, 8, 0), r"\(3,\)|\(2,\)|shape|broadcast"),
    (lambda: fp.fi([[1, 2, 3]], 1, 8, 0) @ fp.fi([[1, 2]], 1, 8, 0), r"\(1, 3\)|inner|dimension"),
    (lambda: fp.fi(0, fp.numerictype(1, 4, 0), int=8), r"8|\[-8, 7\]"),
    (lambda: fp.fi(0, fp.numerictype(1, 4, 0), bin="10x1"), r"10x1"),
])
def test_bad_inputs_raise_errors_naming_the_value(make, names):
    with pytest.raises((ValueError, TypeError), match=names):
        make()


def test_word_length_growth_past_the_maximum_is_an_error():
    """A.8.2 [I]: a FullPrecision word length above MaxProductWordLength errors (not clamps)."""
    fm = fp.fimath(max_product_word_length=20)
    a = fp.fi(1, 1, 16, 0, fm)
    with pytest.raises(ValueError, match=r"max_product_word_length|20|32"):
        a * a
    fs = fp.fimath(max_sum_word_length=16)
    b = fp.fi(1, 1, 16, 0, fs)
    with pytest.raises(ValueError, match=r"max_sum_word_length|16|17"):
        b + b
