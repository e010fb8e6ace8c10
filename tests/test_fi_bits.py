"""Bit operations on fi (spec A.10): the golden rows, and every operation against a reference that
manipulates Python ints and '0'/'1' strings directly, at word lengths 1..128, both signednesses."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp

SETTINGS = settings(max_examples=120, deadline=None)


# --- reference: plain Python ints and bit strings ------------------------------------------------

def bits_of(q, w):
    """w-character two's-complement string, MSB first."""
    return format(q % (1 << w), f"0{w}b")


def from_bits(text, signed):
    value = int(text, 2)
    return value - (1 << len(text)) if signed and text[0] == "1" else value


def limits(w, signed):
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)


def stored(a):
    return [int(x) for x in np.ravel(a.stored_integer)]


def make(values, signed, w):
    """A fi with the given stored integers (fraction length 0, so value = stored integer)."""
    return fp.fi(np.array(values, dtype=object), signed, w, 0)


@st.composite
def words(draw, min_size=1, max_size=6):
    w = draw(st.integers(1, 128))
    signed = draw(st.booleans())
    lo, hi = limits(w, signed)
    values = draw(st.lists(st.integers(lo, hi), min_size=min_size, max_size=max_size))
    return w, signed, values


def nt(signed, w, f=0):
    return fp.numerictype(signed, w, f)


# --- golden rows (fi_golden_cases.md, Bit operations) --------------------------------------------

@pytest.mark.parametrize("expr, expected_type, expected", [
    (lambda: fp.bitsra(fp.fi(-8, 1, 4, 0), 1), (1, 4, 0), -4),                       # BIT-01
    (lambda: fp.bitsrl(fp.fi(-8, 1, 4, 0), 1), (1, 4, 0), 4),                        # BIT-02
    (lambda: fp.bitsll(fp.fi(10, 0, 4, 0), 1), (0, 4, 0), 4),                        # BIT-03
    (lambda: fp.bitshift(fp.fi(3, 1, 16, 0), 14), (1, 16, 0), 32767),                # BIT-04
    (lambda: fp.bitshift(fp.fi(3, 1, 16, 0, overflow_action="Wrap"), 14), (1, 16, 0), -16384),
    (lambda: fp.bitconcat(fp.fi(5, 0, 4, 0), fp.fi(10, 0, 4, 0)), (0, 8, 0), 90),    # BIT-06
    (lambda: fp.bitget(fp.fi(85, 0, 8, 0), 3), (0, 1, 0), 1),                        # BIT-08
    (lambda: fp.bitcmp(fp.fi(5, 1, 4, 0)), (1, 4, 0), -6),                           # A.10 table
    (lambda: fp.bitsliceget(fp.fi(85, 0, 8, 0), 6, 2), (0, 5, 0), 10),               # A.10 table
    (lambda: fp.bitshift(fp.fi(3, 1, 16, 0, overflow_action="Wrap"), 16), (1, 16, 0), 0),
], ids=["BIT-01", "BIT-02", "BIT-03", "BIT-04", "BIT-05", "BIT-06", "BIT-08", "bitcmp",
        "bitsliceget", "bitshift-wrap-k=w"])
def test_golden_rows(expr, expected_type, expected):
    result = expr()
    assert result.numerictype == nt(*expected_type)
    assert stored(result) == [expected]


def test_python_shift_operators_mean_bitsll_and_bitsra():
    a = fp.fi(-8, 1, 4, 0)
    assert stored(a >> 1) == [-4]
    assert stored(fp.fi(10, 0, 4, 0) << 1) == [4]


def test_fraction_length_and_local_fimath_are_kept():
    a = fp.fi([-0.75, 0.5], 1, 8, 6, overflow_action="Wrap")
    b = fp.bitsra(a, 1)
    assert b.numerictype == nt(True, 8, 6)
    assert b.has_local_fimath and str(b.fimath.overflow_action).lower().endswith("wrap")
    np.testing.assert_array_equal(b.double(), [-0.375, 0.25])


def test_bitshift_right_floors_and_left_saturates_negative():
    a = fp.fi([-5, 5, -1], 1, 8, 0)
    assert stored(fp.bitshift(a, -1)) == [-3, 2, -1]
    assert stored(fp.bitshift(fp.fi([-100, 100], 1, 8, 0), 1)) == [-128, 127]


def test_bitconcat_of_a_vector_puts_the_first_element_in_the_msbs():
    result = fp.bitconcat(fp.fi([1, 2, 3], 0, 40, 0))
    assert result.numerictype == nt(False, 120, 0)
    assert stored(result) == [(1 << 80) | (2 << 40) | 3]


