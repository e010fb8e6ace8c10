"""Operators that move data without arithmetic: Concat, Flatten, Reshape, Squeeze, Unsqueeze,
Transpose, Dropout (inference), Identity and nearest-neighbour Resize; and linear Resize."""
from __future__ import annotations

import numpy as np

from ...nn.layers import (ConcatenationLayer, DropoutLayer, FlattenLayer, IdentityLayer, ReshapeLayer,
                         Resize2DLayer, TransposeLayer)
from ...nn.layers.resize import LINEAR_COORDINATES
from ..model import text
from ..registry import BATCH, axis_of, register, simple



def concat(imp, node, attrs):
    inputs = [imp.runtime_input(node, k) for k in range(len(node.input))]
    axis = axis_of(imp, node, attrs.get("axis", 1), len(imp.shape[inputs[0]]))
    imp.add(ConcatenationLayer(imp.layer_name(node), axis, len(inputs)), inputs, node.output[0])


def flatten(imp, node, attrs):
    x = imp.runtime_input(node)
    rank = len(imp.shape[x])
    axis = attrs.get("axis", 1)
    if axis not in (1, 1 - rank):
        imp.fail(node, f"Flatten with axis {axis} on rank {rank} merges the batch axis with "
                       f"others; only axis 1 is supported")
    imp.add(FlattenLayer(imp.layer_name(node)), [x], node.output[0])


def reshape(imp, node, attrs):
    x = imp.runtime_input(node)
    target = [int(d) for d in imp.const(node, 1).reshape(-1)]
    if attrs.get("allowzero", 0) and 0 in target:
        imp.fail(node, "allowzero=1 with a zero in the shape is not supported")
    sample = imp.shape[x][1:]
    rest = target[1:]
    if BATCH in rest:
        imp.fail(node, f"the target shape moves the batch size away from axis 0: {target}")
    keeps_batch = bool(target) and (
        target[0] in (0, BATCH, imp.declared_batch()) or (
            target[0] == -1 and -1 not in rest and None not in sample and 0 not in rest
            and int(np.prod(rest)) == int(np.prod(sample))))
    if not keeps_batch:
        imp.fail(node, f"the target shape {target} does not keep the batch axis first "
                       f"(input shape {imp.shape[x]})")
    imp.add(ReshapeLayer(imp.layer_name(node), rest), [x], node.output[0])


def squeeze_unsqueeze(imp, node, attrs):
    x = imp.runtime_input(node)
    shape = imp.shape[x]
    axes = imp.const(node, 1, required=False) if imp.opset >= 13 else attrs.get("axes")
    if node.op_type == "Unsqueeze":
        if axes is None:
            imp.fail(node, "axes are required")
        rank = len(shape) + len(np.reshape(axes, -1))
        axes = sorted(int(a) % rank for a in np.reshape(axes, -1))
        out = list(shape)
        for a in axes:
            out.insert(a, 1)
    else:
        rank = len(shape)
        axes = [k for k, n in enumerate(shape) if n == 1] if axes is None else \
            [int(a) % rank for a in np.reshape(axes, -1)]
        out = [n for k, n in enumerate(shape) if k not in axes]
    if 0 in axes or not out or None in out[1:]:
        imp.fail(node, f"only squeezing/unsqueezing known non-batch axes is supported "
                       f"(axes {list(axes)}, input shape {shape})")
    imp.add(ReshapeLayer(imp.layer_name(node), out[1:]), [x], node.output[0])


def transpose(imp, node, attrs):
    x = imp.runtime_input(node)
    perm = attrs.get("perm", list(range(len(imp.shape[x])))[::-1])
    if not perm or perm[0] != 0:
        imp.fail(node, f"perm {list(perm)} moves the batch axis; not supported")
    imp.add(TransposeLayer(imp.layer_name(node), perm), [x], node.output[0])


def dropout(imp, node, attrs):
    ratio = imp.const(node, 1, required=False) if imp.opset >= 12 else None
    ratio = attrs.get("ratio", 0.5) if ratio is None else float(ratio)
    training = imp.const(node, 2, required=False) if imp.opset >= 12 else None
    if training is not None and bool(training) and ratio > 0:
        imp.fail(node, "training_mode=True drops values at random; only inference is supported")
    layer = DropoutLayer(imp.layer_name(node), ratio)
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


