"""Which operator ONNX Runtime 1.32 (CPU execution provider, x86-64) executes for each layer of an
imported quantized model, per graph: "optimized" (the default graph optimizations),
"optimized-precise" (session.x64quantprecision = 1) and "as-written" (ORT_DISABLE_ALL).

The rules follow ORT's graph transformers, in the order ORT runs them (Level 1, then Level 2;
sources under onnxruntime/core/optimizer/, read on the 1.32 tree and checked against the graphs the
installed runtime writes with SessionOptions.optimized_model_filepath):

0. ConstantSharing and CommonSubexpressionElimination (constant_sharing.cc,
   common_subexpression_elimination.cc): QuantizeLinear nodes reading the same tensor with equal
   constant parameters become one (`quantized.merge_identical_quantize_nodes`).
1. EnsureUniqueDQForNodeUnit (ensure_unique_dq_for_node_unit.cc): a DequantizeLinear read by several
   nodes is duplicated, one per reader.
2. Relu / Clip before a QuantizeLinear that saturates at the same bounds are removed
   (relu_quantizelinear.cc, clip_quantizelinear.cc; qdq_selectors.cc IsClipMadeRedundantByQ for the
   node groups). The numbers do not depend on it (the importer moves the clamp after the Q).
3. QDQS8ToU8Transformer (qdq_s8_to_u8.cc; x86 only, QDQIsInt8Allowed() is false there): a
   QuantizeLinear with int8 scalar zero point whose only reader is one DequantizeLinear (after 1)
   becomes uint8 with zero point + 128 (the same real values). Constant int8 weights behind a
   DequantizeLinear are converted too only with x64quantprecision (weights_to_u8), since Conv, MatMul
   and Gemm are in its exclude_next list otherwise.
4. QDQSelectorActionTransformer (selectors_actions/qdq_selector_action_transformer.cc,
   qdq_selectors.cc): a node with a DequantizeLinear on every input and exactly one QuantizeLinear
   as its only reader (not a graph output) is fused when its selector accepts the types (after 3):
   Conv -> QLinearConv (input type = output type, int8 inputs not allowed on x86, bias int32);
   MatMul -> QLinearMatMul (same); Gemm -> QGemm (int8 A needs int8 B, A type = Y type, beta 1
   and an int32 bias); Add / Mul -> QLinearAdd / QLinearMul (all three types equal);
   AveragePool, GlobalAveragePool, LeakyRelu, Sigmoid, Softmax -> QLinear* (input type = output
   type); Concat -> QLinearConcat (all types equal); MaxPool (opset 12+), Flatten, Reshape,
   Transpose, Squeeze, Unsqueeze lose their DQ and Q when both have the same scale and zero point.
   Every other node (BatchNormalization, Tanh, …) stays float between its DQ and Q.

QOperator nodes run as written in every graph.
"""
from __future__ import annotations

import numpy as np

from ..quantization.qparams import QuantParams

GRAPHS = ("optimized", "optimized-precise", "as-written")
FIELDS = {"optimized": "ort_op", "optimized-precise": "ort_op_precise", "as-written": "ort_op_unoptimized"}

UNARY = {"AveragePool": "QLinearAveragePool", "GlobalAveragePool": "QLinearGlobalAveragePool",
         "LeakyRelu": "QLinearLeakyRelu", "Sigmoid": "QLinearSigmoid", "Softmax": "QLinearSoftmax"}
BINARY = {"Add": "QLinearAdd", "Mul": "QLinearMul"}
DROP_QDQ = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Resize"}   # and MaxPool from 12


def s8_to_u8(imp, q_node) -> bool:
    """Whether ORT turns this int8 QuantizeLinear (and its DequantizeLinear) into uint8 (rule 3; a Q
    merged with an identical one by rule 0 counts the readers of both)."""
    zero = q_node.input[2] if len(q_node.input) > 2 else ""
    if not zero or zero not in imp.constants or np.asarray(imp.constants[zero]).dtype != np.int8 \
            or np.asarray(imp.constants[zero]).size != 1:
        return False
    out = q_node.output[0]
    readers = imp.readers.get(out, [])
    if out in imp.graph_outputs or len(readers) != 1 or readers[0].op_type != "DequantizeLinear":
        return False
    dq = readers[0]
    dq_zero = dq.input[2] if len(dq.input) > 2 else ""
    if dq_zero not in imp.constants or np.asarray(imp.constants[dq_zero]).dtype != np.int8:
        return False
    return len(imp.readers.get(dq.output[0], [])) + (dq.output[0] in imp.graph_outputs) == 1


