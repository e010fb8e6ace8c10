"""fixedpoint: bit-exact fixed-point arithmetic (MATLAB `fi` semantics) and int8 network emulation.

The public API, and nothing else: each name is defined in the module that owns its concept.
"""
__version__ = "0.1.0"
