"""Add, Sub, Mul, Div and Sum: layers combining two run-time tensors, per-channel affine layers for
a constant operand, or folds into the producing layer where the meaning is kept exactly."""
from __future__ import annotations

import numpy as np

from ...nn.layers import (AdditionLayer, Convolution2DLayer, FullyConnectedLayer, IdentityLayer,
                         ImageInputLayer, MultiplicationLayer)
from ...nn.layers.input_normalization import InputLayer
from ..registry import register



def per_channel(imp, node, x, constant):
    """The per-channel vector a constant broadcasts as against run-time tensor `x` (axis 1), or
    None when it varies along another axis."""
    rank = len(imp.shape[x])
    value = np.asarray(constant, dtype=np.float64)
    if value.ndim > rank:
        return None
    aligned = (1,) * (rank - value.ndim) + value.shape
    if any(n != 1 for k, n in enumerate(aligned) if k != 1) or rank < 2:
        return None
    return value.reshape(-1)


def affine_layer(imp, node, x, gain, shift):
    """A layer computing gain * x + shift per channel: a depthwise 1x1 convolution (NCHW) or a
    diagonal fully connected layer (NC)."""
    shape = imp.shape[x]
    channels = max(gain.size, shift.size, shape[1])
    if shape[1] not in (1, channels):
        imp.fail(node, f"constant with {channels} channels does not fit input of shape {shape}")
    gain, shift = np.broadcast_to(gain, (channels,)), np.broadcast_to(shift, (channels,))
    name = imp.layer_name(node)
    if len(shape) == 4:
        layer = Convolution2DLayer(name, gain.reshape(channels, 1, 1, 1), shift,
                                   groups=channels if shape[1] == channels else 1)
    elif len(shape) == 2:
        if shape[1] != channels:
            imp.fail(node, f"constant with {channels} features does not fit input {shape}")
        layer = FullyConnectedLayer(name, np.diag(gain), shift)
    else:
        imp.fail(node, f"a constant operand needs an (N, C, H, W) or (N, C) input, got {shape}")
    imp.add(layer, [x], node.output[0])


def sole_use(imp, tensor) -> bool:
    return imp.uses[tensor] == 1 and tensor not in imp.graph_outputs


def fold_into_producer(imp, node, x, constant) -> bool:
    """Fold `x op constant` into the layer producing `x` where that keeps its meaning exactly:
    a bias after a bias-free MatMul, a mean (Sub) or standard deviation (Div) after an input."""
    producer = imp.layers[imp.producer[x]]
    if not sole_use(imp, x):
        return False
    op = node.op_type
    if op == "Add" and producer.name in imp.bias_free_matmuls:
        vector = per_channel(imp, node, x, constant)
        if vector is None or vector.size not in (1, producer.output_size):
            return False
        producer.learnables["Bias"] = np.broadcast_to(vector, producer.bias.shape).astype(
            np.float32)
        imp.bias_free_matmuls.discard(producer.name)
    elif isinstance(producer, InputLayer) and (op, producer.normalization) in (
            ("Sub", "none"), ("Div", "zerocenter")):
        value = np.asarray(constant, dtype=np.float32)
        if value.ndim > len(producer.input_shape) or (
                value.ndim == len(producer.input_shape) and value.shape[0] != 1):
            return False
        value = value.reshape(value.shape[1:]) if value.ndim == len(producer.input_shape) else value
        stats = {"mean": producer.statistics.get("mean", value)}
        if op == "Div":
            stats["std"] = value
        cls = type(producer)
        size = producer.input_size if cls is ImageInputLayer else producer.num_features
        try:
            replacement = cls(producer.name, size, "zscore" if op == "Div" else "zerocenter",
                              **stats)
        except ValueError:
            return False
        imp.layers[producer.name] = replacement
    else:
        return False
    imp.alias(node.output[0], x)
    return True


def binary(op):
    combine = {"Add": AdditionLayer, "Mul": MultiplicationLayer}.get(op)

    def handler(imp, node, attrs):
        a, b = node.input[0], node.input[1]
        if a in imp.producer and b in imp.producer:
            if combine is None:
                imp.fail(node, f"{op} of two run-time tensors is not supported")
            imp.add(combine(imp.layer_name(node), 2), [a, b], node.output[0])
            return
        swapped = a not in imp.producer
        x, constant = (b, imp.constants[a]) if swapped else (a, imp.constants[b])
        if not swapped and fold_into_producer(imp, node, x, constant):
            return
        vector = per_channel(imp, node, x, constant)
        if vector is None:
            imp.fail(node, f"the constant operand of shape {np.shape(constant)} must be a scalar "
                           f"or per-channel (axis 1) against input of shape {imp.shape[x]}")
        one, zero = np.ones(1), np.zeros(1)
        gain, shift = {
            "Add": (one, vector), "Mul": (vector, zero),
            "Sub": (-one, vector) if swapped else (one, -vector),
            "Div": (None, None) if swapped else (1.0 / vector, zero),
        }[op]
        if gain is None:
            imp.fail(node, "division of a constant by a run-time tensor is not supported")
        affine_layer(imp, node, x, gain, shift)
    return handler


def sum_(imp, node, attrs):
    inputs = [imp.runtime_input(node, k) for k in range(len(node.input))]
    if len(inputs) == 1:
        imp.add(IdentityLayer(imp.layer_name(node)), inputs, node.output[0])
    else:
        imp.add(AdditionLayer(imp.layer_name(node), len(inputs)), inputs, node.output[0])


for _op in ("Add", "Sub", "Mul", "Div"):
    register(_op, handler=binary(_op))
register("Sum", handler=sum_)
