"""Flatten, reshape, dropout (inference) and identity: the stored integers are passed or reshaped."""
from __future__ import annotations

import numpy as np

from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, moving, ort_graph


@register_kind("Flatten", "Reshape", "Dropout", "Identity")
class DataMovementKind(QuantizedKind):
    """Flatten, reshape, dropout (inference), identity: the int8 tensor is passed or reshaped."""

    def run(self, ql, x):
        return ql.layer.forward(x)


def _move(layer, runtime):
    """Reshape, flatten, transpose: the integers move, their meaning stays (TFLite RESHAPE / SQUEEZE
    copy the bytes, reshape.cc; our NHWC ↔ NCHW transposes have no LiteRT counterpart)."""
    from .litert_common import same_params
    same_params(layer, f"a {layer.type_name} layer")
    forward = layer.layer.forward
    return forward


def _litert_requantize(layer, runtime):
    """TFLite QUANTIZE from integers to integers (quantize.cc, reference_ops::Requantize;
    optimized NEON blocks and tail; XNNPACK qs8 convert where the delegate takes it)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    out = layer.output_params
    kw = dict(**quant_args(layer.input_params[0], "input"), output_scale=float(out.scale[0]),
              output_zero_point=int(out.zero_point[0]), dtype=out.dtype, resolver=resolver(layer, runtime))
    quantize = litert().quantize
    return lambda x: from_tflite(quantize(to_tflite(x), **kw))


def _litert(layer, runtime):
    """LiteRT: an Identity whose parameters differ is a requantization (a TFLite int → int QUANTIZE);
    everything else moves the same bytes, input and output sharing their quantization."""
    if layer.type_name == "Identity" and layer.input_params[0] != layer.output_params:
        return _litert_requantize(layer, runtime)
    return _move(layer, runtime)


def _resize_nhwc(layer, runtime):
    """A linear Resize ORT runs on NHWC integers (the optimized graph of a QOperator model, between NHWC
    QLinearConvs): upsample.cc NhwcUpsampleBilinearInteger, 10-bit weights (kernels.onnxruntime.resize on
    NHWC data); the same parameters in and out."""
    from ...kernels.onnxruntime import resize
    from .litert_common import same_params
    same_params(layer, "a Resize on integers")
    sh, sw = layer.layer.scale
    mode = layer.layer.coordinate_transformation_mode

    def run(x):
        layer.layer._check(x.shape)
        y = resize(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), scales=[1.0, sh, sw, 1.0], mode="linear",
                   coordinate_transformation_mode=mode)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return run


def _unfused(layer, runtime):
    """DQ → the float operator → Q (no graph optimizations): a pure move of values with equal DQ/Q
    parameters gives the integers moved (Q(DQ(q)) = q), computed so; Resize interpolates in float."""
    if layer.type_name == "Resize2D":
        return float_route(layer, runtime)
    return moving(lambda layer: layer.layer.forward)(layer, runtime)


@register_affine_kind("Flatten", "Reshape", "Transpose", "Dropout", "Identity", "Resize2D")
class AffineDataMovementKind(AffineKind):
    """Flatten, Reshape, Transpose, Dropout, Identity and Resize on affine integers. Formulas by
    recipe "compute": "ort-graph" (ORT drops their DQ/Q pair; an Identity also stands for a
    QuantizeLinear of a float tensor, quantized on entry; a linear Resize reading integers computes on them:
    NCHW "Resize" as the layer's forward, or "ResizeNHWC" `_resize_nhwc`), "float", "litert" (`_litert`)."""

    COMPUTE = {"ort-graph": ort_graph({**{op: moving(lambda layer: layer.layer.forward) for op in (
        "Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Resize")}, "ResizeNHWC": _resize_nhwc,
        "": _unfused}),
        "float": float_route, "litert": _litert}
