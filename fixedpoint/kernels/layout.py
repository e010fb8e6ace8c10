"""Memory layouts of 4-D activations: an NCHW-shaped array whose memory is NHWC ("channels last"), as
LiteRT's formulas return them (TFLite holds images NHWC), and the compiled transposes between the two.

`contiguous(x)` is `np.ascontiguousarray(x)` with the common transposed cases done by the compiled
batched transpose (csrc/kernels/layout.hpp; numpy's copy of a transposed int8 tensor of a small image
costs 5 to 10 times as much). `channels_last(x)` says whether an NCHW-shaped `x` is NHWC memory;
`nhwc(x)` / `nchw(x)` give the contiguous array in either order. Values are only moved: results are
the same whichever layout a kernel gets.
"""
import numpy as np

from .. import _kernels

_ITEMSIZES = (1, 2, 4, 8)


def _transposed_memory(x):
    """(the C-contiguous memory of `x` as a 3-D (B, R, C) array, such that x holds its batched
    transpose (B, C, R) in x's shape) for a 4-D NCHW view of NHWC memory or NHWC view of NCHW memory;
    else None."""
    if x.ndim != 4 or x.itemsize not in _ITEMSIZES or x.dtype.kind == "O":
        return None
    n, a, b, c = x.shape
    memory = x.transpose(0, 2, 3, 1)   # an NCHW-shaped view of NHWC memory: [N][H W][C]
    if memory.flags.c_contiguous:
        return memory.reshape(n, b * c, a)
    memory = x.transpose(0, 3, 1, 2)   # an NHWC-shaped view of NCHW memory: [N][C][H W]
    if memory.flags.c_contiguous:
        return memory.reshape(n, c, a * b)
    return None


def contiguous(x: np.ndarray) -> np.ndarray:
    """`x` as a C-contiguous array (itself when it already is one). A 4-D NCHW view of NHWC memory or
    NHWC view of NCHW memory is copied by the compiled transpose, other arrays by numpy."""
    if x.flags.c_contiguous:
        return x
    memory = _transposed_memory(x)
    if memory is None:
        return np.ascontiguousarray(x)
    return _kernels.transpose_batched(memory).reshape(x.shape)


def channels_last(x: np.ndarray) -> bool:
    """Whether the 4-D NCHW-shaped `x` is NHWC memory (and not also NCHW memory, as when C or H W is 1)."""
    return x.ndim == 4 and not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous


def nhwc(x: np.ndarray) -> np.ndarray:
    """The C-contiguous NHWC array of the NCHW-shaped 4-D `x` (a view when x is NHWC memory)."""
    return contiguous(x.transpose(0, 2, 3, 1))


def nchw(x: np.ndarray) -> np.ndarray:
    """The C-contiguous NCHW array of the NCHW-shaped 4-D `x` (itself when it is one)."""
    return contiguous(x)
