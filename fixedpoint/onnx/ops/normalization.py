"""BatchNormalization and LRN."""
from __future__ import annotations

from ...nn.layers import BatchNormalizationLayer, CrossChannelNormalizationLayer
from ..registry import register



def batch_norm(imp, node, attrs):
    x = imp.runtime_input(node)
    scale, offset, mean, var = (imp.const(node, k) for k in range(1, 5))
    layer = BatchNormalizationLayer(imp.layer_name(node), scale, offset, mean, var,
                                    attrs.get("epsilon", 1e-5))
    imp.add(layer, [x], node.output[0])


def lrn(imp, node, attrs):
    layer = CrossChannelNormalizationLayer(imp.layer_name(node), attrs["size"],
                                           attrs.get("alpha", 1e-4), attrs.get("beta", 0.75),
                                           attrs.get("bias", 1.0))
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


register("BatchNormalization", handler=batch_norm)
register("LRN", handler=lrn)
