"""Property tests of fi against the exact Fraction oracle (tests/fi_oracle.py).

Random types (word lengths 1..128, fraction lengths -20..150, both signednesses), every rounding
method and overflow action, every product/sum mode with and without CastBeforeSum, random shapes
with numpy broadcasting. Every comparison is on exact stored integers and types.
"""
import math
import operator
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import fixedpoint as fp
import fi_oracle as oracle
from fi_objects import fimath_of, numerictype_of
from fi_oracle import M, T, stored_of, type_of

SETTINGS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=80, deadline=None)

roundings = st.sampled_from(oracle.ROUNDING_METHODS)
actions = st.sampled_from(oracle.OVERFLOW_ACTIONS)
modes = st.sampled_from(oracle.MODES)


@st.composite
def types(draw, max_w=128, min_f=-20, max_f=150):
    return T(draw(st.booleans()), draw(st.integers(1, max_w)), draw(st.integers(min_f, max_f)))


@st.composite
def stored_arrays(draw, t: T, shape):
    """An object array of stored integers of t, biased towards the range limits."""
    n = int(np.prod(shape, dtype=np.int64))
    edge = st.sampled_from([t.lo, t.hi, 0, t.lo + 1 if t.lo < t.hi else t.lo,
                            t.hi - 1 if t.hi > t.lo else t.hi])
    q = draw(st.lists(st.one_of(st.integers(t.lo, t.hi), edge), min_size=n, max_size=n))
    out = np.empty(n, dtype=object)
    out[:] = q
    return out.reshape(shape)


@st.composite
def fimaths(draw):
    return M(rounding=draw(roundings), overflow=draw(actions),
             product_mode=draw(modes), product_word_length=draw(st.integers(2, 72)),
             product_fraction_length=draw(st.integers(-10, 80)),
             sum_mode=draw(modes), sum_word_length=draw(st.integers(2, 72)),
             sum_fraction_length=draw(st.integers(-10, 80)),
             cast_before_sum=draw(st.booleans()))


def from_stored(q, t: T, m: M = None):
    """A fi of type t holding the stored integers q (with local fimath m if given)."""
    args = (numerictype_of(t),) if m is None else (numerictype_of(t), fimath_of(m))
    return fp.fi(0, *args, int=q)


def elementwise(fn, *arrays):
    """Apply an oracle function element by element after numpy broadcasting."""
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=object) for a in arrays])
    return [fn(*items) for items in zip(*(a.ravel() for a in arrays))]


def assert_type(a, t: T):
    assert type_of(a) == t, f"type {type_of(a)} != oracle {t}"


# --- the oracle against the spec's own tables (so a wrong oracle cannot hide a wrong library) ----

def test_oracle_tie_table():
    table = {2.5: (3, 2, 2, 3, 3, 2), -2.5: (-2, -2, -3, -2, -3, -2), 3.5: (4, 4, 3, 4, 4, 3),
             -3.5: (-3, -4, -4, -3, -4, -3), -4.6: (-4, -5, -5, -5, -5, -4)}
    for x, expected in table.items():
        assert tuple(oracle.round_to_integer(Fraction(x), r)
                     for r in oracle.ROUNDING_METHODS) == expected


def test_oracle_documented_result_types():
    s85 = T(1, 8, 5)
    assert oracle.add(101, s85, 87, s85, M()) == (188, T(1, 9, 5))
    assert oracle.sum_full_type(T(0, 4, 4), T(1, 4, 0)) == T(1, 10, 4)
    assert oracle.sum_full_type(T(1, 16, 13), T(1, 12, 14)) == T(1, 18, 14)
    assert oracle.multiply(101, s85, 87, s85, M(product_mode="KeepMSB", product_word_length=12,
                                                 rounding="Floor")) == (549, T(1, 12, 6))
    assert oracle.total([2048, 4096, 10240, 16384, 10240], T(1, 16, 11),
                        M(sum_mode="KeepLSB")) == (43008, T(1, 32, 11))
    assert oracle.sum_n_type(T(1, 32, 30), 16, M()) == T(1, 36, 30)
    assert [oracle.best_fraction_length([x], 1, 16) for x in (math.pi, 0.1, 1, -1, 0)] == \
        [13, 18, 14, 15, 15]
    assert oracle.best_fraction_length([-2, 2], 1, 16) == 13


# --- casting doubles ------------------------------------------------------------------------------

