"""Bounds and resolution (spec A.11), overflow/underflow logging and the data-type override (A.13).

Bounds are checked against an exact Fraction oracle written here; logging against counts worked out
by hand on known inputs."""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp


def stored(a):
    return [int(x) for x in np.ravel(a.stored_integer)]


# --- bounds: golden rows -------------------------------------------------------------------------

def test_BND_01_range():
    r = fp.range(fp.fi(0, 1, 4, 2))
    assert r.numerictype == fp.numerictype(1, 4, 2)
    assert stored(r) == [-8, 7]
    np.testing.assert_array_equal(r.double(), [-2.0, 1.75])
    lo, hi = r
    assert (float(lo), float(hi)) == (-2.0, 1.75)


def test_BND_04_intmax():
    m = fp.intmax(fp.fi(math.pi, 1, 16, 12))
    assert m.numerictype == fp.numerictype(1, 16, 0)
    assert stored(m) == [32767]


def test_BND_05_eps_is_the_lsb_not_the_documentation_page_value():
    # Q9: the reference page prints 0.1250; by the definition (LSB of s8,5) it is 2^-5.
    e = fp.eps(fp.fi(math.pi, 1, 8))
    assert e.numerictype == fp.numerictype(1, 8, 5)
    assert stored(e) == [1] and float(e) == 0.03125


def test_BND_06_upperbound_and_lowerbound_of_fi_pi():
    a = fp.fi(math.pi)
    assert float(fp.upperbound(a)) == 3.9998779296875 and stored(fp.upperbound(a)) == [32767]
    assert float(fp.lowerbound(a)) == -4.0


def test_ADD_07_upperbound_sum_uses_fi_arithmetic():
    total = fp.upperbound(fp.numerictype(0, 4, 4)) + fp.upperbound(fp.numerictype(1, 4, 0))
    assert total.numerictype == fp.numerictype(1, 10, 4) and stored(total) == [127]


def test_realmax_realmin_intmin_unsigned():
    a = fp.numerictype(0, 8, 3)
    assert float(fp.realmax(a)) == 255 / 8 and float(fp.realmin(a)) == 1 / 8
    assert stored(fp.intmin(a)) == [0] and fp.intmin(a).numerictype == fp.numerictype(0, 8, 0)


def test_slope_bias_bounds():
    t = fp.numerictype(1, 8, 0.3, 1.5)
    assert float(fp.upperbound(t)) == float(Fraction(127) * Fraction(0.3) + Fraction(1.5))
    assert float(fp.lowerbound(t)) == float(Fraction(-128) * Fraction(0.3) + Fraction(1.5))
    assert float(fp.eps(t)) == 0.3


def test_bounds_keep_the_local_fimath():
    a = fp.fi(1, 1, 8, 4, overflow_action="Wrap")
    assert fp.upperbound(a).has_local_fimath


def test_bounds_reject_other_inputs():
    with pytest.raises(TypeError, match="fi or a numerictype"):
        fp.upperbound(3.0)


# --- bounds: exact oracle at any width ------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.booleans(), st.integers(-40, 320))
def test_bounds_exact(w, signed, f):
    t = fp.numerictype(signed, w, f)
    qmin, qmax = (-(2 ** (w - 1)), 2 ** (w - 1) - 1) if signed else (0, 2 ** w - 1)
    lsb = Fraction(2) ** -f
    for fn, q, ftype in ((fp.upperbound, qmax, f), (fp.lowerbound, qmin, f),
                         (fp.intmax, qmax, 0), (fp.intmin, qmin, 0)):
        result = fn(t)
        assert result.numerictype == fp.numerictype(signed, w, ftype)
        assert stored(result) == [q]
    assert stored(fp.range(t)) == [qmin, qmax]
    e = fp.eps(t)
    assert stored(e) == [1] and e.numerictype == fp.numerictype(signed, max(w, 1 + signed), f)
    assert fp.ranges.real_bounds(t) == (float(qmin * lsb), float(qmax * lsb))


