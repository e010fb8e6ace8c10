"""QOperator nodes: QLinearConv, QLinearMatMul and the com.microsoft QGemm (also with a float output),
MatMulIntegerToFloat, DynamicQuantizeMatMul, QLinearAdd, QLinearMul, QLinearConcat, QLinearAveragePool,
QLinearGlobalAveragePool, QLinearLeakyRelu, QLinearSigmoid, QLinearSoftmax.

Each builds its float layer with the float operator's handler (a synthetic standard node whose
constant inputs are the dequantized weights), then records the integers and parameters the affine
layer needs; its output is an integer tensor. ORT runs these nodes as written in every graph.
"""
from __future__ import annotations

import numpy as np

from ..model import require_onnx, text
from ..registry import HANDLERS, register_quantized


def integer_input(imp, node, index, params):
    """Run-time integer input `index` of a QLinear node, checked against its declared parameters (a Pad's
    output before a QLinearConv stands for its input: `QuantizedImporter.integer_pad`)."""
    tensor = node.input[index] if index < len(node.input) else ""
    if tensor not in imp.qtensor:
        imp.fail(node, f"input {index} ({tensor!r}) must be a quantized run-time tensor (a QuantizeLinear "
                       f"or QLinear* output)")
    if imp.qtensor[tensor] != params:
        imp.fail(node, f"input {index} is read with parameters {params}, but was quantized with "
                       f"{imp.qtensor[tensor]}; not supported")
    return tensor


def float_node(imp, node, op, inputs, constants, attrs):
    """Build the float layer of `node` with the handler of standard `op`: `inputs` are tensor names,
    `constants` {name: float array} registered first. Returns the layer name."""
    helper = require_onnx().helper
    imp.constants.update(constants)
    synthetic = helper.make_node(op, inputs, [node.output[0]], name=node.name or None, **attrs)
    HANDLERS[op](imp, synthetic, attrs)
    return imp.producer[node.output[0]]


def record(imp, node, name, inputs, in_params, out_params, **data):
    """Record a QOperator layer; out_params None: its output is float32 (QGemm without y_scale,
    MatMulIntegerToFloat, DynamicQuantizeMatMul: quantization/layers/ort_float_ports.py)."""
    from ..quantized import Record
    imp.records[name] = Record(node, "qoperator", inputs, in_params, out_params, float_output=out_params is None,
                               data=dict(data))
    if out_params is not None:
        imp.qtensor[node.output[0]] = out_params


def weight_params(imp, node, scale_index, zero_index, weights, axis):
    params = imp.params(node, scale_index, zero_index, axis=axis, dtype=weights.dtype)
    if params.dtype != weights.dtype:
        imp.fail(node, f"weights of type {weights.dtype} with a {params.dtype} zero point")
    return params


def bias_of(imp, node, index, outputs):
    bias = imp.const(node, index, required=False)
    if bias is None:
        return np.zeros(outputs, np.int32)
    bias = np.asarray(bias)
    if bias.dtype != np.int32 or bias.size != outputs:
        imp.fail(node, f"bias must be int32 with one value per output ({outputs}), got {bias.dtype} "
                       f"{bias.shape}")
    return bias.reshape(-1)


def qlinear_conv(imp, node, attrs):
    px = imp.params(node, 1, 2)
    x = integer_input(imp, node, 0, px)
    w = np.asarray(imp.const(node, 3))
    pw = weight_params(imp, node, 4, 5, w, 0)
    py = imp.params(node, 6, 7)
    bias = bias_of(imp, node, 8, w.shape[0])
    if attrs.get("channels_last", 0):
        imp.fail(node, "channels_last=1 (NHWC) is not supported")
    attrs = {k: v for k, v in attrs.items() if k != "channels_last"}
    wf = f"{node.output[0]}/weights_dequantized"
    bf = f"{node.output[0]}/bias_dequantized"
    scale = (np.float32(px.scale[0]) * pw.scale).astype(np.float32)
    name = float_node(imp, node, "Conv", [x, wf, bf], {
        wf: pw.dequantize(w), bf: (bias.astype(np.float32) * scale).astype(np.float32)}, attrs)
    source = imp.pending_pads.get(x, (x,))[0]   # a folded Pad: the layer reads the Pad's input
    record(imp, node, name, [source], [px], py, weights=w, weight_params=pw, bias=bias)


