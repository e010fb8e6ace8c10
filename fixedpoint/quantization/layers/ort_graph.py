"""What the affine kinds share to compute a layer as ONNX Runtime runs it.

An ORT profile's recipe says "compute": "ort-graph" and names a graph ("optimized",
"optimized-precise", "as-written"); the importer records on each layer, per graph, the operator ORT
executes for it (`fixedpoint/onnx/ort_fusion.py`): an integer QLinear* operator, or "" when ORT runs
the float operator between DequantizeLinear and QuantizeLinear. A kind then looks the operator up in
its "ort-graph" table (`ort_graph`: operator name -> builder) or takes `float_route`. Every kind
dispatches on the recipe's "compute" with its `COMPUTE` table (`AffineKind.bind`).

Layers made by hand carry no record; they run as the integer operator ORT fuses their type into
(`DEFAULT_OPS`).
"""
from __future__ import annotations

import numpy as np

from ...nn.functional import resolve_padding
from ...runtime.onnxruntime_nchwc import layout_of
from ...runtime.profile import RuntimeNotSupportedError
from .base import RUNTIME_FLOAT_FUNCTIONS

# recipe "graph" -> the layer attribute holding the operator ORT runs in that graph
GRAPH_FIELDS = {"optimized": "ort_op", "optimized-precise": "ort_op_precise",
                "as-written": "ort_op_unoptimized"}

# the operator a hand-built layer of each type stands for
DEFAULT_OPS = {
    "Convolution2D": "QLinearConv", "FullyConnected": "QGemm", "Addition": "QLinearAdd",
    "Multiplication": "QLinearMul", "Concatenation": "QLinearConcat",
    "AveragePooling2D": "QLinearAveragePool", "GlobalAveragePooling2D": "QLinearGlobalAveragePool",
    "LeakyReLU": "QLinearLeakyRelu", "Sigmoid": "QLinearSigmoid", "Softmax": "QLinearSoftmax",
    "MaxPooling2D": "MaxPool", "GlobalMaxPooling2D": "GlobalMaxPool", "ReLU": "Clamp",
    "ClippedReLU": "Clamp", "Flatten": "Flatten", "Reshape": "Reshape", "Transpose": "Transpose",
    "Identity": "Identity", "Dropout": "Identity", "Resize2D": "Resize",
}


def ort_op(layer, runtime) -> str:
    """The operator ORT executes for `layer` in the graph `runtime` stands for ("" = float)."""
    graph = runtime.choice(layer, "graph", tuple(GRAPH_FIELDS))
    op = getattr(layer, GRAPH_FIELDS[graph], None)
    if op is None and graph == "optimized-precise":
        op = getattr(layer, "ort_op", None)
    if op is None:
        op = DEFAULT_OPS.get(layer.type_name, "")
    return str(op)


def _conv(k, layer, opset):
    w, b = layer.learnables["Weights"], layer.learnables.get("Bias")

    def run(x):
        pads = resolve_padding(layer.padding, x.shape[2:], w.shape[2:], layer.stride, layer.dilation)
        return k.conv_float(x, w, b, strides=layer.stride, pads=list(pads), dilations=layer.dilation,
                            group=layer.groups)
    return run


def _gemm(k, layer, opset):
    w, b = layer.learnables["Weights"], layer.learnables.get("Bias")
    return lambda x: k.gemm_float(x.reshape(x.shape[0], -1), w, b, trans_b=True)


def _average_pool(k, layer, opset):
    def run(x):
        pads = resolve_padding(layer.padding, x.shape[2:], layer.pool_size, layer.stride, (1, 1))
        return k.average_pool_float(x, kernel_shape=layer.pool_size, strides=layer.stride, pads=list(pads),
                                    count_include_pad=layer.count_include_pad, ceil_mode=layer.ceil_mode,
                                    opset=opset)
    return run


def _batch_norm(k, layer, opset):
    p = layer.learnables
    return lambda x: k.batch_norm_float(x, p["Scale"], p["Offset"], p["TrainedMean"], p["TrainedVariance"],
                                        epsilon=layer.epsilon)


# float layer type -> (the fixedpoint.kernels.onnxruntime function computing ORT's float kernel, a
# builder of f(x) from the module, the float layer and the model's opset); other types run the layer's
# own `forward`
FLOAT_KERNELS = {
    "Convolution2D": ("conv_float", _conv),
    "FullyConnected": ("gemm_float", _gemm),
    "BatchNormalization": ("batch_norm_float", _batch_norm),
    "AveragePooling2D": ("average_pool_float", _average_pool),
    "GlobalAveragePooling2D": ("global_average_pool_float", lambda k, layer, opset: k.global_average_pool_float),
    "Softmax": ("softmax_float", lambda k, layer, opset: lambda x: k.softmax_float(x, axis=layer.axis)),
    "Sigmoid": ("sigmoid_float", lambda k, layer, opset: k.sigmoid_float),
    "Tanh": ("tanh_float", lambda k, layer, opset: k.tanh_float),
}


