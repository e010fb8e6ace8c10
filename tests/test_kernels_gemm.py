"""Exact int8/int16 GEMM against an independent numpy int64 reference (wrapped to int32 like the
hardware), on every code path and thread count."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fixedpoint import _kernels
from fixedpoint.kernels import AccumulatorOverflowError, Requantizer, gemm, get_kernel_path, pack_weights, set_kernel_path

# "auto" is "vnni" on a CPU with AVX-512 VNNI and "avx2" otherwise; "vnni" falls back to "avx2" without it.
from kernel_paths import ALL_PATHS as PATHS, on_every_path, restore_settings  # noqa: F401 (autouse fixture)
needs_vnni = pytest.mark.skipif(not _kernels.cpu_has_vnni(), reason="CPU lacks AVX-512 VNNI")


def wrap32(v):
    return ((np.asarray(v, dtype=np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def reference(a, b, za=0, zb=0, bias=None):
    """(A - za)(B - zb) + bias in int64, by explicit broadcasting (no BLAS)."""
    za = np.asarray(za, np.int64).reshape(-1, 1) if np.ndim(za) else np.int64(za)
    zb = np.asarray(zb, np.int64).reshape(1, -1) if np.ndim(zb) else np.int64(zb)
    ac = a.astype(np.int64) - za
    bc = b.astype(np.int64) - zb
    out = (ac[:, :, None] * bc[None, :, :]).sum(axis=1)
    return out + (0 if bias is None else bias.astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70), seed=st.integers(0, 2**32 - 1),
       a_kind=st.sampled_from(["int8", "uint8", "int8_nonneg", "uint8_small"]), affine=st.booleans())
def test_random_shapes_match_reference(m, k, n, seed, a_kind, affine):
    rng = np.random.default_rng(seed)
    lo, hi = {"int8": (-128, 128), "uint8": (0, 256), "int8_nonneg": (0, 128), "uint8_small": (0, 128)}[a_kind]
    a = rng.integers(lo, hi, (m, k)).astype(a_kind.split("_")[0])
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    za = zb = 0
    bias = None
    if affine:
        za = rng.integers(0 if a.dtype == np.uint8 else -128, 256 if a.dtype == np.uint8 else 128, m if seed % 2 else ())
        zb = rng.integers(-128, 128, n if seed % 3 else ())
        bias = rng.integers(-2**31, 2**31, n).astype(np.int32)
    out = on_every_path(lambda: gemm(a, b, bias=bias, a_zero_point=za, b_zero_point=zb))
    assert out.dtype == np.int32 and out.shape == (m, n)
    np.testing.assert_array_equal(out, wrap32(reference(a, b, za, zb, bias)))


@pytest.mark.parametrize("av,bv", [(-128, -128), (127, 127), (-128, 127), (127, -128), (0, -128)])
def test_extreme_values(av, bv):
    m, k, n = 13, 1000, 37
    a = np.full((m, k), av, np.int8)
    b = np.full((k, n), bv, np.int8)
    out = on_every_path(lambda: gemm(a, b))
    np.testing.assert_array_equal(out, np.full((m, n), av * bv * k, np.int32))


def test_uint8_extremes_with_zero_points():
    a = np.full((7, 300), 255, np.uint8)
    a[::2] = 0
    b = np.full((300, 19), -128, np.int8)
    b[:, ::3] = 127
    za = np.arange(7) * 30
    out = on_every_path(lambda: gemm(a, b, a_zero_point=za, b_zero_point=-128))
    np.testing.assert_array_equal(out, wrap32(reference(a, b, za, -128)))


def test_blocked_sizes_cross_k_and_tile_boundaries():
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (301, 1100)).astype(np.int8)
    b = rng.integers(-128, 128, (1100, 273)).astype(np.int8)
    expected = wrap32(a.astype(np.int64) @ b.astype(np.int64))
    np.testing.assert_array_equal(on_every_path(lambda: gemm(a, b)), expected)
    a7 = np.abs(a.astype(np.int16)).clip(0, 127).astype(np.int8)
    np.testing.assert_array_equal(on_every_path(lambda: gemm(a7, b)), wrap32(a7.astype(np.int64) @ b.astype(np.int64)))


def test_packed_weights_equal_unpacked():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (20, 45)).astype(np.uint8)
    b = rng.integers(-128, 128, (45, 33)).astype(np.int8)
    packed = pack_weights(b)
    for _ in range(2):
        np.testing.assert_array_equal(gemm(a, packed, a_zero_point=128), gemm(a, b, a_zero_point=128))


@needs_vnni
def test_vnni_path_is_selected_and_switchable():
    set_kernel_path("auto")
    assert get_kernel_path() == "vnni" and _kernels.vnni_enabled()
    set_kernel_path("avx2")
    assert get_kernel_path() == "avx2" and not _kernels.vnni_enabled()
    set_kernel_path("vnni")
    assert _kernels.vnni_enabled()


@pytest.mark.parametrize("dtype, lo, hi", [(np.int8, -128, 128), (np.int8, 0, 128), (np.uint8, 0, 256)])
def test_vnni_equals_avx2_and_portable_on_large_blocked_data(dtype, lo, hi):
    """Several K blocks, column tiles of odd panel counts and 2 threads (work large enough for both)."""
    rng = np.random.default_rng(21)
    a = rng.integers(lo, hi, (127, 1300)).astype(dtype)
    b = rng.integers(-128, 128, (1300, 200)).astype(np.int8)
    za = rng.integers(lo, hi, 127)
    out = on_every_path(lambda: gemm(a, b, a_zero_point=za, b_zero_point=-3))
    np.testing.assert_array_equal(out, wrap32(reference(a, b, za, -3)))


@pytest.mark.parametrize("m, k, n", [(126, 1300, 192), (131, 1300, 200), (61, 40, 48), (5, 600, 64), (97, 577, 16)])
@pytest.mark.parametrize("dtype, za, with_bias", [(np.int8, 0, False), (np.int8, -7, True), (np.uint8, 0, False),
                                                  (np.uint8, 0, True), (np.uint8, 200, True)])
def test_direct_store_into_the_output(m, k, n, dtype, za, with_bias):
    """Without a requantizer, per-row or B zero points, the VNNI driver stores whole micro-blocks
    straight into the output, the per-column term (bias, folded A zero point) added in the last K
    block's store; partial row panels (m not a multiple of 6), widths that are not whole panels and
    several K blocks (K > 1024 on VNNI, > 576 otherwise) take the mixed routes."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(m * k + n)
    a = rng.integers(info.min, info.max + 1, (m, k)).astype(dtype)
    a[::7] = info.max
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bias = rng.integers(-2**31, 2**31, n).astype(np.int32) if with_bias else None
    packed = pack_weights(b)
    out = on_every_path(lambda: gemm(a, packed, bias=bias, a_zero_point=za))
    np.testing.assert_array_equal(out, wrap32(reference(a, b, za, 0, bias)))


