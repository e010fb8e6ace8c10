"""Resize2D: resizing of H and W (ONNX Resize on NCHW data): nearest-neighbour upsampling by integer
factors, or bilinear interpolation (mode "linear") by any positive factors.

Nearest: for an integer factor s, every ONNX coordinate mapping whose nearest pixel of output i is
input floor(i / s) gives the same result: asymmetric with nearest_mode floor, and half_pixel /
pytorch_half_pixel with round_prefer_floor or round_prefer_ceil (the source coordinate
(i + 0.5) / s - 0.5 lies within (s - 1) / (2 s) < 1/2 of floor(i / s)). The importer accepts only
those (fixedpoint/onnx/ops/shape.py); each value is copied, so the layer is exact on floats and on
quantized integers alike.

Linear: ONNX Resize mode "linear" with a `coordinate_transformation_mode`, computed as ONNX Runtime's
CPU kernel does (`fixedpoint.kernels.onnxruntime.resize`, upsample.cc: float32 scales, output size
int64(scale · in), the 4-term bilinear formula in float32; integers truncated). The formula lives there
once; this layer only holds the attributes.
"""
from __future__ import annotations

import numpy as np

from .base import Layer, register_layer

LINEAR_COORDINATES = ("half_pixel", "asymmetric", "pytorch_half_pixel", "tf_half_pixel_for_nn", "align_corners",
                      "half_pixel_symmetric")


@register_layer
class Resize2DLayer(Layer):
    type_name = "Resize2D"

    def __init__(self, name, scale=(2, 2), mode="nearest", coordinate_transformation_mode="asymmetric"):
        super().__init__(name)
        values = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
        if mode == "nearest":
            if np.any(values < 1) or np.any(values != np.round(values)):
                raise ValueError(f"resize {name!r}: scale must be positive integers (H, W), got {scale!r}")
            self.scale = tuple(int(v) for v in values)
        elif mode == "linear":
            if not np.all(np.isfinite(values)) or np.any(values.astype(np.float32) <= 0):
                raise ValueError(f"resize {name!r}: scale must be positive and finite, got {scale!r}")
            if coordinate_transformation_mode not in LINEAR_COORDINATES:
                raise ValueError(f"resize {name!r}: coordinate_transformation_mode must be one of "
                                 f"{', '.join(LINEAR_COORDINATES)}, got {coordinate_transformation_mode!r}")
            self.scale = tuple(float(np.float32(v)) for v in values)
        else:
            raise ValueError(f"resize {name!r}: mode must be 'nearest' or 'linear', got {mode!r}")
        self.mode = mode
        self.coordinate_transformation_mode = str(coordinate_transformation_mode) if mode == "linear" else "asymmetric"

    def _check(self, shape):
        if len(shape) != 4:
            raise ValueError(f"resize {self.name!r} expects (N, C, H, W) input, got shape {tuple(shape)}")

    def forward(self, x):
        self._check(x.shape)
        if self.mode == "linear":
            from ...kernels.onnxruntime import resize
            data = x if x.dtype in (np.float32, np.uint8, np.int8) else np.asarray(x, np.float32)
            return resize(data, scales=[1.0, 1.0, *self.scale], mode="linear",
                          coordinate_transformation_mode=self.coordinate_transformation_mode)
        sh, sw = self.scale
        return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)

    def output_shape(self, shape):
        self._check(shape)
        n, c, h, w = shape
        if self.mode == "linear":   # ORT: int64(float32(scale) * float32(in))
            size = lambda n, s: None if n is None else int(np.float32(s) * np.float32(n))  # noqa: E731
            return (n, c, size(h, self.scale[0]), size(w, self.scale[1]))
        sh, sw = self.scale
        return (n, c, None if h is None else h * sh, None if w is None else w * sw)

    def config(self):
        if self.mode == "nearest":
            return {"scale": list(self.scale)}
        return {"scale": list(self.scale), "mode": self.mode,
                "coordinate_transformation_mode": self.coordinate_transformation_mode}