def qlinear_matmul(imp, node, attrs):
    pa = imp.params(node, 1, 2)
    a = integer_input(imp, node, 0, pa)
    b = np.asarray(imp.const(node, 3))
    if b.ndim != 2:
        imp.fail(node, f"only a 2-D constant right operand is supported, got shape {b.shape}")
    pb = weight_params(imp, node, 4, 5, b, 1)
    py = imp.params(node, 6, 7)
    w, pw = transposed(b, pb)
    bf = f"{node.output[0]}/weights_dequantized"
    name = float_node(imp, node, "MatMul", [a, bf], {bf: pb.dequantize(b)}, {})
    imp.bias_free_matmuls.discard(name)
    record(imp, node, name, [a], [pa], py, weights=w, weight_params=pw,
           bias=np.zeros(w.shape[0], np.int32))


def transposed(b, pb):
    """(K, N) integers with parameters along axis 1 as (N, K) weights with parameters along axis 0."""
    from ...quantization.qparams import QuantParams
    params = QuantParams(pb.dtype, pb.scale, pb.zero_point, 0 if pb.per_channel else None)
    return np.ascontiguousarray(b.T), params


def qgemm(imp, node, attrs):
    pa = imp.params(node, 1, 2)
    a = integer_input(imp, node, 0, pa)
    if attrs.get("transA", 0):
        imp.fail(node, "transA=1 is not supported")
    if attrs.get("alpha", 1.0) != 1.0:
        imp.fail(node, f"alpha={attrs['alpha']} is not supported (only 1)")
    float_output = len(node.input) < 8 or not node.input[7]
    b = np.asarray(imp.const(node, 3))
    trans_b = attrs.get("transB", 0)
    pb = weight_params(imp, node, 4, 5, b, 0 if trans_b else 1)
    py = None if float_output else imp.params(node, 7, 8)
    w, pw = (b, pb) if trans_b else transposed(b, pb)
    bias = bias_of(imp, node, 6, w.shape[0])
    bf, cf = f"{node.output[0]}/weights_dequantized", f"{node.output[0]}/bias_dequantized"
    scale = (np.float32(pa.scale[0]) * pw.scale).astype(np.float32)
    name = float_node(imp, node, "Gemm", [a, bf, cf], {
        bf: pb.dequantize(b), cf: (bias.astype(np.float32) * scale).astype(np.float32)},
        {"transB": int(trans_b)})
    # without y_scale the output is float: float(acc + C) * float32(alpha * a_scale * b_scale) (quant_gemm.cc
    # ComputeOutputScale, MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR; alpha is 1 here)
    extra = {"output_scale": scale} if float_output else {}
    record(imp, node, name, [a], [pa], py, weights=w, weight_params=pw, bias=bias, **extra)


def matmul_integer_to_float(imp, node, attrs):
    """com.microsoft MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zp, b_zp, bias) and
    DynamicQuantizeMatMul(A float, B, b_scale, b_zp, bias): float(acc) * float32(a_scale * b_scale) + bias,
    A quantized by a QuantizeLinear, or by the node itself as DynamicQuantizeLinear does."""
    dynamic = node.op_type == "DynamicQuantizeMatMul"
    b_index, bs_index, bz_index, bias_index = (1, 2, 3, 4) if dynamic else (1, 3, 5, 6)
    b = np.asarray(imp.const(node, b_index))
    if b.ndim != 2:
        imp.fail(node, f"only a 2-D constant B is supported, got shape {b.shape}")
    pb = weight_params(imp, node, bs_index, bz_index, b, 1)
    w, pw = transposed(b, pb)
    if dynamic:
        a = node.input[0]
        if a not in imp.producer or a in imp.qtensor:
            imp.fail(node, f"input 0 ({a!r}) must be a float tensor computed at run time")
        pa, multiplier = None, pw.scale.astype(np.float32)
    else:
        pa = imp.params(node, 2, 4)
        a = integer_input(imp, node, 0, pa)
        multiplier = (np.float32(pa.scale[0]) * pw.scale).astype(np.float32)
    bias = imp.const(node, bias_index, required=False)
    extra = {}
    if bias is not None:
        bias = np.asarray(bias)
        if bias.dtype != np.float32 or bias.size != w.shape[0]:
            imp.fail(node, f"bias must be float32 with one value per output ({w.shape[0]}), got {bias.dtype} "
                           f"{bias.shape}")
        extra["float_bias"] = bias.reshape(-1)
    bf, cf = f"{node.output[0]}/weights_dequantized", f"{node.output[0]}/bias"
    constants = {bf: pb.dequantize(b)}
    inputs = [a, bf]
    if bias is not None:
        constants[cf] = extra["float_bias"]
        inputs.append(cf)
    name = float_node(imp, node, "Gemm", inputs, constants, {})
    record(imp, node, name, [a], [pa], None, weights=w, weight_params=pw, bias=np.zeros(w.shape[0], np.int32),
           output_scale=multiplier, ort_activation_dtype="uint8" if dynamic else pa.dtype.name, **extra)


