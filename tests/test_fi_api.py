"""The fi family's API surface (issue scope items 2-6 and 9): numerictype and fimath forms, fi
constructors, shape operations, value views, fimath attachment and the default-fimath context, the
data-type override, and the error cases of spec A.14. Expected values are worked out by hand from
the spec and written literally."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp
from fi_oracle import OVERFLOW_ACTIONS, ROUNDING_METHODS, T as OT, quantize, stored_of, type_of


def typ(a):
    t = type_of(a)
    return (t.signed, t.w, t.f)


# --- numerictype (A.1) -----------------------------------------------------------------------------

def test_numerictype_forms_and_defaults():
    assert fp.numerictype() == fp.numerictype(1, 16, 15)
    t = fp.numerictype(0, 12, -3)
    assert (t.signed, t.word_length, t.fraction_length, t.fixed_exponent) == (False, 12, -3, 3)
    assert repr(fp.numerictype(1, 16, 13)) == "numerictype(signed=True, word_length=16, fraction_length=13)"
    assert repr(fp.numerictype(1, 16)) == "numerictype(signed=True, word_length=16)"
    assert fp.numerictype(1, 16).scaling == "Unspecified"
    assert fp.numerictype(signed=False, word_length=8, fraction_length=2) == fp.numerictype(0, 8, 2)


def test_numerictype_slope_bias_forms_agree():
    """slope = F * 2^E: (s, w, slope, bias), (s, w, F, E, bias) and keywords give one type."""
    a = fp.numerictype(1, 8, 0.1875, 2)
    b = fp.numerictype(1, 8, 1.5, -3, 2)
    c = fp.numerictype(signed=True, word_length=8, slope_adjustment_factor=1.5, fixed_exponent=-3, bias=2)
    assert a == b == c and hash(a) == hash(b) == hash(c)
    assert (b.slope, b.bias, b.slope_adjustment_factor, b.fixed_exponent) == (0.1875, 2, 1.5, -3)
    assert b.data_type_mode == "Fixed-point: slope and bias scaling"
    assert repr(a) == "numerictype(signed=True, word_length=8, slope=0.1875, bias=2)"


def test_numerictype_is_immutable_and_hashable():
    t = fp.numerictype(1, 8, 4)
    with pytest.raises(AttributeError):
        t.word_length = 9
    assert {t: 1}[fp.numerictype(1, 8, 4)] == 1
    assert fp.numerictype(data_type="ScaledDouble").data_type_mode == "Scaled double: binary point scaling"


@pytest.mark.parametrize("bad", [0, 65536, 1.5, True, "16", -1])
def test_word_length_out_of_range_names_the_value(bad):
    with pytest.raises((ValueError, TypeError), match=r"word_length.*" + repr(bad).replace(".", r"\.")
                       .replace("'", "'?")):
        fp.numerictype(1, bad, 0)


def test_word_length_limits_are_accepted():
    assert fp.numerictype(1, 1, 0).word_length == 1
    assert fp.numerictype(0, 65535, 0).word_length == 65535


# --- fimath (A.7) ----------------------------------------------------------------------------------

def test_fimath_defaults_match_the_spec():
    F = fp.fimath()
    assert (F.rounding_method, F.overflow_action) == (fp.RoundingMethod.Nearest, fp.OverflowAction.Saturate)
    assert (F.product_mode, F.sum_mode) == (fp.ArithMode.FullPrecision, fp.ArithMode.FullPrecision)
    assert (F.product_word_length, F.product_fraction_length) == (32, 30)
    assert (F.sum_word_length, F.sum_fraction_length) == (32, 30)
    assert F.cast_before_sum is True
    assert (F.max_product_word_length, F.max_sum_word_length) == (65535, 65535)


def test_fimath_names_are_case_insensitive_enums_or_legacy_names():
    assert fp.fimath(rounding_method="floor").rounding_method is fp.RoundingMethod.Floor
    assert fp.fimath(rounding_method="CONVERGENT").rounding_method is fp.RoundingMethod.Convergent
    assert fp.fimath(rounding_method=fp.RoundingMethod.Zero).rounding_method is fp.RoundingMethod.Zero
    assert fp.fimath(rounding_method="fix").rounding_method is fp.RoundingMethod.Zero   # MATLAB's RoundMode
    assert fp.fimath(overflow_action="wrap").overflow_action is fp.OverflowAction.Wrap
    assert fp.fimath(sum_mode="keepmsb").sum_mode is fp.ArithMode.KeepMSB


@pytest.mark.parametrize("kwargs, culprit", [
    ({"rounding_method": "Stochastic"}, "Stochastic"), ({"overflow_action": "Clip"}, "Clip"),
    ({"product_mode": "Full"}, "Full"), ({"sum_word_length": 0}, "0"),
    ({"cast_before_sum": "yes"}, "yes"),
])
def test_fimath_rejects_bad_properties_by_name(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        fp.fimath(**kwargs)


def test_fimath_is_immutable_and_replace_makes_a_copy():
    F = fp.fimath()
    with pytest.raises(AttributeError):
        F.rounding_method = "Floor"
    G = F.replace(rounding_method="Floor")
    assert G.rounding_method is fp.RoundingMethod.Floor and F.rounding_method is fp.RoundingMethod.Nearest
    assert G != F and G == fp.fimath(rounding_method="Floor")


# --- fi constructors (A.2) -------------------------------------------------------------------------

def test_fi_without_arguments_is_an_empty_s16_15():
    a = fp.fi()
    assert a.shape == (0,) and typ(a) == (True, 16, 15) and not a.has_local_fimath


def test_fi_signedness_only_keeps_16_bits_with_best_precision():
    a = fp.fi(math.pi, 0)
    assert typ(a) == (False, 16, 14) and stored_of(a) == [51472]     # round(pi * 2^14)


def test_fi_slope_bias_by_adjustment_factor_and_exponent():
    a = fp.fi(3.3, 1, 8, 1.5, -3, 2)       # (3.3 - 2) / 0.1875 = 6.93 -> 7 -> 7 * 0.1875 + 2
    assert stored_of(a) == [7] and float(a) == 3.3125
    assert a.numerictype == fp.numerictype(1, 8, 0.1875, 2)


def test_fimath_properties_by_keyword_make_a_local_fimath():
    a = fp.fi(1, 1, 8, 7, rounding_method="Floor", overflow_action="Wrap")
    assert stored_of(a) == [-128]                                       # 128 wraps (A.2 rule 1)
    assert a.has_local_fimath and a.fimath == fp.fimath(rounding_method="Floor", overflow_action="Wrap")
    b = fp.fi(1, 1, 8, 7, fimath=fp.fimath(overflow_action="Wrap"))
    assert stored_of(b) == [-128] and b.fimath.overflow_action is fp.OverflowAction.Wrap


def test_a2_rule_3_setting_a_fimath_never_requantises():
    T, F = fp.numerictype(1, 8, 7), fp.fimath(rounding_method="Floor", overflow_action="Wrap")
    b = fp.fi(1, T)
    assert float(b) == 0.9921875
    b.fimath = F
    assert float(b) == 0.9921875 and b.fimath == F
    assert float(fp.fi(1, T, F)) == -1.0


@pytest.mark.parametrize("value, expected", [
    (np.int16(25), (True, 16, 0)), (np.uint8(200), (False, 8, 0)),
    (np.array([1, -2], dtype=np.int64), (True, 64, 0)), (np.array([7], dtype=np.uint32), (False, 32, 0)),
    (True, (False, 1, 0)),
])
def test_a2_rule_4_integer_inputs_keep_their_type(value, expected):
    a = fp.fi(value)
    assert typ(a) == expected
    assert stored_of(a) == [int(v) for v in np.ravel(value)]


def test_a2_rule_7_setting_stored_integers():
    c = fp.fi(math.pi, 1, 8)
    c.int = 6
    assert float(c) == 0.1875 and typ(c) == (True, 8, 5)
    with pytest.raises(ValueError, match="128"):
        c.int = 128


def test_complex_values_are_not_assigned_into_a_real_fi():
    """fi(1 + 2j) builds a complex fi (tests/test_fi_complex.py); a real fi never silently drops
    an imaginary part."""
    a = fp.fi([1, 2], 1, 8, 4)
    with pytest.raises(TypeError, match="complex"):
        a[0] = 1 + 2j
    with pytest.raises(TypeError, match="complex"):
        a[:] = fp.fi([1j, 2], 1, 8, 4)


# --- shapes ----------------------------------------------------------------------------------------

@pytest.fixture
def grid():
    return fp.fi(np.arange(6).reshape(2, 3) / 8, 1, 8, 4, rounding_method="Floor", overflow_action="Wrap")


def test_shape_properties(grid):
    assert (grid.shape, grid.ndim, grid.size, len(grid)) == ((2, 3), 2, 6, 2)
    with pytest.raises(TypeError, match="0-d"):
        len(grid[0, 0])


def test_indexing_and_slicing_return_fi_of_the_same_type_and_fimath(grid):
    x = grid[1, 2]
    assert isinstance(x, fp.fi) and x.shape == () and stored_of(x) == [10]
    row = grid[:, 1:]
    assert row.shape == (2, 2) and stored_of(row) == [2, 4, 8, 10]
    assert row.numerictype == grid.numerictype and row.fimath == grid.fimath


def test_assignment_casts_with_the_targets_fimath(grid):
    g = grid.copy()
    g[0] = [8.0, -0.03, 0.07]       # Wrap: 128 -> -128; Floor: -0.48 -> -1, 1.12 -> 1
    assert stored_of(g[0]) == [-128, -1, 1]
    g[1, :2] = fp.fi([0.25, 0.5], 1, 16, 8)
    assert stored_of(g[1]) == [4, 8, 10]
    assert g.numerictype == grid.numerictype
    assert stored_of(grid) == [0, 2, 4, 6, 8, 10]   # the copy is independent


def test_reshape_transpose_flatten_concatenate_iterate(grid):
    assert stored_of(grid.T) == [0, 6, 2, 8, 4, 10] and grid.T.shape == (3, 2)
    assert stored_of(grid.transpose(1, 0)) == stored_of(grid.T)
    assert grid.reshape(3, 2).shape == (3, 2) and grid.reshape((6,)).shape == (6,)
    assert grid.flatten().shape == (6,) and stored_of(grid.flatten()) == [0, 2, 4, 6, 8, 10]
    rows = [stored_of(r) for r in grid]
    assert rows == [[0, 2, 4], [6, 8, 10]]
    both = fp.concatenate([grid, grid], axis=1)
    assert both.shape == (2, 6) and both.numerictype == grid.numerictype
    with pytest.raises(ValueError, match="numerictype"):
        fp.concatenate([grid, fp.fi([1.0], 1, 8, 3)])


# --- values and representations (A.9) ----------------------------------------------------------

@pytest.mark.parametrize("signed, w, dtype", [
    (1, 1, np.int8), (1, 8, np.int8), (0, 8, np.uint8), (0, 9, np.uint16), (1, 16, np.int16),
    (1, 17, np.int32), (0, 32, np.uint32), (0, 33, np.uint64), (1, 64, np.int64), (0, 64, np.uint64),
])
def test_stored_integer_uses_the_smallest_integer_class(signed, w, dtype):
    assert fp.fi(0, signed, w, 0).stored_integer.dtype == dtype


def test_stored_integer_above_64_bits_is_exact_python_ints():
    q = fp.fi(0, 1, 100, 0, int=-(1 << 99)).stored_integer
    assert q.dtype == object and int(q) == -(1 << 99)


def test_value_views():
    a = fp.fi([-1, 0.5], 1, 8, 7)
    np.testing.assert_array_equal(np.asarray(a), [-1.0, 0.5])
    np.testing.assert_array_equal(a.double(), [-1.0, 0.5])
    assert float(a[1]) == 0.5
    with pytest.raises(TypeError, match="single-element"):
        float(a)


def test_oct_and_dec_follow_our_reading_of_the_i_rule():
    # [I] ceil(w/3) octal digits of the two's-complement pattern; dec is the signed stored integer
    a = fp.fi([-1, 1], 1, 8, 7)
    assert a.oct == "200   177" and a.dec == "-128   127"
    assert fp.fi(5, 0, 4, 0).oct == "05" and fp.fi(-1, 1, 4, 0).oct == "17"


def test_repr_shows_values_type_and_local_fimath():
    assert repr(fp.fi([1.5, 2], 1, 8, 4)) == \
        "fi([1.5, 2. ], numerictype(signed=True, word_length=8, fraction_length=4))"
    r = repr(fp.fi(1.5, 1, 8, 4, overflow_action="Wrap"))
    assert r.startswith("fi(1.5, numerictype(") and "overflow_action='Wrap'" in r


# --- local fimath, removefimath / setfimath, default fimath context (A.7) ------------------------

def test_removefimath_and_setfimath_keep_the_stored_integers():
    a = fp.fi([0.75, -0.5], 1, 8, 7, overflow_action="Wrap")
    b = fp.removefimath(a)
    assert not b.has_local_fimath and stored_of(b) == stored_of(a) and b.numerictype == a.numerictype
    F = fp.fimath(product_mode="KeepMSB", product_word_length=8)
    c = fp.setfimath(b, F)
    assert c.fimath == F and stored_of(c) == stored_of(a)
    assert typ(c * c) == (True, 8, 6)               # the attached fimath is used ...
    assert typ(b * b) == (True, 16, 14)             # ... and b was not changed
    with pytest.raises(TypeError, match="fimath"):
        fp.setfimath(a, "Floor")


def test_fimath_context_sets_the_default_for_operands_without_a_local_fimath():
    F = fp.fimath(rounding_method="Floor", product_mode="KeepMSB", product_word_length=8)
    x = fp.fi(0.75, 1, 8, 7)
    local = fp.fi(0.75, 1, 8, 7, fimath=fp.fimath())
    with fp.fimath_context(F) as active:
        assert active is F and fp.default_fimath() == F
        p = x * x
        assert typ(p) == (True, 8, 6) and stored_of(p) == [36] and not p.has_local_fimath
        assert typ(local * local) == (True, 16, 14)     # a local fimath wins over the default
        assert x.fimath == F                              # no local fimath: reads the default
        assert not fp.fi(0.5, 1, 8, 7).has_local_fimath  # construction does not attach it
        assert stored_of(fp.fi(0.99, 1, 4, 3)) == [7]     # nor use it: Nearest/Saturate (A.2 rule 1)
    assert fp.default_fimath() == fp.fimath() and typ(x * x) == (True, 16, 14)


def test_fimath_context_restores_after_an_error_and_nests():
    F, G = fp.fimath(rounding_method="Floor"), fp.fimath(rounding_method="Zero")
    with pytest.raises(RuntimeError):
        with fp.fimath_context(F):
            raise RuntimeError("boom")
    assert fp.default_fimath() == fp.fimath()
    with fp.fimath_context(F):
        with fp.fimath_context(G):
            assert fp.default_fimath() == G
        assert fp.default_fimath() == F
    with pytest.raises(TypeError, match="fimath"):
        with fp.fimath_context("Floor"):
            pass


def test_two_different_local_fimaths_are_an_error():
    a = fp.fi(0.5, 1, 8, 7, rounding_method="Floor")
    b = fp.fi(0.5, 1, 8, 7, rounding_method="Zero")
    with pytest.raises(ValueError, match="differ"):
        a + b


# --- data-type override (A.13; ScaledDoubles semantics are our answer to Q10, docs/fi.md) -------

def test_true_doubles_are_not_quantised_and_compute_in_floating_point():
    with fp.datatype_override("TrueDoubles"):
        a = fp.fi(math.pi, 1, 8, 4)
        b = fp.fi([0.1, 0.2], 1, 8, 4)
    assert fp.datatype_override() == "ForceOff"
    assert float(a) == math.pi and a.numerictype.data_type_mode == "Double"
    np.testing.assert_array_equal((a * b).double(), [math.pi * 0.1, math.pi * 0.2])
    np.testing.assert_array_equal((b + 1).double(), [1.1, 1.2])
    np.testing.assert_array_equal((b.reshape(1, 2) @ b.reshape(2, 1)).double(), [[0.1 * 0.1 + 0.2 * 0.2]])
    np.testing.assert_array_equal((-b).double(), [-0.1, -0.2])
    assert float(fp.sum(b)) == 0.1 + 0.2
    assert float(fp.fi(a)) == math.pi                       # built from a double fi: stays double
    b[0] = 0.7
    np.testing.assert_array_equal(b.double(), [0.7, 0.2])   # assignment stores the double
    fixed = fp.fi(a, 1, 8, 4)                               # an explicit fixed type quantises
    assert stored_of(fixed) == [50]
    with pytest.raises(TypeError, match="fixed-point"):
        a.stored_integer


def test_scaled_doubles_round_to_the_lsb_but_never_overflow():
    T = fp.numerictype(1, 16, 15)
    with fp.datatype_override("ScaledDoubles"), fp.logging_mode(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fp.fi(math.pi, T)                               # 102943.7 LSB -> 102944, above 32767
        assert float(a) == 3.1416015625 and fp.noverflows(a) == 1
        assert a.numerictype.data_type_mode == "Scaled double: binary point scaling"
        x, y = fp.fi([0.75, -0.5, 0.9], 1, 8, 7), fp.fi([0.75, 0.5, 0.5], 1, 8, 7)
        s = x + y                                           # s9,7 as in fixed point
        assert (s.numerictype.word_length, s.numerictype.fraction_length) == (9, 7)
        np.testing.assert_array_equal(s.double(), [1.5, 0.0, 1.3984375])
        k = fp.add(fp.fimath(sum_mode="KeepLSB", sum_word_length=8), x, y)   # s8,7: 1.5, 1.398 overflow
        np.testing.assert_array_equal(k.double(), [1.5, 0.0, 1.3984375])
        assert fp.noverflows(k) == 2
        p = x * y
        assert (p.numerictype.word_length, p.numerictype.fraction_length) == (16, 14)
        np.testing.assert_array_equal(p.double(), [0.5625, -0.25, 0.44921875])
        m = fp.mpy(fp.fimath(product_mode="SpecifyPrecision", product_word_length=8,
                             product_fraction_length=3, rounding_method="Floor"), x, y)
        np.testing.assert_array_equal(m.double(), [0.5, -0.25, 0.375])        # floor to 1/8
        np.testing.assert_array_equal(fp.floor(x).double(), [0.0, -1.0, 0.0])
    # without an override, a ScaledDouble numerictype gives the same kind of object (A.13 example)
    b = fp.fi(math.pi, fp.numerictype(data_type="ScaledDouble"))
    assert float(b) == 3.1416015625 and b.numerictype.data_type == "ScaledDouble"


# --- errors (A.14) ---------------------------------------------------------------------------------

def test_error_messages_name_the_culprit():
    with pytest.raises(ValueError, match=r"8 bits.*16"):
        fp.reinterpretcast(fp.fi(1, 1, 8, 0), fp.numerictype(1, 16, 0))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        fp.fi([1, 2, 3], 1, 8, 0) + fp.fi([1, 2], 1, 8, 0)
    with pytest.raises(ValueError, match=r"80.*max_product_word_length = 64"):
        fp.fi(1, 1, 40, 0) * fp.fi(1, 1, 40, 0, max_product_word_length=64)
    with pytest.raises(ValueError, match=r"65.*max_sum_word_length = 64"):
        fp.fi(1, 1, 64, 0) + fp.fi(1, 1, 64, 0, max_sum_word_length=64)
    with pytest.raises(ValueError, match=r"inner dimensions.*\(1, 2\).*\(3, 1\)"):
        fp.fi([[1, 2]], 1, 8, 0) @ fp.fi([[1], [2], [3]], 1, 8, 0)
    with pytest.raises(TypeError, match="str"):
        fp.fi(1, 1, 8, 0) + "1"


# --- matmul: the packed small-word kernel is exact at the extremes and at any shape -------------

@pytest.mark.parametrize("m, n, p", [(1, 1, 1), (3, 5, 7), (9, 17, 33), (8, 16, 16), (13, 301, 2),
                                     (2, 1024, 3)])
@pytest.mark.parametrize("signed, w", [(1, 8), (0, 8), (1, 12), (0, 15), (1, 2)])
def test_matmul_of_small_words_equals_an_int64_reference(m, n, p, signed, w):
    rng = np.random.default_rng(m * 1000 + n * 10 + p + w)
    lo, hi = (-(1 << (w - 1)), 1 << (w - 1)) if signed else (0, 1 << w)
    qa, qb = rng.integers(lo, hi, (m, n)), rng.integers(lo, hi, (n, p))
    qa[0, :] = lo if signed else hi - 1             # one row and one column at the extreme
    qb[:, 0] = lo if signed else hi - 1
    a, b = fp.fi(0, signed, w, 3, int=qa), fp.fi(0, signed, w, 1, int=qb)
    c = a @ b
    t = type_of(c)
    assert (t.signed, t.f) == (bool(signed), 4)
    assert t.w == 2 * w + (math.ceil(math.log2(n)) if n > 1 else 0)     # A.8 accumulator growth
    assert np.array_equal(np.asarray(c.stored_integer, dtype=np.int64), qa @ qb)


# --- FullPrecision add / subtract / multiply across storage classes ----------------------------

@pytest.mark.parametrize("seed", range(6))
def test_full_precision_results_across_word_sizes_equal_exact_integers(seed):
    """Operands of 1..40 bits (stored in int8 ... int64) with mixed signedness and scaling, some of
    them non-contiguous views: every FullPrecision result equals exact integer arithmetic (unsigned
    differences saturate at 0, spec A.8.1 / Q3)."""
    rng = np.random.default_rng(seed)
    for trial in range(40):
        (sa, sb), (wa, wb) = rng.integers(0, 2, 2), rng.integers(1, 41, 2)
        fa, fb = (int(v) for v in rng.integers(-5, 20, 2))
        qa = rng.integers(-(1 << (wa - 1)) if sa else 0, (1 << (wa - 1)) if sa else (1 << wa), (5, 7))
        qb = rng.integers(-(1 << (wb - 1)) if sb else 0, (1 << (wb - 1)) if sb else (1 << wb), (7, 5)).T
        a, b = fp.fi(0, int(sa), int(wa), fa, int=qa), fp.fi(0, int(sb), int(wb), fb, int=qb).T.T
        if trial % 2:
            a, b = a.T, b.T                                   # non-contiguous operands
            qa, qb = qa.T, qb.T
        A, B = qa.astype(object), qb.astype(object)
        f = max(fa, fb)
        for result, exact, frac in ((a + b, A * 2 ** (f - fa) + B * 2 ** (f - fb), f),
                                    (a - b, A * 2 ** (f - fa) - B * 2 ** (f - fb), f),
                                    (a * b, A * B, fa + fb)):
            t = type_of(result)
            assert t.f == frac
            assert np.array_equal(np.asarray(result.stored_integer, dtype=object), np.clip(exact, t.lo, t.hi))


# --- abs forms (A.8.5): abs(a), abs(a, T), abs(a, T, F), abs(a, F) ----------------------------------

def test_abs_forms_on_the_spec_row():
    """abs(fi(-128)) is s16,8: 127.99609375 under Saturate, -128 under Wrap; a wider T holds 128."""
    a = fp.fi(-128)
    wrap = fp.fimath(overflow_action="Wrap")
    assert typ(a) == (True, 16, 8)
    assert stored_of(fp.abs(a)) == stored_of(abs(a)) == [32767]
    assert stored_of(fp.abs(a, wrap)) == [-32768]                        # abs(a, F)
    r = fp.abs(a, fp.numerictype(1, 17, 8))                              # abs(a, T)
    assert typ(r) == (True, 17, 8) and stored_of(r) == [32768]
    r = fp.abs(a, fp.numerictype(1, 8, 0), wrap)                         # abs(a, T, F): 128 wraps
    assert typ(r) == (True, 8, 0) and stored_of(r) == [-128]
    r = fp.abs(a, F=wrap)
    assert stored_of(r) == [-32768]


def test_abs_local_fimath_follows_matlab():
    """Without F the result keeps a's local fimath; a given F is used but not attached."""
    floor = fp.fimath(rounding_method="Floor")
    a = fp.fi([-1.75, 0.5], 1, 8, 2, floor)
    assert fp.abs(a).fimath == floor and fp.abs(a, fp.numerictype(0, 4, 0)).fimath == floor
    r = fp.abs(a, fp.numerictype(0, 4, 0))                              # Floor from a: 1.75 -> 1
    assert stored_of(r) == [1, 0]
    r = fp.abs(a, fp.numerictype(0, 4, 0), fp.fimath())                 # Nearest from F: 1.75 -> 2
    assert stored_of(r) == [2, 1] and not r.has_local_fimath
    assert not fp.abs(a, fp.fimath()).has_local_fimath


