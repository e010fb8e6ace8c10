"""Run bench_fi's cases with timeit and print a markdown table of medians and speed ratios.

    python bench/fi_table.py [--repeat 15]

Each group's first case is ours; the ratio column says how many times faster it is than each
baseline in the same group (> 1 means we are faster), all measured in this one run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench_fi, and the package from the source tree
from bench_fi import CASES  # noqa: E402


def median_seconds(case, repeat: int) -> float:
    timed = case.make()
    timed()  # warm-up
    number, _ = timeit.Timer(timed).autorange()
    number = max(1, number // 5)
    runs = timeit.repeat(timed, number=number, repeat=repeat)
    return statistics.median(runs) / number * case.scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print("| case | implementation | median (ms) | ours is × faster |")
    print("|---|---|---:|---:|")
    ours = {}
    for case in CASES:
        if not case.available:
            print(f"| {case.group} | {case.name} | skipped (not importable) | |")
            continue
        seconds = median_seconds(case, args.repeat)
        ratio = ""
        if case.name.startswith("fixedpoint"):
            ours[case.group] = seconds
        elif case.group in ours:
            ratio = f"{seconds / ours[case.group]:.2f}"
        print(f"| {case.group} | {case.name} | {seconds * 1e3:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