# K at and past the int32 boundary: all -128 x -128 gives K * 2^14, which reaches 2^31 at K = 2^17.
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k", [2**17 - 1, 2**17, 2**17 + 5])
def test_overflow_policies_at_the_int32_boundary(k, path):
    set_kernel_path(path)
    a = np.full((2, k), -128, np.int8)
    b = np.full((k, 3), -128, np.int8)
    exact = k * 2**14
    fits = exact <= 2**31 - 1
    np.testing.assert_array_equal(gemm(a, b), np.full((2, 3), wrap32(exact)))
    np.testing.assert_array_equal(gemm(a, b, overflow="saturate"), np.full((2, 3), min(exact, 2**31 - 1)))
    if fits:
        np.testing.assert_array_equal(gemm(a, b, overflow="raise"), np.full((2, 3), exact))
    else:
        with pytest.raises(AccumulatorOverflowError, match=r"\(0, 0\).*" + str(exact)):
            gemm(a, b, overflow="raise")


# uint8 255 x int8 -128 gives -32640 K, below -2^31 from K = 65794 on (the full uint8 range on VNNI).
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k", [65793, 65794])
def test_uint8_overflow_policies_at_the_int32_boundary(k, path):
    set_kernel_path(path)
    a = np.full((1, k), 255, np.uint8)
    b = np.full((k, 2), -128, np.int8)
    b[:, 1] = 127
    exact = np.array([-32640 * k, 255 * 127 * k])
    np.testing.assert_array_equal(gemm(a, b)[0], wrap32(exact))
    np.testing.assert_array_equal(gemm(a, b, overflow="saturate")[0], np.clip(exact, -2**31, 2**31 - 1))
    if k == 65793:  # both fit
        np.testing.assert_array_equal(gemm(a, b, overflow="raise")[0], exact)
    else:
        with pytest.raises(AccumulatorOverflowError, match=r"\(0, 0\)"):
            gemm(a, b, overflow="raise")


