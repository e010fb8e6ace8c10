"""Running one kernel call on every code path and thread count (shared by the kernel tests).

A test module imports `restore_settings` (an autouse fixture: each test leaves the path and thread
settings as it found them) and calls `on_every_path(fn, paths)`, which asserts that every path and
1 or 2 threads give the same dtype and bits, and returns that result.
"""
import numpy as np
import pytest

from fixedpoint.kernels import get_num_threads, set_kernel_path, set_num_threads

# "vnni" falls back to "avx2" on a CPU without AVX-512 VNNI.
ALL_PATHS = ("vnni", "avx2", "exact16", "portable")


@pytest.fixture(autouse=True)
def restore_settings():
    threads = get_num_threads()
    yield
    set_kernel_path("auto")
    set_num_threads(threads)


def on_every_path(fn, paths=ALL_PATHS):
    """fn() on each code path with 1 and 2 threads; asserts all results are identical, returns one."""
    results = []
    for path in paths:
        set_kernel_path(path)
        for threads in (1, 2):
            set_num_threads(threads)
            results.append(fn())
    set_kernel_path("auto")
    for r in results[1:]:
        assert r.dtype == results[0].dtype
        np.testing.assert_array_equal(r, results[0])
    return results[0]
