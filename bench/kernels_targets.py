"""The integer kernels' speed targets, each measured as a *paired* ratio, so that a shared machine's
busy moments fall on both sides of a comparison instead of on one row of a table.

* "vs ceiling": each round times a short burst of the vpdpbusd register ceiling (bench/ceiling.py)
  and then the GEMM at the same thread count; the round's ratio is GEMM GOPS / that burst's GOPS.
  On a virtual machine whose second vCPU is sometimes shared on the host, both halve together.
* "vs ONNX Runtime": each round times a block of our calls and a block of the baseline's, in
  alternating order; the round's ratio is the baseline's median time over ours.

Each target prints the median ratio over rounds, the spread (min..max of the round ratios), and
whether the median meets the issue's threshold. kernels_table.py gives the absolute GOPS.

    PYTHONPATH=. python bench/kernels_targets.py [--rounds 15] [--calls 9] [--only gemm|conv]
"""
import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernels_table import CONV, DEPTHWISE, GEMM_SHAPES, median_time, ort_conv, ort_matmul_integer  # noqa: E402

from fixedpoint import _kernels, kernels  # noqa: E402


def vs_ceiling(ops, fn, threads, rounds, calls):
    """Round ratios: GOPS of fn (median of `calls`) / the vpdpbusd ceiling measured just before
    (none on a CPU without AVX-512 VNNI)."""
    ratios = []
    for _ in range(rounds):
        ceiling = _kernels.vnni_ceiling_gops(threads, 0.05)
        if ceiling == 0:
            return []
        ratios.append(ops / median_time(fn, calls) / 1e9 / ceiling)
    return ratios


def vs_baseline(ours, make_baseline, rounds, calls):
    """Round ratios: the baseline's median time / ours. A round times a block of each, in alternating
    order, with a pause after each block. The baseline's session is made anew each round and freed
    before our block: ONNX Runtime's worker threads keep spinning while a session lives and took the
    second core from our calls (and our pool's from its, for 100 us after each call)."""
    ratios = []
    for r in range(rounds):
        medians = {}
        for name in ("ours", "base") if r % 2 == 0 else ("base", "ours"):
            fn = ours if name == "ours" else make_baseline()
            if fn is None:
                return []
            medians[name] = median_time(fn, calls)
            fn = None
            gc.collect()
            time.sleep(0.01)
        ratios.append(medians["base"] / medians["ours"])
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--only", choices=("gemm", "conv"), help="only the GEMM or only the convolution targets")
    args = parser.parse_args()
    if _kernels.vnni_ceiling_gops(1, 0.01) == 0:
        print("this CPU lacks AVX-512 VNNI: the ceiling rows need it (kernels_table.py reports the AVX2 ones)")
    rng = np.random.default_rng(0)
    saved = kernels.get_num_threads()
    print("| target | threads | median ratio | spread | needed | met |\n|---|---:|---:|---|---:|---|")

    def report(name, threads, ratios, needed):
        if not ratios:
            print(f"| {name} | {threads} | n/a | | {needed:.2f} | |")
            return
        med = statistics.median(ratios)
        print(f"| {name} | {threads} | {med:.3f} | {min(ratios):.3f}..{max(ratios):.3f} | {needed:.2f} | "
              f"{'yes' if med >= needed else 'no'} |", flush=True)

    for m, k, n in GEMM_SHAPES if args.only != "conv" else []:
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        a7 = np.abs(a.astype(np.int16)).clip(0, 127).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        au, bu = rng.integers(0, 256, (m, k)).astype(np.uint8), rng.integers(0, 256, (k, n)).astype(np.uint8)
        packed = kernels.pack_weights(b)
        shape = f"GEMM {m}x{k}x{n}"
        for threads in (1, 2):
            kernels.set_num_threads(threads)
            s8s8 = lambda: kernels.gemm(a, packed)  # noqa: E731
            report(f"{shape} s8s8 / vpdpbusd ceiling", threads,
                   vs_ceiling(2 * m * n * k, s8s8, threads, args.rounds, args.calls), 0.80)
            report(f"{shape} s8s8 / ORT u8u8 (exact)", threads,
                   vs_baseline(s8s8, lambda: ort_matmul_integer(au, bu, threads), args.rounds, args.calls), 1.0)
            report(f"{shape} s8s8 A>=0 / ORT u8s8", threads,
                   vs_baseline(lambda: kernels.gemm(a7, packed), lambda: ort_matmul_integer(au, b, threads), args.rounds,
                               args.calls), 1.0)

    x = rng.integers(0, 256, CONV["x"]).astype(np.uint8)
    w = rng.integers(-128, 128, CONV["w"]).astype(np.int8)
    pw = kernels.pack_weights(w)
    c = DEPTHWISE["x"][1]
    wdw = rng.integers(-128, 128, DEPTHWISE["w"]).astype(np.int8)
    pdw = kernels.pack_weights(wdw, groups=c)
    # ORT's QLinearConv requantization (kernels_table.ort_conv's scales and zero points), fused.
    rq = kernels.Requantizer.fp32(kernels.fp32_scale(0.02, 0.01, 0.5), zero_point=128, dtype=np.uint8)
    for threads in (1, 2) if args.only != "gemm" else []:
        kernels.set_num_threads(threads)
        base = lambda: ort_conv(x, w, threads, qlinear=True)  # noqa: E731
        report("conv 3x3 u8 (int32 out) / ORT QLinearConv", threads, vs_baseline(
            lambda: kernels.conv2d(x, pw, padding=1, x_zero_point=128), base, args.rounds, args.calls), 1.0)
        report("conv 3x3 u8 -> u8 fused / ORT QLinearConv", threads, vs_baseline(
            lambda: kernels.conv2d(x, pw, padding=1, x_zero_point=128, requantizer=rq), base, args.rounds,
            args.calls), 1.0)
        report("depthwise 3x3 u8 -> u8 fused / ORT QLinearConv", threads, vs_baseline(
            lambda: kernels.conv2d(x, pdw, padding=1, groups=c, x_zero_point=128, requantizer=rq),
            lambda: ort_conv(x, wdw, threads, group=c, qlinear=True), args.rounds, args.calls), 2.0)
    kernels.set_num_threads(saved)


if __name__ == "__main__":
    main()