def q_node_of(imp, tensor):
    """The QuantizeLinear node a dequantized run-time tensor comes from (None for QLinear outputs)."""
    source = imp.dq_source.get(tensor, tensor)
    source = imp.q_alias.get(source, source)
    for node in imp.graph.node:
        if node.op_type == "QuantizeLinear" and node.output[0] == source:
            return node
    return None


def ort_dtype(imp, tensor, params) -> np.dtype:
    """The type ORT's kernels see for a dequantized run-time tensor (after rule 3)."""
    q = q_node_of(imp, tensor)
    if params.dtype == np.int8 and q is not None and s8_to_u8(imp, q):
        return np.dtype(np.uint8)
    return params.dtype


def learnable_data(imp, name, record) -> dict:
    """The integer weights, their parameters and the int32 bias of a QDQ Conv / Gemm / MatMul."""
    layer = imp.layers[name]
    node = record.node
    if layer.type_name not in ("Convolution2D", "FullyConnected") or node.op_type not in ("Conv", "MatMul", "Gemm"):
        return {}
    op = node.op_type
    weight = node.input[1] if len(node.input) > 1 else ""
    if weight not in imp.qconst:
        imp.fail(node, f"its weights ({weight!r}) are not a DequantizeLinear of constant integers; a "
                       f"quantized {op} needs quantized weights")
    w, pw = imp.qconst[weight]
    if op in ("MatMul",) or (op == "Gemm" and not _attr(node, "transB", 0)):
        w = np.ascontiguousarray(w.T)
    if pw.per_channel:
        if (op == "Conv" and pw.axis != 0) or (op == "Gemm" and pw.axis != (0 if _attr(node, "transB", 0) else 1)) \
                or (op == "MatMul" and pw.axis != 1):
            imp.fail(node, f"per-channel weights must be quantized along the output axis, got axis {pw.axis}")
        pw = QuantParams(pw.dtype, pw.scale, pw.zero_point, 0)
    if op == "Gemm" and _attr(node, "alpha", 1.0) != 1.0:
        imp.fail(node, "a quantized Gemm with alpha != 1 is not supported")
    data = {"weights": w, "weight_params": pw}
    bias_name = node.input[2] if op in ("Conv", "Gemm") and len(node.input) > 2 else ""
    if bias_name and bias_name in imp.qconst and imp.qconst[bias_name][0].dtype == np.int32:
        data["bias"] = imp.qconst[bias_name][0].reshape(-1).astype(np.int32)
        data["ort_int32_bias"] = True
    elif bias_name and bias_name in imp.constants and bias_name not in imp.qconst:
        data["bias"] = weight_bias_quantization(imp, node, np.asarray(imp.constants[bias_name]),
                                                record.in_params[0], pw)
        data["ort_int32_bias"] = True
        # a group that then does not fuse runs its float operator on the DequantizeLinear of that
        # int32 bias (scale x_scale * w_scale, the Mul node's float32 product)
        scale = np.float32(record.in_params[0].scale[0]) * pw.scale.astype(np.float32)
        data["ort_float_bias"] = (data["bias"].astype(np.float32) * scale).astype(np.float32)
    else:   # no bias, or a DQ of another type: ORT cannot fuse (qdq_selectors.cc ConvNodeGroupSelector)
        data["bias"] = np.zeros(w.shape[0], np.int32)
        data["ort_int32_bias"] = not bias_name
    if data["bias"].size != w.shape[0]:
        imp.fail(node, f"bias of {data['bias'].size} values for {w.shape[0]} outputs")
    return data


def weight_bias_quantization(imp, node, bias, input_params, weight_params) -> np.ndarray:
    """The int32 bias ORT makes of a float bias (qdq_transformer/weight_bias_quantization.cc, Level 1,
    before the QDQ fusion): Cast<int32>(Round(bias / (x_scale * w_scale))), each step an ORT float32
    kernel (Mul, Div, Round half to even); the QDQ group then fuses like one with an int32 bias."""
    bias = bias.astype(np.float32).reshape(-1)
    scale = np.float32(input_params.scale[0]) * weight_params.scale.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.rint(bias / scale)
    if not np.all(np.abs(rounded) < 2.0 ** 31):
        imp.fail(node, "its float bias does not fit int32 at scale x_scale * w_scale")
    return rounded.astype(np.int32)