# int8 A enters vpdpbusd as A + 128: all 127 x 127 at K = 2^17 - 1 fits int32 (so the bound keeps the
# fast int32 path under saturate/raise) although the offset sums 255 * 127 * K do not.
@pytest.mark.parametrize("path", PATHS)
def test_offset_form_wraps_inside_but_the_exact_result_fits(path):
    set_kernel_path(path)
    k = 2**17 - 1
    a = np.full((3, k), 127, np.int8)
    a[1] = -128
    b = np.full((k, 2), 127, np.int8)
    b[:, 1] = -128
    exact = reference(a[:, :4], b[:4]) // 4 * k
    assert np.abs(exact).max() <= 2**31 - 1 < 255 * 127 * k
    for overflow in ("wrap", "saturate", "raise"):
        np.testing.assert_array_equal(gemm(a, b, overflow=overflow), exact)


def test_overflow_saturates_each_output_and_counts_the_bias():
    k = 2**17 + 1
    a = np.full((1, k), -128, np.int8)
    b = np.empty((k, 3), np.int8)
    b[:, 0], b[:, 1], b[:, 2] = -128, 127, 1
    bias = np.array([0, -2**30, -2**31], np.int32)
    exact = np.array([k * 2**14, -128 * 127 * k - 2**30, -128 * k - 2**31])
    for path in PATHS:
        set_kernel_path(path)
        np.testing.assert_array_equal(gemm(a, b, overflow="saturate", bias=bias)[0], np.clip(exact, -2**31, 2**31 - 1))
        np.testing.assert_array_equal(gemm(a, b, bias=bias)[0], wrap32(exact))
    with pytest.raises(AccumulatorOverflowError, match=r"\(0, 0\)"):
        gemm(a, b, overflow="raise", bias=bias)
    b[:, 0] = 0
    with pytest.raises(AccumulatorOverflowError, match=r"\(0, 1\)"):
        gemm(a, b, overflow="raise", bias=bias)


def test_int16_accumulates_in_int64():
    rng = np.random.default_rng(5)
    a = rng.integers(-2**15, 2**15, (9, 40)).astype(np.int16)
    b = rng.integers(-2**15, 2**15, (40, 11)).astype(np.int16)
    a[0], b[:, 0] = -2**15, -2**15  # (-32768)^2 * 40 needs more than 32 bits
    za, zb = rng.integers(-2**15, 2**15, 9), 77
    bias = rng.integers(-2**31, 2**31, 11).astype(np.int32)
    out = on_every_path(lambda: gemm(a, b, a_zero_point=za, b_zero_point=zb, bias=bias))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, reference(a, b, za, zb, bias))
    assert np.abs(out).max() > 2**31  # the int64 accumulator is needed


@pytest.mark.parametrize("make", [
    lambda n: Requantizer.fp32(np.linspace(1e-4, 3e-3, n), zero_point=3, dtype=np.int8),
    lambda n: Requantizer.pow2_shift(np.arange(n) % 9, rounding="Convergent", dtype=np.int16),
    lambda n: Requantizer.gemmlowp(0.0123, zero_point=-5, dtype=np.int8, clamp=(-5, 127)),
    lambda n: Requantizer.ruy(np.linspace(0.001, 0.02, n), zero_point=128, dtype=np.uint8),
])
def test_fused_requantizer_equals_requantizing_the_int32_result(make):
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, (33, 71)).astype(np.int8)
    b = rng.integers(-128, 128, (71, 29)).astype(np.int8)
    bias = rng.integers(-5000, 5000, 29).astype(np.int32)
    rq = make(29)
    fused = on_every_path(lambda: gemm(a, b, bias=bias, a_zero_point=3, requantizer=rq))
    assert fused.dtype == rq.dtype
    np.testing.assert_array_equal(fused, rq(gemm(a, b, bias=bias, a_zero_point=3), channel_axis=1))


