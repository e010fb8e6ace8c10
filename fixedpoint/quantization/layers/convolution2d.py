"""Quantized 2-D convolution: int8 weights, int32 accumulation, one fused requantization."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ... import _kernels, kernels
from ...kernels import layout
from ...kernels.layout import contiguous
from ...kernels.threads import path_code, setting_path_code
from ...nn.functional import conv2d as conv2d_float
from ...nn.functional import conv2d_route, output_size, packed_float_weights, resolve_padding
from .base import register_affine_kind, register_kind
from .learnable import (FLOAT_EXACT_MAX_PRODUCTS, FLOAT_EXACT_MAX_TERMS, AffineLinearKind, LearnableKind,
                        exact_float_sums, flip_to_uint8)


@register_kind("Convolution2D")
class ConvolutionKind(LearnableKind):
    """Three exact routes to the same int32 sums, chosen once per input shape by measured speed:

    * float32 (`exact_float_sums`) for small products, where the int8 kernels' fixed cost per
      call dominates, and for depthwise or few-channel convolutions of small images: the compiled
      float convolution with the bias added in the same pass when sums and bias stay within 2^24
      (then every float32 operation is exact), else BLAS and an int32 bias addition;
    * one int8 GEMM over channels-last patches of the whole batch for other ungrouped
      convolutions of small images (the conv kernel's per-image setup dominates there);
    * the conv kernel for everything else (large images)."""

    GEMM_MIN_CHANNELS = 8
    SMALL_IMAGE_PIXELS = 256

    def prepare(self, ql):
        super().prepare(ql)
        layer = ql.layer
        _, c_group, kh, kw = ql.weights.shape
        ql.packed_weights = kernels.pack_weights(ql.weights, groups=layer.groups)
        ql.gemm_weights = None   # packed on first use, rows ordered (kh, kw, C) as the patches
        ql.gemm_eligible = layer.groups == 1 and c_group >= self.GEMM_MIN_CHANNELS
        ql.float_eligible = c_group * kh * kw <= FLOAT_EXACT_MAX_TERMS
        ql.float_weights = None  # made on first use (read-only), and packed for compiled code
        ql.float_packed = None
        ql.bias_nchw = np.asarray(ql.bias, np.int32).reshape(1, -1, 1, 1)
        # the float32 sums stay exact with the bias added too while |sum| + |bias| <= 2^24
        bias_fits = c_group * kh * kw * 128 * 128 + int(np.abs(ql.bias_nchw).max(initial=0)) <= 1 << 24
        ql.float_bias = np.asarray(ql.bias, np.float32) if bias_fits else None
        ql.routes = {}           # input shape -> route (see `route`)

    def route(self, ql, shape) -> tuple:
        """("float" | "gemm" | "conv", explicit pads, (OH, OW)) for inputs of `shape`."""
        layer = ql.layer
        out_ch, c_group, kh, kw = ql.weights.shape
        pads = resolve_padding(layer.padding, shape[2:], (kh, kw), layer.stride, layer.dilation)
        oh, ow = (output_size(shape[2 + a], (kh, kw)[a], layer.stride[a], pads[a], pads[a + 2],
                              layer.dilation[a]) for a in range(2))
        small_image = oh * ow <= self.SMALL_IMAGE_PIXELS
        products = shape[0] * oh * ow * out_ch * c_group * kh * kw
        if ql.float_eligible and (products <= FLOAT_EXACT_MAX_PRODUCTS
                                  or (small_image and not ql.gemm_eligible)):
            compiled = conv2d_route(shape, ql.weights.shape, layer.stride, pads, layer.dilation,
                                    layer.groups)[1]
            return ("compiled float" if compiled and ql.float_bias is not None else "float"), \
                pads, (oh, ow)
        return ("gemm" if ql.gemm_eligible and small_image else "conv"), pads, (oh, ow)

    def run(self, ql, x, requantizer=None):
        """`requantizer` replaces the layer's own (the network passes one with a following ReLU's
        clamp when it computes that activation here)."""
        rq = requantizer or ql.requantizer
        layer = ql.layer
        out_ch, c_group, kh, kw = ql.weights.shape
        route = ql.routes.get(x.shape)
        if route is None:
            route = ql.routes[x.shape] = self.route(ql, x.shape)
        kind, pads, (oh, ow) = route
        if kind == "compiled float" or kind == "float":
            if ql.float_weights is None:
                float_weights = ql.weights.astype(np.float32)
                float_weights.flags.writeable = False   # packed once by the float convolution
                ql.float_weights = float_weights
        if kind == "compiled float":   # exact float32 sums with the bias, in one compiled call
            if ql.float_packed is None:
                ql.float_packed = packed_float_weights(ql.float_weights, layer.groups)
            acc = _kernels.conv2d_float(x.astype(np.float32), ql.float_packed, layer.stride,
                                        layer.dilation, pads, ql.float_bias, None, None,
                                        0, 0.0, 0.0, 0.0, path_code())
            return rq(acc.astype(np.int32), channel_axis=1)
        if kind == "float":
            acc = exact_float_sums(lambda xf: conv2d_float(
                xf, ql.float_weights, None, layer.stride, pads, layer.dilation, layer.groups), x)
            np.add(acc, ql.bias_nchw, out=acc)   # int32, wrapping as the accumulator does
            return rq(acc, channel_axis=1)
        if kind == "gemm":
            if ql.gemm_weights is None:
                ql.gemm_weights = kernels.pack_weights(np.ascontiguousarray(
                    ql.weights.transpose(2, 3, 1, 0).reshape(kh * kw * c_group, out_ch)))
            cols = channels_last_patches(x, (kh, kw), layer.stride, pads, layer.dilation, (oh, ow))
            out = kernels.gemm(cols, ql.gemm_weights, bias=ql.bias, requantizer=rq)
            return np.ascontiguousarray(
                out.reshape(x.shape[0], oh, ow, out_ch).transpose(0, 3, 1, 2))
        return kernels.conv2d(x, ql.packed_weights, bias=ql.bias, stride=layer.stride,
                              padding=pads, dilation=layer.dilation, groups=layer.groups,
                              requantizer=rq)


def channels_last_patches(x: np.ndarray, kernel, stride, pads, dilation, out_hw, pad_value=0) -> np.ndarray:
    """The convolution patches of NCHW `x` as an (N·OH·OW) × (kh·kw·C) matrix, taps ordered
    (kh, kw, C), gathered from a padded NHWC copy in which one kernel row of all channels is a
    contiguous run. Padding takes `pad_value`: 0 for symmetric int8, the input zero point for affine
    integers (so a padded tap adds nothing once the zero point is subtracted)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    top, left, bottom, right = pads
    padded = np.full((n, h + top + bottom, w + left + right, c), pad_value, x.dtype)
    padded[:, top:top + h, left:left + w, :] = x.transpose(0, 2, 3, 1)
    sn, sy, sx, sc = padded.strides
    view = as_strided(padded, (n, oh, ow, kh, kw, c),
                      (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc), writeable=False)
    return view.reshape(n * oh * ow, kh * kw * c)



