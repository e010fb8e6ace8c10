"""The Python face of the compiled integer kernels (`fixedpoint._kernels`, `fixedpoint._requant`).

numpy arrays in and out; shapes and dtypes are checked here, the arithmetic runs in C++.
"""