@st.composite
def doubles_for(draw, t: T):
    """Finite doubles around t's range: plain floats, exact ties of t's LSB, and out-of-range."""
    il = t.w - t.f
    scale = 2.0 ** min(il + 1, 1000)
    plain = st.floats(-scale, scale, allow_nan=False, allow_infinity=False)
    k = draw(st.integers(-(1 << 50), 1 << 50))
    tie = math.ldexp(2 * k + 1, -t.f - 1)         # an exact half LSB, when representable
    wide = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
    return draw(st.lists(st.one_of(plain, st.just(tie), wide), min_size=1, max_size=6))


@SETTINGS
@given(data=st.data(), t=types(), rounding=roundings, action=actions)
def test_cast_of_doubles(data, t, rounding, action):
    xs = data.draw(doubles_for(t))
    a = fp.fi(np.array(xs), t.signed, t.w, t.f, rounding_method=rounding, overflow_action=action)
    assert_type(a, t)
    assert stored_of(a) == [oracle.quantize(x, t, rounding, action) for x in xs]


@FEW
@given(data=st.data(), t=types(), rounding=roundings, action=actions)
def test_cast_with_fimath_object(data, t, rounding, action):
    xs = data.draw(doubles_for(t))
    a = fp.fi(np.array(xs), numerictype_of(t), fp.fimath(rounding_method=rounding,
                                                         overflow_action=action))
    assert stored_of(a) == [oracle.quantize(x, t, rounding, action) for x in xs]


@SETTINGS
@given(data=st.data(), source=types(), target=types(), rounding=roundings, action=actions)
def test_cast_between_types(data, source, target, rounding, action):
    q = data.draw(stored_arrays(source, (data.draw(st.integers(1, 5)),)))
    a = from_stored(q, source)
    b = fp.cast(a, numerictype_of(target), fp.fimath(rounding_method=rounding,
                                                     overflow_action=action))
    assert_type(b, target)
    assert stored_of(b) == [oracle.requantize(x, source, target, rounding, action) for x in q]


@SETTINGS
@given(xs=st.lists(st.floats(-1e30, 1e30, allow_nan=False).filter(lambda x: x != 0) | st.just(0.0),
                   min_size=1, max_size=6),
       signed=st.booleans(), w=st.integers(2, 128))
def test_best_precision(xs, signed, w):
    if not signed:
        xs = [abs(x) for x in xs]
    a = fp.fi(np.array(xs), signed, w)
    f = oracle.best_fraction_length(xs, signed, w)
    t = T(signed, w, f)
    assert_type(a, t)
    assert stored_of(a) == [oracle.quantize(x, t) for x in xs]


@SETTINGS
@given(data=st.data(), signed=st.booleans(), w=st.integers(1, 64), rounding=roundings,
       action=actions, adjustment=st.integers(0, 255), exponent=st.integers(-20, 20),
       bias=st.integers(-64, 64))
def test_cast_into_slope_bias(data, signed, w, rounding, action, adjustment, exponent, bias):
    """Q = overflow(round((V - B) / S)) exactly, with S = (1 + k/256) * 2^E and B = b/16 (A.4)."""
    slope = math.ldexp(1 + adjustment / 256, exponent)
    offset = bias / 16
    span = slope * 2.0 ** w
    xs = data.draw(st.lists(st.floats(offset - span, offset + span, allow_nan=False), min_size=1,
                            max_size=5))
    nt = fp.numerictype(signed, w, slope=slope, bias=offset)
    a = fp.fi(np.array(xs), nt, fp.fimath(rounding_method=rounding, overflow_action=action))
    assert stored_of(a) == [oracle.quantize_slope_bias(x, signed, w, slope, offset, rounding, action)
                            for x in xs]


@SETTINGS
@given(data=st.data(), t=types(), method=roundings)
def test_rounding_functions(data, t, method):
    """floor/ceil/fix/round/nearest/convergent (A.5): f <= 0 keeps the type, else f = 0 and
    w = max(w - f + 1, 2 if signed else 1); the value is the method's integer of the exact value."""
    q = data.draw(stored_arrays(t, (data.draw(st.integers(1, 5)),)))
    fn = {"Ceiling": fp.ceil, "Convergent": fp.convergent, "Floor": fp.floor,
          "Nearest": fp.nearest, "Round": fp.round, "Zero": fp.fix}[method]
    r = fn(from_stored(q, t))
    if t.f <= 0:
        assert_type(r, t)
        assert stored_of(r) == [int(x) for x in q]
    else:
        out = T(t.signed, max(t.w - t.f + 1, 2 if t.signed else 1), 0)
        assert_type(r, out)
        assert stored_of(r) == [oracle.round_to_integer(t.value(x), method) for x in q]


