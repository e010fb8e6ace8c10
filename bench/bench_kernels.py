"""pytest-benchmark cases of the exact GEMM/conv kernels and their ONNX Runtime / numpy baselines, on
the issue's shapes, at 1 and 2 threads. Compare within one run (the machine may be shared):

    python -m pytest bench/bench_kernels.py --benchmark-only --benchmark-group-by=param:shape,param:threads

bench/kernels_table.py prints the same comparison as GOPS in a markdown table.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import kernels_table as table  # noqa: E402

from fixedpoint import kernels  # noqa: E402

THREADS = [1, 2]


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}thr")
def threads(request):
    saved = kernels.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(saved)


def run_case(benchmark, cases, name, threads):
    fn = cases[name](threads)
    if fn is None:
        pytest.skip("onnxruntime is not installed")
    benchmark(fn)


# The case names of kernels_table (the same for every shape), so that the two cannot drift apart.
GEMM_CASES = list(table.gemm_cases(*table.GEMM_SHAPES[0], np.random.default_rng(0)))


@pytest.mark.parametrize("name", GEMM_CASES)
@pytest.mark.parametrize("shape", table.GEMM_SHAPES, ids=lambda s: "M{}_K{}_N{}".format(*s))
def test_gemm(benchmark, shape, name, threads):
    cases = table.gemm_cases(*shape, np.random.default_rng(0))
    if name not in cases:
        pytest.skip(f"{name} is not timed at this shape (kernels_table.gemm_cases)")
    run_case(benchmark, cases, name, threads)


CONV_CASES = {name: i for i, (_, _, cases) in enumerate(table.conv_rows(np.random.default_rng(0))) for name in cases}


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv(benchmark, name, threads):
    rows = table.conv_rows(np.random.default_rng(0))
    run_case(benchmark, rows[CONV_CASES[name]][2], name, threads)
