"""QDQ export: a `QuantizedNetwork` written as the ONNX model ONNX Runtime runs the same way.

Each quantized layer becomes the QDQ node group `onnxruntime.quantization.quantize_static` writes:
a DequantizeLinear on each input, the float operator (named after the layer, as the float export
writes it), a QuantizeLinear with the layer's output parameters; weights are int8 initializers read
through a DequantizeLinear (per output channel along axis 0, or per tensor), the bias an int32
initializer at scale float32(s_x·s_w) with zero point 0. A float tensor read by a quantized layer is
quantized once per parameter set and a quantized tensor dequantized once (the shared pairs of
quantize_static); a quantized tensor read with other parameters is requantized through float
(DequantizeLinear, QuantizeLinear). A ReLU / clipped ReLU that quantize_static would have folded
into its producer (same parameters, its producer's only reader, a clamp the QuantizeLinear's
saturation makes redundant) sits between the producer and its QuantizeLinear, where ORT removes it.
A fully connected layer reading a 4-D tensor reads it through a Flatten between a DequantizeLinear
and a QuantizeLinear of the same parameters (as quantize_static writes it).

Power-of-two networks (MATLAB / GPU / FPGA) are written the same way with scales 2^-f and zero point
0: int8 activations and weights, int32 bias at 2^-(f_in + f_w) — what deploying such a model to ONNX
Runtime means. `import_onnx` reads the file back to layers of the same names.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .export import OPSET, _Exporter, finish_model
from .model import require_onnx
from ..nn.names import UniqueNames


class LayerView(NamedTuple):
    """What the writer needs of one quantized layer, whatever its scheme."""

    input_params: list
    output_params: object
    weights: np.ndarray | None = None
    weight_params: object = None
    bias: np.ndarray | None = None
    bias_scale: np.ndarray | None = None


def layer_view(ql) -> LayerView:
    """The integers and parameters of an AffineLayer or a power-of-two QuantizedLayer."""
    from ..quantization.qparams import QuantParams
    weights = getattr(ql, "weights", None)
    if weights is None or ql.type_name not in ("Convolution2D", "FullyConnected"):
        return LayerView(list(ql.input_params), ql.output_params)
    sx = np.float32(ql.input_params[0].scale[0])
    if ql.scheme == "affine":
        wp = ql.weight_params
        bias_scale = (sx * wp.scale.astype(np.float32)).astype(np.float32)
    else:
        f_w = np.asarray(ql.weight_fraction_lengths, np.int64).reshape(-1)
        wp = QuantParams.pow2(f_w[0] if np.all(f_w == f_w[0]) else f_w, np.int8, axis=0)
        bias_scale = np.ldexp(np.float32(1), -(ql.input_fraction_lengths[0] + f_w)).astype(np.float32)
    bias = np.asarray(ql.bias, np.int32).reshape(-1)
    return LayerView(list(ql.input_params), ql.output_params, np.asarray(weights), wp, bias, bias_scale)


def export_qdq(qnet, path=None, *, opset: int = OPSET):
    """The QDQ ModelProto of a quantized network (see the module docstring); also written to `path`."""
    onnx = require_onnx()
    if qnet.scheme == "affine" and qnet.target.runtime_family != "onnxruntime":
        raise ValueError(f"export_onnx: this network was quantized for {qnet.target.name} "
                         f"({qnet.target.runtime_family} semantics); a .tflite writer is not part of "
                         f"fixedpoint, and its layers do not compute as ONNX Runtime's would")
    if qnet.input_params:
        raise ValueError("export_onnx: networks taking integer inputs (input_params) are not "
                         "exported; the QDQ model takes float32 inputs")
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"export_onnx: opset must be an int >= 13 (per-channel DequantizeLinear), "
                         f"got {opset!r}")
    writer = _QdqWriter(qnet, onnx)
    for layer in qnet.network.layers:
        writer.layer(layer)
    helper = onnx.helper
    outputs = []
    for name in qnet.network.output_names:
        writer.tensor = {name: writer.float_tensor(name)}
        outputs.append(writer.value_info(name))
    graph = helper.make_graph(writer.nodes, "fixedpoint_quantized_network", writer.inputs, outputs,
                              initializer=writer.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fixedpoint")
    return finish_model(model, path)


def _fold_clamp(ql, producer) -> bool:
    """Whether ORT drops this ReLU / clipped ReLU before the producer's QuantizeLinear
    (relu_quantizelinear.cc, clip_quantizelinear.cc): same parameters on both sides, the zero point
    at the type's minimum, and (clip) the ceiling quantizing to the type's maximum or beyond."""
    params = ql.output_params
    if ql.input_params[0] != params or producer.output_params != params or params.per_channel:
        return False
    if int(params.zero_point[0]) != params.qmin:
        return False
    ceiling = getattr(ql.layer, "ceiling", None)
    if ceiling is None:
        return True
    return int(np.rint(np.float32(ceiling) / params.scale[0])) + params.qmin >= params.qmax


class _QdqWriter(_Exporter):
    def __init__(self, qnet, onnx):
        super().__init__(qnet.network, onnx)
        self.qnet = qnet
        self.float_of: dict[str, str] = {}       # layer -> float tensor of its output
        self.int_of: dict[str, tuple] = {}       # quantized layer -> (integer tensor, params)
        self.quantized: dict[tuple, str] = {}    # (float tensor, params) -> integer tensor
        self.dequantized: dict[str, str] = {}    # integer tensor -> float tensor
        self.pending: dict[str, tuple] = {}      # learnable initializer -> (integers, params)
        self.folded: set[str] = set()            # clamps written before their producer's Q
        self.names = UniqueNames()

    # --- helpers ---------------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        return self.names.unique(name)

    def params_inputs(self, base: str, params) -> list[str]:
        """Scale and zero point initializers (scalars per tensor, 1-D per channel)."""
        scale = params.scale.astype(np.float32)
        zero = params.zero_point.astype(params.dtype)
        if not params.per_channel:
            scale, zero = scale.reshape(()), zero.reshape(())
        return [self.constant(f"{base}_scale", scale, np.float32),
                self.constant(f"{base}_zero_point", zero, params.dtype)]

    def axis(self, params) -> dict:
        return {"axis": int(params.axis)} if params.per_channel else {}

    def quantize(self, tensor: str, params, base: str) -> str:
        key = (tensor, params)
        if key not in self.quantized:
            name = self.unique(f"{base}/QuantizeLinear")
            self.node("QuantizeLinear", [tensor, *self.params_inputs(name, params)], name, name)
            self.quantized[key] = name
        return self.quantized[key]

    def dequantize(self, tensor: str, params) -> str:
        if tensor not in self.dequantized:
            name = self.unique(f"{tensor}/DequantizeLinear")
            self.node("DequantizeLinear", [tensor, *self.params_inputs(name, params)], name, name,
                      **self.axis(params))
            self.dequantized[tensor] = name
        return self.dequantized[tensor]

    def float_tensor(self, name: str) -> str:
        """The float value of layer `name`'s output (a DequantizeLinear of a quantized one)."""
        if name in self.int_of:
            return self.dequantize(*self.int_of[name])
        return self.float_of[name]

    def integer_tensor(self, name: str, params) -> str:
        """Layer `name`'s output as integers with `params`: its own, else quantized (a float output)
        or requantized through float (another quantized output)."""
        own = self.int_of.get(name)
        if own is not None and own[1] == params:
            return own[0]
        return self.quantize(self.float_tensor(name), params, name)

    def constant(self, name: str, value, dtype=np.float32) -> str:
        """Initializers; a quantized layer's weights and bias are written as integers read through a
        DequantizeLinear whose output carries the name asked for."""
        if name not in self.pending:
            return super().constant(name, value, dtype)
        integers, params = self.pending.pop(name)
        stored = super().constant(f"{name}_quantized", integers, integers.dtype)
        self.node("DequantizeLinear", [stored, *self.params_inputs(name, params)], name,
                  self.unique(f"{name}/DequantizeLinear"), **self.axis(params))
        return name

    # --- layers ----------------------------------------------------------------------------------
    def layer(self, layer):
        from ..nn.layers.input_normalization import InputLayer
        from ..quantization.qparams import QuantParams
        name = layer.name
        self.names.add(name)
        if isinstance(layer, InputLayer):
            super().layer(layer)
            self.float_of[name] = self.tensor[name]
            return
        if name in self.folded:
            return
        sources = self.net.layer_inputs(name)
        ql = self.qnet.qlayers.get(name)
        if ql is None:   # a float layer reads float values
            self.tensor = {s: self.float_tensor(s) for s in sources}
            super().layer(layer)
            self.float_of[name] = self.tensor[name]
            return
        view = layer_view(ql)
        inputs = {}
        for s, params in zip(sources, view.input_params):
            inputs[s] = self.dequantize(self.integer_tensor(s, params), params)
            if layer.type_name == "FullyConnected" and len(self.shapes[s]) != 2:
                # Gemm is 2-D: a Flatten between DequantizeLinear and QuantizeLinear of the same
                # parameters first, as quantize_static writes it (QDQDirect8BitOp)
                flat = self.unique(f"{name}/flatten")
                self.node("Flatten", [inputs[s]], flat, flat, axis=1)
                inputs[s] = self.dequantize(self.quantize(flat, params, flat), params)
        if view.weights is not None:
            self.pending = {f"{name}/Weights": (view.weights, view.weight_params),
                            f"{name}/Bias": (view.bias, QuantParams(np.int32, view.bias_scale, 0,
                                                                    0 if view.bias_scale.size > 1 else None))}
        self.tensor = inputs
        if layer.type_name == "FullyConnected":
            weights = self.constant(f"{name}/Weights", None)
            bias = self.constant(f"{name}/Bias", None)
            self.node("Gemm", [inputs[sources[0]], weights, bias], name, name, transB=1)
            self.tensor[name] = name
        else:
            super().layer(layer)
        self.pending = {}
        out = self.tensor[name]
        clamp = self.foldable_reader(name, ql)
        if clamp is not None:   # the clamp before the Q, where quantize_static had it
            self.tensor = {name: out}
            super().layer(self.net.layer(clamp))
            out = self.tensor[clamp]
            self.folded.add(clamp)
            self.names.add(clamp)
        q = self.quantize(out, view.output_params, name)
        self.int_of[name] = (q, view.output_params)
        if clamp is not None:
            self.int_of[clamp] = (q, view.output_params)

    def foldable_reader(self, name, ql):
        readers = self.net.layer_consumers(name)
        if len(readers) != 1 or name in self.net.output_names:
            return None
        reader = self.qnet.qlayers.get(readers[0])
        if reader is None or reader.type_name not in ("ReLU", "ClippedReLU"):
            return None
        return readers[0] if _fold_clamp(reader, ql) else None


