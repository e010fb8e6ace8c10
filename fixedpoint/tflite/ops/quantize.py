"""QUANTIZE and DEQUANTIZE.

float32 → integer QUANTIZE (a model's float input) adds no layer: the next layer reads the float
tensor with the QUANTIZE's output parameters, and the network quantizes it there as the runtime
profile's `quantize` recipe says. Integer → integer QUANTIZE (a requantization) is an Identity layer
whose affine form requantizes. DEQUANTIZE of a model output adds no layer either: the network returns
the dequantized floats (`integer_outputs=False`), float32((q − zero point) · scale) as LiteRT does.
"""
from __future__ import annotations

import numpy as np

from ...nn.layers import IdentityLayer
from ..graph import Value
from ..registry import register


@register("QUANTIZE")
def quantize(imp, op):
    x = imp.value(op, 0)
    t = op.outputs[0]
    params = imp.params(t, op)
    if params is None:
        imp.fail(op, "QUANTIZE to float32 is not a quantization")
    if x.params is None:   # float input: quantized where the next layer reads it
        imp.values[t] = Value(x.layer, x.shape, params, x.order, pending=True)
        return
    order = "nchw" if len(x.shape) == 4 else "native"
    x = imp.value(op, 0, order)
    imp.output(op, IdentityLayer(imp.name_for(op)), [x], order, {"tflite_op": op.op})


@register("DEQUANTIZE")
def dequantize(imp, op):
    t = imp.tensor(op, 0)
    if t.data is not None:
        imp.fail(op, "DEQUANTIZE of a constant (float16 or int8 weights of a float model) is not "
                     "supported; the importer takes full-integer models")
    x = imp.value(op, 0)
    out = imp.tensors[op.outputs[0]]
    if out.dtype != np.float32 or x.params is None:
        imp.fail(op, f"DEQUANTIZE from {t.type_name} to {out.type_name} is not supported")
    if op.outputs[0] not in imp.model.outputs:
        imp.fail(op, "DEQUANTIZE feeding other operators (a float32 part of the model) is not supported; "
                     "the importer takes full-integer models")
    imp.values[op.outputs[0]] = x