def _attr(node, key, default):
    from .model import attributes
    return attributes(node).get(key, default)


def decide(imp, name, record, data) -> dict:
    """{ort_op, ort_op_precise, ort_op_unoptimized, ort_activation_dtype}: see the module docstring."""
    node = record.node
    if record.origin == "integer":
        from .integer_ops import ort_ops
        return ort_ops(imp, record)
    if record.origin == "qoperator":
        op = node.op_type
        return {FIELDS[g]: op for g in GRAPHS}
    if record.origin == "quantize":
        return {FIELDS[g]: "Identity" for g in GRAPHS}
    if record.origin == "clamp":
        return {FIELDS[g]: "Clamp" for g in GRAPHS}
    if record.origin == "move":
        op = node.op_type if node.op_type != "Dropout" else "Identity"
        if getattr(imp.layers[name], "mode", "nearest") == "linear":   # a Resize computing on the integers
            nhwc = "ResizeNHWC" if nhwc_input(imp, record) else "Resize"
            return {"ort_op": nhwc, "ort_op_precise": nhwc, "ort_op_unoptimized": "Resize"}
        return {FIELDS[g]: op for g in GRAPHS}
    result = {"ort_op_unoptimized": ""}
    in_types = [ort_dtype(imp, t, p) for t, p in zip(record.inputs, record.in_params)]
    out_type = record.out_params.dtype
    if out_type == np.int8 and s8_to_u8(imp, record.q_node):
        out_type = np.dtype(np.uint8)
    for graph, precise in (("optimized", False), ("optimized-precise", True)):
        result[FIELDS[graph]] = fused_op(imp, record, data, in_types, out_type, precise)
    if in_types and data.get("weights") is not None:
        result["ort_activation_dtype"] = in_types[0].name
    if node.op_type in ("Softmax", "AveragePool"):   # their ORT kernels depend on the opset
        result["ort_opset"] = imp.opset
    return result


# ORT operators the NhwcTransformer (optimizer/nhwc_transformer.cc) runs in NHWC on x86
NHWC_OPS = ("QLinearConv", "QLinearAveragePool", "QLinearGlobalAveragePool")


def nhwc_input(imp, record) -> bool:
    """Whether ORT's optimized graph runs this Resize in NHWC: its input comes from an operator the
    NhwcTransformer made NHWC, and the transpose optimizer (transpose_optimizer.cc, HandleResize) pushes the
    Transpose back to NCHW below the Resize (checked in tests/test_onnx_quantized_graphs.py against the
    optimized graphs: the Resize then reads the NHWC QLinearConv's output directly)."""
    producer = imp.records.get(imp.producer.get(record.inputs[0]))
    if producer is None:
        return False
    if producer.origin == "qoperator":
        return producer.node.op_type in NHWC_OPS and not attributes_of(producer.node).get("channels_last", 0)
    return False


def attributes_of(node):
    from .model import attributes
    return attributes(node)


def clip_redundant(imp, record) -> bool:
    """qdq_selectors.cc IsClipMadeRedundantByQ: the Relu / Clip between the node and its Q does nothing
    the Q's saturation does not. Relu: the zero point is the type's minimum. Clip(0, c): also
    rint(c / scale) + zero point reaches the type's maximum (float32 division, rint to even)."""
    if record.clip is None:
        return True
    layer = imp.layers[record.clip]
    p = record.out_params
    zero = int(p.zero_point[0])
    if zero != p.qmin:
        return False
    if layer.type_name == "ReLU":
        return True
    high = np.rint(np.float32(layer.ceiling) / np.float32(p.scale[0]))
    return int(high) + zero >= p.qmax


