"""ONNX import: an ONNX model (opset 11 or newer) becomes a float `Network` of our layers.

Every node either becomes one of our layers or, when all its inputs are constants, is evaluated at
import time (the shape arithmetic exporters emit: Shape/Gather/Unsqueeze/Concat chains, Constant
nodes). Only the data-dependent part of the graph is left, as plain layers whose names are the node
names. The model is parsed from bytes and checked with `onnx.checker`; nothing in the file is
executed and nothing is downloaded. See docs/onnx.md for the operator table and the decisions.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from .layers import (AdditionLayer, AveragePooling2DLayer, BatchNormalizationLayer,
                     ClippedReLULayer, ConcatenationLayer, Convolution2DLayer,
                     CrossChannelNormalizationLayer, DropoutLayer, FeatureInputLayer, FlattenLayer,
                     FullyConnectedLayer, GlobalAveragePooling2DLayer, GlobalMaxPooling2DLayer,
                     IdentityLayer, ImageInputLayer, LeakyReLULayer, MaxPooling2DLayer,
                     MultiplicationLayer, ReLULayer, ReshapeLayer, SigmoidLayer, SoftmaxLayer,
                     TanhLayer, TransposeLayer)
from .layers.input_normalization import InputLayer
from .network import Network

MIN_OPSET = 11
INSTALL_HINT = 'ONNX support needs the onnx package: pip install "fixedpoint-exact[onnx]"'

# Stand-in for the batch size in folded shape arithmetic (`Shape` of a run-time tensor). It lets a
# `Reshape` built from `x.shape[0]` keep the batch axis, so the network works for any batch size;
# it is large and odd so that it cannot be confused with a real dimension.
BATCH = 2_147_483_629


class OnnxImportError(ValueError):
    """An ONNX model that cannot be read or mapped to our layers (names the node or the file)."""


def require_onnx():
    """The onnx module, imported only when ONNX support is used (it is an optional extra)."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return onnx


def load_model(source, what: str | None = None):
    """A checked ModelProto from a path, bytes or a ModelProto; clear errors for broken files."""
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        model, what = source, what or "the ONNX model"
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, what = bytes(source), what or "the ONNX bytes"
        elif isinstance(source, (str, os.PathLike)):
            what = what or f"ONNX file {os.fspath(source)!r}"
            try:
                with open(source, "rb") as handle:
                    data = handle.read()
            except OSError as error:
                raise OnnxImportError(f"cannot read {what}: {error}") from None
        else:
            raise TypeError(f"import_onnx expects a path, bytes or an onnx.ModelProto, got "
                            f"{type(source).__name__}")
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as error:  # protobuf's DecodeError and friends
            raise OnnxImportError(f"{what} is not a valid ONNX model (truncated or corrupted "
                                  f"protobuf: {error})") from None
    if not model.HasField("graph") or not model.graph.node and not model.graph.output:
        raise OnnxImportError(f"{what} holds no ONNX graph (empty, truncated or not an ONNX file)")
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise OnnxImportError(f"{what} fails the ONNX checker: {error}") from None
    return model, what


def import_onnx(source) -> Network:
    """A float `Network` equivalent to an ONNX model given as a path, bytes or `onnx.ModelProto`.

    Raises `OnnxImportError` (a ValueError) naming the problem: a malformed or truncated file, an
    opset older than 11, an unsupported operator (with the node name and the supported list), or a
    node whose attributes our layers cannot express.
    """
    model, what = load_model(source)
    return _Importer(model, what).network()


def _attributes(node) -> dict:
    onnx = require_onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


class _Importer:
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
        self.names: set[str] = set()
        self.bias_free_matmuls: set[str] = set()
        self.pending_pads: dict[str, tuple] = {}   # Pad output -> (its input, extra padding)
        self.uses = Counter(name for node in self.graph.node for name in node.input if name)
        self.uses.update(output.name for output in self.graph.output)
        self.graph_outputs = {output.name for output in self.graph.output}
        self.op_counts: Counter = Counter()

    # --- bookkeeping -----------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

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
            handler(self, node, _attributes(node))
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
        attrs = _attributes(node)
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
        attrs = _attributes(node)
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


# --- operator handlers: (importer, node, attributes) -> None ------------------------------------