def test_bitand_casts_a_builtin_operand_into_the_fi_type():
    assert stored(fp.bitand(fp.fi(13, 0, 8, 0), 7)) == [5]
    assert stored(fp.bitor(6, fp.fi(9, 0, 8, 0))) == [15]


def test_bitget_and_bitset_broadcast_positions():
    a = fp.fi([5, 6], 0, 4, 0)
    assert stored(fp.bitget(a, [1, 2])) == [1, 1]
    assert stored(fp.bitset(fp.fi(0, 0, 4, 0), [1, 2, 3, 4])) == [1, 2, 4, 8]
    assert stored(fp.bitset(a, 3, [0, 1])) == [1, 6]


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("lidx, ridx", [(9, 1), (3, 4), (2, 0)])
def test_bitsliceget_out_of_range_names_the_indices(lidx, ridx):
    with pytest.raises(ValueError, match=f"w=8, lidx={lidx}, ridx={ridx}"):
        fp.bitsliceget(fp.fi(85, 0, 8, 0), lidx, ridx)


def test_bit_operations_reject_bad_arguments():
    a, b = fp.fi(3, 1, 8, 0), fp.fi(3, 1, 8, 2)
    with pytest.raises(ValueError, match="one numerictype"):
        fp.bitand(a, b)
    with pytest.raises(ValueError, match=r"bitget: n = 9 is outside 1\.\.8"):
        fp.bitget(a, 9)
    with pytest.raises(ValueError, match=r"bitset: n = 0"):
        fp.bitset(a, 0)
    with pytest.raises(ValueError, match="bitsll: k = -1"):
        fp.bitsll(a, -1)
    with pytest.raises(TypeError, match="bitrol: k must be an integer"):
        fp.bitrol(a, 1.5)
    with pytest.raises(ValueError, match="bitset: v must be 0 or 1"):
        fp.bitset(a, 1, 2)
    with pytest.raises(TypeError, match="bitcmp: a must be a fi"):
        fp.bitcmp(3)
    with pytest.raises(ValueError, match="1-d fi"):
        fp.bitconcat(fp.fi([[1, 2]], 0, 4, 0))


# --- properties against the reference ------------------------------------------------------------

@SETTINGS
@given(words(), st.integers(0, 140))
def test_shifts_and_rotations(word, k):
    w, signed, values = word
    a = make(values, signed, w)
    pats = [bits_of(q, w) for q in values]
    zeros = "0" * min(k, w)
    assert stored(fp.bitsll(a, k)) == [from_bits((p + zeros)[-w:], signed) for p in pats]
    assert stored(fp.bitsrl(a, k)) == [from_bits((zeros + p)[:w], signed) for p in pats]
    fills = [(p[0] if signed else "0") * min(k, w) for p in pats]
    assert stored(fp.bitsra(a, k)) == [from_bits((f + p)[:w], signed) for f, p in zip(fills, pats)]
    r = k % w
    assert stored(fp.bitrol(a, k)) == [from_bits(p[r:] + p[:r], signed) for p in pats]
    assert stored(fp.bitror(a, k)) == [from_bits(p[w - r:] + p[:w - r], signed) for p in pats]
    assert stored(fp.bitcmp(a)) == [from_bits(p.translate(str.maketrans("01", "10")), signed)
                                    for p in pats]
    for result in (fp.bitsll(a, k), fp.bitrol(a, k), fp.bitcmp(a)):
        assert result.numerictype == nt(signed, w)


@SETTINGS
@given(words(), st.integers(-140, 140), st.booleans())
def test_bitshift_is_a_times_2_to_the_k_with_floor_and_the_overflow_action(word, k, wrap):
    w, signed, values = word
    a = fp.fi(np.array(values, dtype=object), signed, w, 0,
              overflow_action="Wrap" if wrap else "Saturate")
    lo, hi = limits(w, signed)
    expected = []
    for q in values:
        exact = q * 2 ** k if k >= 0 else q // 2 ** -k
        if wrap:
            expected.append(from_bits(bits_of(exact, w), signed))
        else:
            expected.append(min(max(exact, lo), hi))
    assert stored(fp.bitshift(a, k)) == expected


@SETTINGS
@given(st.integers(1, 128).flatmap(lambda w: st.tuples(
    st.just(w), st.booleans(), st.lists(st.integers(0, (1 << w) - 1), min_size=2, max_size=12))))