def fused_op(imp, record, data, in_types, out_type, precise) -> str:
    """The QLinear operator ORT fuses the node group into, or "" (float): rule 4."""
    node = record.node
    op = node.op_type
    if not clip_redundant(imp, record):
        return ""
    if op in ("Conv", "MatMul", "Gemm"):
        if not data.get("ort_int32_bias", False):
            return ""
        weight_type = data["weights"].dtype
        if precise and weight_type == np.int8:
            weight_type = np.dtype(np.uint8)      # rule 3 with weights_to_u8
        if op == "Gemm":
            if in_types[0] == np.int8 and weight_type != np.int8:
                return ""
            if in_types[0] != out_type or (_attr(node, "beta", 1.0) != 1.0 and data["bias"].any()):
                return ""
            return "QGemm"
        if in_types[0] != out_type or in_types[0] == np.int8:
            return ""
        return "QLinearConv" if op == "Conv" else "QLinearMatMul"
    if op in BINARY:
        if "operand" in data:   # a constant operand (its DequantizeLinear'd integers keep their type)
            in_types = in_types + [data["operand"].dtype]
        return BINARY[op] if len(in_types) == 2 and len(set(in_types)) == 1 and in_types[0] == out_type else ""
    if op in UNARY:
        return UNARY[op] if in_types[0] == out_type else ""
    if op == "Concat":
        return "QLinearConcat" if all(t == out_type for t in in_types) else ""
    if op == "Resize" and getattr(imp.layers[imp.producer[node.output[0]]], "mode", "nearest") != "nearest":
        return ""   # a linear Resize between DQ and Q stays float (observed in ORT's optimized graphs)
    if op in DROP_QDQ or (op == "MaxPool" and imp.opset >= 12):
        same = record.in_params[0] == record.out_params and in_types[0] == out_type
        return ("MaxPool" if op == "MaxPool" else op) if same else ""
    return ""


# ---- ORT_ENABLE_ALL's NchwcTransformer on the float layers (optimizer/nchwc_transformer.cc) ----------------

_CONV_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid")   # conv_activation_fusion.cc
_NCHWC_ACTIVATIONS = ("Relu", "Sigmoid", "Tanh")          # TransformActivation
_NCHWC_POOLS = ("MaxPool", "AveragePool")   # TransformPool on any float input


def _per_channel_constant(imp, node, conv) -> bool:
    """Whether Add / Mul `node`'s second input is the constant ORT's ConvAddFusion / ConvMulFusion fold
    into `conv` (optimizer/conv_add_fusion.cc, conv_mul_fusion.cc): shape (C, 1, ...) of rank one less
    than the weights; for Add only with a conv bias (without one the constant becomes the bias: the
    same float sums)."""
    value, weights = imp.constants.get(node.input[1]), imp.constants.get(conv.input[1])
    if value is None or weights is None or value.ndim != weights.ndim - 1 or value.shape[0] != weights.shape[0] \
            or any(d != 1 for d in value.shape[1:]):
        return False
    return node.op_type == "Mul" or (len(conv.input) > 2 and bool(conv.input[2]))


