"""Quantized max pooling (windowed and global): the maximum of the stored integers."""
from __future__ import annotations

from ... import kernels
from ...nn.functional import pool_pads
from .base import AffineKind, QuantizedKind, register_affine_kind, register_kind
from .ort_graph import float_route, moving, ort_graph


@register_kind("MaxPooling2D", "GlobalMaxPooling2D")
class MaxPoolingKind(QuantizedKind):
    """The maximum of stored integers is the stored integer of the maximum (padding never wins,
    ceil_mode and same padding resolved as the float layer does)."""

    def run(self, ql, x):
        layer = ql.layer
        if layer.type_name == "GlobalMaxPooling2D":
            layer._check(x.shape)
            return kernels.max_pool2d(x, x.shape[2:4], 1)
        layer._check(x.shape)
        full, _, _ = pool_pads(x.shape, layer.pool_size, layer.stride,
                               layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                               layer.ceil_mode)
        return kernels.max_pool2d(x, layer.pool_size, layer.stride, full)


def _max_of(layer):
    kind = MaxPoolingKind()
    return lambda x: kind.run(layer, x)


def litert_pool(function_name):
    """TFLite {MAX,AVERAGE}_POOL_2D on int8 NCHW (pooling.cc MaxEval / AverageEval,
    reference_integer_ops::MaxPool / AveragePool; XNNPACK max pooling where the delegate takes it):
    `fixedpoint.kernels.litert.max_pool2d / average_pool2d`, the fused activation's bounds rounded
    as the resolver that runs the op rounds them. TFLite expects the input's quantization on the
    output but only checks it in debug builds: the integers are pooled as they are, the output's
    parameters place the activation bounds."""
    def bind(layer, runtime):
        from ...runtime.profile import RuntimeNotSupportedError
        from .litert_common import activation, litert, resolver
        pool, out = layer.layer, layer.output_params
        padding = pool.padding if isinstance(pool.padding, str) else tuple(pool.padding)
        if padding not in ("same", (0, 0, 0, 0)) or pool.ceil_mode or (
                getattr(pool, "count_include_pad", False)):
            raise RuntimeNotSupportedError(
                f"layer {layer.name!r}: LiteRT pools with SAME (padding excluded from averages) or "
                f"VALID windows, not padding={pool.padding!r}, ceil_mode={pool.ceil_mode}")
        kw = dict(filter_size=pool.pool_size, stride=pool.stride,
                  padding="SAME" if padding == "same" else "VALID", activation=activation(layer),
                  output_scale=float(out.scale[0]), output_zero_point=int(out.zero_point[0]),
                  resolver=resolver(layer, runtime))
        function = getattr(litert(), function_name)

        def run(x):
            pool._check(x.shape)
            return function(x, **kw)
        return run
    return bind


@register_affine_kind("MaxPooling2D", "GlobalMaxPooling2D")
class AffineMaxPoolingKind(AffineKind):
    """Max pooling of affine integers. Formulas by recipe "compute": "ort-graph" (ORT drops the DQ/Q
    pair around MaxPool when both have the same parameters and takes the maximum of the integers; a
    positive scale keeps the order, so it is exact; the unfused DQ → MaxPool → Q gives the same numbers
    and runs so too), "float", "litert" (TFLite MAX_POOL_2D; data:
    optional `activation`; LiteRT has no global max pooling, a REDUCE_MAX is not imported)."""

    COMPUTE = {"ort-graph": ort_graph({"MaxPool": moving(_max_of), "GlobalMaxPool": moving(_max_of), "": moving(_max_of)}),
               "float": float_route, "litert": litert_pool("max_pool2d")}

