"""The integer kernels' speed targets, each measured as a *paired* ratio, so that a shared machine's
busy moments fall on both sides of a comparison instead of on one row of a table.

* "vs ceiling": each round times a short burst of the vpdpbusd register ceiling (bench/ceiling.py)
  and then the GEMM at the same thread count; the round's ratio is GEMM GOPS / that burst's GOPS.
  On a virtual machine whose second vCPU is sometimes shared on the host, both halve together.
* "vs ONNX Runtime": each round times a block of our calls and a block of the baseline's, in
  alternating order; the round's ratio is the baseline's median time over ours.

A round measures every target once, so a slow stretch of a shared host (seconds long, here) costs
each target a round or two instead of all the rounds of the one target it lands on. Each target
prints the median ratio over rounds, the spread (min..max of the round ratios), and whether the
median meets the issue's threshold. kernels_table.py gives the absolute GOPS.

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


def ceiling_round(ops, fn, threads, calls):
    """One round's ratio: GOPS of fn (median of `calls`) / the vpdpbusd ceiling measured just before
    (None on a CPU without AVX-512 VNNI)."""
    ceiling = _kernels.vnni_ceiling_gops(threads, 0.05)
    if ceiling == 0:
        return None
    return ops / median_time(fn, calls) / 1e9 / ceiling


def baseline_round(ours, make_baseline, calls, base_first):
    """One round's ratio: the baseline's median time / ours, a block of each (in the order given, which
    alternates between rounds) with a pause after each block. The baseline's session is made anew
    each round and freed before our block: ONNX Runtime's worker threads keep spinning while a
    session lives and took the second core from our calls (and our pool's from its, for 100 us after
    each call). None without ONNX Runtime."""
    medians = {}
    for name in ("base", "ours") if base_first else ("ours", "base"):
        fn = ours if name == "ours" else make_baseline()
        if fn is None:
            return None
        medians[name] = median_time(fn, calls)
        fn = None
        gc.collect()
        time.sleep(0.01)
    return medians["base"] / medians["ours"]


def targets(only, rng, calls):
    """(name, threads, needed, one_round(r) -> ratio or None) for every target of the issue, each
    round timing blocks of `calls` calls."""
    found = []
    for m, k, n in GEMM_SHAPES if only != "conv" else []:
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        a7 = np.abs(a.astype(np.int16)).clip(0, 127).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        au, bu = rng.integers(0, 256, (m, k)).astype(np.uint8), rng.integers(0, 256, (k, n)).astype(np.uint8)
        packed = kernels.pack_weights(b)
        s8s8 = lambda a=a, packed=packed: kernels.gemm(a, packed)  # noqa: E731
        nonneg = lambda a7=a7, packed=packed: kernels.gemm(a7, packed)  # noqa: E731
        shape = f"GEMM {m}x{k}x{n}"
        for t in (1, 2):
            found += [
                (f"{shape} s8s8 / vpdpbusd ceiling", t, 0.80,
                 lambda r, f=s8s8, t=t, ops=2 * m * n * k: ceiling_round(ops, f, t, calls)),
                (f"{shape} s8s8 / ORT u8u8 (exact)", t, 1.0,
                 lambda r, f=s8s8, t=t, au=au, bu=bu: baseline_round(f, lambda: ort_matmul_integer(au, bu, t), calls,
                                                                     r % 2 == 1)),
                (f"{shape} s8s8 A>=0 / ORT u8s8", t, 1.0,
                 lambda r, f=nonneg, t=t, au=au, b=b: baseline_round(f, lambda: ort_matmul_integer(au, b, t), calls,
                                                                     r % 2 == 1)),
            ]
    if only == "gemm":
        return found
    x = rng.integers(0, 256, CONV["x"]).astype(np.uint8)
    w = rng.integers(-128, 128, CONV["w"]).astype(np.int8)
    pw = kernels.pack_weights(w)
    c = DEPTHWISE["x"][1]
    wdw = rng.integers(-128, 128, DEPTHWISE["w"]).astype(np.int8)
    pdw = kernels.pack_weights(wdw, groups=c)
    # ORT's QLinearConv requantization (kernels_table.ort_conv's scales and zero points), fused.
    rq = kernels.Requantizer.fp32(kernels.fp32_scale(0.02, 0.01, 0.5), zero_point=128, dtype=np.uint8)
    int32_out = lambda: kernels.conv2d(x, pw, padding=1, x_zero_point=128)  # noqa: E731
    fused = lambda: kernels.conv2d(x, pw, padding=1, x_zero_point=128, requantizer=rq)  # noqa: E731
    depthwise = lambda: kernels.conv2d(x, pdw, padding=1, groups=c, x_zero_point=128, requantizer=rq)  # noqa: E731
    for t in (1, 2):
        found += [
            ("conv 3x3 u8 (int32 out) / ORT QLinearConv", t, 1.0,
             lambda r, t=t: baseline_round(int32_out, lambda: ort_conv(x, w, t, qlinear=True), calls, r % 2 == 1)),
            ("conv 3x3 u8 -> u8 fused / ORT QLinearConv", t, 1.0,
             lambda r, t=t: baseline_round(fused, lambda: ort_conv(x, w, t, qlinear=True), calls, r % 2 == 1)),
            ("depthwise 3x3 u8 -> u8 fused / ORT QLinearConv", t, 2.0,
             lambda r, t=t: baseline_round(depthwise, lambda: ort_conv(x, wdw, t, group=c, qlinear=True), calls,
                                           r % 2 == 1)),
        ]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--only", choices=("gemm", "conv"), help="only the GEMM or only the convolution targets")
    args = parser.parse_args()
    if _kernels.vnni_ceiling_gops(1, 0.01) == 0:
        print("this CPU lacks AVX-512 VNNI: the ceiling rows need it (kernels_table.py reports the AVX2 ones)")
    saved = kernels.get_num_threads()
    found = targets(args.only, np.random.default_rng(0), args.calls)
    ratios = [[] for _ in found]
    for r in range(args.rounds):  # every target once per round
        for (_, threads, _, one_round), got in zip(found, ratios):
            kernels.set_num_threads(threads)
            ratio = one_round(r)
            if ratio is not None:
                got.append(ratio)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    kernels.set_num_threads(saved)
    print("| target | threads | median ratio | spread | needed | met |\n|---|---:|---:|---|---:|---|")
    for (name, threads, needed, _), got in zip(found, ratios):
        if not got:
            print(f"| {name} | {threads} | n/a | | {needed:.2f} | |")
            continue
        med = statistics.median(got)
        print(f"| {name} | {threads} | {med:.3f} | {min(got):.3f}..{max(got):.3f} | {needed:.2f} | "
              f"{'yes' if med >= needed else 'no'} |")


if __name__ == "__main__":
    main()