@SETTINGS
@given(data=st.data(), ta=types(max_w=64, max_f=80), tb=types(max_w=64, max_f=80),
       explicit=st.booleans(), rounding=roundings, action=actions)
def test_accumpos_accumneg(data, ta, tb, explicit, rounding, action):
    """a + b and a - b in a's type, b cast into it; Floor/Wrap unless given (A.12)."""
    qa = data.draw(stored_arrays(ta, (3,)))
    qb = data.draw(stored_arrays(tb, (3,)))
    r, o = (rounding, action) if explicit else ("Floor", "Wrap")
    a, b = from_stored(qa, ta, M(rounding="Ceiling", overflow="Saturate")), from_stored(qb, tb)
    args = (r, o) if explicit else ()
    cast_b = [oracle.requantize(y, tb, ta, r, o) for y in qb]
    pos, neg = fp.accumpos(a, b, *args), fp.accumneg(a, b, *args)
    assert_type(pos, ta)
    assert_type(neg, ta)
    assert stored_of(pos) == [oracle.overflow(x + y, ta, o) for x, y in zip(qa, cast_b)]
    assert stored_of(neg) == [oracle.overflow(x - y, ta, o) for x, y in zip(qa, cast_b)]


# --- + - * / on broadcast arrays in every mode ----------------------------------------------------

# mostly words the compiled core handles, some on the exact wide path (results up to 257 bits)
operand_types = st.one_of(types(max_w=64, min_f=-20, max_f=80), types(max_w=128))


@st.composite
def operands(draw):
    """Two fi operands of random types and broadcastable shapes, one fimath on one of them."""
    ta, tb, m = draw(operand_types), draw(operand_types), draw(fimaths())
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    qa = draw(stored_arrays(ta, shapes.input_shapes[0]))
    qb = draw(stored_arrays(tb, shapes.input_shapes[1]))
    local_on_a = draw(st.booleans())
    a = from_stored(qa, ta, m if local_on_a else None)
    b = from_stored(qb, tb, None if local_on_a else m)
    return a, b, qa, qb, ta, tb, m, shapes.result_shape


@SETTINGS
@given(ops=operands())
def test_add(ops):
    a, b, qa, qb, ta, tb, m, shape = ops
    c = a + b
    expected = elementwise(lambda x, y: oracle.add(x, ta, y, tb, m), qa, qb)
    assert_type(c, expected[0][1])
    assert np.shape(c.stored_integer) == shape
    assert stored_of(c) == [q for q, _ in expected]


@SETTINGS
@given(ops=operands())
def test_subtract(ops):
    a, b, qa, qb, ta, tb, m, shape = ops
    c = a - b
    expected = elementwise(lambda x, y: oracle.add(x, ta, y, tb, m, subtract=True), qa, qb)
    assert_type(c, expected[0][1])
    assert stored_of(c) == [q for q, _ in expected]


@SETTINGS
@given(ops=operands())
def test_multiply(ops):
    a, b, qa, qb, ta, tb, m, shape = ops
    c = a * b
    expected = elementwise(lambda x, y: oracle.multiply(x, ta, y, tb, m), qa, qb)
    assert_type(c, expected[0][1])
    assert np.shape(c.stored_integer) == shape
    assert stored_of(c) == [q for q, _ in expected]


@SETTINGS
@given(ops=operands())
def test_function_forms_use_their_fimath(ops):
    """add/sub/mpy(F, a, b) compute with F whatever the operands carry (A.7)."""
    a, b, qa, qb, ta, tb, m, shape = ops
    f = fimath_of(m)
    for fn, ref in ((fp.add, lambda x, y: oracle.add(x, ta, y, tb, m)),
                    (fp.sub, lambda x, y: oracle.add(x, ta, y, tb, m, subtract=True)),
                    (fp.mpy, lambda x, y: oracle.multiply(x, ta, y, tb, m))):
        expected = elementwise(ref, qa, qb)
        c = fn(f, from_stored(qa, ta), from_stored(qb, tb))
        assert_type(c, expected[0][1])
        assert stored_of(c) == [q for q, _ in expected]


@SETTINGS
@given(ops=operands())
def test_divide(ops):
    a, b, qa, qb, ta, tb, m, shape = ops
    assume(all(y != 0 for y in np.ravel(qb)))
    c = a / b
    expected = elementwise(lambda x, y: oracle.divide(x, ta, y, tb, m), qa, qb)
    assert_type(c, expected[0][1])
    assert stored_of(c) == [q for q, _ in expected]


