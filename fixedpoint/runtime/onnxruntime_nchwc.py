"""ONNX Runtime's NCHWc float layers (graph optimization level ORT_ENABLE_ALL, optimizer/nchwc_transformer.cc):
which float Conv / AveragePool / GlobalAveragePool of a network ORT rewrites to com.microsoft.nchwc nodes
on MLAS's NCHWc kernels (MlasNchwcConv / MlasNchwcPool), and the float function computing them
(`fixedpoint.kernels.onnxruntime.conv_float_nchwc`, `average_pool_nchwc`, `global_average_pool_nchwc`).

A profile's recipe names the layout of its float layers with "float-layout": "nchw" (no rewrite:
ORT_DISABLE_ALL), "nchwc8" (MlasNchwcGetBlockSize() = 8: AVX2 + FMA3) or "nchwc16" (16: AVX-512F).
The rule by shape is the transformer's (`nchwc_conv_applies`, `nchwc_pool_applies`); what depends on
the graph around the layer (weights that are not float initializers, an Add or a BatchNormalization
the transformer folds into the NCHWc convolution) the ONNX importer records per layer as a hint
(`fixedpoint/onnx/ort_fusion.py` `nchwc_hints`): "nchw" (not rewritten), "nchwc" (a GlobalAveragePool
the transformer converts: only after a graph input or an NCHWc output, so never without the hint) or
"refuse: <why>" (rewritten into something not emulated: the layer raises `RuntimeNotSupportedError`
rather than give other numbers).

MaxPool and GlobalMaxPool are rewritten too, but a maximum is exact in any order, so they keep their
NCHW function.
"""
from __future__ import annotations

import numpy as np

from .profile import RuntimeNotSupportedError

LAYOUTS = ("nchw", "nchwc8", "nchwc16")
BLOCKS = {"nchwc8": 8, "nchwc16": 16}

# float layer types whose NCHWc kernel sums in another order than the NCHW one
NCHWC_TYPES = ("Convolution2D", "AveragePooling2D", "GlobalAveragePooling2D")


def layout_of(layer, runtime) -> str:
    """The recipe's "float-layout" for the layer's type ("nchw" when the recipe names none)."""
    value = runtime.recipe(layer).get("float-layout", "nchw")
    if value not in LAYOUTS:
        raise RuntimeNotSupportedError(
            f"layer {layer.name!r}: runtime {runtime.name!r} asks for float-layout={value!r}; "
            f"implemented: {', '.join(LAYOUTS)}")
    return value


def _refuse(float_layer, hint):
    raise RuntimeNotSupportedError(
        f"layer {float_layer.name!r}: ONNX Runtime's {hint[len('refuse:'):].strip()}; "
        f"not emulated (the profile with float-layout 'nchw', onnxruntime-reference, runs it as written)")


def _pads(layer, x, kernel, dilation):
    from ..nn.functional import resolve_padding
    return list(resolve_padding(layer.padding, x.shape[2:], kernel, layer.stride, dilation))


def nchwc_float_function(float_layer, layout: str, hint=None, constant_weights: bool = True, nchw=None):
    """f(x) computing the float layer as ORT's NCHWc kernel with the layout's block, or None when ORT
    keeps the layer in NCHW (then the caller's NCHW function applies). `hint`: the importer's
    per-block hint for this layer ({"8": ..., "16": ...}) or None. `constant_weights`: whether a
    convolution's weights are float initializers (False between DequantizeLinear and QuantizeLinear,
    where the weights come out of a DequantizeLinear ORT does not fold). `nchw`: the layer's NCHW
    function, for pools whose rewrite depends on the run-time channel count."""
    if layout == "nchw":
        return None
    block = BLOCKS[layout]
    note = (hint or {}).get(str(block))
    if isinstance(note, str) and note.startswith("refuse:"):
        _refuse(float_layer, note)
    if note == "nchw" or float_layer.type_name not in NCHWC_TYPES:
        return None
    from ..kernels import onnxruntime as k
    layer = float_layer
    if layer.type_name == "Convolution2D":
        w, b = layer.learnables["Weights"], layer.learnables.get("Bias")
        if not constant_weights or not k.nchwc_conv_applies(w.shape, layer.groups, block):
            return None
        return lambda x: k.conv_float_nchwc(x, w, b, strides=layer.stride, pads=_pads(layer, x, w.shape[2:],
                                            layer.dilation), dilations=layer.dilation, group=layer.groups,
                                            block=block)
    if layer.type_name == "AveragePooling2D":
        def average_pool(x):
            options = dict(kernel_shape=layer.pool_size, strides=layer.stride,
                           pads=_pads(layer, x, layer.pool_size, (1, 1)),
                           count_include_pad=layer.count_include_pad, ceil_mode=layer.ceil_mode)
            if k.nchwc_pool_applies(x.shape[1], block, count_include_pad=layer.count_include_pad,
                                    ceil_mode=layer.ceil_mode):
                return k.average_pool_nchwc(x, **options)
            return nchw(x)
        return average_pool

    if note != "nchwc":   # converted only after a graph input or an NCHWc output (the importer's hint)
        return None

    def global_average_pool(x):
        if k.nchwc_pool_applies(x.shape[1], block):
            return k.global_average_pool_nchwc(x)
        return nchw(x)
    return global_average_pool
