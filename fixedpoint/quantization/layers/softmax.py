"""Affine softmax layers."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind


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
    """Affine softmax: formulas by recipe "compute"."""

    COMPUTE = {"litert": _litert_softmax}

    def bind(self, layer, runtime):
        from .litert_common import formula
        return formula(self.COMPUTE, layer, runtime)
