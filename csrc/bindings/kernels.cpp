// Thin pybind11 binding for fixedpoint._kernels (placeholder until its kernels land).
#include <pybind11/pybind11.h>

PYBIND11_MODULE(_kernels, m) { m.doc() = "fixedpoint._kernels"; }