def test_and_or_xor(case):
    w, signed, raw = case
    half = len(raw) // 2
    pa, pb = raw[:half], raw[half:2 * half]
    a = make([from_bits(bits_of(p, w), signed) for p in pa], signed, w)
    b = make([from_bits(bits_of(p, w), signed) for p in pb], signed, w)
    for op, ref in ((fp.bitand, lambda x, y: x & y), (fp.bitor, lambda x, y: x | y),
                    (fp.bitxor, lambda x, y: x ^ y)):
        result = op(a, b)
        assert result.numerictype == nt(signed, w)
        assert stored(result) == [from_bits(bits_of(ref(x, y), w), signed) for x, y in zip(pa, pb)]


@SETTINGS
@given(words(), st.data())
def test_bit_access_slices_and_reductions(word, data):
    w, signed, values = word
    a = make(values, signed, w)
    pats = [bits_of(q, w) for q in values]
    n = data.draw(st.integers(1, w), label="n")
    v = data.draw(st.integers(0, 1), label="v")
    lidx = data.draw(st.integers(1, w), label="lidx")
    ridx = data.draw(st.integers(1, lidx), label="ridx")
    assert stored(fp.bitget(a, n)) == [int(p[w - n]) for p in pats]
    assert stored(fp.bitset(a, n, v)) == [from_bits(p[:w - n] + str(v) + p[w - n + 1:], signed)
                                          for p in pats]
    assert stored(fp.getmsb(a)) == [int(p[0]) for p in pats]
    assert stored(fp.getlsb(a)) == [int(p[-1]) for p in pats]
    pieces = [p[w - lidx:w - ridx + 1] for p in pats]
    sliced = fp.bitsliceget(a, lidx, ridx)
    assert sliced.numerictype == nt(False, lidx - ridx + 1)
    assert stored(sliced) == [int(piece, 2) for piece in pieces]
    assert stored(fp.bitandreduce(a, lidx, ridx)) == [int("0" not in s) for s in pieces]
    assert stored(fp.bitorreduce(a, lidx, ridx)) == [int("1" in s) for s in pieces]
    assert stored(fp.bitxorreduce(a, lidx, ridx)) == [s.count("1") % 2 for s in pieces]
    assert stored(fp.bitsliceget(a)) == [int(p, 2) for p in pats]
    assert fp.bitget(a, n).numerictype == nt(False, 1)


@SETTINGS
@given(st.lists(words(min_size=3, max_size=3), min_size=2, max_size=4))
def test_bitconcat_elementwise(operands):
    parts = [make(values, signed, w) for w, signed, values in operands]
    result = fp.bitconcat(*parts)
    total = sum(w for w, _, _ in operands)
    assert result.numerictype == nt(False, total)
    expected = ["".join(bits_of(values[i], w) for w, _, values in operands) for i in range(3)]
    assert stored(result) == [int(text, 2) for text in expected]


# --- bitreplicate: the pattern repeated n times, unsigned, w = n·w_a, f = 0 -----------------------

def test_bitreplicate_examples():
    result = fp.bitreplicate(fp.fi([1.25, -0.75], 1, 4, 2), 3)  # stored 5, -3: 0101, 1101
    assert result.numerictype == nt(False, 12)
    assert result.bin == "010101010101   110111011101"
    assert stored(fp.bitreplicate(fp.fi(1, 0, 1, 0), 64)) == [(1 << 64) - 1]   # u64 storage
    assert fp.bitreplicate(fp.fi(-1, 1, 8, 0), 1).numerictype == nt(False, 8)
    assert stored(fp.bitreplicate(fp.fi(-1, 1, 8, 0), 1)) == [255]


def test_bitreplicate_rejects_bad_counts():
    a = fp.fi(3, 0, 4, 0)
    with pytest.raises(ValueError, match="n = 0"):
        fp.bitreplicate(a, 0)
    with pytest.raises(TypeError, match="n must be an integer"):
        fp.bitreplicate(a, 2.0)
    with pytest.raises(TypeError, match="a must be a fi"):
        fp.bitreplicate(3, 2)


@SETTINGS
@given(words(max_size=4), st.integers(1, 9))
def test_bitreplicate_matches_repeated_bit_strings(word, n):
    w, signed, values = word
    a = make(values, signed, w)
    result = fp.bitreplicate(a, n)
    assert result.numerictype == nt(False, n * w)
    assert stored(result) == [int(bits_of(v, w) * n, 2) for v in values]
    assert stored(result) == stored(fp.bitconcat(*([a] * n))) if n > 1 else True