@SETTINGS
@given(data=st.data(), t=types(), action=actions)
def test_negate_and_abs(data, t, action):
    q = data.draw(stored_arrays(t, (data.draw(st.integers(1, 6)),)))
    m = M(overflow=action)
    a = from_stored(q, t, m)
    neg, mag = -a, abs(a)
    assert_type(neg, t)
    assert_type(mag, t)
    assert stored_of(neg) == [oracle.negate(x, t, m) for x in q]
    assert stored_of(mag) == [oracle.absolute(x, t, m) for x in q]


# --- fi op double / fi op integer dtype (spec A.8.3) ----------------------------------------------

@SETTINGS
@given(data=st.data(), t=types(max_w=64, max_f=80))
def test_mixed_with_double(data, t):
    """+/-: the double takes the fi's numerictype; *: the fi's signedness and word length with its
    own best-precision fraction length. (The fi has no local fimath, so Nearest/Saturate throughout.)"""
    q = data.draw(stored_arrays(t, (data.draw(st.integers(1, 4)),)))
    x = data.draw(st.floats(-2.0 ** (t.w - t.f + 1), 2.0 ** (t.w - t.f + 1), allow_nan=False))
    a, m = from_stored(q, t), M()
    xq = oracle.quantize(x, t)
    for got in (a + x, x + a):
        expected = [oracle.add(v, t, xq, t, m) for v in q]
        assert_type(got, expected[0][1])
        assert stored_of(got) == [e for e, _ in expected]
    expected = [oracle.add(v, t, xq, t, m, subtract=True) for v in q]
    assert stored_of(a - x) == [e for e, _ in expected]
    tx = T(t.signed, t.w, oracle.best_fraction_length([x], t.signed, t.w))
    xp = oracle.quantize(x, tx)
    for got in (a * x, x * a):
        expected = [oracle.multiply(v, t, xp, tx, m) for v in q]
        assert_type(got, expected[0][1])
        assert stored_of(got) == [e for e, _ in expected]


INTEGER_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64]


@SETTINGS
@given(data=st.data(), t=types(max_w=64, max_f=80), dtype=st.sampled_from(INTEGER_DTYPES))
def test_mixed_with_integer_dtype(data, t, dtype):
    """A built-in integer acts as a fi of its own type: int8 -> s8,0, uint16 -> u16,0 (A.8.3)."""
    info = np.iinfo(dtype)
    ti = T(info.min < 0, info.bits, 0)
    q = data.draw(stored_arrays(t, (3,)))
    k = data.draw(st.integers(int(info.min), int(info.max)))
    a, m = from_stored(q, t), M()
    for got, ref in ((a + dtype(k), lambda v: oracle.add(v, t, k, ti, m)),
                     (a - dtype(k), lambda v: oracle.add(v, t, k, ti, m, subtract=True)),
                     (a * dtype(k), lambda v: oracle.multiply(v, t, k, ti, m))):
        expected = [ref(v) for v in q]
        assert_type(got, expected[0][1])
        assert stored_of(got) == [e for e, _ in expected]


# --- sum and matrix product (accumulators) -------------------------------------------------------

@SETTINGS
@given(data=st.data(), t=types(max_w=64, max_f=80), m=fimaths())
def test_sum_along_axis(data, t, m):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1))
    q = data.draw(stored_arrays(t, shape))
    s = fp.sum(from_stored(q, t, m), axis)
    lanes = np.moveaxis(q, axis, -1).reshape(-1, shape[axis])
    expected = [oracle.total(list(lane), t, m) for lane in lanes]
    assert_type(s, expected[0][1])
    assert np.shape(s.stored_integer) == tuple(np.delete(shape, axis))
    assert stored_of(s) == [x for x, _ in expected]


@FEW
@given(data=st.data(), t=types(max_w=64, max_f=80), m=fimaths(), n=st.integers(1, 6))
def test_cumsum(data, t, m, n):
    q = data.draw(stored_arrays(t, (n,)))
    c = fp.cumsum(from_stored(q, t, m))
    expected, out = oracle.running_totals(list(q), t, m)
    assert_type(c, out)
    assert stored_of(c) == expected


@SETTINGS
@given(data=st.data(), ta=types(max_w=40, max_f=60), tb=types(max_w=40, max_f=60), m=fimaths(),
       rows=st.integers(1, 3), inner=st.integers(1, 6), cols=st.integers(1, 3))