def binary(op):
    def handler(imp, node, attrs):
        pa, pb = imp.params(node, 1, 2), imp.params(node, 4, 5)
        pc = imp.params(node, 6, 7)
        constant = [k for k in (0, 3) if node.input[k] in imp.constants]
        if constant:
            return binary_constant(imp, node, op, constant, pa, pb, pc)
        a, b = integer_input(imp, node, 0, pa), integer_input(imp, node, 3, pb)
        name = float_node(imp, node, op, [a, b], {}, {})
        record(imp, node, name, [a, b], [pa, pb], pc)
    return handler


def binary_constant(imp, node, op, constant, pa, pb, pc):
    """QLinearAdd / QLinearMul with a constant operand (quantize_static's QOperator form of an Add of a
    bias, a Mul by a constant): the float layer is the per-channel one of the float model
    (`elementwise.affine_layer`, from the dequantized constant); the layer keeps the constant's integers
    (`operand`, `operand_params`, `operand_first`, `operand_op`) for the QLinear formula."""
    from .elementwise import affine_layer, per_channel
    if len(constant) == 2:
        imp.fail(node, f"Q{op} of two constants")
    k = constant[0]
    pk, px = (pa, pb) if k == 0 else (pb, pa)
    ints = np.asarray(imp.constants[node.input[k]])
    if ints.dtype != pk.dtype:
        imp.fail(node, f"constant operand of type {ints.dtype} with a {pk.dtype} zero point")
    x = integer_input(imp, node, 3 - k, px)
    values = pk.dequantize(ints)
    vector = per_channel(imp, node, x, values)
    if vector is None:
        imp.fail(node, f"the constant operand of shape {ints.shape} must be a scalar or per-channel (axis 1) "
                       f"against input of shape {imp.shape[x]}")
    one, zero = np.ones(1), np.zeros(1)
    gain, shift = (one, vector) if op == "Add" else (vector, zero)
    affine_layer(imp, node, x, gain, shift)
    name = imp.producer[node.output[0]]
    record(imp, node, name, [x], [px], pc, operand=ints, operand_params=pk, operand_first=k == 0, operand_op=op)


def qlinear_concat(imp, node, attrs):
    py = imp.params(node, 0, 1)
    inputs, params = [], []
    for k in range(2, len(node.input), 3):
        p = imp.params(node, k + 1, k + 2)
        inputs.append(integer_input(imp, node, k, p))
        params.append(p)
    name = float_node(imp, node, "Concat", inputs, {}, {"axis": attrs["axis"]})
    record(imp, node, name, inputs, params, py)


def unary(op, keep=()):
    """QLinear<op>(X, x_scale, x_zero_point, y_scale, y_zero_point) with the attributes `keep`."""
    def handler(imp, node, attrs):
        if attrs.get("channels_last", 0):
            imp.fail(node, "channels_last=1 (NHWC) is not supported")
        px = imp.params(node, 1, 2)
        x = integer_input(imp, node, 0, px)
        py = imp.params(node, 3, 4)
        kept = {k: v for k, v in attrs.items() if k in keep}
        data = {}
        if op == "Softmax":
            opset = int(attrs.get("opset", imp.opset))
            rank = len(imp.shape[x])
            axis = int(attrs.get("axis", -1 if opset >= 13 else 1))
            if opset < 13 and axis % rank != rank - 1:
                imp.fail(node, "QLinearSoftmax before opset 13 normalises over all axes from `axis` "
                               "on; only the last axis is supported")
            kept = {"axis": axis}
            data["ort_opset"] = opset
        if op == "AveragePool" and text(attrs.get("auto_pad", "NOTSET")) != "NOTSET":
            kept["auto_pad"] = attrs["auto_pad"]
        name = float_node(imp, node, op, [x], {}, kept)
        record(imp, node, name, [x], [px], py, **data)
    return handler


register_quantized("QLinearConv", handler=qlinear_conv)
register_quantized("QLinearMatMul", handler=qlinear_matmul)
register_quantized("QGemm", handler=qgemm)
register_quantized("MatMulIntegerToFloat", "DynamicQuantizeMatMul", handler=matmul_integer_to_float)
register_quantized("QLinearAdd", handler=binary("Add"))
register_quantized("QLinearMul", handler=binary("Mul"))
register_quantized("QLinearConcat", handler=qlinear_concat)
register_quantized("QLinearAveragePool", handler=unary(
    "AveragePool", ("kernel_shape", "strides", "pads", "ceil_mode", "count_include_pad", "dilations")))
register_quantized("QLinearGlobalAveragePool", handler=unary("GlobalAveragePool"))
register_quantized("QLinearLeakyRelu", handler=unary("LeakyRelu", ("alpha",)))
register_quantized("QLinearSigmoid", handler=unary("Sigmoid"))
register_quantized("QLinearSoftmax", handler=unary("Softmax"))
