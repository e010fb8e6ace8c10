"""The kernels' task pool: identical bits from concurrent callers, any thread count, and after fork().

The pool lets the calling thread take every task when a worker is slow to start, runs a second
concurrent caller on its own thread, and runs everything on the caller in a forked child (which has
no workers). Each of these must give exactly the single-threaded result and never hang.
"""
import multiprocessing
import threading

import numpy as np
import pytest

from fixedpoint import kernels


@pytest.fixture
def two_threads():
    saved = kernels.get_num_threads()
    kernels.set_num_threads(2)
    yield
    kernels.set_num_threads(saved)


def _cases():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (2, 16, 40, 40)).astype(np.uint8)
    dw = kernels.pack_weights(rng.integers(-128, 128, (16, 1, 3, 3)).astype(np.int8), groups=16)
    full = kernels.pack_weights(rng.integers(-128, 128, (32, 16, 3, 3)).astype(np.int8))
    a = rng.integers(-128, 128, (300, 200)).astype(np.int8)
    b = kernels.pack_weights(rng.integers(-128, 128, (200, 150)).astype(np.int8))
    xf = rng.standard_normal((8, 16, 10, 10)).astype(np.float32)
    return [
        lambda: kernels.conv2d(x, dw, padding=1, groups=16, x_zero_point=128),
        lambda: kernels.conv2d(x, full, padding=1, x_zero_point=3),
        lambda: kernels.gemm(a, b),
        lambda: kernels.max_pool2d(x, 3, stride=1, padding=1),
        lambda: kernels.quantize(np.repeat(xf.ravel(), 40), fraction_length=5, rounding="Convergent"),
    ]


def _single_threaded(cases):
    saved = kernels.get_num_threads()
    kernels.set_num_threads(1)
    try:
        return [case() for case in cases]
    finally:
        kernels.set_num_threads(saved)


def test_concurrent_callers_get_the_single_threaded_bits(two_threads):
    cases = _cases()
    expected = _single_threaded(cases)
    mismatches = []

    def caller(k):
        for i in range(40):
            j = (k + i) % len(cases)
            if not np.array_equal(cases[j](), expected[j]):
                mismatches.append((k, i, j))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a kernel call did not return"
    assert mismatches == []


def test_many_small_jobs_in_a_row(two_threads):
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (64, 64)).astype(np.int8)
    b = kernels.pack_weights(rng.integers(-128, 128, (64, 64)).astype(np.int8))
    big = rng.integers(-128, 128, (512, 512)).astype(np.int8)
    pbig = kernels.pack_weights(rng.integers(-128, 128, (512, 512)).astype(np.int8))
    expected_small, expected_big = _single_threaded([lambda: kernels.gemm(a, b), lambda: kernels.gemm(big, pbig)])
    for _ in range(200):   # alternate jobs that use the workers with ones that do not
        assert np.array_equal(kernels.gemm(big, pbig), expected_big)
        assert np.array_equal(kernels.gemm(a, b), expected_small)


def _child(queue):
    kernels.set_num_threads(2)
    cases = _cases()
    queue.put([case().tobytes() for case in cases])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork() here")
def test_a_forked_child_runs_the_kernels(two_threads):
    cases = _cases()
    for case in cases:     # start the parent's workers first
        case()
    expected = [r.tobytes() for r in _single_threaded(cases)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert got == expected


_AFFINITY_SCRIPT = r"""
import os, sys
import numpy as np
from fixedpoint import kernels

mode = sys.argv[1]
cpus = sorted(os.sched_getaffinity(0))
main = str(os.getpid())
rng = np.random.default_rng(3)
a = rng.integers(-128, 128, (256, 256)).astype(np.int8)
b = kernels.pack_weights(rng.integers(-128, 128, (256, 256)).astype(np.int8))
kernels.set_num_threads(1)
expected = kernels.gemm(a, b)
kernels.set_num_threads(2)
if mode == "pin-first":  # the workers start on one CPU: nowhere else to go
    os.sched_setaffinity(0, {cpus[0]})
assert np.array_equal(kernels.gemm(a, b), expected)  # starts the worker
os.sched_setaffinity(0, {cpus[0]})  # the caller (this thread only) on one CPU
if mode == "share-cpu":  # the worker forced onto the caller's CPU, as the scheduler did
    for _ in range(20):  # (after jobs that may already have moved it off that CPU once)
        assert np.array_equal(kernels.gemm(a, b), expected)
    for tid in os.listdir("/proc/self/task"):
        if tid != main:
            os.sched_setaffinity(int(tid), {cpus[0]})
for _ in range(200):
    assert np.array_equal(kernels.gemm(a, b), expected)
for tid in os.listdir("/proc/self/task"):
    if tid != main:
        print(tid, ",".join(map(str, sorted(os.sched_getaffinity(int(tid))))))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity") or len(__import__("os").sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two CPUs")
@pytest.mark.parametrize("mode", ["pin-first", "pin-later", "share-cpu"])
def test_workers_leave_the_callers_cpu_but_not_their_starting_cpus(mode, tmp_path):
    """A worker on the caller's CPU (the first job after it was put there is joined there or not at
    all) is moved to the other CPUs it started with, also when it had been moved off that CPU before
    and someone put it back; a worker that started on the caller's only CPU stays; the bits stay the
    single-threaded ones throughout."""
    import os
    import subprocess
    import sys

    import fixedpoint

    cpus = sorted(os.sched_getaffinity(0))
    # The child imports the package this process imported (installed or built in place), not a
    # source tree that happens to be the working directory.
    package_parent = os.path.dirname(os.path.dirname(fixedpoint.__file__))
    done = subprocess.run([sys.executable, "-c", _AFFINITY_SCRIPT, mode], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=dict(os.environ, FIXEDPOINT_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1",
                                                 PYTHONPATH=package_parent))
    assert done.returncode == 0, done.stderr
    workers = [set(map(int, line.split()[1].split(","))) for line in done.stdout.split("\n") if line.strip()]
    assert len(workers) == 1, done.stdout  # one worker for two threads (OpenBLAS held to one thread)
    if mode == "pin-first":
        assert workers == [{cpus[0]}]
    elif mode == "share-cpu":
        assert workers == [set(cpus) - {cpus[0]}]
    else:  # moved only if the scheduler put it on the caller's CPU; never outside its starting CPUs
        assert workers[0] in (set(cpus), set(cpus) - {cpus[0]})
