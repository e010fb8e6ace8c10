"""ONNX export: a float `Network` written as an ONNX model (opset 13) that `import_onnx` reads
back to the same layers, so the round trip gives the same outputs.

Each layer becomes one node named after the layer, whose output tensor carries the layer's name;
learnables become initializers named ``<layer>/<parameter>``. The only layers that need more than
one node are input normalisations (Sub, then Div) and fully connected layers on image data (a
Flatten first, as ONNX Gemm takes 2-D input).
"""
from __future__ import annotations

import numpy as np

from ..files import atomic_write

from ..nn.layers import (AdditionLayer, AveragePooling2DLayer, BatchNormalizationLayer,
                     ClippedReLULayer, ConcatenationLayer, Convolution2DLayer,
                     CrossChannelNormalizationLayer, DropoutLayer, FlattenLayer,
                     FullyConnectedLayer, GlobalAveragePooling2DLayer, GlobalMaxPooling2DLayer,
                     IdentityLayer, LeakyReLULayer, MaxPooling2DLayer, MultiplicationLayer,
                     ReLULayer, ReshapeLayer, SigmoidLayer, SoftmaxLayer, TanhLayer,
                     TransposeLayer)
from ..nn.layers.input_normalization import InputLayer
from ..nn.network import Network
from .model import require_onnx

OPSET = 13


