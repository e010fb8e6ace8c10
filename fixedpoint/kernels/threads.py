"""Thread count and code-path selection of the compiled GEMM/convolution kernels.

Results never depend on either setting (the kernels are exact integer arithmetic and every output
is computed by the same instruction sequence whichever thread runs it); they only change speed, and
the path setting lets tests run the AVX2 and portable code in one process and compare bits.
"""
import os

from .. import _kernels

KERNEL_PATHS = ("auto", "exact16", "portable", "avx2", "vnni")
_PATH_CODES = {"auto": 0, "exact16": 1, "portable": 2, "avx2": 0, "vnni": 0}  # C++ Path codes
_path_setting = "auto"
_CPU_HAS_AVX2, _CPU_HAS_VNNI = _kernels.cpu_has_avx2(), _kernels.cpu_has_vnni()  # fixed per process


def set_num_threads(n):
    """Use up to `n` threads in every kernel call (default: FIXEDPOINT_NUM_THREADS or all cores)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    _kernels.set_num_threads(n)


def get_num_threads():
    return _kernels.get_num_threads()


def set_kernel_path(path):
    """Highest code path the kernels may use.

    "auto": the fastest exact code this CPU has: "vnni" if it has AVX-512 VNNI, else "avx2";
    "vnni": int8 GEMMs on vpdpbusd (exact for every uint8 operand; int8 activations as A + 128),
    other calls as "avx2" (falls back to "avx2" without VNNI);
    "avx2": AVX2, with the vpmaddubsw sequence when the unsigned operand is <= 127 (exact then);
    "exact16": AVX2 with the int16 vpmaddwd sequence only; "portable": plain C++ (no SIMD intrinsics).
    The VNNI choice is process-wide in the compiled module, like the thread count.
    """
    global _path_setting
    if path not in KERNEL_PATHS:
        raise ValueError(f"path must be one of {', '.join(KERNEL_PATHS)}; got {path!r}")
    _path_setting = path
    _kernels.set_vnni_allowed(path in ("auto", "vnni"))


def set_force_portable(flag):
    """Force the portable path (True) or return to automatic selection (False)."""
    set_kernel_path("portable" if flag else "auto")


def get_kernel_path():
    """The path calls use now: FIXEDPOINT_FORCE_PORTABLE=1 wins, then the setting, then the CPU."""
    if os.environ.get("FIXEDPOINT_FORCE_PORTABLE", "") not in ("", "0") or not _CPU_HAS_AVX2:
        return "portable"
    if _path_setting in ("auto", "vnni"):
        return "vnni" if _CPU_HAS_VNNI else "avx2"
    return _path_setting


def path_code():
    return _PATH_CODES[get_kernel_path()]


def setting_path_code():
    """The code of the setting alone, for a kernel call that checks FIXEDPOINT_FORCE_PORTABLE itself
    (the environment lookup costs more than the rest of a small GEMM call's checks); the CPU check is
    the compiled code's own."""
    return _PATH_CODES[_path_setting]