def ort_float_function(float_layer, layout="nchw", hint=None, constant_weights=True, opset=13):
    """ORT's own float kernel (MLAS) for a float layer, from `fixedpoint.kernels.onnxruntime`, or None
    when `FLOAT_KERNELS` names none for its type (or the module lacks it). `layout` "nchwc8" /
    "nchwc16": the NCHWc kernel where ORT's NchwcTransformer rewrites the layer (runtime/onnxruntime_nchwc.py).
    `opset`: the model's (ORT runs AveragePool-19 on its own loop, not MLAS)."""
    function = None
    entry = FLOAT_KERNELS.get(float_layer.type_name)
    if entry is not None:
        from ...kernels import onnxruntime as module
        function = entry[1](module, float_layer, opset)
    if layout != "nchw":   # the NCHWc kernel where ORT rewrites the layer; `function` where it does not
        from ...runtime.onnxruntime_nchwc import nchwc_float_function
        function = nchwc_float_function(float_layer, layout, hint, constant_weights, function) or function
    if function is None:
        return None
    return lambda *xs: function(*[np.ascontiguousarray(x, np.float32) for x in xs])


def float_kernel(layer, runtime):
    """The float32 function ORT computes for the layer's float operator: ORT's own kernel where
    `FLOAT_KERNELS` names one, else the layer's `forward` (exact where float32 rounds once per
    operation as ORT does: max, reshape, Relu, LeakyRelu, Add, Mul, Concat). In an optimized graph a
    layer whose float bias ORT quantized (`ort_float_bias`, WeightBiasQuantization) uses that bias."""
    runtime.choice(layer, "float", ("mlas",))
    float_layer = layer.layer
    bias = getattr(layer, "ort_float_bias", None)
    if bias is not None and runtime.choice(layer, "graph", tuple(GRAPH_FIELDS)) != "as-written":
        float_layer = float_layer.copy()
        float_layer.learnables["Bias"] = np.array(bias, np.float32)
    # between DQ and Q: a convolution's weights come out of a DequantizeLinear (never NCHWc); pooling may be
    layout = "nchw" if runtime.choice(layer, "graph", tuple(GRAPH_FIELDS)) == "as-written" \
        else layout_of(layer, runtime)
    return ort_float_function(float_layer, layout, getattr(layer, "ort_nchwc", None), constant_weights=False,
                              opset=int(getattr(layer, "ort_opset", 13))) or float_layer.forward


def _float_layer_function(float_layer, runtime, hint=None):
    """A float layer of an ORT network (no DQ/Q around it) runs on ORT's float kernel too; `hint`: what
    the importer recorded about ORT's NCHWc rewrite of it (runtime/onnxruntime_nchwc.py) and, under
    "opset", the model's opset where the kernel depends on it."""
    if float_layer.type_name not in runtime.ops:
        return None
    runtime.choice(float_layer, "float", ("mlas",))
    if runtime.ops[float_layer.type_name].get("graph") != "as-written" and hint:
        if "folded_into" in hint:   # ConvBNFusion moved this BatchNormalization into the convolution
            return lambda x: np.asarray(x, np.float32)
        if "fold_batch_norm" in hint:
            float_layer = conv_bn_fusion(float_layer, hint["fold_batch_norm"])
    return ort_float_function(float_layer, layout_of(float_layer, runtime), hint,
                              opset=int((hint or {}).get("opset", 13)))


def conv_bn_fusion(conv, bn: dict):
    """A copy of float Conv layer `conv` with the BatchNormalization `bn` (Scale, Offset, TrainedMean,
    TrainedVariance, epsilon) folded in as ORT's ConvBNFusion does it (optimizer/conv_bn_fusion.cc,
    Level 1 of every optimized graph), each step one float32 rounding: s = Scale / sqrt(var + eps),
    W' = W * s per output channel, B' = (B - mean) * s + Offset (without a bias: Offset - mean * s)."""
    f = np.float32
    scale = np.asarray(bn["Scale"], f) / np.sqrt(np.asarray(bn["TrainedVariance"], f) + f(bn["epsilon"]))
    out = conv.copy()
    w = np.asarray(conv.learnables["Weights"], f)
    out.learnables["Weights"] = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    bias = conv.learnables.get("Bias")
    mean, offset = np.asarray(bn["TrainedMean"], f), np.asarray(bn["Offset"], f)
    out.learnables["Bias"] = (np.asarray(bias, f) - mean) * scale + offset if bias is not None else offset - mean * scale
    return out


RUNTIME_FLOAT_FUNCTIONS["onnxruntime"] = _float_layer_function


_BYTES = (np.dtype(np.int8), np.dtype(np.uint8))


