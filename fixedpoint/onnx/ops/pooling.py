"""MaxPool, AveragePool, their global forms, and ReduceMean/ReduceMax over H and W."""
from __future__ import annotations

import numpy as np

from ...nn.layers import (AveragePooling2DLayer, FlattenLayer, GlobalAveragePooling2DLayer,
                         GlobalMaxPooling2DLayer, MaxPooling2DLayer)
from ..registry import register, simple
from .conv import window



def pool(cls):
    def handler(imp, node, attrs):
        kernel = attrs.get("kernel_shape")
        x = imp.runtime_input(node)
        stride, padding, dilation = window(imp, node, attrs, kernel, x)
        if tuple(dilation) != (1, 1):
            imp.fail(node, f"dilated pooling is not supported (dilations {list(dilation)})")
        options = {"count_include_pad": bool(attrs.get("count_include_pad", 0))} \
            if cls is AveragePooling2DLayer else {}
        if cls is MaxPooling2DLayer and attrs.get("storage_order", 0):
            imp.fail(node, "storage_order=1 is not supported")
        layer = cls(imp.layer_name(node), kernel, stride, padding,
                    bool(attrs.get("ceil_mode", 0)), **options)
        imp.add(layer, [imp.runtime_input(node)], node.output[0])
    return handler


def reduce(cls):
    """ReduceMean / ReduceMax over H and W of NCHW data: global pooling (then a Flatten layer
    named ``<node>/flatten`` when keepdims=0)."""
    def handler(imp, node, attrs):
        x = imp.runtime_input(node)
        rank = len(imp.shape[x])
        axes = imp.const(node, 1, required=False) if imp.opset >= 18 else attrs.get("axes")
        axes = None if axes is None else sorted(int(a) % rank for a in np.reshape(axes, -1))
        if rank != 4 or axes != [2, 3]:
            imp.fail(node, f"only a reduction over axes (2, 3) of NCHW data is supported (global "
                           f"pooling), got axes {axes} on rank {rank}")
        name = imp.layer_name(node)
        if attrs.get("keepdims", 1):
            imp.add(cls(name), [x], node.output[0])
        else:
            imp.add(cls(name), [x], f"{node.output[0]}/pooled")
            imp.add(FlattenLayer(imp.unique(f"{name}/flatten")), [f"{node.output[0]}/pooled"],
                    node.output[0])
    return handler


register("MaxPool", handler=pool(MaxPooling2DLayer))
register("AveragePool", handler=pool(AveragePooling2DLayer))
register("GlobalAveragePool", handler=simple(GlobalAveragePooling2DLayer))
register("GlobalMaxPool", handler=simple(GlobalMaxPooling2DLayer))
register("ReduceMean", handler=reduce(GlobalAveragePooling2DLayer))
register("ReduceMax", handler=reduce(GlobalMaxPooling2DLayer))