def _window(imp, node, attrs, kernel, x):
    """(stride, padding, dilation) of a Conv or pooling node on tensor `x` in our layers'
    terms."""
    if len(kernel) != 2:
        imp.fail(node, f"only 2-D windows are supported, got kernel {list(kernel)}")
    auto_pad = _text(attrs.get("auto_pad", "NOTSET"))
    stride = tuple(attrs.get("strides", (1, 1)))
    dilation = tuple(attrs.get("dilations", (1, 1)))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        padding = "same" if auto_pad == "SAME_UPPER" else "same_lower"
        _check_same(imp, node, auto_pad, imp.shape[x][2:], kernel, stride, dilation)
    elif auto_pad == "VALID":
        padding = 0
    elif auto_pad == "NOTSET":
        padding = tuple(attrs.get("pads", (0, 0, 0, 0)))
    else:
        imp.fail(node, f"unknown auto_pad {auto_pad!r}")
    return stride, padding, dilation


def _check_same(imp, node, auto_pad, sizes, kernel, stride, dilation):
    """ONNX's SAME padding can be negative when the window is smaller than the stride; ONNX
    Runtime then crops the input's start (a shifted sampling grid), which our layers (padding
    max(total, 0), as MATLAB and TensorFlow) do not. Rejected when the input size shows it."""
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        if size is None:
            continue
        total = (-(-size // s) - 1) * s + (k - 1) * d + 1 - size
        head = int((total + (auto_pad == "SAME_LOWER")) / 2)     # C-style truncation
        if head < 0:
            imp.fail(node, f"{auto_pad} padding of a {size}-long axis with window {k} and "
                           f"stride {s} is negative (the input's start would be cropped); "
                           f"not supported")


def _conv(imp, node, attrs):
    x, extra = imp.pending_pads.get(node.input[0], (None, None))
    x = x or imp.runtime_input(node)
    weights, bias = imp.const(node, 1), imp.const(node, 2, required=False)
    if weights.ndim != 4:
        imp.fail(node, f"only 2-D convolutions are supported, got weights of shape "
                       f"{weights.shape}")
    stride, padding, dilation = _window(imp, node, attrs,
                                       attrs.get("kernel_shape", weights.shape[2:]), x)
    if extra is not None:
        if isinstance(padding, str):
            imp.fail(node, "a Pad in front of a convolution with auto_pad is not supported")
        padding = tuple(p + q for p, q in zip(padding, extra))
    layer = Convolution2DLayer(imp.layer_name(node), weights, bias, stride, padding, dilation,
                               attrs.get("group", 1))
    imp.add(layer, [x], node.output[0])


def _gemm(imp, node, attrs):
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


def _matmul(imp, node, attrs):
    x = imp.runtime_input(node)
    weights = imp.const(node, 1)
    if weights.ndim != 2 or len(imp.shape[x]) != 2:
        imp.fail(node, f"only (N, K) x (K, M) products with a constant right operand are "
                       f"supported, got {imp.shape[x]} x {weights.shape}")
    layer = imp.add(FullyConnectedLayer(imp.layer_name(node), weights.T), [x], node.output[0])
    imp.bias_free_matmuls.add(layer.name)


def _batch_norm(imp, node, attrs):
    x = imp.runtime_input(node)
    scale, offset, mean, var = (imp.const(node, k) for k in range(1, 5))
    layer = BatchNormalizationLayer(imp.layer_name(node), scale, offset, mean, var,
                                    attrs.get("epsilon", 1e-5))
    imp.add(layer, [x], node.output[0])


def _simple(cls, **fixed):
    def handler(imp, node, attrs):
        imp.add(cls(imp.layer_name(node), **fixed), [imp.runtime_input(node)], node.output[0])
    return handler


def _leaky_relu(imp, node, attrs):
    layer = LeakyReLULayer(imp.layer_name(node), attrs.get("alpha", 0.01))
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


def _clip(imp, node, attrs):
    x = imp.runtime_input(node)
    low, high = imp.const(node, 1, required=False), imp.const(node, 2, required=False)
    low = -np.inf if low is None else float(low)
    high = np.inf if high is None else float(high)
    if low != 0 or not high > 0:
        imp.fail(node, f"only Clip(min=0, max>0) (ReLU, ReLU6, clipped ReLU) is supported, got "
                       f"min={low}, max={high}")
    layer = ReLULayer(imp.layer_name(node)) if np.isinf(high) else \
        ClippedReLULayer(imp.layer_name(node), high)
    imp.add(layer, [x], node.output[0])


def _axis(imp, node, axis, rank):
    if rank is None or not -rank <= axis < rank:
        imp.fail(node, f"axis {axis} out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        imp.fail(node, "operations along the batch axis 0 are not supported")
    return axis


def _softmax(imp, node, attrs):
    x = imp.runtime_input(node)
    rank = len(imp.shape[x])
    axis = _axis(imp, node, attrs.get("axis", -1 if imp.opset >= 13 else 1), rank)
    if imp.opset < 13 and axis != rank - 1:
        imp.fail(node, f"before opset 13 Softmax normalises over all axes from {axis} on; only "
                       f"the last axis is supported")
    imp.add(SoftmaxLayer(imp.layer_name(node), axis), [x], node.output[0])


def _pool(cls):
    def handler(imp, node, attrs):
        kernel = attrs.get("kernel_shape")
        x = imp.runtime_input(node)
        stride, padding, dilation = _window(imp, node, attrs, kernel, x)
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


def _per_channel(imp, node, x, constant):
    """The per-channel vector a constant broadcasts as against run-time tensor `x` (axis 1), or
    None when it varies along another axis."""
    rank = len(imp.shape[x])
    value = np.asarray(constant, dtype=np.float64)
    if value.ndim > rank:
        return None
    aligned = (1,) * (rank - value.ndim) + value.shape
    if any(n != 1 for k, n in enumerate(aligned) if k != 1) or rank < 2:
        return None
    return value.reshape(-1)


def _affine_layer(imp, node, x, gain, shift):
    """A layer computing gain * x + shift per channel: a depthwise 1x1 convolution (NCHW) or a
    diagonal fully connected layer (NC)."""
    shape = imp.shape[x]
    channels = max(gain.size, shift.size, shape[1])
    if shape[1] not in (1, channels):
        imp.fail(node, f"constant with {channels} channels does not fit input of shape {shape}")
    gain, shift = np.broadcast_to(gain, (channels,)), np.broadcast_to(shift, (channels,))
    name = imp.layer_name(node)
    if len(shape) == 4:
        layer = Convolution2DLayer(name, gain.reshape(channels, 1, 1, 1), shift,
                                   groups=channels if shape[1] == channels else 1)
    elif len(shape) == 2:
        if shape[1] != channels:
            imp.fail(node, f"constant with {channels} features does not fit input {shape}")
        layer = FullyConnectedLayer(name, np.diag(gain), shift)
    else:
        imp.fail(node, f"a constant operand needs an (N, C, H, W) or (N, C) input, got {shape}")
    imp.add(layer, [x], node.output[0])


def _sole_use(imp, tensor) -> bool:
    return imp.uses[tensor] == 1 and tensor not in imp.graph_outputs


def _fold_into_producer(imp, node, x, constant) -> bool:
    """Fold `x op constant` into the layer producing `x` where that keeps its meaning exactly:
    a bias after a bias-free MatMul, a mean (Sub) or standard deviation (Div) after an input."""
    producer = imp.layers[imp.producer[x]]
    if not _sole_use(imp, x):
        return False
    op = node.op_type
    if op == "Add" and producer.name in imp.bias_free_matmuls:
        vector = _per_channel(imp, node, x, constant)
        if vector is None or vector.size not in (1, producer.output_size):
            return False
        producer.learnables["Bias"] = np.broadcast_to(vector, producer.bias.shape).astype(
            np.float32)
        imp.bias_free_matmuls.discard(producer.name)
    elif isinstance(producer, InputLayer) and (op, producer.normalization) in (
            ("Sub", "none"), ("Div", "zerocenter")):
        value = np.asarray(constant, dtype=np.float32)
        if value.ndim > len(producer.input_shape) or (
                value.ndim == len(producer.input_shape) and value.shape[0] != 1):
            return False
        value = value.reshape(value.shape[1:]) if value.ndim == len(producer.input_shape) else value
        stats = {"mean": producer.statistics.get("mean", value)}
        if op == "Div":
            stats["std"] = value
        cls = type(producer)
        size = producer.input_size if cls is ImageInputLayer else producer.num_features
        try:
            replacement = cls(producer.name, size, "zscore" if op == "Div" else "zerocenter",
                              **stats)
        except ValueError:
            return False
        imp.layers[producer.name] = replacement
    else:
        return False
    imp.alias(node.output[0], x)
    return True


def _binary(op):
    combine = {"Add": AdditionLayer, "Mul": MultiplicationLayer}.get(op)

    def handler(imp, node, attrs):
        a, b = node.input[0], node.input[1]
        if a in imp.producer and b in imp.producer:
            if combine is None:
                imp.fail(node, f"{op} of two run-time tensors is not supported")
            imp.add(combine(imp.layer_name(node), 2), [a, b], node.output[0])
            return
        swapped = a not in imp.producer
        x, constant = (b, imp.constants[a]) if swapped else (a, imp.constants[b])
        if not swapped and _fold_into_producer(imp, node, x, constant):
            return
        vector = _per_channel(imp, node, x, constant)
        if vector is None:
            imp.fail(node, f"the constant operand of shape {np.shape(constant)} must be a scalar "
                           f"or per-channel (axis 1) against input of shape {imp.shape[x]}")
        one, zero = np.ones(1), np.zeros(1)
        gain, shift = {
            "Add": (one, vector), "Mul": (vector, zero),
            "Sub": (-one, vector) if swapped else (one, -vector),
            "Div": (None, None) if swapped else (1.0 / vector, zero),
        }[op]
        if gain is None:
            imp.fail(node, "division of a constant by a run-time tensor is not supported")
        _affine_layer(imp, node, x, gain, shift)
    return handler


def _sum(imp, node, attrs):
    inputs = [imp.runtime_input(node, k) for k in range(len(node.input))]
    if len(inputs) == 1:
        imp.add(IdentityLayer(imp.layer_name(node)), inputs, node.output[0])
    else:
        imp.add(AdditionLayer(imp.layer_name(node), len(inputs)), inputs, node.output[0])


def _concat(imp, node, attrs):
    inputs = [imp.runtime_input(node, k) for k in range(len(node.input))]
    axis = _axis(imp, node, attrs.get("axis", 1), len(imp.shape[inputs[0]]))
    imp.add(ConcatenationLayer(imp.layer_name(node), axis, len(inputs)), inputs, node.output[0])


def _flatten(imp, node, attrs):
    x = imp.runtime_input(node)
    rank = len(imp.shape[x])
    axis = attrs.get("axis", 1)
    if axis not in (1, 1 - rank):
        imp.fail(node, f"Flatten with axis {axis} on rank {rank} merges the batch axis with "
                       f"others; only axis 1 is supported")
    imp.add(FlattenLayer(imp.layer_name(node)), [x], node.output[0])


def _reshape(imp, node, attrs):
    x = imp.runtime_input(node)
    target = [int(d) for d in imp.const(node, 1).reshape(-1)]
    if attrs.get("allowzero", 0) and 0 in target:
        imp.fail(node, "allowzero=1 with a zero in the shape is not supported")
    sample = imp.shape[x][1:]
    rest = target[1:]
    if BATCH in rest:
        imp.fail(node, f"the target shape moves the batch size away from axis 0: {target}")
    keeps_batch = bool(target) and (
        target[0] in (0, BATCH, imp.declared_batch()) or (
            target[0] == -1 and -1 not in rest and None not in sample and 0 not in rest
            and int(np.prod(rest)) == int(np.prod(sample))))
    if not keeps_batch:
        imp.fail(node, f"the target shape {target} does not keep the batch axis first "
                       f"(input shape {imp.shape[x]})")
    imp.add(ReshapeLayer(imp.layer_name(node), rest), [x], node.output[0])


def _squeeze_unsqueeze(imp, node, attrs):
    x = imp.runtime_input(node)
    shape = imp.shape[x]
    axes = imp.const(node, 1, required=False) if imp.opset >= 13 else attrs.get("axes")
    if node.op_type == "Unsqueeze":
        if axes is None:
            imp.fail(node, "axes are required")
        rank = len(shape) + len(np.reshape(axes, -1))
        axes = sorted(int(a) % rank for a in np.reshape(axes, -1))
        out = list(shape)
        for a in axes:
            out.insert(a, 1)
    else:
        rank = len(shape)
        axes = [k for k, n in enumerate(shape) if n == 1] if axes is None else \
            [int(a) % rank for a in np.reshape(axes, -1)]
        out = [n for k, n in enumerate(shape) if k not in axes]
    if 0 in axes or not out or None in out[1:]:
        imp.fail(node, f"only squeezing/unsqueezing known non-batch axes is supported "
                       f"(axes {list(axes)}, input shape {shape})")
    imp.add(ReshapeLayer(imp.layer_name(node), out[1:]), [x], node.output[0])


def _transpose(imp, node, attrs):
    x = imp.runtime_input(node)
    perm = attrs.get("perm", list(range(len(imp.shape[x])))[::-1])
    if not perm or perm[0] != 0:
        imp.fail(node, f"perm {list(perm)} moves the batch axis; not supported")
    imp.add(TransposeLayer(imp.layer_name(node), perm), [x], node.output[0])


def _dropout(imp, node, attrs):
    ratio = imp.const(node, 1, required=False) if imp.opset >= 12 else None
    ratio = attrs.get("ratio", 0.5) if ratio is None else float(ratio)
    training = imp.const(node, 2, required=False) if imp.opset >= 12 else None
    if training is not None and bool(training) and ratio > 0:
        imp.fail(node, "training_mode=True drops values at random; only inference is supported")
    layer = DropoutLayer(imp.layer_name(node), ratio)
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


def _reduce(cls):
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


def _pad(imp, node, attrs):
    """Zero padding of H and W in front of convolutions only: it becomes their padding."""
    x = imp.runtime_input(node)
    pads = imp.const(node, 1) if imp.opset >= 11 else attrs.get("pads")
    pads = [int(p) for p in np.reshape(pads, -1)]
    value = imp.const(node, 2, required=False)
    consumers = [n for n in imp.graph.node if node.output[0] in n.input]
    if (_text(attrs.get("mode", "constant")) != "constant" or len(pads) != 8
            or any(pads[k] for k in (0, 1, 4, 5)) or min(pads) < 0
            or (value is not None and float(value) != 0)
            or not consumers or any(n.op_type != "Conv" for n in consumers)
            or node.output[0] in imp.graph_outputs or (len(node.input) > 3 and node.input[3])):
        imp.fail(node, "only constant zero padding of H and W that feeds convolutions only is "
                       "supported (it is folded into their padding)")
    imp.pending_pads[node.output[0]] = (x, (pads[2], pads[3], pads[6], pads[7]))


def _lrn(imp, node, attrs):
    layer = CrossChannelNormalizationLayer(imp.layer_name(node), attrs["size"],
                                           attrs.get("alpha", 1e-4), attrs.get("beta", 0.75),
                                           attrs.get("bias", 1.0))
    imp.add(layer, [imp.runtime_input(node)], node.output[0])


HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batch_norm,
    "Relu": _simple(ReLULayer), "LeakyRelu": _leaky_relu, "Clip": _clip,
    "Sigmoid": _simple(SigmoidLayer), "Tanh": _simple(TanhLayer), "Softmax": _softmax,
    "MaxPool": _pool(MaxPooling2DLayer), "AveragePool": _pool(AveragePooling2DLayer),
    "GlobalAveragePool": _simple(GlobalAveragePooling2DLayer),
    "GlobalMaxPool": _simple(GlobalMaxPooling2DLayer),
    "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"), "Div": _binary("Div"),
    "Sum": _sum, "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape,
    "Squeeze": _squeeze_unsqueeze, "Unsqueeze": _squeeze_unsqueeze, "Transpose": _transpose,
    "Dropout": _dropout, "Identity": _simple(IdentityLayer), "LRN": _lrn,
    "ReduceMean": _reduce(GlobalAveragePooling2DLayer),
    "ReduceMax": _reduce(GlobalMaxPooling2DLayer), "Pad": _pad,
}

# Every standard operator whose inputs are all constants is evaluated at import time, except
# those with random results.
NON_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                "Multinomial", "Bernoulli"}