# --- logging ------------------------------------------------------------------------------------

def test_logging_counts_saturations_with_a_warning():
    with fp.logging_mode(True):
        with pytest.warns(fp.FiLoggingWarning, match=r"4 overflow\(s\) occurred"):
            a = fp.fi([1, 2, 3, 4, 5], 1, 8, 6)
    assert fp.noverflows(a) == 4 and fp.nunderflows(a) == 0
    assert fp.minlog(a) == 1.0 and fp.maxlog(a) == 1.984375
    assert not fp.logging_mode()


def test_logging_records_quantised_extremes():
    # like fi(randn(10),1,8,7): the log holds the post-saturation values
    with fp.logging_mode(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", fp.FiLoggingWarning)
        a = fp.fi([-3.0, -1.5, 0.25, 2.0, 0.5], 1, 8, 7)
    assert fp.noverflows(a) == 3
    assert (fp.minlog(a), fp.maxlog(a)) == (-1.0, 0.9921875)


def test_an_underflow_is_a_nonzero_value_quantised_to_zero():
    lsb = float(fp.eps(fp.numerictype(1, 8, 5)))
    with fp.logging_mode(True):
        with pytest.warns(fp.FiLoggingWarning, match=r"1 underflow\(s\)"):
            a = fp.fi([lsb / 10, 0.0, lsb], 1, 8, 5)
    assert fp.nunderflows(a) == 1 and fp.noverflows(a) == 0


def test_nothing_is_logged_when_logging_is_off():
    with warnings.catch_warnings():
        warnings.simplefilter("error", fp.FiLoggingWarning)
        a = fp.fi([1, 2, 3], 1, 8, 6)
    assert fp.noverflows(a) == 0 and fp.minlog(a) is None and fp.maxlog(a) is None


def test_record_accumulates_and_resetlog_clears():
    a = fp.fi([0.5, -0.25], 1, 8, 6)
    with fp.logging_mode(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", fp.FiLoggingWarning)
        fp.fi_logging.record(a, 2, 1)
        fp.fi_logging.record(a, 3, 0)
    assert (fp.noverflows(a), fp.nunderflows(a)) == (5, 1)
    assert (fp.minlog(a), fp.maxlog(a)) == (-0.25, 0.5)
    fp.resetlog(a)
    assert (fp.noverflows(a), fp.nunderflows(a), fp.minlog(a)) == (0, 0, None)


def test_logreport_table(capsys):
    with fp.logging_mode(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", fp.FiLoggingWarning)
        a = fp.fi([1, 2, 3, 4, 5], 1, 8, 6)
    text = fp.logreport(a, b=fp.fi(0.5, 1, 8, 7))
    assert capsys.readouterr().out.strip() == text.strip()
    header, row_a, row_b = text.splitlines()
    assert header.split() == ["minlog", "maxlog", "lowerbound", "upperbound", "noverflows",
                              "nunderflows"]
    assert row_a.split() == ["arg0", "1", "1.984375", "-2", "1.984375", "4", "0"]
    assert row_b.split() == ["b", "-", "-", "-1", "0.9921875", "0", "0"]


def test_logging_mode_rejects_non_booleans():
    with pytest.raises(TypeError, match="on='yes'"):
        fp.logging_mode("yes")


# --- data-type override ---------------------------------------------------------------------------

def test_override_query_set_and_restore():
    assert fp.datatype_override() == "ForceOff"
    with fp.datatype_override("truedoubles"):
        assert fp.datatype_override() == "TrueDoubles"
        with fp.datatype_override("ScaledDoubles"):
            assert fp.datatype_override() == "ScaledDoubles"
        assert fp.datatype_override() == "TrueDoubles"
    assert fp.datatype_override() == "ForceOff"


def test_override_rejects_unknown_modes():
    with pytest.raises(ValueError, match="'TrueSingles'"):
        fp.datatype_override("TrueSingles")
    assert fp.datatype_override() == "ForceOff"
