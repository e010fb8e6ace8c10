// Thin pybind11 binding for fixedpoint._requant (placeholder until its kernels land).
#include <pybind11/pybind11.h>

PYBIND11_MODULE(_requant, m) { m.doc() = "fixedpoint._requant"; }
