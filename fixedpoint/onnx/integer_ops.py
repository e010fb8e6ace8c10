"""Dynamic quantization and integer-output products in quantized ONNX models.

`onnxruntime.quantization.quantize_dynamic` writes, per MatMul / Conv,

    DynamicQuantizeLinear(x) -> (x_q, x_scale, x_zero_point)
    Mul(x_scale, w_scale) -> s                                  (float32, one value or one per output)
    MatMulInteger(x_q, w_q, x_zero_point, w_zero_point) or ConvInteger(...) -> int32
    Cast(to float) -> Mul(., s) -> Add(., bias)                 (the Add optional)

and a hand-made QOperator graph may quantize x statically instead (QuantizeLinear -> MatMulInteger
-> Cast -> Mul by a constant -> Add). The importer follows such a chain node by node and makes it one
affine convolution / fully connected layer with a float output (and, after a DynamicQuantizeLinear,
a float input it quantizes itself at run time): `quantization/layers/ort_float_ports.py` computes
it. The float layer of the network holds the dequantized weights and the float bias.

A chain that ends early (an int32 or float(int32) tensor read by another node or returned), a
DynamicQuantizeLinear output read by anything else, or a Mul by x_scale and w_scale in two steps is
refused with the node named.
"""
from __future__ import annotations

import numpy as np

from ..quantization.qparams import QuantParams
from .model import attributes
from .ops.qoperator import float_node

# stage of an open chain -> the operator that may continue it
NEXT = {"int32": "Cast", "cast": "Mul", "scaled": "Add"}


def dynamic_quantize_linear(imp, node):
    x = node.input[0]
    if x not in imp.producer or x in imp.qtensor:
        imp.fail(node, f"input {x!r} must be a float tensor computed at run time")
    for role, name in zip(("y", "scale", "zero"), node.output):
        if name:
            imp.dynamic[name] = (role, x, node)


def scale_product(imp, node) -> bool:
    """Mul(x_scale, constant): s = float32(x_scale * constant), kept for the chain's Mul."""
    a, b = node.input[0], node.input[1]
    for s, c in ((a, b), (b, a)):
        if imp.dynamic.get(s, ("",))[0] == "scale":
            if c in imp.chains:   # Mul(float(acc), x_scale): the chain's step refuses it (two roundings)
                return False
            if c not in imp.constants:
                imp.fail(node, f"multiplies the DynamicQuantizeLinear scale {s!r} by a run-time tensor; only a "
                               f"constant (the weight scale) is supported")
            value = np.asarray(imp.constants[c])
            if value.dtype != np.float32:
                imp.fail(node, f"the weight scale must be float32, got {value.dtype}")
            imp.scale_products[node.output[0]] = (imp.dynamic[s][1], value)
            return True
    return False


