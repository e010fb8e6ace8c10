"""Conv (and a Pad folded into the convolutions it feeds)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import Convolution2DLayer
from ..model import text
from ..registry import register



def window(imp, node, attrs, kernel, x):
    """(stride, padding, dilation) of a Conv or pooling node on tensor `x` in our layers'
    terms."""
    if len(kernel) != 2:
        imp.fail(node, f"only 2-D windows are supported, got kernel {list(kernel)}")
    auto_pad = text(attrs.get("auto_pad", "NOTSET"))
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding = "same" if auto_pad == "SAME_UPPER" else "same_lower"
        check_same(imp, node, auto_pad, imp.shape[x][2:], kernel, stride, dilation)
    elif auto_pad == "VALID":
        padding = 0
    elif auto_pad == "NOTSET":
        padding = tuple(attrs.get("pads", (0, 0, 0, 0)))
    else:
        imp.fail(node, f"unknown auto_pad {auto_pad!r}")
    return stride, padding, dilation


def check_same(imp, node, auto_pad, sizes, kernel, stride, dilation):
    """ONNX's SAME padding can be negative when the window is smaller than the stride; ONNX
    Runtime then crops the input's start (a shifted sampling grid), which our layers (padding
    max(total, 0), as MATLAB and TensorFlow) do not. Rejected when the input size shows it."""
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        if size is None:
            continue
        total = (-(-size // s) - 1) * s + (k - 1) * d + 1 - size
        head = int((total + (auto_pad == "SAME_LOWER")) / 2)     # C-style truncation
        if head < 0:
            imp.fail(node, f"{auto_pad} padding of a {size}-long axis with window {k} and "
                           f"stride {s} is negative (the input's start would be cropped); "
                           f"not supported")


def conv(imp, node, attrs):
    x, extra = imp.pending_pads.get(node.input[0], (None, None))
    x = x or imp.runtime_input(node)
    weights, bias = imp.const(node, 1), imp.const(node, 2, required=False)
    if weights.ndim != 4:
        imp.fail(node, f"only 2-D convolutions are supported, got weights of shape "
                       f"{weights.shape}")
    stride, padding, dilation = window(imp, node, attrs,
                                       attrs.get("kernel_shape", weights.shape[2:]), x)
    if extra is not None:
        if isinstance(padding, str):
            imp.fail(node, "a Pad in front of a convolution with auto_pad is not supported")
        padding = tuple(p + q for p, q in zip(padding, extra))
    layer = Convolution2DLayer(imp.layer_name(node), weights, bias, stride, padding, dilation,
                               attrs.get("group", 1))
    imp.add(layer, [x], node.output[0])


def pad(imp, node, attrs):
    """Zero padding of H and W in front of convolutions only: it becomes their padding."""
    x = imp.runtime_input(node)
    pads = imp.const(node, 1) if imp.opset >= 11 else attrs.get("pads")
    pads = [int(p) for p in np.reshape(pads, -1)]
    value = imp.const(node, 2, required=False)
    consumers = [n for n in imp.graph.node if node.output[0] in n.input]
    if (text(attrs.get("mode", "constant")) != "constant" or len(pads) != 8
            or any(pads[k] for k in (0, 1, 4, 5)) or min(pads) < 0
            or (value is not None and float(value) != 0)
            or not consumers or any(n.op_type != "Conv" for n in consumers)
            or node.output[0] in imp.graph_outputs or (len(node.input) > 3 and node.input[3])):
        imp.fail(node, "only constant zero padding of H and W that feeds convolutions only is "
                       "supported (it is folded into their padding)")
    imp.pending_pads[node.output[0]] = (x, (pads[2], pads[3], pads[6], pads[7]))


register("Conv", handler=conv)
register("Pad", handler=pad)
