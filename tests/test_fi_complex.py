"""Complex fi (spec A.2 rule 6, A.8.5): construction, parts, shape operations, + - * unary minus,
conj, == / !=, and a clear TypeError for every operation complex fi does not support. Values are
checked against the exact Fraction oracle of fi_oracle (one part at a time)."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp
from fi_objects import fimath_of, numerictype_of
from fi_oracle import (MODES, OVERFLOW_ACTIONS, ROUNDING_METHODS, M, T, add, best_fraction_length,
                       multiply, negate, quantize, stored_of, type_of)

SETTINGS = settings(max_examples=80, deadline=None)


def make(t: T, re, im, m: M = None):
    """A complex fi of type t from exact stored integers of both parts."""
    args = (numerictype_of(t),) if m is None else (numerictype_of(t), fimath_of(m))
    return fp.complex(fp.fi(0, *args, int=np.array(re, dtype=object)),
                      fp.fi(0, *args, int=np.array(im, dtype=object)))


def parts(c):
    return stored_of(c.real), stored_of(c.imag)


@st.composite
def types(draw, max_w=80):
    return T(draw(st.booleans()), draw(st.integers(1, max_w)), draw(st.integers(-8, 40)))


@st.composite
def complex_operand(draw, n=3, max_w=80):
    t = draw(types(max_w))
    edge = st.sampled_from([t.lo, t.hi, 0])
    q = st.lists(st.one_of(st.integers(t.lo, t.hi), edge), min_size=n, max_size=n)
    return t, draw(q), draw(q)


@st.composite
def fimaths(draw):
    return M(rounding=draw(st.sampled_from(ROUNDING_METHODS)), overflow=draw(st.sampled_from(OVERFLOW_ACTIONS)),
             product_mode=draw(st.sampled_from(MODES)), product_word_length=draw(st.integers(2, 72)),
             product_fraction_length=draw(st.integers(-10, 80)),
             sum_mode=draw(st.sampled_from(MODES)), sum_word_length=draw(st.integers(2, 72)),
             sum_fraction_length=draw(st.integers(-10, 80)), cast_before_sum=draw(st.booleans()))


# --- construction (A.2 rule 6) ---------------------------------------------------------------------

def test_best_precision_is_shared_by_both_parts():
    c = fp.fi(0.5 + 3j)                        # 3 needs 2 integer bits: s16,13 for both parts
    assert (type_of(c).w, type_of(c).f) == (16, 13)
    assert parts(c) == ([4096], [24576])
    c = fp.fi([1 - 0.25j, 0.1 + 0j], 1, 8)     # max |part| 1 → s8,6
    assert type_of(c) == T(True, 8, 6)
    assert parts(c) == ([64, 6], [-16, 0])
    assert not c.isreal() and not fp.isreal(c) and fp.isreal(fp.fi(1)) and not fp.isreal(1j)
    assert not fp.fi(2 + 0j).isreal()           # complex with zero imaginary part stays complex


def test_parts_are_quantised_independently_and_overflows_count_over_both():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fp.FiLoggingWarning)
        with fp.logging_mode(True):
            c = fp.fi([3 - 5j, 0.25 + 9j], 1, 8, 4)          # s8,4 holds [-8, 7.9375]
    assert parts(c) == ([48, 4], [-80, 127])
    assert fp.noverflows(c) == 1
    wrap = fp.fi(8 + 1j, 1, 8, 4, overflow_action="Wrap", rounding_method="Floor")
    assert parts(wrap) == ([-128], [16])
    with pytest.raises(ValueError, match="NaN or Inf"):
        fp.fi(complex(math.inf, 1))
    assert parts(fp.fi(complex(math.inf, math.nan), 1, 8, 4)) == ([127], [0])


@SETTINGS
@given(types(max_w=64), st.lists(st.tuples(st.floats(-300, 300), st.floats(-300, 300)), min_size=1, max_size=4),
       st.booleans())
def test_construction_matches_the_oracle(t, pairs, best):
    values = np.array([complex(a, b) for a, b in pairs])
    c = fp.fi(values, t.signed, t.w) if best else fp.fi(values, t.signed, t.w, t.f)
    if best:
        flat = [x for a, b in pairs for x in (a, b)]
        t = T(t.signed, t.w, best_fraction_length(flat, t.signed, t.w))
    assert type_of(c) == t
    assert parts(c) == ([quantize(a, t) for a, _ in pairs], [quantize(b, t) for _, b in pairs])


def test_complex_from_a_complex_fi_and_from_parts():
    c = fp.fi([1.5 + 2j, -1j], 1, 16, 8)
    assert type_of(fp.fi(c)) == T(True, 16, 8) and parts(fp.fi(c)) == parts(c)
    narrow = fp.fi(c, 1, 8, 2)
    assert parts(narrow) == ([6, 0], [8, -4])
    with pytest.raises(ValueError, match="one numerictype"):
        fp.complex(fp.fi(1, 1, 8, 4), fp.fi(1, 1, 8, 3))
    with pytest.raises(TypeError, match="must be a fi"):
        fp.complex(1, 2)
    half = fp.complex(fp.fi([1, 2], 1, 8, 4), 0.5)            # a number is cast into the fi part's type
    assert parts(half) == ([16, 32], [8, 8])


# --- values and representations --------------------------------------------------------------------

def test_values_parts_and_representations():
    c = fp.fi([1 + 2j, -0.5 - 3.25j], 1, 16, 8)
    assert np.asarray(c).dtype == np.complex128
    assert np.array_equal(np.asarray(c), [1 + 2j, -0.5 - 3.25j]) and np.array_equal(c.double(), np.asarray(c))
    assert complex(c[1]) == -0.5 - 3.25j
    assert c.real.isreal() and type_of(c.imag) == type_of(c)
    assert stored_of(fp.fi(3).imag) == [0]
    assert "1. +2.j" in repr(c) and "word_length=16" in repr(c)
    with pytest.raises(TypeError, match=r"a\.real\.stored_integer"):
        c.stored_integer
    for read in (lambda: c.bin, lambda: c.hex, lambda: c.dec, lambda: float(c[0])):
        with pytest.raises(TypeError, match="complex"):
            read()


def test_stored_integers_above_64_bits_stay_exact():
    big = (1 << 90) + 1
    c = make(T(True, 100, 0), [big], [-big])
    assert parts(c) == ([big], [-big])
    assert parts(-c) == ([-big], [big])
    product = c * c                                         # (x - xi)^2 = -2x^2 i
    assert parts(product) == ([0], [-2 * big * big])


def test_shape_operations_keep_both_parts():
    c = make(T(True, 8, 0), [[1, 2, 3], [4, 5, 6]], [[-1, -2, -3], [-4, -5, -6]])
    assert parts(c[1]) == ([4, 5, 6], [-4, -5, -6])
    assert parts(c[:, 2]) == ([3, 6], [-3, -6])
    assert parts(c.T) == ([1, 4, 2, 5, 3, 6], [-1, -4, -2, -5, -3, -6])
    assert parts(c.reshape(3, 2)[2]) == ([5, 6], [-5, -6])
    assert parts(c.flatten()) == ([1, 2, 3, 4, 5, 6], [-1, -2, -3, -4, -5, -6])
    assert [parts(row) for row in c][0] == ([1, 2, 3], [-1, -2, -3])
    joined = fp.concatenate([c[0], fp.fi([7, 8, 9], c.numerictype)])   # a real input joins with 0 imag
    assert parts(joined) == ([1, 2, 3, 7, 8, 9], [-1, -2, -3, 0, 0, 0])
    d = c.copy()
    d[0, 0] = 100 - 200j                                   # cast with Nearest/Saturate into s8,0
    d[1] = fp.fi([1, 1, 1], c.numerictype)                 # a real value sets the imaginary part to 0
    assert parts(d) == ([100, 2, 3, 1, 1, 1], [-128, -2, -3, 0, 0, 0])
    assert parts(c)[0][0] == 1                             # the copy owns its storage
    assert not fp.setfimath(c, fp.fimath()).isreal() and not fp.removefimath(c).isreal()


# --- arithmetic --------------------------------------------------------------------------------------

def test_unary_minus_and_conj_on_the_most_negative_value():
    c = fp.fi(-1 - 1j, 1, 8, 7)
    assert parts(-c) == ([127], [127])                      # both parts saturate (A.8.5)
    wrapped = fp.fi(-1 - 1j, 1, 8, 7, overflow_action="Wrap")
    assert parts(-wrapped) == ([-128], [-128])
    assert parts(fp.conj(c)) == ([-128], [127]) and type_of(fp.conj(c)) == type_of(c)
    assert stored_of(fp.conj(fp.fi(0.5))) == stored_of(fp.fi(0.5))


def test_complex_product_example():
    """(1.5 + 2i)(0.5 - 1i) = 2.75 - 0.5i: s16,8 × s16,8 products are s32,16, their sum s33,16."""
    a, b = fp.fi(1.5 + 2j, 1, 16, 8), fp.fi(0.5 - 1j, 1, 16, 8)
    p = a * b
    assert type_of(p) == T(True, 33, 16)
    assert complex(p) == 2.75 - 0.5j
    assert type_of(a * fp.fi(2, 1, 16, 8)) == T(True, 32, 16)  # a real factor: no sum, product type
    assert complex(a * fp.fi(2, 1, 16, 8)) == 3 + 4j
    assert complex(a + 1) == 2.5 + 2j and type_of(a + 1) == T(True, 17, 8)
    assert complex(a - (1 + 1j)) == 0.5 + 1j
    assert complex(2 * a) == 3 + 4j


@SETTINGS
@given(complex_operand(), complex_operand(), fimaths(), st.booleans())
def test_sum_and_difference_match_the_oracle_per_part(x, y, m, subtract):
    (ta, ar, ai), (tb, br, bi) = x, y
    a, b = make(ta, ar, ai, m), make(tb, br, bi, m)
    try:
        result = a - b if subtract else a + b
    except ValueError as error:                        # a full-precision word above the limit
        assert "max_sum_word_length" in str(error)
        return
    re = [add(p, ta, q, tb, m, subtract) for p, q in zip(ar, br)]
    im = [add(p, ta, q, tb, m, subtract) for p, q in zip(ai, bi)]
    assert type_of(result) == re[0][1]
    assert parts(result) == ([s for s, _ in re], [s for s, _ in im])
    assert result.fimath == fimath_of(m)


@SETTINGS
@given(complex_operand(max_w=48), complex_operand(max_w=48), fimaths())
def test_product_matches_the_oracle(x, y, m):
    """re = ar*br - ai*bi, im = ar*bi + ai*br: the products in the product type, then the sum rule."""
    (ta, ar, ai), (tb, br, bi) = x, y
    a, b = make(ta, ar, ai, m), make(tb, br, bi, m)
    try:
        result = a * b
    except ValueError as error:
        assert "max_" in str(error)
        return
    exp_re, exp_im = [], []
    for p, q, r, s in zip(ar, ai, br, bi):
        pr, pt = multiply(p, ta, r, tb, m)
        qs, _ = multiply(q, ta, s, tb, m)
        ps, _ = multiply(p, ta, s, tb, m)
        qr, _ = multiply(q, ta, r, tb, m)
        re, st_ = add(pr, pt, qs, pt, m, subtract=True)
        im, _ = add(ps, pt, qr, pt, m)
        exp_re.append(re)
        exp_im.append(im)
    assert type_of(result) == st_
    assert parts(result) == (exp_re, exp_im)


@SETTINGS
@given(complex_operand(max_w=40), fimaths())
def test_negation_matches_the_oracle(x, m):
    t, re, im = x
    c = -make(t, re, im, m)
    assert parts(c) == ([negate(q, t, m) for q in re], [negate(q, t, m) for q in im])
    assert parts(fp.conj(make(t, re, im, m))) == (re, [negate(q, t, m) for q in im])


def test_equality_compares_both_parts_exactly():
    a = fp.fi([1 + 2j, 1 + 2j, 3 + 0j], 1, 16, 8)
    assert (a == np.array([1 + 2j, 1 + 2.00390625j, 3])).tolist() == [True, False, True]
    assert (a != fp.fi([1 + 2j, 1 - 2j, 3], 1, 12, 4)).tolist() == [False, True, False]
    assert (a == 3).tolist() == [False, False, True]          # a real operand has imaginary part 0
    assert (fp.fi([1, 3], 1, 8, 0) == a[1:]).tolist() == [False, True]
    assert (a == 1 + 2j).tolist() == [True, True, False]


# --- everything else is a clear TypeError -----------------------------------------------------------

@pytest.mark.parametrize("name, op", [
    ("<", lambda a: a < a), ("<=", lambda a: a <= 1), (">", lambda a: a > 1), (">=", lambda a: a >= a),
    ("/", lambda a: a / a), ("divide", lambda a: fp.divide(a.numerictype, a, a)), ("@", lambda a: a @ a),
    ("abs", lambda a: abs(a)), ("fp.abs", lambda a: fp.abs(a, a.numerictype)), ("sum", lambda a: a.sum()),
    ("cumsum", lambda a: fp.cumsum(a)), ("prod", lambda a: fp.prod(a)), ("cast", lambda a: fp.cast(a, a.numerictype)),
    ("floor", lambda a: fp.floor(a)), ("reinterpretcast", lambda a: fp.reinterpretcast(a, a.numerictype)),
    ("bitand", lambda a: fp.bitand(a, a)), ("bitshift", lambda a: fp.bitshift(a, 1)), ("<<", lambda a: a << 1),
    ("bitreplicate", lambda a: fp.bitreplicate(a, 2)), ("accumpos", lambda a: fp.accumpos(a, 1)),
    ("int=", lambda a: setattr(a, "int", 1)), ("float", lambda a: float(a[0])),
])
def test_unsupported_operations_raise_a_type_error_naming_complex(name, op):
    a = fp.fi([1 + 2j, -1j], 1, 8, 4)
    with pytest.raises(TypeError, match="complex"):
        op(a)