def with_ort_records(qnet):
    """`qnet` (an ONNXRuntime network) whose layers record the operator ONNX Runtime runs for them in
    each graph (`ort_op`, `ort_op_precise`, `ort_op_unoptimized`, `ort_activation_dtype`, …: see
    fixedpoint/onnx/ort_fusion.py), read from the QDQ model `export_qdq` writes of it: its
    predictions are then ORT's on that model, under every ORT profile. The import must give every
    quantized layer back with the same parameters; anything else is an internal error."""
    from ..quantization.layers import AffineLayer
    from ..quantization.qnetwork import QuantizedNetwork
    from .importer import import_onnx
    imported = import_onnx(export_qdq(qnet))
    qlayers = {}
    for name, ql in qnet.qlayers.items():
        other = imported.qlayers.get(name)
        if other is None or other.input_params != ql.input_params or other.output_params != ql.output_params:
            raise RuntimeError(f"QDQ export of layer {name!r} does not import back with the same "
                               f"quantization ({other!r} for {ql!r})")
        records = {k: v for k, v in other.data.items() if k.startswith("ort_")}
        qlayers[name] = AffineLayer(ql.layer, ql.input_params, ql.output_params, **{**ql.data, **records})
    return QuantizedNetwork(qnet.network, qlayers, None, qnet.target, qnet.options,
                            activation_params=qnet.activation_params)
