"""Build the compiled core: one pybind11 extension per concept, so each compiles (and fails) alone.

`fixedpoint._core`     fi arithmetic primitives (cast, rounding shifts, overflow) on whole arrays
`fixedpoint._kernels`  int8/int16 GEMM and 2-D convolution (portable + AVX2, threaded)
`fixedpoint._requant`  requantizers (pow2 shift, gemmlowp, ruy, fp32) and integer elementwise ops
`fixedpoint._litert`   LiteRT's int8 operator formulas per op resolver (csrc/ops/litert/)
`fixedpoint._onnxruntime`  ONNX Runtime's operator formulas and MLAS float kernels (csrc/ops/onnxruntime/)

No -march=native: AVX2 code is compiled per function with target attributes and chosen at run time.
Set FIXEDPOINT_ONLY=_core (comma separated) to build a subset during development.
"""
import os
from glob import glob

from pybind11.setup_helpers import Pybind11Extension, ParallelCompile, build_ext
from setuptools import setup

ParallelCompile("FIXEDPOINT_BUILD_JOBS", default=2).install()

COMMON = ["-O3", "-fvisibility=hidden", "-fno-math-errno"]


def ext(name, sources, flags=()):
    return Pybind11Extension(
        f"fixedpoint.{name}",
        sorted(sources),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=COMMON + list(flags),
    )


EXTENSIONS = [
    ext("_core", glob("csrc/fixed/*.cpp") + ["csrc/bindings/core.cpp"]),
    ext("_kernels", glob("csrc/kernels/gemm*.cpp") + glob("csrc/kernels/conv*.cpp")
        + ["csrc/bindings/kernels.cpp"]),
    ext("_requant", glob("csrc/kernels/requant*.cpp") + glob("csrc/kernels/elementwise*.cpp")
        + ["csrc/bindings/requant.cpp"]),
    ext("_litert", ["csrc/bindings/litert.cpp"]),
    # ONNX Runtime's op formulas: a * b + c must stay two roundings where ORT's build keeps them so
    ext("_onnxruntime", ["csrc/bindings/onnxruntime.cpp"], ["-ffp-contract=off", "-Wno-psabi"]),
]

only = [s.strip() for s in os.environ.get("FIXEDPOINT_ONLY", "").split(",") if s.strip()]
if only:
    EXTENSIONS = [e for e in EXTENSIONS if e.name.split(".")[-1] in only]

setup(ext_modules=EXTENSIONS, cmdclass={"build_ext": build_ext})
