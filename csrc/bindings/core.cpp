// Thin pybind11 binding for fixedpoint._core (placeholder until its kernels land).
#include <pybind11/pybind11.h>

PYBIND11_MODULE(_core, m) { m.doc() = "fixedpoint._core"; }