def test_matmul(data, ta, tb, m, rows, inner, cols):
    qa = data.draw(stored_arrays(ta, (rows, inner)))
    qb = data.draw(stored_arrays(tb, (inner, cols)))
    c = from_stored(qa, ta, m) @ from_stored(qb, tb)
    expected = [oracle.dot(list(qa[i]), ta, list(qb[:, j]), tb, m)
                for i in range(rows) for j in range(cols)]
    assert_type(c, expected[0][1])
    assert np.shape(c.stored_integer) == (rows, cols)
    assert stored_of(c) == [x for x, _ in expected]


# --- item and slice assignment ------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), t=types(), rounding=roundings, action=actions, local=st.booleans())
def test_assignment_casts_with_the_target_fimath(data, t, rounding, action, local):
    """a[i] = doubles quantises into a's type with a's fimath (the default one when a has none)."""
    q = data.draw(stored_arrays(t, (4,)))
    xs = data.draw(doubles_for(t).filter(lambda v: len(v) >= 2))[:2]
    m = M(rounding=rounding, overflow=action)
    a = from_stored(q, t, m if local else None)
    with fp.fimath_context(fimath_of(m)):
        a[1:3] = np.array(xs)
    assert_type(a, t)
    expected = [oracle.quantize(x, t, rounding, action) for x in xs]
    assert stored_of(a) == [int(q[0])] + expected + [int(q[3])]


# --- comparisons ---------------------------------------------------------------------------------

@SETTINGS
@given(ops=operands())
def test_comparisons_exact(ops):
    a, b, qa, qb, ta, tb, m, shape = ops
    for op in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
        expected = elementwise(lambda x, y: op(ta.value(x), tb.value(y)), qa, qb)
        assert [bool(v) for v in np.ravel(op(a, b))] == expected, op.__name__


@SETTINGS
@given(data=st.data(), t=types())
def test_comparison_with_double_is_exact(data, t):
    q = data.draw(stored_arrays(t, (3,)))
    x = data.draw(st.floats(allow_nan=False, allow_infinity=False))
    a = from_stored(q, t)
    assert [bool(v) for v in np.ravel(a < x)] == [t.value(v) < Fraction(x) for v in q]
    assert [bool(v) for v in np.ravel(a == x)] == [t.value(v) == Fraction(x) for v in q]


# --- bit patterns and stored-integer round trips --------------------------------------------------

def tokens(text):
    if isinstance(text, str):
        return text.split()
    return [str(s) for s in np.ravel(np.asarray(text))]


@SETTINGS
@given(data=st.data(), t=types())
def test_bin_hex_out_and_back(data, t):
    q = data.draw(stored_arrays(t, (data.draw(st.integers(1, 4)),)))
    a = from_stored(q, t)
    assert tokens(a.bin) == [oracle.bits(x, t.w) for x in q]
    assert tokens(a.hex) == [oracle.hex_digits(x, t.w) for x in q]
    for x in q:
        assert stored_of(fp.fi(0, numerictype_of(t), bin=oracle.bits(x, t.w))) == [x]
        assert stored_of(fp.fi(0, numerictype_of(t), hex=oracle.hex_digits(x, t.w))) == [x]


@SETTINGS
@given(data=st.data(), t=types(), signed=st.booleans(), f=st.integers(-20, 150))
def test_reinterpretcast_keeps_the_bits(data, t, signed, f):
    q = data.draw(stored_arrays(t, (data.draw(st.integers(1, 4)),)))
    target = T(signed, t.w, f)
    b = fp.reinterpretcast(from_stored(q, t), numerictype_of(target))
    assert_type(b, target)
    assert stored_of(b) == [oracle.from_pattern(x, target) for x in q]
    assert tokens(b.bin) == [oracle.bits(x, t.w) for x in q]
    back = fp.reinterpretcast(b, numerictype_of(t))
    assert stored_of(back) == [int(x) for x in q]


@SETTINGS
@given(data=st.data(), t=types())
def test_stored_integer_round_trip(data, t):
    shape = data.draw(array_shapes(min_dims=0, max_dims=2, max_side=3))
    q = data.draw(stored_arrays(t, shape))
    a = from_stored(q, t)
    si = a.stored_integer
    assert np.shape(si) == shape
    if t.w <= 64:
        assert np.asarray(si).dtype.kind == ("i" if t.signed else "u")
        assert np.asarray(si).dtype.itemsize * 8 == max(8, 1 << (t.w - 1).bit_length())
    assert stored_of(from_stored(si, t)) == stored_of(a)
    values = [float(v) for v in np.ravel(a.double())]
    assert values == [float(t.value(x)) for x in np.ravel(q)]