@pytest.mark.parametrize("m, k, n", [(37, 64, 29), (6, 576, 16), (131, 200, 75), (20, 700, 33), (20, 1100, 33)])
@pytest.mark.parametrize("a_dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("make", [
    lambda n: Requantizer.fp32(0.5, zero_point=0, dtype=np.int8),  # ties: x.5 rounds to even
    lambda n: Requantizer.fp32(np.linspace(1e-4, 3e-3, n), zero_point=128, dtype=np.uint8, clamp=(128, 200)),
    lambda n: Requantizer.fp32(np.linspace(0.01, 2.0, n), zero_point=-300, dtype=np.int16),
])
def test_fp32_requantizer_in_the_kernel_store(m, k, n, a_dtype, make):
    """On a VNNI CPU, ONNX Runtime's requantization into 8/16-bit words runs in the micro-kernel's
    final store when K is one block (K <= 1024): per-tensor and per-column scales, clamps, rounding
    ties, rows not a multiple of 6 and columns not a multiple of 16; K = 1100 takes the tile copy."""
    info = np.iinfo(a_dtype)
    rng = np.random.default_rng(m + k + n)
    a = rng.integers(info.min, info.max + 1, (m, k)).astype(a_dtype)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bias = rng.integers(-20000, 20000, n).astype(np.int32)
    rq = make(n)
    for za, zb in ((0, 0), (int(info.max), 0), (0, 5)):
        fused = on_every_path(lambda: gemm(a, b, bias=bias, a_zero_point=za, b_zero_point=zb, requantizer=rq))
        assert fused.dtype == rq.dtype
        exact = wrap32(reference(a, b, za, zb, bias)).astype(np.int32)
        np.testing.assert_array_equal(fused, rq(exact, channel_axis=1))


@pytest.mark.parametrize("a_dtype, za", [(np.int8, -128), (np.int8, 0), (np.int8, 127), (np.uint8, 0), (np.uint8, 255)])
def test_the_common_call_route_equals_the_reference(a_dtype, za):
    """gemm(a, packed, bias=int32, scalar zero points) skips the general argument handling; the
    zero points' cached arrays stay unchanged across calls, and out-of-range values still raise."""
    info = np.iinfo(a_dtype)
    rng = np.random.default_rng(za + 1000)
    a = rng.integers(info.min, info.max + 1, (19, 45)).astype(a_dtype)
    b = rng.integers(-128, 128, (45, 21)).astype(np.int8)
    bias = rng.integers(-2**31, 2**31, 21).astype(np.int32)
    packed = pack_weights(b)
    for zb in (0, -128, 127):
        for bias_arg in (None, bias, bias.astype(np.int64)):
            for _ in range(2):
                out = gemm(a, packed, bias=bias_arg, a_zero_point=za, b_zero_point=zb)
                np.testing.assert_array_equal(out, wrap32(reference(a, b, za, zb, bias_arg)))
    with pytest.raises(ValueError, match="a_zero_point"):
        gemm(a, packed, a_zero_point=info.max + 1)
    with pytest.raises(ValueError, match="b_zero_point"):
        gemm(a, packed, b_zero_point=128)


