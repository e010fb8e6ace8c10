"""Quantized softmax (affine only)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


def _ort_qlinear_softmax(layer, runtime):
    """ORT's com.microsoft QLinearSoftmax (qlinear_softmax.cc; kernels.onnxruntime.qlinear_softmax), with
    the node's opset (its axis semantics)."""
    function = ort_kernels(layer, "qlinear_softmax")
    (px,), py = layer.input_params, layer.output_params
    sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)
    axis, opset = layer.layer.axis, int(getattr(layer, "ort_opset", 13))
    return lambda x: function(x, sx, zx, sy, zy, axis=axis, opset=opset)


def _litert_softmax(layer, runtime):
    """TFLite SOFTMAX on int8 along TFLite's last axis (activations.cc SoftmaxEval: reference
    gemmlowp fixed point, optimized float exp table; XNNPACK takes only float softmax):
    `fixedpoint.kernels.litert.softmax`. Our axis must be the one TFLite reduces (channels)."""
    from ...runtime.profile import RuntimeNotSupportedError
    from .litert_common import from_tflite, litert, resolver, tflite_axis, to_tflite
    out = layer.output_params
    kw = dict(input_scale=float(layer.input_params[0].scale[0]), output_scale=float(out.scale[0]),
              output_zero_point=int(out.zero_point[0]), resolver=resolver(layer, runtime))
    softmax = litert().softmax
    axis = layer.layer.axis

    def run(x):
        if tflite_axis(axis, x.ndim) != x.ndim - 1:
            raise RuntimeNotSupportedError(f"layer {layer.name!r}: LiteRT's SOFTMAX runs along the last "
                                           f"TFLite axis; axis {axis} of a {x.ndim}-D input is not it")
        return from_tflite(softmax(to_tflite(x), **kw))
    return run


@register_affine_kind("Softmax")
class AffineSoftmaxKind(AffineKind):
    """Affine softmax. Formulas by recipe "compute": "ort-graph" (QLinearSoftmax, or the float Softmax
    between DQ and Q), "float", "litert" (TFLite SOFTMAX along its last axis)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearSoftmax": _ort_qlinear_softmax}), "float": float_route,
               "litert": _litert_softmax}