def _ort_module():
    try:
        from ...kernels import onnxruntime as module
    except ImportError:
        return None
    return module


def dequantizer(params):
    """q -> float32((q - zp) * scale) (`QuantParams.dequantize`, ONNX DequantizeLinear): for per-tensor
    8-bit parameters ORT's own DequantizeLinear kernel with the arguments checked once here (the same
    bits in one compiled pass instead of numpy's three), else `params.dequantize`."""
    module = _ort_module()
    if module is None or params.per_channel or params.dtype not in _BYTES:
        return params.dequantize
    scale = np.array([params.scale[0]], np.float32)
    zero_point = np.array([params.zero_point[0]], params.dtype)
    kernel, isa, dtype = module._ort.dequantize_linear, module._isa, params.dtype

    def run(q):
        if type(q) is not np.ndarray or q.dtype != dtype or q.size == 0:
            return params.dequantize(q)
        q = np.ascontiguousarray(q)
        return kernel(q, scale, zero_point, 1, 1, q.size, isa(None))
    return run


def quantizer(runtime, params):
    """x -> integers with `params` as `runtime.boundary.quantize` computes them; for the ORT recipe
    (true float32 division, ORT's QuantizeLinear kernel) and per-tensor 8-bit parameters, that kernel
    called with the arguments checked once here."""
    from ...runtime.boundary import quantize
    recipe = runtime.quantize
    module = _ort_module()
    if module is None or recipe.get("formula") == "litert" or recipe.get("division") != "float32" or \
            recipe.get("kernel") != "onnxruntime" or params.per_channel or params.dtype not in _BYTES:
        return lambda x: quantize(runtime, x, params)
    scale = np.array([params.scale[0]], np.float32)
    zero_point = np.array([params.zero_point[0]], params.dtype)
    kernel, isa = module._ort.quantize_linear, module._isa

    def run(x):
        if type(x) is not np.ndarray or x.dtype != np.float32 or x.size == 0:
            return quantize(runtime, x, params)
        x = np.ascontiguousarray(x)
        return kernel(x, scale, zero_point, 1, 1, x.size, isa(None))
    return run


def float_route(layer, runtime):
    """DequantizeLinear of each input, the float operator, QuantizeLinear of the output: how ORT runs a
    QDQ node group it does not fuse, and every QDQ group with graph optimizations disabled."""
    forward = float_kernel(layer, runtime)
    dequantizers, quantize = [dequantizer(p) for p in layer.input_params], quantizer(runtime, layer.output_params)

    def run(*q):
        return quantize(forward(*[d(v) for d, v in zip(dequantizers, q)]))
    return run


def same_params_route(layer, runtime, move):
    """An operator that only moves or selects values (Reshape, MaxPool, ...): on the integers when
    input and output parameters agree (ORT drops the DQ/Q pair: DropQDQNodesRules), else as
    `float_route` (the same numbers: Q(DQ(q)) = q for equal parameters)."""
    if all(p == layer.output_params for p in layer.input_params):
        return move
    return float_route(layer, runtime)



def ort_graph(ops: dict):
    """The "ort-graph" entry of a kind's COMPUTE table: the operator ORT runs for the layer
    (`ort_op`) looked up in `ops` (operator → f(layer, runtime)); "" runs `float_route`, or `ops[""]`
    where the kind gives one (an operator that only moves or selects values: the same numbers on the
    integers when the DQ/Q parameters agree, `same_params_route`)."""
    def bind(layer, runtime):
        op = ort_op(layer, runtime)
        if not op:
            return ops.get("", float_route)(layer, runtime)
        make = ops.get(op)
        if make is None:
            raise RuntimeNotSupportedError(
                f"layer {layer.name!r}: ONNX Runtime runs it as {op}, which the {layer.type_name} kind "
                f"does not implement (it implements {', '.join(sorted(ops)) or 'none'})")
        return make(layer, runtime)
    return bind


def moving(move_of_layer):
    """An ORT operator that moves or selects integers: `same_params_route` with the function
    `move_of_layer(layer)` computes."""
    return lambda layer, runtime: same_params_route(layer, runtime, move_of_layer(layer))


def ort_kernels(layer, what: str):
    """`fixedpoint.kernels.onnxruntime` (ORT's operator formulas), or a clear error naming the layer."""
    try:
        from ...kernels import onnxruntime as module
    except ImportError:
        module = None
    if module is None or not hasattr(module, what):
        raise RuntimeNotSupportedError(
            f"layer {layer.name!r}: ONNX Runtime's {what} formula is not available "
            f"(fixedpoint.kernels.onnxruntime.{what} is missing)")
    return getattr(module, what)


def scalar(params, what="zero_point"):
    """The per-tensor scale (float32) or zero point (int) of `params`."""
    return np.float32(params.scale[0]) if what == "scale" else int(params.zero_point[0])