@pytest.mark.parametrize("m, k", [(7, 64), (13, 66), (700, 512), (3000, 100), (2, 140000)])
@pytest.mark.parametrize("negative_at", [None, "first", "last", "middle"])
def test_non_negative_int8_read_in_place(m, k, negative_at):
    """On a VNNI CPU an int8 A whose bytes are all >= 0 is the uint8 A as it is (read in place when K is
    a multiple of 4); one negative byte anywhere (the check runs in 256 KB chunks on 2 threads for
    large A) sends the whole call through the A + 128 route. Zero points, bias, and K = 140000 for the
    saturate policy's K chunks (its exact result may leave int32)."""
    rng = np.random.default_rng(m * k)
    a = rng.integers(0, 128, (m, k)).astype(np.int8)
    if negative_at:
        flat = a.reshape(-1)
        flat[{"first": 0, "last": flat.size - 1, "middle": flat.size * 2 // 3}[negative_at]] = -128
    b = rng.integers(-128, 128, (k, 24)).astype(np.int8)
    bias = rng.integers(-2**20, 2**20, 24).astype(np.int32)
    packed = pack_weights(b)
    for za, zb in ((0, 0), (5, 0), (0, -7)):
        out = on_every_path(lambda: gemm(a, packed, bias=bias, a_zero_point=za, b_zero_point=zb))
        np.testing.assert_array_equal(out, wrap32(reference(a, b, za, zb, bias)))
    np.testing.assert_array_equal(gemm(a, packed, overflow="saturate"), reference(a, b))


@pytest.mark.parametrize("m, k, n", [(1, 4, 1), (37, 256, 29), (256, 256, 256), (61, 1300, 48)])
@pytest.mark.parametrize("zb", [0, -128, 127, "per column"])
@pytest.mark.parametrize("za", [0, -128, "per row"])
def test_full_range_int8_against_b_plus_128(m, k, n, zb, za):
    """On a VNNI CPU a full-range int8 A with K a multiple of 4 is read in place as the signed operand
    against B + 128 (packed once), with the B zero point zb + 128 and a per-row term from A's row
    sums: zb = -128 makes that term vanish, per-column zb and per-row za take the tile copy."""
    rng = np.random.default_rng(m + k + n)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    a[0] = -128
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    b[:, 0] = 127
    zb = rng.integers(-128, 128, n) if zb == "per column" else zb
    za = rng.integers(-128, 128, m) if za == "per row" else za
    bias = rng.integers(-2**31, 2**31, n).astype(np.int32)
    packed = pack_weights(b)
    out = on_every_path(lambda: gemm(a, packed, bias=bias, a_zero_point=za, b_zero_point=zb))
    np.testing.assert_array_equal(out, wrap32(reference(a, b, za, zb, bias)))


@pytest.mark.parametrize("m, k, n", [(250, 512, 600), (131, 1100, 40), (131, 800, 40), (65, 4, 17)])
@pytest.mark.parametrize("requantized", [False, True])
def test_full_range_int8_row_terms_computed_per_tile(m, k, n, requantized):
    """The per-row term -(zb + 128) * rowsum(A) of a full-range int8 A (one B zero point) is computed
    by each tile for its own rows: tiles of more than 64 rows, several column tiles sharing rows,
    K = 1100 (two K blocks: the fp32 requantizer then takes the tile copy, which computes the term
    per row), and requantization in the kernel's store (one K block: K <= 1024 on VNNI)."""
    rng = np.random.default_rng(m * n + k)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    a[-1] = -128
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    bias = rng.integers(-2**20, 2**20, n).astype(np.int32)
    packed = pack_weights(b)
    rq = Requantizer.fp32(np.linspace(1e-4, 2e-3, n), zero_point=3, dtype=np.int8) if requantized else None
    for za, zb in ((0, 1), (-128, 127), (17, -127)):
        out = on_every_path(lambda: gemm(a, packed, bias=bias, a_zero_point=za, b_zero_point=zb, requantizer=rq))
        exact = wrap32(reference(a, b, za, zb, bias))
        np.testing.assert_array_equal(out, rq(exact, channel_axis=1) if requantized else exact)


def test_common_call_route_honours_force_portable_environment(monkeypatch):
    """FIXEDPOINT_FORCE_PORTABLE, read at every call, is checked by the compiled call on the common
    route (which passes the path setting alone); "" and "0" leave the setting in force."""
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (23, 64)).astype(np.int8)
    b = rng.integers(-128, 128, (64, 19)).astype(np.int8)
    packed = pack_weights(b)
    expected = wrap32(reference(a, b, 3, -4))
    for value in ("1", "0", "", "yes"):
        monkeypatch.setenv("FIXEDPOINT_FORCE_PORTABLE", value)
        np.testing.assert_array_equal(gemm(a, packed, a_zero_point=3, b_zero_point=-4), expected)


def test_non_contiguous_inputs_and_out():
    rng = np.random.default_rng(2)
    big = rng.integers(-128, 128, (40, 60)).astype(np.int8)
    a = big[::2, 1:41:2]                       # strided view, (20, 20)
    b = np.asfortranarray(big[:20, 30:45])     # Fortran order, (20, 15)
    expected = wrap32(reference(a, b))
    np.testing.assert_array_equal(gemm(a, b), expected)
    out = np.empty((20, 15), np.int32)
    assert gemm(a, b, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_out_is_written_in_place_or_through_a_copy_when_it_overlaps_an_input():
    """A C-contiguous `out` receives the result directly (fast route, general route, requantized,
    saturating); an `out` that is a strided view or shares memory with `a` or the bias gets the same
    values through a copy."""
    rng = np.random.default_rng(8)
    a = rng.integers(-128, 128, (37, 50)).astype(np.int8)
    b = rng.integers(-128, 128, (50, 24)).astype(np.int8)
    bias = rng.integers(-2**20, 2**20, 24).astype(np.int32)
    packed = pack_weights(b)
    exact = wrap32(reference(a, b, 3, -2, bias))
    rq = Requantizer.fp32(np.linspace(1e-4, 1e-3, 24), zero_point=5, dtype=np.int8)
    calls = [(lambda o: gemm(a, packed, bias=bias, a_zero_point=3, b_zero_point=-2, out=o), np.int32, exact),
             (lambda o: gemm(a, b, bias=bias, a_zero_point=3, b_zero_point=-2, out=o), np.int32, exact),
             (lambda o: gemm(a, packed, bias=bias, a_zero_point=3, b_zero_point=-2, overflow="saturate", out=o),
              np.int32, exact),
             (lambda o: gemm(a, packed, bias=bias, a_zero_point=3, b_zero_point=-2, requantizer=rq, out=o), np.int8,
              rq(exact, channel_axis=1))]
    for call, dtype, expected in calls:
        out = np.full((37, 24), 99, dtype)
        assert call(out) is out
        np.testing.assert_array_equal(out, expected)
        wide = np.full((37, 48), 99, dtype)
        assert call(wide[:, ::2]) is not None
        np.testing.assert_array_equal(wide[:, ::2], expected)
        np.testing.assert_array_equal(wide[:, 1::2], 99)
    # out over a's own bytes: the kernel must not read what it has already written
    buf = np.zeros(37 * 50 + 37 * 24 * 4, np.uint8)
    a_in = buf[:37 * 50].view(np.int8).reshape(37, 50)
    a_in[...] = a
    over = buf[:37 * 24 * 4].view(np.int32).reshape(37, 24)
    assert gemm(a_in, packed, bias=bias, a_zero_point=3, b_zero_point=-2, out=over) is over
    np.testing.assert_array_equal(over, exact)
    with pytest.raises(ValueError, match=r"out must be an array of shape \(37, 24\) dtype int8"):
        gemm(a, packed, requantizer=rq, out=np.zeros((37, 24), np.int32))
    with pytest.raises(ValueError, match="out"):
        gemm(a, packed, out=np.zeros((24, 37), np.int32))


@pytest.mark.parametrize("call, message", [
    (lambda: gemm(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.int8)), "a must have dtype"),
    (lambda: gemm(np.zeros((2, 3, 1), np.int8), np.zeros((3, 2), np.int8)), "a must be 2-D"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8)), "K = 3"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.float32)), "b must have dtype int8 or uint8"),
    (lambda: gemm(np.zeros((2, 3), np.int8), [[1, 2]]), "b must be a numpy array"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), a_zero_point=200), "a_zero_point"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), b_zero_point=[1, 2, 3]), "b_zero_point"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), bias=np.zeros(3, np.int32)), "bias"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), overflow="clip"), "overflow"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), out=np.zeros((2, 2), np.int64)), "out"),
    (lambda: gemm(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), requantizer=Requantizer.fp32([1.0] * 3)),
     "3 per-channel"),
    (lambda: gemm(np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int8)), "b must have dtype int16"),
    (lambda: pack_weights(np.zeros((3, 2, 1), np.int8)), "2-D"),
])
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