def test_abs_rejects_bad_arguments():
    with pytest.raises(TypeError, match="a must be a fi"):
        fp.abs(-3)
    with pytest.raises(TypeError, match="T must be a numerictype"):
        fp.abs(fp.fi(1), 16)
    with pytest.raises(TypeError, match="F must be a fimath"):
        fp.abs(fp.fi(1), fp.numerictype(1, 8, 0), "Wrap")


@st.composite
def _abs_case(draw):
    signed, w = draw(st.booleans()), draw(st.integers(1, 90))
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    qs = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=5))
    f = draw(st.integers(-8, 40))
    target = OT(draw(st.booleans()), draw(st.integers(1, 90)), draw(st.integers(-8, 40)))
    return OT(signed, w, f), qs, target, draw(st.sampled_from(ROUNDING_METHODS)), \
        draw(st.sampled_from(OVERFLOW_ACTIONS))


@settings(max_examples=150, deadline=None)
@given(_abs_case())
def test_abs_into_any_type_matches_the_exact_oracle(case):
    t, qs, target, rounding, action = case
    a = fp.fi(0, t.signed, t.w, t.f, int=np.array(qs, dtype=object))
    F = fp.fimath(rounding_method=rounding, overflow_action=action)
    r = fp.abs(a, fp.numerictype(target.signed, target.w, target.f), F)
    assert type_of(r) == target
    assert stored_of(r) == [quantize(abs(t.value(q)), target, rounding, action) for q in qs]
    same = fp.abs(fp.setfimath(a, F))                                   # abs(a): a's type and fimath
    assert stored_of(same) == [quantize(abs(t.value(q)), t, rounding, action) for q in qs]
