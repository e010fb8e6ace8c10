"""What the LiteRT formulas of the affine kinds share: the resolver a profile's recipe names, the
quantization arguments of `fixedpoint.kernels.litert`, and TFLite's axis order.

The formulas themselves are `fixedpoint.kernels.litert` (compiled, per op resolver). A LiteRT recipe
reads {"compute": "litert", "resolver": "reference" | "optimized" | "xnnpack", "source": ...};
"xnnpack" is the default resolver (AUTO), which runs an op with XNNPACK where the delegate takes it
and with the optimized kernels elsewhere (the kernels module decides per op and parameters).

Layout rule: a 4-D array of an affine network is NCHW, and LiteRT holds the same tensor NHWC
(the .tflite importer keeps every other rank in TFLite's own order). Several LiteRT kernels treat an
element by its position in memory (NEON blocks and scalar tails of the optimized kernels), so the
formulas run on `to_tflite(x)` and the result is brought back with `from_tflite`.
"""
from __future__ import annotations

import numpy as np

from ...runtime.profile import RuntimeNotSupportedError

RESOLVERS = ("reference", "optimized", "xnnpack")
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def resolver(layer, runtime) -> str:
    """The op resolver the runtime's recipe for `layer` names."""
    return runtime.choice(layer, "resolver", RESOLVERS)


def litert():
    from ...kernels import litert as module
    return module


def quant_args(params, prefix: str) -> dict:
    """{prefix_scale: float32 scale, prefix_zero_point: int} of per-tensor `params`."""
    return {f"{prefix}_scale": float(params.scale[0]), f"{prefix}_zero_point": int(params.zero_point[0])}


def to_tflite(x: np.ndarray) -> np.ndarray:
    """The array in TFLite's axis order (a view; 4-D NCHW → NHWC)."""
    return x.transpose(TO_NHWC) if x.ndim == 4 else x


def from_tflite(y: np.ndarray) -> np.ndarray:
    """A result in TFLite's order back in ours: 4-D NHWC → an NCHW view of the same memory (no
    copy: the next LiteRT formula usually reads it NHWC again, `to_tflite` then gives the
    contiguous array back; kernels that need NCHW memory copy it themselves)."""
    return y.transpose(TO_NCHW) if y.ndim == 4 else y


def tflite_axis(axis: int, ndim: int) -> int:
    """Our axis `axis` of an `ndim`-D array as TFLite numbers it."""
    axis %= ndim
    return TO_NHWC.index(axis) if ndim == 4 else axis


def activation(layer) -> str:
    """The fused activation a LiteRT layer applies ("NONE" when it has none)."""
    return str(getattr(layer, "activation", None) or "NONE")


def same_params(layer, what: str) -> None:
    """Ops that move integers (max pooling, padding, reshapes) need equal input and output params."""
    for p in layer.input_params:
        if p != layer.output_params:
            raise RuntimeNotSupportedError(
                f"layer {layer.name!r}: {what} needs the same quantization on its input and output "
                f"(got {p} and {layer.output_params})")



def litert_binary(function_name):
    """LiteRT {ADD, SUB, MUL} of two int8 tensors with a fused activation, per resolver
    (fixedpoint.kernels.litert.add / sub / mul)."""
    def bind(layer, runtime):
        if len(layer.input_params) != 2:
            raise RuntimeNotSupportedError(f"layer {layer.name!r}: LiteRT's {function_name.upper()} "
                                           f"takes two inputs, got {len(layer.input_params)}")
        a, b = layer.input_params
        kw = dict(**quant_args(a, "a"), **quant_args(b, "b"), **quant_args(layer.output_params, "output"),
                  activation=activation(layer), resolver=resolver(layer, runtime))
        function = getattr(litert(), function_name)
        return lambda x, y: from_tflite(function(to_tflite(x), to_tflite(y), **kw))
    return bind
