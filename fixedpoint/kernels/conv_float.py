"""Float32 2-D convolution for small images in compiled code (NCHW in and out, OIHW weights), with
the bias and the following activation fused into the store.

One float32 sum per output over (channel, kernel row, kernel column) in that order, started from
zero, then + bias, then the activation; the same operations whichever thread computes an image, so
results do not depend on the thread count. The AVX2 path uses fused multiply-adds, the portable path
separate multiplies and adds (results differ by float32 rounding only). See docs/kernels.md.
"""
import numpy as np

from .. import _kernels
from .threads import path_code

ACTIVATIONS = {"none": 0, "relu": 1, "clip": 2, "leaky": 3}


def pack_float_conv(weights, groups=1):
    """OIHW float32 `weights` transposed once for `conv2d_float` (keep the result with the layer)."""
    if not isinstance(weights, np.ndarray) or weights.dtype != np.float32:
        raise ValueError(f"weights must be a float32 numpy array, got "
                        f"{getattr(weights, 'dtype', type(weights).__name__)}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups must be an int, got {groups!r}")
    return _kernels.pack_float_conv_weights(np.ascontiguousarray(weights), int(groups))


def activation_code(activation):
    """(code, lo, hi, alpha) of an activation: None or "none", "relu", ("clip", lo, hi) (clipped
    ReLU is ("clip", 0, ceiling)) or ("leaky", alpha)."""
    if activation is None:
        return 0, 0.0, 0.0, 0.0
    name, *params = (activation,) if isinstance(activation, str) else tuple(activation)
    expected = {"none": 0, "relu": 0, "clip": 2, "leaky": 1}
    if name not in expected or len(params) != expected[name]:
        raise ValueError(f"activation must be None, 'none', 'relu', ('clip', lo, hi) or "
                         f"('leaky', alpha); got {activation!r}")
    if name == "clip":
        lo, hi = float(params[0]), float(params[1])
        if not lo <= hi:
            raise ValueError(f"clip bounds must satisfy lo <= hi, got {activation!r}")
        return 2, lo, hi, 0.0
    if name == "leaky":
        return 3, 0.0, 0.0, float(params[0])
    return ACTIVATIONS[name], 0.0, 0.0, 0.0


def conv2d_float(x, packed, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                 activation=None, scale=None, shift=None):
    """activation((conv(x) + bias) * scale + shift) for float32 NCHW `x` and weights packed by
    `pack_float_conv`; `scale` and `shift` (float32, one per output channel, both or neither) are a
    following batch normalization's gain and shift, applied with two roundings as that layer does.

    `pads` are explicit (top, left, bottom, right); `activation` as in `activation_code`.
    Bad shapes, dtypes or geometry raise ValueError naming the argument."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise ValueError(f"x must be a float32 numpy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if not isinstance(packed, _kernels.PackedFloatConv):
        raise TypeError(f"packed must come from pack_float_conv, got {type(packed).__name__}")
    code, lo, hi, alpha = activation_code(activation)
    return _kernels.conv2d_float(np.ascontiguousarray(x), packed, tuple(stride), tuple(dilation),
                                 tuple(pads), bias, scale, shift, code, lo, hi, alpha, path_code())
