"""What the importer and its operator handlers share: the `Value` of a run-time tensor, the axis
orders, and the symbolic batch size of folded shape arithmetic."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quantization.qparams import QuantParams

TO_NCHW = (0, 3, 1, 2)        # ours = tflite.transpose(TO_NCHW)
TO_NHWC = (0, 2, 3, 1)        # tflite = ours.transpose(TO_NHWC)
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
QUANTIZED_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))


class Batch:
    """The batch size in folded shape arithmetic: unknown until run time."""

    def __repr__(self):
        return "N"


BATCH = Batch()


@dataclass(frozen=True)
class Value:
    """A run-time tensor: the layer producing it, its TFLite shape (batch None), its quantization
    (None: float32), and the axis order our layers hold it in ("native" or "nchw"). `pending`: the
    layer produces floats that a QUANTIZE turned into these integers; the reading layer quantizes."""

    layer: str
    shape: tuple
    params: QuantParams | None
    order: str = "native"
    pending: bool = False

    @property
    def ours(self) -> tuple:
        """The shape as our layers hold it."""
        return tuple(self.shape[a] for a in TO_NCHW) if self.order == "nchw" else self.shape


def same_memory_order(shape: tuple) -> bool:
    """Whether a 4-D TFLite (NHWC) shape holds its elements in the same memory order as its NCHW
    transpose: the axes of size above 1 come in the same relative order (e.g. C alone, or H, W with
    C = 1), so a reshape may read either."""
    n, h, w, c = shape
    tflite = [a for a, d in zip("hwc", (h, w, c)) if d != 1]
    ours = [a for a, d in zip("chw", (c, h, w)) if d != 1]
    return tflite == ours


def flat_size(shape) -> int | None:
    return None if any(d is None for d in shape) else math.prod(shape)
