"""Affine constant padding: the new elements hold the stored zero (the zero point)."""
from __future__ import annotations

import numpy as np

from ...kernels.layout import channels_last
from .base import AffineKind, register_affine_kind


@register_affine_kind("Pad")
class AffinePadKind(AffineKind):
    """Padding with the real value `layer.value` stored in the output's integers: TFLite int8 PAD
    fills with the output zero point and requires the input's quantization on its output
    (tflite/kernels/pad.cc, reference_ops::Pad); every runtime copies the same bytes."""

    def check(self, layer):
        if len(layer.input_params) != 1 or layer.input_params[0] != layer.output_params:
            raise ValueError(f"layer {layer.name!r}: a pad keeps its input's quantization; got "
                             f"{layer.input_params} -> {layer.output_params}")
        out = layer.output_params
        if out.per_channel:
            raise ValueError(f"layer {layer.name!r}: padding needs per-tensor quantization")
        fill = float(layer.layer.value) / float(out.scale[0]) + int(out.zero_point[0])
        if fill != round(fill) or not out.qmin <= fill <= out.qmax:
            raise ValueError(f"layer {layer.name!r}: the pad value {layer.layer.value} is not a stored "
                             f"integer of the output's quantization")

    def bind(self, layer, runtime):
        pad = layer.layer
        out = layer.output_params
        fill = out.dtype.type(round(float(pad.value) / float(out.scale[0]) + int(out.zero_point[0])))

        def run(x):
            shape = pad.output_shape(x.shape)
            if x.ndim == 4 and channels_last(x):   # NHWC memory (LiteRT's convolutions): padded as it is
                y = np.full((shape[0], shape[2], shape[3], shape[1]), fill, x.dtype)
                inner = tuple(slice(b, b + n) for (b, _), n in zip(pad.pads, x.shape[1:]))
                y[(slice(None),) + inner[1:] + inner[:1]] = x.transpose(0, 2, 3, 1)
                return y.transpose(0, 3, 1, 2)
            y = np.full(shape, fill, x.dtype)   # np.pad's own overhead dominated small tensors
            y[(slice(None),) + tuple(slice(b, b + n) for (b, _), n in zip(pad.pads, x.shape[1:]))] = x
            return y
        return run