def nchwc_hints(imp, quantized) -> dict:
    """{layer: {"8": hint, "16": hint}} for what the shape rule of `runtime/onnxruntime_nchwc.py`
    cannot see, per NCHWc block size (`quantized`: the layers that become AffineLayers): "nchw" for a
    float Conv whose weights come out of a DequantizeLinear (TransformConv needs a float initializer;
    ORT does not fold the DQ); "nchwc" for a GlobalAveragePool / GlobalMaxPool whose input is a graph
    input or an NCHWc output (Transform converts them only when no input edge is left); and
    "refuse: ..." where the transformer folds a neighbour into an NCHWc convolution in a way not
    emulated: an Add / Sum of two NCHWc outputs one of which is a single-use NCHWc Conv without
    activation (TransformBinary: the other operand becomes the convolution's sum input, added before
    the bias) and a BatchNormalization reading an NCHWc output other than a single-use convolution's
    (TransformBatchNormalization: a depthwise NCHWc convolution; after a convolution, Level 1's
    ConvBNFusion folds it into the weights first). The walk follows the transformer over the float nodes in graph order;
    activations (ConvActivationFusion, Level 2, then TransformActivation) fuse into the convolution
    with the same values, but block a later Add fusion."""
    from ..kernels.onnxruntime import nchwc_conv_applies
    hints: dict = {}

    def note(layer, block, text):
        hints.setdefault(layer, {})[str(block)] = text

    def uses(tensor):
        return len(imp.readers.get(tensor, [])) + (tensor in imp.graph_outputs)

    graph_inputs = {value.name for value in imp.graph.input}
    for node in imp.graph.node:   # ConvBNFusion (Level 1, every optimized graph, NCHWc or not)
        name = imp.producer.get(node.output[0]) if node.output else None
        readers = imp.readers.get(node.output[0], []) if name else []
        if node.op_type != "Conv" or name in quantized or len(readers) != 1 or \
                node.output[0] in imp.graph_outputs or any(t in imp.qconst for t in node.input[1:] if t):
            continue
        folded = readers[0]
        if imp.producer.get(folded.output[0]) in quantized or folded.output[0] in imp.graph_outputs:
            continue
        what = None
        if folded.op_type == "BatchNormalization":   # emulated: the conv takes the folded weights, the BN passes
            bn = imp.producer[folded.output[0]]
            p = imp.layers[bn].learnables
            hints.setdefault(name, {})["fold_batch_norm"] = {
                key: np.asarray(p[key], np.float32).tolist() for key in ("Scale", "Offset", "TrainedMean", "TrainedVariance")}
            hints[name]["fold_batch_norm"]["epsilon"] = float(np.float32(imp.layers[bn].epsilon))
            hints.setdefault(bn, {})["folded_into"] = name
        elif folded.op_type in ("Add", "Mul") and len(folded.input) == 2 and _per_channel_constant(imp, folded, node):
            what = ("ConvMulFusion folds the Mul" if folded.op_type == "Mul" else "ConvAddFusion folds the Add")
        if what:
            for block in (8, 16):
                note(name, block, f"refuse: {what} {folded.name or folded.output[0]!r} into this convolution's "
                                  f"weights and bias in float32, which changes its float results; fold it before "
                                  f"quantizing (fp.prepare_network, or onnxruntime's quant_pre_process)")
    for block in (8, 16):
        state = {}   # NCHWc tensor -> [its NCHWc Conv layer or None, uses, activation fused, sum fused]
        for node in imp.graph.node:
            if not node.output or node.domain not in ("", "ai.onnx"):
                continue
            out, op = node.output[0], node.op_type
            name = imp.producer.get(out)
            if name is None:
                continue
            inputs = [t for t in node.input if t]
            first = inputs[0] if inputs else ""
            if first in state and imp.producer.get(first) == name:   # folded into the layer before it
                state[out] = list(state[first])
                continue
            if op == "Conv":
                if name in quantized:   # a QDQ group: weights out of a DequantizeLinear, never NCHWc
                    continue
                layer = imp.layers.get(name)
                w = getattr(layer, "learnables", {}).get("Weights")
                if w is None or not nchwc_conv_applies(w.shape, getattr(layer, "groups", 1), block):
                    continue
                if any(t in imp.qconst for t in inputs[1:]):
                    note(name, block, "nchw")
                    continue
                readers = imp.readers.get(out, [])
                fused = len(readers) == 1 and out not in imp.graph_outputs and readers[0].op_type in _CONV_ACTIVATIONS \
                    and imp.producer.get(readers[0].output[0]) not in quantized
                tensor = readers[0].output[0] if fused else out
                state[tensor] = [name, uses(tensor), fused, False]
                if fused:
                    state[out] = state[tensor]
            elif op in ("Add", "Sum") and len(inputs) == 2 and all(t in state for t in inputs):
                entry = [None, uses(out), False, False]
                for n in (0, 1):
                    conv, count, activation, summed = state[inputs[n]]
                    if conv is not None and count == 1 and not activation and not summed:
                        note(conv, block, f"refuse: NchwcTransformer folds the {op} {node.name or out!r} into "
                                          f"this NCHWc convolution (its other operand added before the bias)")
                        entry = [conv, uses(out), False, True]
                        break
                state[out] = entry
            elif op in _NCHWC_ACTIVATIONS and first in state:
                conv, count, activation, summed = state[first]
                fuse = conv is not None and count == 1 and not activation
                state[out] = [conv, uses(out), True, summed] if fuse else [None, uses(out), False, False]
            elif op == "BatchNormalization" and first in state:
                conv, count, activation, summed = state[first]
                if conv is not None and count == 1 and not activation and not summed:
                    state[out] = [conv, uses(out), False, False]   # ConvBNFusion (Level 1) folds it first
                    continue
                note(name, block, "refuse: NchwcTransformer makes this BatchNormalization of an NCHWc tensor a "
                                  "depthwise NCHWc convolution (scale / sqrt(var + epsilon) folded in float32)")
                state[out] = [None, uses(out), False, False]
            elif op in ("GlobalAveragePool", "GlobalMaxPool"):
                # converted only when its input edge is gone: a graph input or an NCHWc output (Transform)
                if first in state or first in graph_inputs:
                    note(name, block, "nchwc")
                    state[out] = [None, uses(out), False, False]
            elif op in _NCHWC_POOLS or (op in ("Concat", "Mul") and all(t in state for t in inputs)):
                state[out] = [None, uses(out), False, False]
    return hints
