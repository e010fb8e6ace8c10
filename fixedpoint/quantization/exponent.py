"""Power-of-two exponent selection for signed 8-bit scaled integers (spec B.3).

Everything here works on fraction lengths `f` (the exponent is `E = -f`). `MinMax` is fi's
best-precision rule for the calibrated [min, max]; `Histogram` is our documented, deterministic
approximation of MATLAB's unpublished distribution-based scheme (docs/quantization.md, spec Q11).
"""
from __future__ import annotations

import math

import numpy as np

# Histograms of k = ceil(log2 |x|) keep one bin per power of two in [K_MIN, K_MAX]; magnitudes
# outside are counted in the end bins. float32 spans 2^-149 .. 2^128, int8 windows a few bits wide.
K_MIN, K_MAX = -64, 64
NUM_BINS = K_MAX - K_MIN + 1

EXPONENT_SCHEMES = ("MinMax", "Histogram")
DEFAULT_HISTOGRAM_THRESHOLD = 1e-4


def floor_log2(m: float) -> int:
    """floor(log2 m) of a positive float, exactly (no floating-point log)."""
    mantissa, e = math.frexp(m)  # m = mantissa * 2^e, 0.5 <= mantissa < 1
    return e - 1


def ceil_log2(m: float) -> int:
    """ceil(log2 m) of a positive float, exactly."""
    mantissa, e = math.frexp(m)
    return e - 1 if mantissa == 0.5 else e


def minmax_fraction_length(min_value: float, max_value: float, word_length: int = 8) -> int:
    """Best-precision fraction length of a signed `word_length`-bit type holding [min, max]:
    the largest f with max <= (2^(w-1) - 1)·2^-f (up to rounding) and min >= -2^(w-1)·2^-f."""
    candidates = []
    if max_value > 0:
        candidates.append(word_length - 2 - floor_log2(float(max_value)))
    if min_value < 0:
        candidates.append(word_length - 1 - ceil_log2(-float(min_value)))
    return min(candidates) if candidates else word_length - 1


def log2_bins(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(counts per k = ceil(log2|x|) over [K_MIN, K_MAX], number of zeros) of an array."""
    magnitudes = np.abs(np.asarray(values, dtype=np.float64).ravel())
    nonzero = magnitudes[magnitudes > 0]
    mantissa, e = np.frexp(nonzero)
    k = np.clip(e - (mantissa == 0.5), K_MIN, K_MAX)
    return np.bincount(k - K_MIN, minlength=NUM_BINS).astype(np.int64), int(magnitudes.size - nonzero.size)


def overflow_fraction(counts: np.ndarray, zeros: int, fraction_length: int,
                      word_length: int = 8) -> float:
    """Fraction of values whose bin lies above the window of (s, w, f): k > w - 1 - f."""
    total = int(counts.sum()) + zeros
    if total == 0:
        return 0.0
    first_over = word_length - 1 - fraction_length + 1 - K_MIN
    return float(counts[max(first_over, 0):].sum()) / total


def histogram_fraction_length(counts: np.ndarray, zeros: int, minmax_f: int,
                              threshold: float = DEFAULT_HISTOGRAM_THRESHOLD,
                              word_length: int = 8, search_bits: int = 8) -> int:
    """The finest fraction length in [minmax_f, minmax_f + search_bits] whose overflow fraction is
    at most `threshold` (outliers may saturate); minmax_f when none qualifies."""
    if not 0 <= threshold < 1:
        raise ValueError(f"histogram threshold must be in [0, 1), got {threshold!r}")
    for f in range(minmax_f + search_bits, minmax_f, -1):
        if overflow_fraction(counts, zeros, f, word_length) <= threshold:
            return f
    return minmax_f


def choose_fraction_length(scheme: str, min_value: float, max_value: float, counts=None,
                           zeros: int = 0, threshold: float = DEFAULT_HISTOGRAM_THRESHOLD,
                           word_length: int = 8) -> int:
    """Fraction length of one entity under an exponent scheme."""
    f = minmax_fraction_length(min_value, max_value, word_length)
    if scheme == "MinMax":
        return f
    if scheme == "Histogram":
        return histogram_fraction_length(counts, zeros, f, threshold, word_length)
    raise ValueError(f"exponent_scheme must be one of {', '.join(EXPONENT_SCHEMES)}, got {scheme!r}")
