"""fi speed against its peers, each baseline measured in the same run.

    python -m pytest bench/bench_fi.py --benchmark-only
    python bench/fi_table.py            # the same cases as a markdown table of medians and ratios

Cases: cast of 1M float64 to s16,12 (Nearest/Saturate), add and multiply of two 1M s16,12 arrays,
and a 256×256 @ 256×256 s8,7 matrix product. Peers (APyTypes, fxpmath) are optional: a case whose
library is missing is skipped. fxpmath's element-wise cases run on FXPMATH_N values and their time is
scaled to N; its matrix product runs at full size.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np
import pytest

N = 1_000_000
FXPMATH_N = 10_000
MATRIX = 256


@dataclass(frozen=True)
class Case:
    group: str                      # cases in one group do the same work
    name: str
    make: Callable[[], Callable]    # set-up (untimed) → the timed call
    requires: Tuple[str, ...] = ()
    scale: float = 1.0              # multiply the measured time by this to compare at size N

    @property
    def available(self) -> bool:
        return all(importlib.util.find_spec(module) for module in self.requires)


def _data(n=N):
    rng = np.random.default_rng(0)
    return rng.standard_normal(n) * 4, rng.standard_normal(n) * 4


def _matrices():
    rng = np.random.default_rng(1)
    return rng.uniform(-1, 1, (MATRIX, MATRIX)), rng.uniform(-1, 1, (MATRIX, MATRIX))


# --- ours ---------------------------------------------------------------------------------------

def _fp_cast():
    import fixedpoint as fp
    x, _ = _data()
    return lambda: fp.fi(x, 1, 16, 12)


def _fp_binary(op):
    def make():
        import fixedpoint as fp
        x, y = _data()
        a, b = fp.fi(x, 1, 16, 12), fp.fi(y, 1, 16, 12)
        return lambda: op(a, b)
    return make


def _fp_matmul():
    import fixedpoint as fp
    x, y = _matrices()
    a, b = fp.fi(x, 1, 8, 7), fp.fi(y, 1, 8, 7)
    return lambda: a @ b


# --- numpy ----------------------------------------------------------------------------------------

def _np_cast():
    x, _ = _data()
    return lambda: np.clip(np.round(x * 4096), -32768, 32767).astype(np.int16)


def _np_int(op):
    def make():
        x, y = _data()
        a, b = (np.round(v * 4096).astype(np.int64) for v in (x, y))
        return lambda: op(a, b)
    return make


def _np_float32_matmul():
    x, y = (m.astype(np.float32) for m in _matrices())
    return lambda: x @ y


# --- APyTypes --------------------------------------------------------------------------------------

def _apy_cast_nearest_saturate():
    from apytypes import APyFixedArray, OverflowMode, QuantizationMode
    x, _ = _data()
    # Nearest (ties toward +inf) needs the exact double first: a 64-bit intermediate, then a cast.
    return lambda: APyFixedArray.from_float(x, int_bits=12, frac_bits=52).cast(
        int_bits=4, frac_bits=12, quantization=QuantizationMode.TIES_POS,
        overflow=OverflowMode.SAT)


def _apy_cast_round_wrap():
    from apytypes import APyFixedArray
    x, _ = _data()
    return lambda: APyFixedArray.from_float(x, int_bits=4, frac_bits=12)


def _apy_binary(op):
    def make():
        from apytypes import APyFixedArray
        x, y = _data()
        a, b = (APyFixedArray.from_float(v, int_bits=4, frac_bits=12) for v in (x, y))
        return lambda: op(a, b)
    return make


def _apy_matmul():
    from apytypes import APyFixedArray
    a, b = (APyFixedArray.from_float(m, int_bits=1, frac_bits=7) for m in _matrices())
    return lambda: a @ b


# --- fxpmath ---------------------------------------------------------------------------------------

def _fxp(values):
    from fxpmath import Fxp
    return Fxp(values, signed=True, n_word=16, n_frac=12, rounding="around", overflow="saturate")


def _fxp_cast():
    x, _ = _data(FXPMATH_N)
    return lambda: _fxp(x)


def _fxp_binary(op):
    def make():
        x, y = _data(FXPMATH_N)
        a, b = _fxp(x), _fxp(y)
        return lambda: op(a, b)
    return make


def _fxp_matmul():
    x, y = _matrices()
    from fxpmath import Fxp
    a, b = (Fxp(m, signed=True, n_word=8, n_frac=7) for m in (x, y))
    return lambda: a.dot(b)


def _add(a, b):
    return a + b


def _mul(a, b):
    return a * b


FXPMATH_SCALE = N / FXPMATH_N

CASES = [
    Case("cast 1M → s16,12", "fixedpoint fi (Nearest/Saturate)", _fp_cast, ("fixedpoint.fi",)),
    Case("cast 1M → s16,12", "numpy clip(round(x*4096)).astype(int16)", _np_cast),
    Case("cast 1M → s16,12", "APyTypes Nearest/Saturate", _apy_cast_nearest_saturate,
         ("apytypes",)),
    Case("cast 1M → s16,12", "APyTypes Round/Wrap", _apy_cast_round_wrap, ("apytypes",)),
    Case("cast 1M → s16,12", "fxpmath (scaled)", _fxp_cast, ("fxpmath",), FXPMATH_SCALE),
    Case("add 1M s16,12", "fixedpoint fi", _fp_binary(_add), ("fixedpoint.fi",)),
    Case("add 1M s16,12", "numpy int64", _np_int(_add)),
    Case("add 1M s16,12", "APyTypes", _apy_binary(_add), ("apytypes",)),
    Case("add 1M s16,12", "fxpmath (scaled)", _fxp_binary(_add), ("fxpmath",), FXPMATH_SCALE),
    Case("multiply 1M s16,12", "fixedpoint fi", _fp_binary(_mul), ("fixedpoint.fi",)),
    Case("multiply 1M s16,12", "numpy int64", _np_int(_mul)),
    Case("multiply 1M s16,12", "APyTypes", _apy_binary(_mul), ("apytypes",)),
    Case("multiply 1M s16,12", "fxpmath (scaled)", _fxp_binary(_mul), ("fxpmath",),
         FXPMATH_SCALE),
    Case("matmul 256³ s8,7", "fixedpoint fi", _fp_matmul, ("fixedpoint.fi",)),
    Case("matmul 256³ s8,7", "numpy float32 BLAS", _np_float32_matmul),
    Case("matmul 256³ s8,7", "APyTypes", _apy_matmul, ("apytypes",)),
    Case("matmul 256³ s8,7", "fxpmath dot", _fxp_matmul, ("fxpmath",)),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group} | {c.name}" for c in CASES])
def test_fi_speed(benchmark, case):
    if not case.available:
        pytest.skip(f"{case.requires} not importable")
    timed = case.make()
    benchmark.group = case.group
    benchmark.extra_info["scale_to_N"] = case.scale
    benchmark(timed)