def integer_product(imp, node):
    """MatMulInteger / ConvInteger: opens a chain (the float layer now, its scale at the chain's Mul)."""
    op = node.op_type
    a = node.input[0]
    a_zero = node.input[2] if len(node.input) > 2 else ""
    dynamic = imp.dynamic.get(a, ("",))
    if dynamic[0] == "y":
        x, in_params = dynamic[1], None
        if imp.dynamic.get(a_zero, ("",))[:2] != ("zero", x):
            imp.fail(node, f"its input zero point must be the zero point output of the DynamicQuantizeLinear "
                           f"that quantized {a!r}")
    elif a in imp.qtensor:
        x, in_params = a, imp.qtensor[a]
        zero = imp.const(node, 2, required=False)
        zero = np.zeros(1, np.int64) if zero is None else np.asarray(zero).reshape(-1)
        if zero.size != 1 or int(zero[0]) != int(in_params.zero_point[0]):
            imp.fail(node, f"its input zero point {zero.tolist()} differs from the zero point {a!r} was quantized "
                           f"with ({int(in_params.zero_point[0])}); not supported")
    else:
        imp.fail(node, f"input 0 ({a!r}) must be a DynamicQuantizeLinear output or a quantized tensor")
    w = np.asarray(imp.const(node, 1))
    if w.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        imp.fail(node, f"weights must be int8 or uint8, got {w.dtype}")
    zw = imp.const(node, 3, required=False)
    zw = np.zeros(1, w.dtype) if zw is None else np.asarray(zw)
    if zw.dtype != w.dtype:
        imp.fail(node, f"weights of type {w.dtype} with a {zw.dtype} zero point")
    attrs = attributes(node)
    if op == "MatMulInteger":
        if w.ndim != 2 or zw.size not in (1, w.shape[1]):
            imp.fail(node, f"only a 2-D constant right operand with one zero point or one per column is "
                           f"supported, got {w.shape} with {zw.size} zero points")
        weights = np.ascontiguousarray(w.T)
        float_op, float_attrs = "MatMul", {}
    else:
        if w.ndim != 4 or zw.size != 1:
            imp.fail(node, f"only 2-D convolutions with one weight zero point are supported (ONNX Runtime's "
                           f"ConvInteger takes no per-channel zero point), got weights {w.shape}, {zw.size} "
                           f"zero points")
        weights = w
        float_op, float_attrs = "Conv", {k: v for k, v in attrs.items()
                                         if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")}
    wf = f"{node.output[0]}/weights_dequantized"
    centred = (weights.astype(np.int32) - zw.reshape((-1,) + (1,) * (weights.ndim - 1)).astype(np.int32))
    name = float_node(imp, node, float_op, [x, wf],
                      {wf: centred.astype(np.float32) if op == "ConvInteger" else centred.astype(np.float32).T},
                      float_attrs)
    imp.bias_free_matmuls.discard(name)
    from .quantized import Record
    imp.records[name] = Record(node, "integer", [x], [in_params], None, data={
        "weights": weights, "zero_points": zw.reshape(-1), "bias": np.zeros(weights.shape[0], np.int32),
        "ort_activation_dtype": "uint8" if in_params is None else in_params.dtype.name})
    imp.chains[node.output[0]] = (name, "int32")


def continue_chain(imp, node) -> bool:
    """Cast / Mul / Add reading an open chain's tensor: the chain's next step (True when taken)."""
    present = [t for t in node.input if t]
    open_inputs = [t for t in present if t in imp.chains]
    if not open_inputs:
        return False
    tensor = open_inputs[0]
    name, stage = imp.chains[tensor]
    record = imp.records[name]
    if node.op_type != NEXT[stage] or len(open_inputs) > 1 or not sole_reader(imp, tensor):
        if stage == "scaled":   # a complete chain: its float output is read like any other tensor
            return False
        imp.fail(node, f"reads {tensor!r}, the {'int32' if stage == 'int32' else 'float(int32)'} output of "
                       f"{record.node.op_type} {record.node.name or '(unnamed)'!r}; only the chain Cast -> Mul by "
                       f"the scales [-> Add bias] after it is supported")
    other = [t for t in present if t != tensor]
    if stage == "int32":
        if attributes(node).get("to") != 1:
            imp.fail(node, "only a Cast to float32 may follow MatMulInteger / ConvInteger")
        return advance(imp, node, tensor, name, "cast")
    if stage == "cast":
        return multiply(imp, node, tensor, name, record, other)
    return add_bias(imp, node, tensor, name, record, other)


def sole_reader(imp, tensor) -> bool:
    return imp.uses[tensor] == 1 and tensor not in imp.graph_outputs


def advance(imp, node, tensor, name, stage) -> bool:
    del imp.chains[tensor]
    imp.alias(node.output[0], tensor)
    if stage != "biased":
        imp.chains[node.output[0]] = (name, stage)
    imp.records[name].data["stage"] = stage
    return True


def channels_of(imp, node, value, record, what):
    """A constant that broadcasts per output channel of the chain's layer, as one value or one per
    channel (float32), or a refusal naming `what`."""
    outputs = record.data["weights"].shape[0]
    value = np.asarray(value)
    if value.dtype != np.float32:
        imp.fail(node, f"{what} must be float32, got {value.dtype}")
    conv = record.node.op_type == "ConvInteger"
    shape = value.shape
    if conv:
        aligned = (1,) * (4 - len(shape)) + shape if len(shape) <= 4 else None
        ok = aligned is not None and aligned[0] == 1 and aligned[2:] == (1, 1) and aligned[1] in (1, outputs)
    else:
        ok = len(shape) <= 2 and all(d == 1 for d in shape[:-1]) and (not shape or shape[-1] in (1, outputs))
    if not ok:
        imp.fail(node, f"{what} of shape {shape} is neither one value nor one per output channel ({outputs})")
    return value.reshape(-1).astype(np.float32)


def multiply(imp, node, tensor, name, record, other) -> bool:
    """Mul(float(acc), s): s = float32(x_scale * w_scale) after a DynamicQuantizeLinear, or a constant."""
    if len(other) != 1:
        imp.fail(node, "expected Mul(float(int32), scale)")
    s = other[0]
    dynamic = record.in_params[0] is None
    if dynamic:
        product = imp.scale_products.get(s)
        if product is None or product[0] != record.inputs[0]:
            imp.fail(node, f"the scale {s!r} must be Mul(x_scale, w_scale) of the DynamicQuantizeLinear that "
                           f"quantized {record.inputs[0]!r} (two separate Muls round twice; not supported)")
        factor = channels_of(imp, node, product[1], record, "the weight scale")
        weight_scale = factor
    else:
        if s not in imp.constants:
            imp.fail(node, f"the scale {s!r} must be a constant")
        factor = channels_of(imp, node, imp.constants[s], record, "the scale")
        # the weight scale the float layer is shown with (the product's factor besides x_scale)
        weight_scale = (factor.astype(np.float64) / float(record.in_params[0].scale[0])).astype(np.float32)
    if not np.all(np.isfinite(factor)) or not np.all(weight_scale > 0) or not np.all(np.isfinite(weight_scale)):
        imp.fail(node, f"the scale must be positive and finite, got {factor}")
    zw = record.data["zero_points"]
    outputs = record.data["weights"].shape[0]
    per_channel = max(weight_scale.size, zw.size) > 1
    try:
        params = QuantParams(record.data["weights"].dtype, np.broadcast_to(weight_scale, (outputs,)) if per_channel
                             else weight_scale, np.broadcast_to(zw, (outputs,)) if per_channel else zw,
                             0 if per_channel else None)
    except ValueError as error:
        imp.fail(node, str(error))
    record.data["weight_params"] = params
    record.data["output_scale"] = factor
    record.data["_scale_tensor"] = s
    layer = imp.layers[name]
    weights = layer.learnables["Weights"]
    shape = (-1,) + (1,) * (weights.ndim - 1)
    layer.learnables["Weights"] = (weights * np.broadcast_to(weight_scale, (outputs,)).reshape(shape)).astype(np.float32)
    return advance(imp, node, tensor, name, "scaled")


def add_bias(imp, node, tensor, name, record, other) -> bool:
    """Add(y, bias) with a constant per-channel bias, when the chain's output has no other reader."""
    if len(other) != 1 or other[0] not in imp.constants:
        return False
    bias = channels_of(imp, node, imp.constants[other[0]], record, "the bias")
    outputs = record.data["weights"].shape[0]
    record.data["float_bias"] = np.broadcast_to(bias, (outputs,)).astype(np.float32)
    imp.layers[name].learnables["Bias"] = record.data["float_bias"].copy()
    return advance(imp, node, tensor, name, "biased")


def check_reader(imp, node):
    """Refuse a node reading a DynamicQuantizeLinear output other than as a chain does."""
    for index, tensor in enumerate(node.input):
        entry = imp.dynamic.get(tensor)
        if entry is None:
            continue
        role = entry[0]
        allowed = (role == "y" and index == 0 or role == "zero" and index == 2) and \
            node.op_type in ("MatMulInteger", "ConvInteger") or role == "scale" and node.op_type == "Mul"
        if not allowed:
            imp.fail(node, f"reads the DynamicQuantizeLinear output {tensor!r} ({role}); only MatMulInteger / "
                           f"ConvInteger (and Mul of the scale by the weight scale) may")


def layer_data(imp, name, record) -> dict:
    """The AffineLayer fields of a finished chain (the chain's stage checked)."""
    if record.data.get("stage") not in ("scaled", "biased"):
        imp.fail(record.node, "its int32 output is not followed by Cast -> Mul by the scales; not supported")
    return {k: v for k, v in record.data.items() if k not in ("zero_points", "stage") and not k.startswith("_")}


def ort_ops(imp, record) -> dict:
    """The operator ORT runs for a chain, per graph (the numbers do not depend on it: the fused kernels
    compute float(acc) * multiplier + bias as the unfused Cast -> Mul -> Add, with the same sums).
    ConvInteger stays as written. MatMulInteger -> Cast -> Mul by Mul(x_scale, w_scale) [-> Add] becomes
    MatMulIntegerToFloat (optimizer/matmul_integer_to_float.cc: Cast, MatMulInteger and the scales' Mul
    each read once), and with a DynamicQuantizeLinear whose three outputs have one reader each,
    DynamicQuantizeMatMul (dynamic_quantize_matmul_fusion.cc). A constant scale (x quantized by a
    QuantizeLinear) is folded by ORT first: no fusion."""
    op = record.node.op_type
    fused = op
    scale = record.data.get("_scale_tensor")
    if op == "MatMulInteger" and scale in imp.scale_products and imp.uses[scale] == 1:
        fused = "MatMulIntegerToFloat"
        dql = next(entry[2] for entry in imp.dynamic.values() if entry[1] == record.inputs[0])
        if all(imp.uses[t] == 1 and t not in imp.graph_outputs for t in dql.output if t):
            fused = "DynamicQuantizeMatMul"
    return {"ort_op": fused, "ort_op_precise": fused, "ort_op_unoptimized": op}


def finished_chains(imp):
    """Refuse graph outputs that are DynamicQuantizeLinear outputs or open chains' int32 tensors."""
    for output in imp.graph_outputs:
        if output in imp.dynamic or (output in imp.chains and imp.chains[output][1] != "scaled"):
            raise_from = imp.records[imp.chains[output][0]].node if output in imp.chains else imp.dynamic[output][2]
            imp.fail(raise_from, f"its output {output!r} is a graph output before the chain Cast -> Mul by the "
                                 f"scales; not supported")