def export_onnx(net, path=None):
    """The ONNX ModelProto (opset 13) of a float network, or the QDQ model of a quantized one (an
    ONNXRuntime network, or a power-of-two MATLAB / GPU / FPGA network written with scales 2^-f: see
    `export_qdq`); also written to `path` when given.

    Raises ValueError naming the layer when a layer has no ONNX equivalent here, and for networks
    quantized for LiteRT (no .tflite writer here).
    """
    from ..quantization.qnetwork import QuantizedNetwork
    if isinstance(net, QuantizedNetwork):
        from .export_qdq import export_qdq
        return export_qdq(net, path)
    onnx = require_onnx()
    if not isinstance(net, Network):
        raise TypeError(f"export_onnx expects a Network or a QuantizedNetwork, got {type(net).__name__}")
    exporter = _Exporter(net, onnx)
    for layer in net.layers:
        exporter.layer(layer)
    helper = onnx.helper
    graph = helper.make_graph(exporter.nodes, "fixedpoint_network", exporter.inputs,
                              [exporter.value_info(name) for name in net.output_names],
                              initializer=exporter.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fixedpoint")
    return finish_model(model, path)


def finish_model(model, path):
    """Check `model` with ONNX's checker and, when `path` is given, write it atomically (a failed
    write leaves any old file whole)."""
    require_onnx().checker.check_model(model)
    if path is not None:
        atomic_write(path, model.SerializeToString())
    return model


def _padding(padding) -> dict:
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "same_lower":
        return {"auto_pad": "SAME_LOWER"}
    return {"pads": list(padding)}


class _Exporter:
    def __init__(self, net, onnx):
        self.net, self.onnx, self.helper = net, onnx, onnx.helper
        self.nodes, self.inputs, self.initializers = [], [], []
        self.tensor = {}                    # layer name -> its output tensor
        self.shapes = net.shapes(None)

    def constant(self, name: str, value, dtype=np.float32) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, output, name, **attributes):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def value_info(self, name):
        dims = ["N" if k == 0 else d for k, d in enumerate(self.shapes[name])]
        dims = [f"{name}_dim{k}" if d is None else d for k, d in enumerate(dims)]
        return self.helper.make_tensor_value_info(self.tensor[name], self.onnx.TensorProto.FLOAT,
                                                  dims)

    def layer(self, layer):
        name = layer.name
        if isinstance(layer, InputLayer):
            self.input(layer)
            return
        sources = [self.tensor[s] for s in self.net.layer_inputs(name)]
        x = sources[0]
        out = name
        if isinstance(layer, Convolution2DLayer):
            self.node("Conv", [x, self.constant(f"{name}/Weights", layer.weights),
                               self.constant(f"{name}/Bias", layer.bias)], out, name,
                      kernel_shape=list(layer.filter_size), strides=list(layer.stride),
                      dilations=list(layer.dilation), group=layer.groups,
                      **_padding(layer.padding))
        elif isinstance(layer, FullyConnectedLayer):
            if len(self.shapes[self.net.layer_inputs(name)[0]]) != 2:
                x = self.node("Flatten", [x], f"{name}/flatten", f"{name}/flatten", axis=1)
            self.node("Gemm", [x, self.constant(f"{name}/Weights", layer.weights),
                               self.constant(f"{name}/Bias", layer.bias)], out, name, transB=1)
        elif isinstance(layer, BatchNormalizationLayer):
            p = layer.learnables
            self.node("BatchNormalization",
                      [x] + [self.constant(f"{name}/{key}", p[key]) for key in
                             ("Scale", "Offset", "TrainedMean", "TrainedVariance")],
                      out, name, epsilon=layer.epsilon)
        elif isinstance(layer, ClippedReLULayer):
            self.node("Clip", [x, self.constant(f"{name}/min", 0.0),
                               self.constant(f"{name}/max", layer.ceiling)], out, name)
        elif isinstance(layer, LeakyReLULayer):
            self.node("LeakyRelu", [x], out, name, alpha=layer.scale)
        elif isinstance(layer, SoftmaxLayer):
            self.node("Softmax", [x], out, name, axis=layer.axis)
        elif isinstance(layer, (MaxPooling2DLayer, AveragePooling2DLayer)):
            extra = {"count_include_pad": int(layer.count_include_pad)} \
                if isinstance(layer, AveragePooling2DLayer) else {}
            self.node("MaxPool" if isinstance(layer, MaxPooling2DLayer) else "AveragePool", [x],
                      out, name, kernel_shape=list(layer.pool_size), strides=list(layer.stride),
                      ceil_mode=int(layer.ceil_mode), **_padding(layer.padding), **extra)
        elif isinstance(layer, (AdditionLayer, MultiplicationLayer)):
            self.combine(layer, sources)
        elif isinstance(layer, ConcatenationLayer):
            self.node("Concat", sources, out, name, axis=layer.axis)
        elif isinstance(layer, FlattenLayer):
            self.node("Flatten", [x], out, name, axis=1)
        elif isinstance(layer, ReshapeLayer):
            self.node("Reshape", [x, self.constant(f"{name}/shape", [0] + list(layer.shape),
                                                   np.int64)], out, name)
        elif isinstance(layer, TransposeLayer):
            self.node("Transpose", [x], out, name, perm=list(layer.perm))
        elif isinstance(layer, CrossChannelNormalizationLayer):
            self.node("LRN", [x], out, name, size=layer.window_channel_size, alpha=layer.alpha,
                      beta=layer.beta, bias=layer.k)
        elif isinstance(layer, DropoutLayer):
            self.node("Dropout", [x, self.constant(f"{name}/ratio", layer.probability)], out,
                      name)
        else:
            simple = {ReLULayer: "Relu", SigmoidLayer: "Sigmoid", TanhLayer: "Tanh",
                      GlobalAveragePooling2DLayer: "GlobalAveragePool",
                      GlobalMaxPooling2DLayer: "GlobalMaxPool", IdentityLayer: "Identity"}
            op = simple.get(type(layer))
            if op is None:
                raise ValueError(f"export_onnx: layer {name!r} of type {layer.type_name} has no "
                                 f"ONNX equivalent")
            self.node(op, [x], out, name)
        self.tensor[name] = out

    def combine(self, layer, sources):
        """Add (two inputs) or Sum (more); Mul, chained left to right as the layer computes."""
        name = layer.name
        if isinstance(layer, AdditionLayer):
            self.node("Add" if len(sources) == 2 else "Sum", sources, name, name)
            return
        product = sources[0]
        for k, other in enumerate(sources[1:], start=2):
            last = k == len(sources)
            product = self.node("Mul", [product, other], name if last else f"{name}/mul{k}",
                                name if last else f"{name}/mul{k}")

    def input(self, layer):
        """A graph input, followed by Sub/Div nodes for its normalisation (rescalings are written
        as the equivalent mean and standard deviation)."""
        name = layer.name
        dims = ["N"] + [f"{name}_dim{k}" if d is None else d
                        for k, d in enumerate(layer.input_shape[1:], start=1)]
        self.inputs.append(self.helper.make_tensor_value_info(
            name, self.onnx.TensorProto.FLOAT, dims))
        stats, mode = layer.statistics, layer.normalization
        if mode == "rescale-symmetric":
            raise ValueError(f"export_onnx: input layer {name!r} uses 'rescale-symmetric' "
                             f"normalization, which has no exact ONNX form here; use 'zscore' "
                             f"with mean (max+min)/2 and std (max-min)/2")
        mean = stats.get("mean", stats.get("min"))
        std = stats.get("std", None if "max" not in stats else stats["max"] - stats["min"])
        out = name
        if mean is not None:
            out = self.node("Sub", [out, self.constant(f"{name}/Mean", mean[None])],
                            f"{name}/zerocenter", f"{name}/zerocenter")
        if std is not None:
            out = self.node("Div", [out, self.constant(f"{name}/StandardDeviation", std[None])],
                            f"{name}/scale", f"{name}/scale")
        self.tensor[name] = out