@register_affine_kind("Convolution2D")
class AffineConvolutionKind(AffineLinearKind):
    """Affine convolution (ONNX QLinearConv, TFLite CONV_2D / DEPTHWISE_CONV_2D): the exact or the
    runtime's int32 sums of (x − z_x)·(w − z_w) plus the bias, then the runtime's requantizer, all in
    one compiled pass. Padding takes the input zero point, so a padded tap adds nothing."""

    ORT_OPS = ("QLinearConv",)

    def integer_function(self, layer, requantizer, accumulation, flip_input, channels_last=False):
        """One compiled call per batch: `_kernels.conv2d_gemm` (csrc/kernels/conv_gemm.cpp) with the
        weights packed, the zero points, bias and requantizer parameters made here, once. Measured
        against the kernel's other routes on the bundled networks and on large images (3x3 64->64
        56x56, 1x1 256->256 14x14), it is the fastest for every shape; depthwise layers with exact
        sums run its channels-vectorised depthwise kernel (conv_dw_nhwc.hpp). An input whose memory
        is NHWC is read as it is; `channels_last` returns the result as NHWC memory (an NCHW-shaped
        view), the layout LiteRT's other formulas read without a copy."""
        conv = layer.layer
        fused, after = self.split(requantizer)
        weights = layer.weights
        o, _, kh, kw = weights.shape
        zx = int(layer.input_params[0].zero_point[0]) + (128 if flip_input else 0)
        zw = np.ascontiguousarray(layer.weight_params.zero_point, np.int32)
        zw = zw[:1] if np.all(zw == zw[0]) else zw
        acc = accumulation if accumulation is not None else kernels.accumulation.EXACT
        order = kernels.accumulation.K_ORDERS.index(acc.k_order or "hwc")
        handle = kernels.pack_weights(weights, groups=conv.groups).conv_gemm(
            order, kernels.accumulation.ACCUMULATION_KINDS.index(acc.kind))
        bias = np.ascontiguousarray(layer.bias, np.int32)
        params = None if fused is None else fused.to_params()
        stride, dilation = tuple(conv.stride), tuple(conv.dilation)
        padding = conv.padding
        fixed_pads = None if isinstance(padding, str) else tuple(padding)   # normalized: 4 ints
        conv_gemm = _kernels.conv2d_gemm
        out_last = bool(channels_last)

        def run(x):
            conv._check(x.shape)
            if flip_input:
                x = flip_to_uint8(x)
            pads = fixed_pads or resolve_padding(padding, x.shape[2:], (kh, kw), stride, dilation)
            x_last = layout.channels_last(x)
            y = conv_gemm(x.transpose(0, 2, 3, 1) if x_last else contiguous(x), handle, zx, zw, stride, dilation,
                          pads, bias, params, setting_path_code(), x_last, out_last)
            if out_last:
                y = y.transpose(0, 3, 1, 2)
            return y if after is None else after(y, channel_axis=1)
        return run