register("Concat", handler=concat)
register("Flatten", handler=flatten)
register("Reshape", handler=reshape)
register("Squeeze", "Unsqueeze", handler=squeeze_unsqueeze)
register("Transpose", handler=transpose)
register("Dropout", handler=dropout)
register("Identity", handler=simple(IdentityLayer))


# coordinate_transformation_mode -> nearest_mode values that map output i to input floor(i / s) for an
# integer factor s (see fixedpoint/nn/layers/resize.py)
_FLOOR_NEAREST = {"asymmetric": ("floor",),
                  "half_pixel": ("round_prefer_floor", "round_prefer_ceil"),
                  "pytorch_half_pixel": ("round_prefer_floor", "round_prefer_ceil")}


def resize(imp, node, attrs):
    """Resize of H and W of NCHW data: mode "nearest" by integer factors, or mode "linear" by any
    factors (`Resize2D`)."""
    x = imp.runtime_input(node)
    shape = imp.shape[x]
    mode = text(attrs.get("mode", "nearest"))
    transform = text(attrs.get("coordinate_transformation_mode", "half_pixel"))
    nearest = text(attrs.get("nearest_mode", "round_prefer_floor"))
    if attrs.get("antialias", 0) or attrs.get("axes") is not None or \
            text(attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
        imp.fail(node, "antialias, axes and keep_aspect_ratio_policy are not supported")
    if mode == "nearest" and nearest not in _FLOOR_NEAREST.get(transform, ()):
        imp.fail(node, f"mode='nearest' is supported for integer upsampling with "
                       f"coordinate_transformation_mode/nearest_mode asymmetric/floor or "
                       f"half_pixel/round_prefer_*; got {transform}/{nearest}")
    if mode == "linear" and transform not in LINEAR_COORDINATES:
        imp.fail(node, f"mode='linear' with coordinate_transformation_mode {transform!r} is not supported "
                       f"(supported: {', '.join(LINEAR_COORDINATES)})")
    if mode not in ("nearest", "linear"):
        imp.fail(node, f"mode={mode!r} is not supported (nearest and linear are; ONNX Runtime runs cubic "
                       f"differently in NHWC, which is not emulated)")
    scales = imp.const(node, 2, required=False) if len(node.input) > 2 else None
    sizes = imp.const(node, 3, required=False) if len(node.input) > 3 else None
    if scales is not None and np.size(scales):
        factors = np.asarray(scales, np.float32).astype(np.float64).reshape(-1)
    elif sizes is not None and None not in shape[2:]:
        sizes = np.asarray(sizes, np.float64).reshape(-1)
        # ORT: scales = float32(out) / float32(in)
        factors = np.concatenate([[1.0, 1.0], (sizes[2:].astype(np.float32) / np.asarray(shape[2:], np.float32))
                                  .astype(np.float64)]) if sizes.size == 4 else np.zeros(4)
    else:
        imp.fail(node, "needs constant scales, or constant sizes with a known input size")
    if len(shape) != 4 or factors.size != 4 or factors[0] != 1 or factors[1] != 1 or np.any(factors[2:] <= 0) or (
            mode == "nearest" and (np.any(factors[2:] < 1) or np.any(factors[2:] != np.round(factors[2:])))):
        imp.fail(node, f"only {'integer upsampling' if mode == 'nearest' else 'resizing'} of H and W of NCHW data "
                       f"is supported, got factors {factors.tolist()} on shape {shape}")
    layer = Resize2DLayer(imp.layer_name(node), factors[2:], mode=mode, coordinate_transformation_mode=transform) \
        if mode == "linear" else Resize2DLayer(imp.layer_name(node), factors[2:])
    if mode == "linear" and sizes is not None and not (scales is not None and np.size(scales)) and \
            list(layer.output_shape(shape)[2:]) != [int(v) for v in sizes[2:]]:
        imp.fail(node, f"sizes {sizes.tolist()} are not reproduced by the scales float32(out) / float32(in)")
    imp.add(layer, [x], node.output[0])


register("Resize", handler=resize)
