"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED: int8 weights (per tensor or per output channel),
int32 bias, a fused activation; our Convolution2D / FullyConnected layers (NCHW, OIHW weights)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import Convolution2DLayer, FullyConnectedLayer
from ..registry import register

PADDINGS = {0: "same", 1: 0}   # TFLite Padding: SAME (odd extra pixel after), VALID


def _bias(imp, op, k, channels, input_params, weight_params):
    """The int32 bias (zeros when the optional input is absent) and its float value."""
    if not imp.has_input(op, k):
        return np.zeros(channels, np.int32), np.zeros(channels, np.float32)
    t = imp.tensor(op, k)
    bias = imp.const(op, k)
    if t.dtype != np.int32 or bias.shape != (channels,):
        imp.fail(op, f"bias {t.name!r} must be int32 of shape ({channels},), got {t.type_name} "
                     f"{list(bias.shape)}")
    scale = np.float64(input_params.scale[0]) * weight_params.scale.astype(np.float64)
    return bias.astype(np.int32), (bias * scale).astype(np.float32)


def _padding(imp, op, code):
    if code not in PADDINGS:
        imp.fail(op, f"padding code {code} is neither SAME nor VALID")
    return PADDINGS[code]


def _convolution(imp, op, x, weights, wp, groups):
    """The Convolution2D layer of a CONV_2D / DEPTHWISE_CONV_2D with OIHW integer `weights`, its bias
    (input 2) and fused activation."""
    o = op.options
    bias, float_bias = _bias(imp, op, 2, weights.shape[0], x.params, wp)
    layer = Convolution2DLayer(imp.name_for(op), wp.dequantize(weights), float_bias,
                               stride=(o["stride_h"], o["stride_w"]), padding=_padding(imp, op, o["padding"]),
                               dilation=(o["dilation_h_factor"], o["dilation_w_factor"]), groups=groups)
    act = imp.activation_name(op, o["fused_activation_function"])
    value = imp.output(op, layer, [x], "nchw", dict(weights=weights, weight_params=wp, bias=bias,
                                                    tflite_op=op.op, activation=act))
    imp.activation(op, value, o["fused_activation_function"])


@register("CONV_2D")
def conv_2d(imp, op):
    x = imp.value(op, 0, "nchw")
    if len(x.shape) != 4:
        imp.fail(op, f"input of shape {list(x.shape)} is not 4-D (N, H, W, C)")
    w = imp.const(op, 1)
    if w.ndim != 4:
        imp.fail(op, f"filter of shape {list(w.shape)} is not OHWI")
    if w.shape[3] != x.shape[3]:
        imp.fail(op, f"filter of shape {list(w.shape)} reads {w.shape[3]} channels of an input with "
                     f"{x.shape[3]}: grouped CONV_2D is not supported")
    wp = imp.weight_params(op, 1, 0)
    weights = np.ascontiguousarray(w.transpose(0, 3, 1, 2))          # OHWI -> OIHW
    _convolution(imp, op, x, weights, wp, groups=1)


@register("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(imp, op):
    o = op.options
    x = imp.value(op, 0, "nchw")
    if len(x.shape) != 4:
        imp.fail(op, f"input of shape {list(x.shape)} is not 4-D (N, H, W, C)")
    w = imp.const(op, 1)
    channels = x.shape[3]
    if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] % channels:
        imp.fail(op, f"filter of shape {list(w.shape)} is not (1, H, W, C·m) for {channels} input channels")
    multiplier = w.shape[3] // channels
    if o["depth_multiplier"] not in (0, multiplier):   # the kernels take m from the shapes
        imp.fail(op, f"depth_multiplier {o['depth_multiplier']} disagrees with the filter's "
                     f"{w.shape[3]} channels for {channels} inputs")
    wp = imp.weight_params(op, 1, 0)
    weights = np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None])   # (1, kh, kw, C·m) -> (C·m, 1, kh, kw)
    _convolution(imp, op, x, weights, wp, groups=channels)


@register("FULLY_CONNECTED")
def fully_connected(imp, op):
    from ..graph import same_memory_order
    o = {"fused_activation_function": 0, "weights_format": 0, "keep_num_dims": False, **op.options}
    if o["weights_format"] != 0:
        imp.fail(op, f"weights_format {o['weights_format']} (shuffled weights) is not supported")
    x = imp.value(op, 0)
    w = imp.const(op, 1)
    if w.ndim != 2:
        imp.fail(op, f"weights of shape {list(w.shape)} are not (outputs, inputs)")
    features = int(np.prod(x.shape[1:], dtype=np.int64))
    if features != w.shape[1]:
        imp.fail(op, f"input of shape {list(x.shape)} holds {features} values per observation; the "
                     f"weights take {w.shape[1]} (rows other than the batch are not supported)")
    if o["keep_num_dims"] and len(x.shape) > 2:
        imp.fail(op, "keep_num_dims with an input of rank > 2 is not supported")
    if len(x.shape) == 4 and not same_memory_order(x.shape):
        x = imp.value(op, 0, "native")          # TFLite flattens the NHWC order
    wp = imp.weight_params(op, 1, 0)
    weights = np.ascontiguousarray(w)
    bias, float_bias = _bias(imp, op, 2, w.shape[0], x.params, wp)
    layer = FullyConnectedLayer(imp.name_for(op), wp.dequantize(weights), float_bias)
    act = imp.activation_name(op, o["fused_activation_function"])
    value = imp.output(op, layer, [x], "native", dict(weights=weights, weight_params=wp, bias=bias,
                                                      tflite_op="FULLY_CONNECTED", activation=act))
    imp.activation(op, value, o["fused_activation_function"])
