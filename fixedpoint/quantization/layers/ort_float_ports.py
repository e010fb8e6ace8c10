"""Convolution and fully connected layers with a float port, as ONNX Runtime runs them.

An `AffineLayer` whose input parameters are None takes float32 and quantizes it itself with
DynamicQuantizeLinear, whose scale and zero point depend on the whole input tensor (the batch);
one whose output parameters are None returns float32. Both come from ONNX models:

* dynamic quantization (`onnxruntime.quantization.quantize_dynamic`): DynamicQuantizeLinear(x) →
  MatMulInteger / ConvInteger → Cast → Mul by float32(x_scale · w_scale) [→ Add bias]; ORT fuses the
  MatMul group into com.microsoft DynamicQuantizeMatMul (or MatMulIntegerToFloat) and keeps the
  convolution group as written, with the same numbers (dynamic_quantize_matmul.cc,
  MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR: float(acc) · multiplier, then + bias);
* integer inputs with a float output: com.microsoft QGemm without y_scale (quant_gemm.cc: the int32 C
  added to the sums, then float(acc) · float32(a_scale · b_scale)), MatMulIntegerToFloat, and
  QuantizeLinear → MatMulInteger / ConvInteger → Cast → Mul → Add.

Data fields besides the kinds' `weights`, `weight_params` (the weights' type and zero point) and int32
`bias` (added to the sums): `output_scale` (float32, one value or one per output channel) and
optionally `float_bias` (float32 per output channel). The output is

    y = float32(float32(acc) · m) [+ float_bias]        (two roundings, as ORT's output processor and the
                                                         unfused Cast → Mul → Add)

with m = output_scale for an integer input, and m = float32(x_scale · output_scale) with the batch's
x_scale for a float input. The sums use the accumulation ORT's kernel uses on the profile's CPU
(`kernels.ort_accumulation` for the layer's operator: MatMulInteger, DynamicQuantizeMatMul,
MatMulIntegerToFloat, QGemm: U8S8 saturates in int16 pairs on AVX2; ConvInteger: u8 × s8 and u8 × u8
exact).
"""
from __future__ import annotations

import numpy as np

from ... import kernels
from ...nn.functional import resolve_padding

# kind class name -> the ORT operators with a float port it runs (besides its QLinear ones)
FLOAT_PORT_OPS = {"AffineFullyConnectedKind": ("MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"),
                  "AffineConvolutionKind": ("ConvInteger",)}


def check_float_ports(layer) -> None:
    """Validate the float-port fields (the kind checked weights, weight_params and bias)."""
    outputs = layer.weights.shape[0]
    if layer.output_params is not None:
        raise ValueError(f"layer {layer.name!r}: a layer with a float input (dynamic quantization) returns "
                         f"float32; output_params must be None")
    scale = getattr(layer, "output_scale", None)
    if not isinstance(scale, np.ndarray) or scale.dtype != np.float32 or scale.size not in (1, outputs) \
            or not np.all(np.isfinite(scale)):
        raise ValueError(f"layer {layer.name!r}: output_scale must be finite float32, one value or one per output "
                         f"channel ({outputs}), got {scale!r}")
    bias = getattr(layer, "float_bias", None)
    if bias is not None and (not isinstance(bias, np.ndarray) or bias.dtype != np.float32
                             or bias.shape != (outputs,)):
        raise ValueError(f"layer {layer.name!r}: float_bias must be float32 of shape ({outputs},), got "
                         f"{None if not isinstance(bias, np.ndarray) else (bias.dtype, bias.shape)}")
    if layer.input_params[0] is None and layer.weights.ndim == 4 and layer.weight_params.per_channel:
        raise ValueError(f"layer {layer.name!r}: ConvInteger takes one weight zero point (ONNX Runtime refuses "
                         f"per-channel ones)")


def _input_function(layer):
    """x -> (integers, zero point, multiplier m): DynamicQuantizeLinear for a float input, else the
    integers with their parameters."""
    scale = np.asarray(layer.output_scale, np.float32).reshape(-1)
    if layer.input_params[0] is not None:
        zero = int(layer.input_params[0].zero_point[0])
        return lambda x: (x, zero, scale)
    from ...kernels.onnxruntime import dynamic_quantize_linear

    def quantize(x):
        q, x_scale, x_zero = dynamic_quantize_linear(np.ascontiguousarray(x, np.float32))
        return q, int(x_zero), (x_scale * scale).astype(np.float32)
    return quantize


def float_ports_function(layer, accumulation):
    """f(x) computing the layer (see the module docstring); `accumulation`: the `Accumulation` of the
    layer's ORT operator on the profile's CPU, or None (exact)."""
    quantize = _input_function(layer)
    weights = layer.weights
    zw = layer.weight_params.zero_point
    zw = int(zw[0]) if np.all(zw == zw[0]) else zw.astype(np.int32)
    extra = {} if accumulation is None else {"accumulation": accumulation}
    bias = layer.bias if np.any(layer.bias) else None
    float_bias = getattr(layer, "float_bias", None)
    if weights.ndim == 2:
        packed = kernels.pack_weights(np.ascontiguousarray(weights.T))

        def run(x):
            q, zx, m = quantize(x)
            acc = kernels.gemm(q.reshape(q.shape[0], -1), packed, bias=bias, a_zero_point=zx, b_zero_point=zw,
                               **extra)
            y = acc.astype(np.float32) * m
            return y if float_bias is None else y + float_bias
        return run

    conv = layer.layer
    packed = kernels.pack_weights(weights, groups=conv.groups)
    shape = (1, -1, 1, 1)
    fb = None if float_bias is None else float_bias.reshape(shape)

    def run(x):
        conv._check(x.shape)
        q, zx, m = quantize(x)
        pads = resolve_padding(conv.padding, q.shape[2:], weights.shape[2:], conv.stride, conv.dilation)
        acc = kernels.conv2d(q, packed, bias=bias, stride=conv.stride, padding=pads, dilation=conv.dilation,
                             groups=conv.groups, x_zero_point=zx, w_zero_point=zw, **extra)
        y = acc.astype(np.float32) * m.reshape(shape)
        return y if fb is None else y + fb
    return run
