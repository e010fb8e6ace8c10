"""Quantized global average pooling: one integer sum per channel, one rounding division."""
from __future__ import annotations

from ... import kernels
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, ort_graph, ort_kernels, scalar


@register_kind("GlobalAveragePooling2D")
class GlobalAveragePoolingKind(QuantizedKind):
    def run(self, ql, x):
        ql.layer._check(x.shape)
        return kernels.global_avg_pool(x, rounding=ql.rounding)


def _ort_qlinear_global_average_pool(layer, runtime):
    """ORT's com.microsoft QLinearGlobalAveragePool, NCHW (qlgavgpool.cpp;
    kernels.onnxruntime.qlinear_global_average_pool)."""
    function = ort_kernels(layer, "qlinear_global_average_pool")
    (px,), py = layer.input_params, layer.output_params
    sx, zx, sy, zy = scalar(px, "scale"), scalar(px), scalar(py, "scale"), scalar(py)

    def run(x):
        layer.layer._check(x.shape)
        return function(x, sx, zx, sy, zy)
    return run


def _litert_mean(layer, runtime):
    """TFLite MEAN over H and W (reduce.cc EvalMean: reference QuantizedMeanOrSum, optimized Mean4D
    when keep_dims, XNNPACK rsum where the delegate takes it): `fixedpoint.kernels.litert.mean` on
    the NHWC view, for an interpreter run with one thread (the optimized kernel splits the channels
    among its threads and rounds per split). Data: optional `keep_dims` (the MEAN's option, default
    True; the kernels differ with it; the result keeps the (N, C, 1, 1) shape either way)."""
    from .litert_common import from_tflite, litert, quant_args, resolver, to_tflite
    keep = bool(getattr(layer, "keep_dims", True))
    kw = dict(keep_dims=keep, **quant_args(layer.input_params[0], "input"),
              **quant_args(layer.output_params, "output"), resolver=resolver(layer, runtime), num_threads=1)
    mean = litert().mean

    def run(x):
        layer.layer._check(x.shape)
        y = mean(to_tflite(x), (1, 2), **kw)
        return from_tflite(y if keep else y.reshape(y.shape[0], 1, 1, -1))
    return run


@register_affine_kind("GlobalAveragePooling2D")
class AffineGlobalAveragePoolingKind(AffineKind):
    """Affine global average pooling. Formulas by recipe "compute": "ort-graph"
    (QLinearGlobalAveragePool, or the float GlobalAveragePool between DQ and Q), "float", "litert" (a
    TFLite MEAN over the spatial axes)."""

    COMPUTE = {"ort-graph": ort_graph({"QLinearGlobalAveragePool": _ort_qlinear_global_average_pool}),
               "float": float_route, "litert": _litert_mean}

