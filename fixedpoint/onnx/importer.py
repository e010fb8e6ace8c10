"""ONNX import: an ONNX model (opset 11 or newer) becomes a float `Network` of our layers.

Every node either becomes one of our layers or, when all its inputs are constants, is evaluated at
import time (the shape arithmetic exporters emit: Shape/Gather/Unsqueeze/Concat chains, Constant
nodes). Only the data-dependent part of the graph is left, as plain layers whose names are the node
names. Each operator's handler lives in `ops/` (one module per op family) and is found through
`registry.HANDLERS`. See docs/onnx.md for the operator table and the decisions.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..nn.layers import FeatureInputLayer, ImageInputLayer
from ..nn.network import Network
from . import ops  # noqa: F401  (registers every operator handler)
from .model import OnnxImportError, attributes, load_model, require_onnx
from .registry import BATCH, HANDLERS
from ..nn.names import UniqueNames

MIN_OPSET = 11

# Every standard operator whose inputs are all constants is evaluated at import time, except
# those with random results.
NON_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                "Multinomial", "Bernoulli"}


def import_onnx(source):
    """A float `Network` equivalent to an ONNX model given as a path, bytes or `onnx.ModelProto`; for
    a quantized model (QDQ or QOperator) a `QuantizedNetwork` computing as ONNX Runtime does
    (`predict(x, runtime=...)`, see docs/runtimes-onnxruntime-import.md).

    Raises `OnnxImportError` (a ValueError) naming the problem: a malformed or truncated file, an
    opset older than 11, an unsupported operator (with the node name and the supported list), or a
    node whose attributes our layers cannot express.
    """
    model, what = load_model(source)
    from .quantized import QuantizedImporter, is_quantized
    if is_quantized(model):
        return QuantizedImporter(model, what).quantized_network()
    return Importer(model, what).network()


class Importer:
    """One import: walks the nodes in order, keeping for every tensor either its constant value or
    the layer that produces it (and its shape, batch dimension None)."""

    def __init__(self, model, what):
        onnx = require_onnx()
        self.what = what
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          None)
        if self.opset is None or self.opset < MIN_OPSET:
            raise OnnxImportError(f"{what} uses opset {self.opset}; opset {MIN_OPSET} or newer "
                                  f"is needed (convert it with "
                                  f"onnx.version_converter.convert_version)")
        self.opset_import = list(model.opset_import)
        self.constants: dict[str, np.ndarray] = {}
        for tensor in self.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise OnnxImportError(f"{what}: initializer {tensor.name!r} keeps its data in an "
                                      f"external file; external data is not loaded")
            self.constants[tensor.name] = onnx.numpy_helper.to_array(tensor)
        self.producer: dict[str, str] = {}      # run-time tensor -> layer name
        self.shape: dict[str, tuple] = {}       # run-time tensor -> shape (batch None)
        self.layers: dict = {}
        self.connections: list[tuple[str, str]] = []
        self.names = UniqueNames()
        self.bias_free_matmuls: set[str] = set()
        self.pending_pads: dict[str, tuple] = {}   # Pad output -> (its input, extra padding)
        self.uses = Counter(name for node in self.graph.node for name in node.input if name)
        self.uses.update(output.name for output in self.graph.output)
        self.graph_outputs = {output.name for output in self.graph.output}
        self.op_counts: Counter = Counter()

    # --- bookkeeping -----------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        return self.names.unique(name)

    def add(self, layer, inputs: list[str], output: str):
        """Add `layer`, fed by the run-time tensors `inputs`, producing tensor `output`."""
        ports = layer.input_ports
        for port, tensor in zip(ports, inputs):
            self.connections.append((self.producer[tensor],
                                     layer.name if len(ports) == 1 else f"{layer.name}/{port}"))
        self.layers[layer.name] = layer
        self.producer[output] = layer.name
        try:
            self.shape[output] = layer.output_shape(*[self.shape[t] for t in inputs])
        except ValueError as error:
            raise OnnxImportError(f"{self.what}: layer {layer.name!r}: {error}") from None
        return layer

    def alias(self, output: str, tensor: str):
        """`output` is the same run-time value as `tensor` (a node folded into its producer)."""
        self.producer[output] = self.producer[tensor]
        self.shape[output] = self.shape[tensor]

    def fail(self, node, message: str):
        raise OnnxImportError(f"{self.what}: node {node.name or '(unnamed)'!r} "
                              f"({node.op_type}): {message}")

    def const(self, node, index: int, required: bool = True):
        """The constant value of input `index` (None when absent and optional)."""
        if index >= len(node.input) or not node.input[index]:
            if required:
                self.fail(node, f"input {index} is missing")
            return None
        name = node.input[index]
        if name not in self.constants:
            self.fail(node, f"input {index} ({name!r}) must be a constant (initializer or "
                            f"foldable), but it is computed at run time")
        return self.constants[name]

    # --- the walk ------------------------------------------------------------------------------
    def network(self) -> Network:
        onnx = require_onnx()
        inputs = []
        for value in self.graph.input:
            if value.name in self.constants:
                continue
            inputs.append(self.input_layer(value, onnx))
        if not inputs:
            raise OnnxImportError(f"{self.what} has no run-time input")
        for node in self.graph.node:
            self.node(node)
        outputs = []
        for value in self.graph.output:
            if value.name not in self.producer:
                raise OnnxImportError(f"{self.what}: graph output {value.name!r} is a constant; "
                                      f"a network output must depend on the input")
            if self.producer[value.name] not in outputs:
                outputs.append(self.producer[value.name])
        return Network(list(self.layers.values()), self.connections,
                       input_names=[layer.name for layer in inputs],
                       output_names=outputs)

    def input_layer(self, value, onnx):
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise OnnxImportError(f"{self.what}: input {value.name!r} has element type "
                                  f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}; "
                                  f"only float32 inputs are supported")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        name = self.unique(value.name)
        if len(dims) == 4 and dims[1] is not None:
            layer = ImageInputLayer(name, dims[1:])
        elif len(dims) == 2 and dims[1] is not None:
            layer = FeatureInputLayer(name, dims[1])
        else:
            raise OnnxImportError(f"{self.what}: input {value.name!r} has shape "
                                  f"{['?' if d is None else d for d in dims]}; supported are "
                                  f"(N, C, H, W) images and (N, C) features with a fixed C")
        self.layers[name] = layer
        self.producer[value.name] = name
        self.shape[value.name] = layer.output_shape()
        return layer

    def node(self, node):
        if node.domain not in ("", "ai.onnx"):
            self.unsupported(node)
        if node.op_type == "Constant":
            self.constants[node.output[0]] = self.constant_node(node)
            return
        if node.op_type == "Shape" and node.input[0] in self.shape:
            self.constants[node.output[0]] = self.shape_of(node)
            return
        present = [name for name in node.input if name]
        if all(name in self.constants for name in present) and node.op_type not in NON_FOLDABLE:
            self.fold(node)
            return
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            self.unsupported(node)
        for index, name in enumerate(node.input):
            if name and not (name in self.constants or name in self.producer
                             or name in self.pending_pads):
                self.fail(node, f"input {index} ({name!r}) is produced by no earlier node")
        for extra in node.output[1:]:
            if extra and self.uses[extra]:
                self.fail(node, f"output {extra!r} is used, but only the first output of "
                                f"{node.op_type} is supported")
        self.op_counts[node.op_type] += 1
        try:
            handler(self, node, attributes(node))
        except OnnxImportError:
            raise
        except (ValueError, TypeError) as error:   # a layer rejecting the node's attributes
            self.fail(node, str(error))

    def declared_batch(self):
        """The batch size the model's first input declares (None when symbolic)."""
        for value in self.graph.input:
            if value.name not in self.constants:
                dims = value.type.tensor_type.shape.dim
                return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
        return None

    def unsupported(self, node):
        domain = f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else ""
        raise OnnxImportError(
            f"{self.what}: unsupported operator {node.op_type!r}{domain} at node "
            f"{node.name or '(unnamed)'!r}. Supported operators: {', '.join(sorted(HANDLERS))}; "
            f"any standard operator whose inputs are all constants is evaluated at import time")

    def layer_name(self, node) -> str:
        return self.unique(node.name or f"{node.op_type}_{self.op_counts[node.op_type]}")

    def runtime_input(self, node, index: int = 0) -> str:
        name = node.input[index] if index < len(node.input) else ""
        if not name or name not in self.producer:
            self.fail(node, f"input {index} must be computed from the network input")
        return name

    # --- constants -----------------------------------------------------------------------------
    def constant_node(self, node):
        onnx = require_onnx()
        attrs = attributes(node)
        if "value" in attrs:
            return onnx.numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        self.fail(node, f"unsupported Constant attribute(s) {sorted(attrs)}")

    def shape_of(self, node):
        shape = self.shape[node.input[0]]
        if None in shape[1:]:
            self.fail(node, f"the shape {shape} of {node.input[0]!r} is only known at run time; "
                            f"give the model input a fixed height and width")
        dims = np.array([BATCH] + list(shape[1:]), dtype=np.int64)
        attrs = attributes(node)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        return dims[start:end]

    def fold(self, node):
        """Evaluate a node whose inputs are all constants with ONNX's reference implementation."""
        onnx = require_onnx()
        from onnx.reference import ReferenceEvaluator
        helper = onnx.helper
        feeds = {name: self.constants[name] for name in node.input if name}
        inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                value.shape) for name, value in feeds.items()]
        outputs = [helper.make_empty_tensor_value_info(name) for name in node.output if name]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=self.opset_import)
        try:
            results = ReferenceEvaluator(model).run(None, feeds)
        except Exception as error:
            self.fail(node, f"cannot evaluate this constant expression: {error}")
        for value, result in zip(outputs, results):
            self.constants[value.name] = np.asarray(result)
