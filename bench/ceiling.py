"""The exact-int8 ceiling of this CPU: GOPS of the inner-loop instruction sequences with operands in
registers (vpmaddwd + vpaddd for any int8; vpmaddubsw + vpmaddwd + vpaddd when the unsigned operand
is <= 127), per thread count. A GEMM cannot beat these; `kernels_table.py` reports GEMM speed
against them.

    python bench/ceiling.py
"""
from fixedpoint import _kernels


def ceiling(quads=False, threads=1, seconds=0.3, repeats=5):
    """Best of `repeats` runs (the machine may be shared: the best run is the least disturbed)."""
    return max(_kernels.ceiling_gops(quads, threads, seconds) for _ in range(repeats))


if __name__ == "__main__":
    for threads in (1, 2):
        print(f"{threads} thread(s): exact vpmaddwd {ceiling(False, threads):.0f} GOPS, "
              f"vpmaddubsw (<=127) {ceiling(True, threads):.0f} GOPS")
