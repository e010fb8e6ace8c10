"""Quantized ONNX models (QDQ and QOperator) as a `QuantizedNetwork` that computes as ONNX Runtime does.

The walk is the float importer's (`importer.Importer`), with three additions:

* DequantizeLinear of a constant is evaluated here, exactly as ORT computes it
  (float32((q − zero point) · scale)); the float handlers see the float weights, and the integers
  with their `QuantParams` are kept for the affine layer (`qconst`).
* QuantizeLinear of a run-time tensor makes that tensor's producer an affine layer whose output has
  the Q's parameters, when the producer reads only dequantized tensors and the Q is its only reader
  (a Relu / Clip in between is moved after the Q: Q is monotone, so the clamp of the quantized value
  is the same number); otherwise an affine Identity layer named after the Q quantizes the tensor.
  DequantizeLinear of a run-time tensor is the same value seen as float (an alias).
* QOperator nodes (QLinearConv, com.microsoft QGemm, QLinearAdd, …: `ops/qoperator.py`) build their
  float layer with the float handler from dequantized constants and record their integers.

Each affine layer then records, per ORT graph (optimized, optimized with x64quantprecision, as
written), the operator ORT executes for it (`ort_fusion.py`, following ORT's QDQ selectors). Nothing
in a file is executed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..nn.layers import IdentityLayer
from ..quantization.layers import AFFINE_KINDS, AffineLayer
from ..quantization.qparams import QuantParams
from . import integer_ops
from .importer import Importer
from .model import OnnxImportError, attributes
from .registry import HANDLERS, QUANTIZED_HANDLERS

# operators that make a model a quantized one
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                           "QLinearMatMul", "MatMulInteger", "ConvInteger"}) | frozenset(QUANTIZED_HANDLERS)

# standard operators that may read integer tensors directly (they only move or select values)
INTEGER_MOVES = frozenset({"MaxPool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Squeeze",
                           "Unsqueeze", "Identity", "Dropout", "Resize"})


def is_quantized(model) -> bool:
    return any(node.op_type in QUANTIZED_OPS for node in model.graph.node)


@dataclass
class Record:
    """What the importer knows of one layer of a quantized model.

    origin: "qdq" (a float node between DQ and Q), "qoperator" (a QLinear* node), "quantize" (a
    QuantizeLinear of a float tensor), "move" (a standard data-movement node on integers), "clamp"
    (a Relu / Clip moved after its Q) or "integer" (a MatMulInteger / ConvInteger chain with a float
    output, `integer_ops.py`). `inputs`: the run-time tensors read, in port order;
    `in_params`: their parameters (None: a float tensor); `out_params`: the output's (None: float)."""

    node: object
    origin: str
    inputs: list
    in_params: list
    out_params: QuantParams | None = None
    float_output: bool = False         # an affine layer whose output is float32 (out_params None)
    q_node: object = None
    clip: str | None = None            # the Relu / Clip layer between the node and its Q
    data: dict = field(default_factory=dict)


