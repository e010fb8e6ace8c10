"""Exponent selection (spec B.3) and calibration statistics, against exact rational references."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fixedpoint.quantization.calibration import TensorStatistics, iterate_batches
from fixedpoint.quantization.exponent import (K_MIN, ceil_log2, choose_fraction_length, floor_log2,
                                              histogram_fraction_length, log2_bins,
                                              minmax_fraction_length, overflow_fraction)
from fixedpoint.quantization.targets import TARGETS, get_target


@pytest.mark.parametrize("low, high, expected", [
    (-0.91985, 0.88489, 7), (0.0, 6.0, 4), (-1.5, 300.2, -2), (-128.0, 100.0, 0), (0.0, 0.0, 7),
    (-1.0, 0.0, 7), (-1.0000001, 0.0, 6), (0.0, 1.0, 6), (0.0, 0.99, 7), (-2.0 ** -20, 2.0 ** -21, 27),
])
def test_minmax_matches_the_spec_table(low, high, expected):
    assert minmax_fraction_length(low, high) == expected


def _fits(low, high, f):
    """Exact check that [low, high] lies in the representable range of s8,f (rational arithmetic;
    values up to half an LSB above the top are allowed, as best precision ignores rounding)."""
    step = Fraction(2) ** -f
    return Fraction(low) >= -128 * step and Fraction(high) < 128 * step


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 0, allow_nan=False, width=32), st.floats(0, 1e6, allow_nan=False, width=32))
def test_minmax_is_the_finest_fraction_length_that_fits(low, high):
    f = minmax_fraction_length(low, high)
    if low == 0 and high == 0:
        assert f == 7
        return
    assert _fits(low, high, f)
    assert not _fits(low, high, f + 1)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-30, 1e30, allow_nan=False))
def test_log2_helpers_are_exact(m):
    k_floor, k_ceil = floor_log2(m), ceil_log2(m)
    assert Fraction(2) ** k_floor <= Fraction(m) < Fraction(2) ** (k_floor + 1)
    assert Fraction(2) ** (k_ceil - 1) < Fraction(m) <= Fraction(2) ** k_ceil


def test_log2_bins_counts_ceil_log2_of_magnitudes_and_zeros():
    values = np.array([0.0, 1.0, -1.0, 0.75, 0.5, 3.0, -4.0, 0.0, 2.0 ** -80], np.float32)
    counts, zeros = log2_bins(values)
    assert zeros == 2
    expected = {0: 3, -1: 1, 2: 2, K_MIN: 1}  # 1, 1, 0.75 -> 0; 0.5 -> -1; 3, 4 -> 2; tiny -> K_MIN
    assert {k + K_MIN: int(c) for k, c in enumerate(counts) if c} == expected


def test_histogram_scheme_saturates_rare_outliers_and_never_coarser_than_minmax():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(-0.1, 0.1, 100_000), [50.0]])
    counts, zeros = log2_bins(values)
    f_minmax = minmax_fraction_length(values.min(), values.max())
    assert f_minmax == 1
    # 1 outlier in 100001 is below the default threshold 1e-4: the window follows the bulk.
    f_hist = histogram_fraction_length(counts, zeros, f_minmax)
    assert f_hist == f_minmax + 8
    assert overflow_fraction(counts, zeros, f_hist) == pytest.approx(1 / 100_001)
    # With threshold 0 nothing may saturate: back to a window that holds the outlier's bin.
    strict = histogram_fraction_length(counts, zeros, f_minmax, threshold=0.0)
    assert overflow_fraction(counts, zeros, strict) == 0 and strict >= f_minmax
    assert choose_fraction_length("MinMax", values.min(), values.max(), counts, zeros) == f_minmax


def test_histogram_threshold_and_scheme_are_validated():
    counts, zeros = log2_bins(np.ones(4))
    with pytest.raises(ValueError, match="threshold"):
        histogram_fraction_length(counts, zeros, 6, threshold=1.5)
    with pytest.raises(ValueError, match="exponent_scheme.*'KL'"):
        choose_fraction_length("KL", 0.0, 1.0)


def test_tensor_statistics_stream_equals_one_shot():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(10, 3, 4, 4)).astype(np.float32)
    whole = TensorStatistics("l", "Activations", "l")
    whole.update(data)
    streamed = TensorStatistics("l", "Activations", "l")
    for batch in iterate_batches(data, 3):
        streamed.update(batch)
    assert (streamed.min_value, streamed.max_value) == (data.min(), data.max())
    assert np.array_equal(streamed.counts, whole.counts) and streamed.zeros == whole.zeros


def test_iterate_batches_accepts_pairs_and_iterables_and_rejects_bad_batch_size():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert [b.shape[0] for b in iterate_batches((x, np.zeros(5)), 2)] == [2, 2, 1]
    pairs = [(x[:3], None), (x[3:], None)]
    assert [b.shape[0] for b in iterate_batches(pairs, 100)] == [3, 2]
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_batches(x, 0))
    with pytest.raises(TypeError, match="data must be"):
        list(iterate_batches(3.0, 2))


def test_targets_are_table_entries():
    assert {t.target_library for t in TARGETS.values()} >= {"none", "cudnn", "fpga"}
    assert get_target("fpga").bias_dtype == "int32" and get_target("GPU").bias_dtype == "float32"
    assert get_target("MATLAB").rounding == "Round" and not get_target("CPU").can_quantize
    assert not get_target("FPGA").is_supported("Transpose") and get_target("MATLAB").is_supported("Transpose")
    with pytest.raises(ValueError, match="execution_environment.*'TPU'"):
        get_target("TPU")
