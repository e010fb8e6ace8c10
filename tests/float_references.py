"""Independent float64 references for the float layers, shared by the layer and route tests."""
import numpy as np


def conv_reference(x, w, b, stride, pads, dilation, groups):
    """Direct loops over output positions (float64): no im2col, no matmul. pads = (top, left,
    bottom, right)."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (wd - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for f in range(o):
        g = f // og
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * sh:i * sh + (kh - 1) * dh + 1:dh,
                          j * sw:j * sw + (kw - 1) * dw + 1:dw]
                out[:, f, i, j] = (patch * w[f]).sum(axis=(1, 2, 3)) + b[f]
    return out