class QuantizedImporter(Importer):
    def __init__(self, model, what):
        super().__init__(model, what)
        self.qconst: dict[str, tuple] = {}        # float constant -> (integers, QuantParams)
        self.qtensor: dict[str, QuantParams] = {}  # run-time tensor of integers -> its parameters
        self.dq_params: dict[str, QuantParams] = {}  # DQ output -> parameters it dequantizes with
        self.dq_source: dict[str, str] = {}       # DQ output -> the integer tensor
        self.records: dict[str, Record] = {}
        self.interned: dict[QuantParams, QuantParams] = {}
        self.dynamic: dict[str, tuple] = {}          # DynamicQuantizeLinear output -> (role, float input, node)
        self.scale_products: dict[str, tuple] = {}   # Mul(x_scale, c) output -> (float input, c)
        self.chains: dict[str, tuple] = {}           # open MatMulInteger / ConvInteger chain tensor -> (layer, stage)
        self.readers: dict[str, list] = defaultdict(list)   # tensor -> nodes reading it
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.readers[name].append(node)
        self.q_alias = self.merge_identical_quantize_nodes()

    def merge_identical_quantize_nodes(self) -> dict:
        """ORT's Level-1 ConstantSharing and CommonSubexpressionElimination merge QuantizeLinear nodes
        that read the same tensor with equal constant scale, zero point and axis (quantize_static's
        DedicatedQDQPair writes such copies). {output of a merged Q: output of the Q kept}; the use
        counts and readers are moved to the kept output, so the rules that count readers (a producer's
        sole reader, ORT's S8->U8 conversion) see the merged graph."""
        kept, alias = {}, {}
        for node in self.graph.node:
            if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
                continue
            values = [self.constants.get(name) if name else None for name in node.input[1:3]]
            if len(node.input) < 2 or values[0] is None or (len(node.input) > 2 and node.input[2]
                                                            and values[1] is None):
                continue
            key = (node.input[0], tuple(sorted((a.name, str(a)) for a in node.attribute))) + tuple(
                None if v is None else (np.asarray(v).dtype.str, np.asarray(v).shape, np.asarray(v).tobytes())
                for v in values)
            if key not in kept:
                kept[key] = node.output[0]
                continue
            target, merged = kept[key], node.output[0]
            alias[merged] = target
            self.uses[node.input[0]] -= 1
            self.uses[target] += self.uses.pop(merged, 0)
            self.readers[target].extend(self.readers.pop(merged, []))
            if merged in self.graph_outputs:
                self.graph_outputs.add(target)
        return alias

    # --- parameters --------------------------------------------------------------------------------
    def params(self, node, scale_index: int, zero_index: int, *, axis=None, dtype=None):
        """QuantParams from a node's constant scale and zero point inputs (zero point absent: 0 of
        `dtype`, uint8 by default, as ONNX defines it)."""
        scale = np.asarray(self.const(node, scale_index))
        if scale.dtype != np.float32:
            self.fail(node, f"scales must be float32, got {scale.dtype}")
        scale = scale.reshape(-1)
        zero = self.const(node, zero_index, required=False)
        zero = np.zeros(1, np.uint8 if dtype is None else dtype) if zero is None else np.asarray(zero)
        size = max(scale.size, zero.size)
        try:
            params = QuantParams(zero.dtype, scale, zero.reshape(-1), axis if size > 1 else None)
        except ValueError as error:
            self.fail(node, f"quantization parameters: {error}")
        # one object per distinct value: a tensor's producer and readers then share it, and the
        # network's per-call check that an input has the parameters a layer reads is an identity test
        return self.interned.setdefault(params, params)

    def node_params(self, node, rank=None, dtype=None) -> QuantParams:
        """A QuantizeLinear / DequantizeLinear node's parameters (axis normalised for `rank`; `dtype`:
        the integer type when the zero point is absent)."""
        attrs = attributes(node)
        if attrs.get("block_size", 0):
            self.fail(node, "blocked quantization (block_size) is not supported")
        if attrs.get("output_dtype", 0):
            self.fail(node, "the output_dtype attribute is not supported")
        axis = int(attrs.get("axis", 1))
        if rank is not None and -rank <= axis < rank:
            axis %= rank
        return self.params(node, 1, 2, axis=axis, dtype=dtype)

    # --- the walk ----------------------------------------------------------------------------------
    def node(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            self.unsupported(node)
        present = [name for name in node.input if name]
        if node.domain in ("", "ai.onnx"):   # dynamic quantization and integer-output chains (integer_ops.py)
            integer_ops.check_reader(self, node)
            if op == "DynamicQuantizeLinear":
                return integer_ops.dynamic_quantize_linear(self, node)
            if op == "Mul" and integer_ops.scale_product(self, node):
                return
            if op in ("MatMulInteger", "ConvInteger") and not all(name in self.constants for name in present):
                self.op_counts[op] += 1
                return integer_ops.integer_product(self, node)
            if integer_ops.continue_chain(self, node):
                return
        if op == "DequantizeLinear":
            return self.dequantize_linear(node)
        if op == "QuantizeLinear" and node.output[0] in self.q_alias:   # merged with an earlier Q
            kept = self.q_alias[node.output[0]]
            self.alias(node.output[0], kept)
            self.qtensor[node.output[0]] = self.qtensor[kept]
            return
        if op == "QuantizeLinear" and node.input[0] in self.producer:
            return self.quantize_linear(node)
        handler = QUANTIZED_HANDLERS.get(op)
        if handler is not None and (node.domain == "com.microsoft" or op in ("QLinearConv", "QLinearMatMul")):
            self.op_counts[op] += 1
            try:
                return handler(self, node, attributes(node))
            except OnnxImportError:
                raise
            except (ValueError, TypeError) as error:
                self.fail(node, str(error))
        if node.domain == "com.microsoft":
            self.unsupported(node)
        if op in ("Add", "Mul", "Sub") and self.binary_with_constant(node):
            return
        if op == "Pad" and node.input[0] in self.qtensor:
            return self.integer_pad(node)
        integer_inputs = [t for t in present if t in self.qtensor]
        if integer_inputs and op not in INTEGER_MOVES:
            self.fail(node, f"reads the integer tensor {integer_inputs[0]!r} directly; only "
                            f"{', '.join(sorted(INTEGER_MOVES))} may (others need a DequantizeLinear)")
        before = set(self.layers)
        super().node(node)
        output = node.output[0] if node.output else ""
        name = self.producer.get(output)
        if name is None or name in before:
            return
        inputs = [t for t in node.input if t and t in self.producer]
        if name in self.records:
            return
        if integer_inputs:
            params = self.qtensor[integer_inputs[0]]
            self.records[name] = Record(node, "move", inputs, [params], params)
            self.qtensor[output] = params
        else:
            self.records[name] = Record(node, "qdq", inputs, [self.dq_params.get(t) for t in inputs])

    def integer_pad(self, node):
        """Pad of an integer tensor (quantize_static's QOperator Pad) with the zero point (real 0) in front
        of QLinearConvs only: folded into their padding, which takes the input zero point (the same
        integers the convolution reads in ORT)."""
        from .model import text
        x = node.input[0]
        params = self.qtensor[x]
        attrs = attributes(node)
        pads = self.const(node, 1) if self.opset >= 11 else attrs.get("pads")
        pads = [int(p) for p in np.reshape(pads, -1)]
        value = self.const(node, 2, required=False)
        readers = self.readers.get(node.output[0], [])
        if (text(attrs.get("mode", "constant")) != "constant" or len(pads) != 8 or any(pads[k] for k in (0, 1, 4, 5))
                or min(pads) < 0 or int(np.asarray(0 if value is None else value).reshape(-1)[0]) != int(params.zero_point[0])
                or not readers or any(n.op_type != "QLinearConv" for n in readers)
                or node.output[0] in self.graph_outputs or (len(node.input) > 3 and node.input[3])):
            self.fail(node, "only constant padding of H and W with the zero point, read by QLinearConvs only, is "
                            "supported on integers (it is folded into their padding)")
        self.pending_pads[node.output[0]] = (x, (pads[2], pads[3], pads[6], pads[7]))
        self.qtensor[node.output[0]] = params

    def binary_with_constant(self, node) -> bool:
        """Add / Mul / Sub of a dequantized run-time tensor and a constant: the per-channel float layer
        (`ops.elementwise.affine_layer`). With a DequantizeLinear'd constant, Add and Mul are a QDQ group
        ORT may fuse into QLinearAdd / QLinearMul with a constant operand; the layer keeps that operand's
        integers (`operand`, `operand_params`, `operand_first`: it is ORT's input A). Otherwise the node is
        a float layer (never folded into the layer before the QuantizeLinear, as a float model's bias is)."""
        from .ops.elementwise import affine_layer, per_channel
        a, b = node.input[0], node.input[1]
        if (a in self.producer) == (b in self.producer):
            return False
        x, c = (a, b) if a in self.producer else (b, a)
        if x not in self.dq_params or c not in self.constants:
            return False
        constant = np.asarray(self.constants[c])
        vector = per_channel(self, node, x, constant)
        if vector is None:
            self.fail(node, f"the constant operand of shape {constant.shape} must be a scalar or per-channel "
                            f"(axis 1) against input of shape {self.shape[x]}")
        one, zero = np.ones(1), np.zeros(1)
        gain, shift = {"Add": (one, vector), "Mul": (vector, zero),
                       "Sub": (-one, vector) if c == a else (one, -vector)}[node.op_type]
        self.op_counts[node.op_type] += 1
        affine_layer(self, node, x, gain, shift)
        if c in self.qconst and node.op_type in ("Add", "Mul"):
            ints, params = self.qconst[c]
            if params.per_channel:
                self.fail(node, "a per-axis quantized constant operand is not supported")
            name = self.producer[node.output[0]]
            self.records[name] = Record(node, "qdq", [x], [self.dq_params[x]], data={
                "operand": ints, "operand_params": params, "operand_first": c == a, "operand_op": node.op_type})
        return True

    def unsupported(self, node):
        domain = f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else ""
        supported = sorted(set(HANDLERS) | set(QUANTIZED_HANDLERS) | {"QuantizeLinear", "DequantizeLinear"})
        raise OnnxImportError(
            f"{self.what}: unsupported operator {node.op_type!r}{domain} at node "
            f"{node.name or '(unnamed)'!r}. Supported operators in quantized models: "
            f"{', '.join(supported)}; any standard operator whose inputs are all constants is "
            f"evaluated at import time")

    def dequantize_linear(self, node):
        x, out = node.input[0], node.output[0]
        if x in self.constants:
            value = np.asarray(self.constants[x])
            if value.dtype not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32)):
                self.fail(node, f"dequantizes a constant of type {value.dtype}; int8, uint8 and int32 "
                                f"are supported")
            params = self.node_params(node, value.ndim, dtype=value.dtype)
            if value.dtype != params.dtype:
                self.fail(node, f"integers of type {value.dtype} with a {params.dtype} zero point")
            self.qconst[out] = (value, params)
            self.constants[out] = params.dequantize(value)
            return
        if x not in self.qtensor:
            self.fail(node, f"dequantizes {x!r}, which is no quantized tensor (graph inputs must be "
                            f"float32; a DequantizeLinear reads a QuantizeLinear or QLinear* output)")
        params = self.node_params(node, dtype=self.qtensor[x].dtype)
        if params != self.qtensor[x]:
            self.fail(node, f"its parameters {params} differ from those {x!r} was quantized with "
                            f"({self.qtensor[x]}); not supported")
        self.alias(out, x)
        self.dq_params[out] = params
        self.dq_source[out] = x

    def quantize_linear(self, node):
        t, out = node.input[0], node.output[0]
        params = self.node_params(node)
        if params.per_channel:
            self.fail(node, "per-channel quantization of activations is not supported")
        if not self.absorb(t, params, node):
            name = self.layer_name(node)
            self.add(IdentityLayer(name), [t], out)
            self.records[name] = Record(node, "quantize", [t], [params], params, q_node=node)
        else:
            self.alias(out, t)
        self.qtensor[out] = params

    def sole_reader(self, tensor) -> bool:
        return self.uses[tensor] == 1 and tensor not in self.graph_outputs

    def absorb(self, tensor, params, q_node, clip=None) -> bool:
        """Give the producer of `tensor` the output parameters `params` (see the module docstring)."""
        name = self.producer.get(tensor)
        record = self.records.get(name)
        if record is None or record.out_params is not None or record.origin != "qdq" \
                or not self.sole_reader(tensor):
            return False
        layer = self.layers[name]
        if layer.type_name in ("ReLU", "ClippedReLU") and clip is None and record.in_params == [None]:
            if not self.absorb(record.inputs[0], params, q_node, clip=name):
                return False
            record.origin, record.in_params, record.out_params = "clamp", [params], params
            record.q_node = q_node
            return True
        if any(p is None for p in record.in_params) or layer.type_name not in AFFINE_KINDS:
            return False
        record.out_params, record.q_node, record.clip = params, q_node, clip
        return True

    # --- the result ----------------------------------------------------------------------------------
    def quantized_network(self):
        from ..quantization.qnetwork import QuantizedNetwork
        from ..quantization.targets import get_target
        from . import ort_fusion
        network = self.network()
        qlayers = {}
        integer_ops.finished_chains(self)
        quantized = {name for name, record in self.records.items()
                     if record.out_params is not None or record.float_output or record.origin == "integer"}
        hints = ort_fusion.nchwc_hints(self, quantized)   # ORT's NCHWc rewrite of the float operators
        for layer in network.layers:   # ORT's float AveragePool kernel depends on the opset (19: its own loop)
            if layer.type_name == "AveragePooling2D" and layer.name not in quantized:
                hints.setdefault(layer.name, {})["opset"] = self.opset
        for name, record in self.records.items():
            if name not in quantized:
                continue
            layer = self.layers[name]
            data = dict(record.data)
            if name in hints:
                data["ort_nchwc"] = hints.pop(name)
            if record.origin == "qdq":
                data.update(ort_fusion.learnable_data(self, name, record))
            elif record.origin == "integer":
                data = integer_ops.layer_data(self, name, record)
            data.update(ort_fusion.decide(self, name, record, data))
            try:
                qlayers[name] = AffineLayer(layer, record.in_params, record.out_params, **data)
            except ValueError as error:
                self.fail(record.node, str(error))
        outputs = [o.name for o in self.graph.output]
        integer = [o for o in outputs if o in self.qtensor]
        if integer and len(integer) != len(outputs):
            raise OnnxImportError(f"{self.what}: graph outputs mix integer ({integer}) and float tensors; "
                                  f"not supported")
        activations = {name: ql.output_params for name, ql in qlayers.items() if ql.output_params is not None}
        return QuantizedNetwork(network, qlayers, None, get_target("ONNXRuntime"),
                                {"runtime_float_hints": hints} if hints else None,
                                activation_params=activations, input_params={},
                                integer_outputs=bool(integer))
