"""Gemm and MatMul: fully connected layers (a MatMul's following Add becomes its bias)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import FullyConnectedLayer
from ..registry import register



def gemm(imp, node, attrs):
    x = imp.runtime_input(node)
    if attrs.get("transA", 0):
        imp.fail(node, "transA=1 is not supported (the batch must be the first axis)")
    b, c = imp.const(node, 1), imp.const(node, 2, required=False)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    weights = b if attrs.get("transB", 0) else b.T
    if alpha != 1:      # scaled in float64, rounded once (to float32 by the layer)
        weights = weights.astype(np.float64) * alpha
    bias = None
    if c is not None:
        if c.size not in (1, weights.shape[0]):
            imp.fail(node, f"bias C of shape {c.shape} is not per output ({weights.shape[0]})")
        bias = np.broadcast_to(c.reshape(-1).astype(np.float64) * beta, (weights.shape[0],))
    imp.add(FullyConnectedLayer(imp.layer_name(node), weights, bias), [x], node.output[0])


def matmul(imp, node, attrs):
    x = imp.runtime_input(node)
    weights = imp.const(node, 1)
    if weights.ndim != 2 or len(imp.shape[x]) != 2:
        imp.fail(node, f"only (N, K) x (K, M) products with a constant right operand are "
                       f"supported, got {imp.shape[x]} x {weights.shape}")
    layer = imp.add(FullyConnectedLayer(imp.layer_name(node), weights.T), [x], node.output[0])
    imp.bias_free_matmuls.add(layer.name)


register("Gemm", handler=gemm)
register("MatMul", handler=matmul)
