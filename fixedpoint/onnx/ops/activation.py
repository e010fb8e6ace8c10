"""Element-wise activations and Softmax."""
from __future__ import annotations

import numpy as np

from ...nn.layers import (ClippedReLULayer, LeakyReLULayer, ReLULayer, SigmoidLayer, SoftmaxLayer,
                         TanhLayer)
from ..registry import axis_of, register, simple



def leaky_relu(imp, node, attrs):
    layer = LeakyReLULayer(imp.layer_name(node), attrs.get("alpha", 0.01))
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


def clip(imp, node, attrs):
    x = imp.runtime_input(node)
    low, high = imp.const(node, 1, required=False), imp.const(node, 2, required=False)
    low = -np.inf if low is None else float(low)
    high = np.inf if high is None else float(high)
    if low != 0 or not high > 0:
        imp.fail(node, f"only Clip(min=0, max>0) (ReLU, ReLU6, clipped ReLU) is supported, got "
                       f"min={low}, max={high}")
    layer = ReLULayer(imp.layer_name(node)) if np.isinf(high) else \
        ClippedReLULayer(imp.layer_name(node), high)
    imp.add(layer, [x], node.output[0])


def softmax(imp, node, attrs):
    x = imp.runtime_input(node)
    rank = len(imp.shape[x])
    axis = axis_of(imp, node, attrs.get("axis", -1 if imp.opset >= 13 else 1), rank)
    if imp.opset < 13 and axis != rank - 1:
        imp.fail(node, f"before opset 13 Softmax normalises over all axes from {axis} on; only "
                       f"the last axis is supported")
    imp.add(SoftmaxLayer(imp.layer_name(node), axis), [x], node.output[0])


register("Relu", handler=simple(ReLULayer))
register("Sigmoid", handler=simple(SigmoidLayer))
register("Tanh", handler=simple(TanhLayer))
register("LeakyRelu", handler=leaky_relu)
register("Clip", handler=clip)
register("Softmax", handler=softmax)
