"""TFLite import: a full-integer .tflite model becomes a `QuantizedNetwork` computing as LiteRT does.

The graph walk. Every operator of the main subgraph becomes one or a few of our float layers (the
float network, with dequantized weights) and, for each, an `AffineLayer` holding the integers and
quantization parameters of the file; its affine kind (`fixedpoint/quantization/layers/`) computes it
as the chosen LiteRT profile does (`fixedpoint/runtime/litert*.py`). Shape arithmetic that only
depends on constants and on the known non-batch sizes (SHAPE → STRIDED_SLICE → PACK feeding a
RESHAPE, as Keras writes a Flatten with a free batch size) is evaluated here.

Layouts. TFLite tensors are NHWC; our layers are NCHW. A 4-D tensor is held NCHW wherever an
operator computes on it ("nchw" order), and in TFLite's own order ("native") where its memory order
matters (the input, RESHAPE, a FULLY_CONNECTED reading a flattened image, the outputs); a Transpose
layer converts between the two where needed. Every other rank is held as TFLite holds it. The
LiteRT kinds rely on this rule: a 4-D array they receive is NCHW and TFLite's NHWC view of it is
`x.transpose(0, 2, 3, 1)` (docs/runtimes-litert-import.md).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..nn.layers import IdentityLayer, TensorInputLayer, TransposeLayer
from ..nn.network import Network
from ..quantization.layers import AffineLayer
from ..quantization.qparams import QuantParams
from . import ops  # noqa: F401  (registers every operator handler)
from .graph import ACTIVATIONS, QUANTIZED_TYPES, TO_NCHW, TO_NHWC, Value
from .reader import TfliteImportError, TfliteModel, read_model
from .registry import HANDLERS, supported_operators
from ..nn.names import UniqueNames

def import_tflite(source, *, name: str | None = None):
    """A `QuantizedNetwork` computing a full-integer .tflite model (a path or the file's bytes) as
    LiteRT does (default runtime "litert"; also "litert-optimized", "litert-reference").

    It takes the input as LiteRT does (NHWC; integers of the input's type when the model's input is
    int8/uint8, floats otherwise) at any batch size, and returns integers when the model's output is
    integer (`integer_outputs`), floats after a DEQUANTIZE. Its float `network` holds the dequantized
    weights. Raises `TfliteImportError` (a ValueError) naming what is wrong: a malformed file, an
    unsupported operator (its index, and the supported list), or attributes our layers cannot express.
    """
    model = read_model(source)
    return Importer(model).quantized_network(name)


# builtin operator -> (its options table, whether the options are required)
OPTIONS = {
    "CONV_2D": ("Conv2DOptions", True), "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", True),
    "FULLY_CONNECTED": ("FullyConnectedOptions", False), "ADD": ("AddOptions", False),
    "SUB": ("SubOptions", False), "MUL": ("MulOptions", False),
    "CONCATENATION": ("ConcatenationOptions", True), "MAX_POOL_2D": ("Pool2DOptions", True),
    "AVERAGE_POOL_2D": ("Pool2DOptions", True), "MEAN": ("ReducerOptions", False),
    "RESHAPE": ("ReshapeOptions", False), "SQUEEZE": ("SqueezeOptions", False),
    "SOFTMAX": ("SoftmaxOptions", True), "LEAKY_RELU": ("LeakyReluOptions", True),
    "STRIDED_SLICE": ("StridedSliceOptions", False), "PACK": ("PackOptions", False),
    "SHAPE": ("ShapeOptions", False), "PAD": ("PadOptions", False), "QUANTIZE": ("QuantizeOptions", False),
    "DEQUANTIZE": ("DequantizeOptions", False), "HARD_SWISH": ("HardSwishOptions", False),
}


class Importer:
    """One import: walks the operators in order, keeping for every tensor its constant value or the
    `Value` (layer, shape, quantization, order) that produces it."""

    def __init__(self, model: TfliteModel):
        self.model = model
        self.what = model.what
        self.tensors = model.tensors
        self.values: dict[int, Value] = {}
        self.converted: dict[tuple, Value] = {}     # (tensor, order) -> Value in that order
        self.folded: dict[int, object] = {}         # tensor -> constant made by shape arithmetic
        self.layers: dict = {}
        self.qlayers: dict = {}
        self.connections: list[tuple[str, str]] = []
        self.names = UniqueNames()
        self.file_batch = None
        self.float_outputs = False
        self.uses = Counter(t for op in model.operators for t in op.inputs if t >= 0)
        self.op_counts: Counter = Counter()

    # --- errors and names --------------------------------------------------------------------------
    def fail(self, op, message: str):
        raise TfliteImportError(f"{self.what}: operator {op.index} ({op.op}): {message}")

    def unique(self, name: str) -> str:
        return self.names.unique(name)

    def name_for(self, op, suffix: str = "") -> str:
        """A layer name from the operator's output tensor name (the part before the first ';', as
        the converter joins the names of fused TensorFlow ops)."""
        tensor = self.tensors[op.outputs[0]] if op.outputs else None
        base = tensor.name.split(";")[0] if tensor is not None and tensor.name else ""
        base = base or f"{op.op.lower()}_{op.index}"
        return self.unique(base + suffix)

    # --- tensors -----------------------------------------------------------------------------------
    def tensor(self, op, k: int):
        if k >= len(op.inputs) or op.inputs[k] < 0:
            self.fail(op, f"input {k} is missing")
        return self.tensors[op.inputs[k]]

    def has_input(self, op, k: int) -> bool:
        return k < len(op.inputs) and op.inputs[k] >= 0

    def const(self, op, k: int):
        """The constant value of input `k` (from the file, or folded shape arithmetic)."""
        t = self.tensor(op, k)
        if t.index in self.folded:
            return self.folded[t.index]
        if t.data is None:
            self.fail(op, f"input {k} ({t.name!r}) must be a constant, but it is computed at run time")
        return t.data

    def params(self, index: int, op=None) -> QuantParams | None:
        """The per-tensor `QuantParams` of a run-time tensor (None for float32)."""
        t = self.tensors[index]
        if t.dtype == np.float32:
            return None
        if t.dtype not in QUANTIZED_TYPES:
            self.fail(op, f"tensor {t.name!r} has type {t.type_name}; the importer handles int8 and "
                          f"uint8 tensors (and float32 at the model's edges)")
        q = t.quantization
        if q is None:
            self.fail(op, f"tensor {t.name!r} ({t.type_name}) has no quantization parameters")
        if q.per_channel:
            self.fail(op, f"tensor {t.name!r} is quantized per channel; activations must be per tensor")
        return QuantParams(t.dtype, q.scale[0], int(q.zero_point[0]))

    def weight_params(self, op, k: int, axis_map: int) -> QuantParams:
        """The quantization of constant weights (input `k`), with a per-channel axis remapped to
        our weight layout's output axis `axis_map`."""
        t = self.tensor(op, k)
        q = t.quantization
        if t.dtype != np.int8:
            self.fail(op, f"weights {t.name!r} have type {t.type_name}; only int8 weights are supported")
        if q is None:
            self.fail(op, f"weights {t.name!r} have no quantization parameters")
        if np.any(q.zero_point != 0):
            self.fail(op, f"weights {t.name!r} have non-zero zero points; TFLite int8 weights are symmetric")
        return QuantParams(np.int8, q.scale, 0, axis_map if q.per_channel else None)

    def batch_shape(self, index: int, op=None) -> tuple:
        """A run-time tensor's TFLite shape with the batch dimension None."""
        t = self.tensors[index]
        if not t.shape:
            self.fail(op, f"tensor {t.name!r} is a scalar; run-time tensors need a batch dimension")
        if self.file_batch is not None and t.shape[0] != self.file_batch and t.signature[0] != -1:
            self.fail(op, f"tensor {t.name!r} of shape {list(t.shape)} does not keep the batch "
                          f"dimension ({self.file_batch}) first")
        return (None,) + tuple(t.shape[1:])

    def value(self, op, k: int, order: str | None = None) -> Value:
        """The run-time input `k` of `op`, in `order` ("nchw", "native"; None: as held). A 4-D value
        changes order through a Transpose layer (made once per tensor and order)."""
        t = self.tensor(op, k)
        value = self.values.get(t.index)
        if value is None:
            if t.data is not None or t.index in self.folded:
                self.fail(op, f"input {k} ({t.name!r}) is a constant; this operator takes it computed "
                              f"at run time")
            self.fail(op, f"input {k} ({t.name!r}) is produced by no earlier operator")
        return self.in_order(value, order, t.index)

    def in_order(self, value: Value, order: str | None, index) -> Value:
        if order is None or value.order == order or len(value.shape) != 4:
            return value
        key = (index, order)
        if key not in self.converted:
            perm = TO_NCHW if order == "nchw" else TO_NHWC
            layer = TransposeLayer(self.unique(f"{value.layer}/{order}"), perm)
            self.converted[key] = self.add_layer(layer, [value], Value("", value.shape, value.params, order))
        return self.converted[key]

    # --- graph building ----------------------------------------------------------------------------
    def add_layer(self, layer, inputs: list[Value], out: Value, data: dict | None = None,
                  quantized: bool = True) -> Value:
        """Add float `layer` reading `inputs`, and its AffineLayer (inputs' and `out`'s quantization,
        `data`); returns the output Value (named after the layer)."""
        ports = layer.input_ports
        for port, value in zip(ports, inputs):
            self.connections.append((value.layer, layer.name if len(ports) == 1 else f"{layer.name}/{port}"))
        self.layers[layer.name] = layer
        out = Value(layer.name, out.shape, out.params, out.order)
        expected = out.ours
        try:
            got = layer.output_shape(*[v.ours for v in inputs])
        except ValueError as error:
            raise TfliteImportError(f"{self.what}: layer {layer.name!r}: {error}") from None
        if tuple(got[1:]) != tuple(expected[1:]):
            raise TfliteImportError(f"{self.what}: layer {layer.name!r} computes shape {list(got[1:])} per "
                                    f"observation where the file has {list(expected[1:])}")
        if quantized:
            if out.params is None or any(v.params is None for v in inputs):
                raise TfliteImportError(f"{self.what}: layer {layer.name!r} computes on float32 tensors; "
                                        f"only full-integer models are supported (float32 only at the "
                                        f"model's input and output, through QUANTIZE and DEQUANTIZE)")
            try:
                self.qlayers[layer.name] = AffineLayer(layer, [v.params for v in inputs], out.params,
                                                       **(data or {}))
            except ValueError as error:
                raise TfliteImportError(f"{self.what}: layer {layer.name!r}: {error}") from None
        return out

    def output(self, op, layer, inputs: list[Value], order: str = "native", data: dict | None = None,
               index: int = 0) -> Value:
        """Add `layer` computing output `index` of `op` in `order`; record and return its Value."""
        t = op.outputs[index]
        value = self.add_layer(layer, inputs, Value("", self.batch_shape(t, op), self.params(t, op), order),
                               data)
        self.values[t] = value
        return value

    def activation(self, op, value: Value, code: int) -> Value:
        """The float layer of a fused activation (NONE adds nothing): its affine form passes its input
        on (`fused=True`), the producer having clamped its output as the runtime does."""
        from .ops.activation import fused_activation_layer
        name = ACTIVATIONS.get(code, f"code {code}")
        if name == "NONE":
            return value
        layer = fused_activation_layer(self.unique(f"{value.layer}/{name.lower()}"), name)
        if layer is None:
            self.fail(op, f"fused activation {name} is not supported (supported: NONE, RELU, RELU6)")
        out = self.add_layer(layer, [value], value, {"fused": True})
        self.values[op.outputs[0]] = out
        return out

    @staticmethod
    def activation_name(op, code: int) -> str:
        return ACTIVATIONS.get(code, f"code {code}")

    def alias(self, index: int, value: Value):
        """Tensor `index` is `value` (an operator folded into its producer)."""
        self.values[index] = value

    def check_options(self, op):
        """The operator carries the options table of its kind: required where TFLite needs it
        (strides, windows), optional where the schema defaults describe the op."""
        expected, required = OPTIONS.get(op.op, (None, False))
        if op.options_table is None:
            if required:
                self.fail(op, f"the operator has no {expected}")
            return
        if op.options_table != expected:
            self.fail(op, f"the operator carries {op.options_table}; {op.op} takes "
                          f"{expected or 'no builtin options'}")

    # --- the walk ----------------------------------------------------------------------------------
    def walk(self):
        model = self.model
        if not model.inputs:
            raise TfliteImportError(f"{self.what}: the model has no input")
        inputs = []
        for index in model.inputs:
            t = self.tensors[index]
            if t.data is not None:
                raise TfliteImportError(f"{self.what}: input {t.name!r} has constant data")
            if not t.shape:
                raise TfliteImportError(f"{self.what}: input {t.name!r} is a scalar; inputs need a batch "
                                        f"dimension")
            if self.file_batch is None:
                self.file_batch = t.shape[0]
            if t.dtype not in (*QUANTIZED_TYPES, np.dtype(np.float32)):
                raise TfliteImportError(f"{self.what}: input {t.name!r} has type {t.type_name}; supported "
                                        f"are int8, uint8 and float32 inputs")
            name = self.unique(t.name.split(":")[0].removeprefix("serving_default_") or "input")
            layer = TensorInputLayer(name, t.shape[1:])
            self.layers[name] = layer
            self.values[index] = Value(name, self.batch_shape(index), self.params(index), "native")
            inputs.append(layer)
        for op in model.operators:
            handler = HANDLERS.get(op.op)
            if handler is None:
                raise TfliteImportError(
                    f"{self.what}: operator {op.index} is {op.op}, which the importer does not support; "
                    f"supported operators: {', '.join(supported_operators())}")
            self.op_counts[op.op] += 1
            self.check_options(op)
            try:
                handler(self, op)
            except TfliteImportError:
                raise
            except (ValueError, TypeError, KeyError, IndexError) as error:   # attributes we cannot express
                self.fail(op, f"{type(error).__name__}: {error}")
        return inputs

    def quantized_network(self, name: str | None = None):
        from ..quantization.qnetwork import QuantizedNetwork
        from ..quantization.targets import get_target
        inputs = self.walk()
        outputs, kinds = [], set()
        for index in self.model.outputs:
            value = self.values.get(index)
            t = self.tensors[index]
            if value is None:
                raise TfliteImportError(f"{self.what}: output {t.name!r} is a constant or produced by no "
                                        f"operator")
            value = self.in_order(value, "native", index)
            if value.pending:   # a QUANTIZE of a float input is itself an output: quantize here
                value = self.add_layer(IdentityLayer(self.unique(f"{value.layer}/quantize")), [value], value)
            if value.layer in outputs:
                raise TfliteImportError(f"{self.what}: output {t.name!r} repeats another output")
            kinds.add("float" if t.dtype == np.float32 else "integer")
            outputs.append(value.layer)
        if len(kinds) > 1:
            raise TfliteImportError(f"{self.what}: the model mixes integer and float32 outputs, which "
                                    f"one network cannot return together")
        network = Network(list(self.layers.values()), self.connections,
                          input_names=[layer.name for layer in inputs], output_names=outputs)
        input_params = {}
        for layer, index in zip(inputs, self.model.inputs):
            params = self.params(index)
            if params is not None:
                input_params[layer.name] = params
        options = {"source": "tflite", "model": name or self.what,
                   "operators": dict(sorted(self.op_counts.items()))}
        return QuantizedNetwork(network, self.qlayers, None, get_target("LiteRT"), options,
                                input_params=input_params, integer_outputs=kinds == {"integer"})
