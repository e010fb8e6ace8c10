"""Activations: RELU, RELU6, LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH, SOFTMAX, and the float layers
of fused activations. Each keeps its input's shape and axis order (a 4-D tensor held NCHW)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import (ClippedReLULayer, HardSwishLayer, LeakyReLULayer, ReLULayer, SigmoidLayer,
                          SoftmaxLayer, TanhLayer)
from ..registry import register


def fused_activation_layer(name: str, activation: str):
    """The float layer of a TFLite fused activation (None: not expressible by our layers)."""
    if activation == "RELU":
        return ReLULayer(name)
    if activation == "RELU6":
        return ClippedReLULayer(name, 6.0)
    return None


def _unary(imp, op, make):
    x = imp.value(op, 0, "nchw")
    order = "nchw" if len(x.shape) == 4 else "native"
    return imp.output(op, make(imp.name_for(op)), [x], order, {"tflite_op": op.op})


@register("RELU")
def relu(imp, op):
    _unary(imp, op, ReLULayer)


@register("RELU6")
def relu6(imp, op):
    _unary(imp, op, lambda name: ClippedReLULayer(name, 6.0))


@register("LEAKY_RELU")
def leaky_relu(imp, op):
    alpha = float(np.float32(op.options.get("alpha", 0.0)))
    _unary(imp, op, lambda name: LeakyReLULayer(name, alpha))


@register("HARD_SWISH")
def hard_swish(imp, op):
    _unary(imp, op, HardSwishLayer)


@register("LOGISTIC")
def logistic(imp, op):
    _unary(imp, op, SigmoidLayer)


@register("TANH")
def tanh(imp, op):
    _unary(imp, op, TanhLayer)


@register("SOFTMAX")
def softmax(imp, op):
    beta = float(op.options.get("beta", 1.0))
    if beta != 1.0:
        imp.fail(op, f"beta {beta} is not supported (our softmax computes exp(x) / sum, beta 1)")
    x = imp.value(op, 0, "nchw")
    rank = len(x.shape)
    if rank < 2:
        imp.fail(op, f"input of shape {list(x.shape)} has no axis besides the batch")
    axis = 1 if rank == 4 else rank - 1           # TFLite's last axis: channels (NCHW axis 1)
    order = "nchw" if rank == 4 else "native"
    imp.output(op, SoftmaxLayer(imp.name_for(op), axis), [x], order, {"tflite_op": op.op})
