"""The exact-int8 ceiling of this CPU: GOPS of the inner-loop instruction sequences with operands in
registers, per thread count: vpmaddwd + vpaddd (exact for any int8), vpmaddubsw + vpmaddwd + vpaddd
(exact when the unsigned operand is <= 127) and, on an AVX-512 VNNI CPU, vpdpbusd on zmm (exact for
every uint8 x int8 quad, so for any int8 data as A + 128). A GEMM cannot beat these; `kernels_table.py`
reports GEMM speed against them.

    python bench/ceiling.py
"""
from fixedpoint import _kernels

SEQUENCES = ("vpmaddwd", "vpmaddubsw", "vpdpbusd")


def ceiling(sequence="vpmaddwd", threads=1, seconds=0.3, repeats=5):
    """Best of `repeats` runs (the machine may be shared: the best run is the least disturbed); 0 when
    the CPU lacks the instruction. `sequence` is one of SEQUENCES (True/False: vpmaddubsw/vpmaddwd)."""
    if sequence is True or sequence is False:
        sequence = "vpmaddubsw" if sequence else "vpmaddwd"
    if sequence not in SEQUENCES:
        raise ValueError(f"sequence must be one of {', '.join(SEQUENCES)}; got {sequence!r}")
    if sequence == "vpdpbusd":
        run = lambda: _kernels.vnni_ceiling_gops(threads, seconds)  # noqa: E731
    else:
        run = lambda: _kernels.ceiling_gops(sequence == "vpmaddubsw", threads, seconds)  # noqa: E731
    return max(run() for _ in range(repeats))


if __name__ == "__main__":
    for threads in (1, 2):
        print(f"{threads} thread(s): exact vpmaddwd {ceiling('vpmaddwd', threads):.0f} GOPS, "
              f"vpmaddubsw (<=127) {ceiling('vpmaddubsw', threads):.0f} GOPS, "
              f"vpdpbusd (VNNI, exact) {ceiling('vpdpbusd', threads):.0f} GOPS")
