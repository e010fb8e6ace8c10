"""MAX_POOL_2D, AVERAGE_POOL_2D (SAME padding excluded from the average, as TFLite), and MEAN over
the spatial axes (a global average pooling)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import AveragePooling2DLayer, GlobalAveragePooling2DLayer, MaxPooling2DLayer, ReshapeLayer
from ..graph import Value
from ..registry import register
from .conv import PADDINGS


@register("MAX_POOL_2D", "AVERAGE_POOL_2D")
def pool_2d(imp, op):
    o = op.options
    x = imp.value(op, 0, "nchw")
    if len(x.shape) != 4:
        imp.fail(op, f"input of shape {list(x.shape)} is not 4-D (N, H, W, C)")
    if o["padding"] not in PADDINGS:
        imp.fail(op, f"padding code {o['padding']} is neither SAME nor VALID")
    window = dict(pool_size=(o["filter_height"], o["filter_width"]), stride=(o["stride_h"], o["stride_w"]),
                  padding=PADDINGS[o["padding"]])
    name = imp.name_for(op)
    if op.op == "MAX_POOL_2D":
        layer = MaxPooling2DLayer(name, **window)
    else:
        layer = AveragePooling2DLayer(name, count_include_pad=False, **window)
    code = o["fused_activation_function"]
    value = imp.output(op, layer, [x], "nchw", {"tflite_op": op.op, "activation": imp.activation_name(op, code)})
    imp.activation(op, value, code)


@register("MEAN")
def mean(imp, op):
    x = imp.value(op, 0, "nchw")
    axes = np.asarray(imp.const(op, 1)).reshape(-1)
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in axes}) if rank else []
    if rank != 4 or axes != [1, 2]:
        imp.fail(op, f"MEAN over axes {axes} of a rank-{rank} tensor is not supported (supported: the "
                     f"spatial axes [1, 2] of an NHWC tensor)")
    keep = bool(op.options.get("keep_dims", False))
    t = op.outputs[0]
    expected = (None, 1, 1, x.shape[3]) if keep else (None, x.shape[3])
    if imp.batch_shape(t, op)[1:] != expected[1:]:
        imp.fail(op, f"output shape {list(imp.tensors[t].shape)} is not the mean over H and W of "
                     f"{list(x.shape)} (keep_dims={keep})")
    name = imp.name_for(op)
    pooled_shape = (None, 1, 1, x.shape[3])
    pool_name = name if keep else imp.unique(f"{name}/pool")    # the op's name is its output's
    pooled = imp.add_layer(GlobalAveragePooling2DLayer(pool_name), [x],
                           Value("", pooled_shape, imp.params(t, op), "nchw"),
                           {"tflite_op": op.op, "keep_dims": keep})
    if not keep:   # (N, C, 1, 1) -> (N, C): the same memory
        pooled = imp.add_layer(ReshapeLayer(name, (x.shape[3],)), [pooled],
                               Value("", (None, x.shape[3]), pooled.params, "native"))
    imp.values[t] = pooled
