"""Quantized 2-D convolution: int8 weights, int32 accumulation, one fused requantization."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ... import _kernels, kernels
from ...kernels.threads import path_code
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


FLOAT_EXACT_BOUND = float(1 << 24)


@register_affine_kind("Convolution2D")
class AffineConvolutionKind(AffineLinearKind):
    """Affine convolution (ONNX QLinearConv, TFLite CONV_2D / DEPTHWISE_CONV_2D): the exact or the
    runtime's int32 sums of (x − z_x)·(w − z_w) plus the bias, then the runtime's requantizer, all in
    one compiled pass. Padding takes the input zero point, so a padded tap adds nothing."""

    ORT_OPS = ("QLinearConv",)

    # images up to this many pixels run as one GEMM over the whole batch's patches (the convolution
    # kernel's set-up per image dominates there); larger ones and grouped convolutions use conv2d
    BATCH_GEMM_PIXELS = 1024

    def integer_function(self, layer, requantizer, accumulation, flip_input):
        conv = layer.layer
        fused, after = self.split(requantizer)
        weights = layer.weights
        o, c_group, kh, kw = weights.shape
        zx = int(layer.input_params[0].zero_point[0]) + (128 if flip_input else 0)
        zw = layer.weight_params.zero_point
        zw = 0 if not np.any(zw != 0) else (int(zw[0]) if np.all(zw == zw[0]) else zw.astype(np.int32))
        extra = {} if accumulation is None else {"accumulation": accumulation}
        bias = layer.bias
        if conv.groups == 1:   # (kh, kw, C) rows: the patches' order, and MLAS's NHWC im2col order
            gemm_weights = kernels.pack_weights(np.ascontiguousarray(
                weights.transpose(2, 3, 1, 0).reshape(kh * kw * c_group, o)))
            gemm_extra = dict(extra, b_zero_point=zw) if not np.isscalar(zw) or zw else extra
        packed = kernels.pack_weights(weights, groups=conv.groups)
        conv_extra = dict(extra, w_zero_point=zw) if not np.isscalar(zw) or zw else extra
        # grouped (depthwise) convolutions with exact sums: the compiled float convolution of
        # (x - z_x) and (w - z_w) is exact when every partial sum is an integer below 2^24 (see
        # exact_float_sums); with the bias too when |sums| + |bias| stay below it
        centred = weights.astype(np.float32) - np.reshape(zw, (-1, 1, 1, 1)).astype(np.float32)
        bound = c_group * kh * kw * 255 * float(np.abs(centred).max(initial=0))
        float_route = accumulation is None and conv.groups > 1 and bound <= FLOAT_EXACT_BOUND
        if float_route:
            float_packed = kernels.pack_float_conv(centred, groups=conv.groups)
            float_bias = bias.astype(np.float32) if bound + float(np.abs(bias).max(initial=0)) <= \
                FLOAT_EXACT_BOUND else None

        def run(x):
            conv._check(x.shape)
            if flip_input:
                x = flip_to_uint8(x)
            pads = resolve_padding(conv.padding, x.shape[2:], (kh, kw), conv.stride, conv.dilation)
            if float_route and x.shape[2] * x.shape[3] <= self.BATCH_GEMM_PIXELS:
                xf = x.astype(np.float32)
                xf -= np.float32(zx)
                sums = kernels.conv2d_float(xf, float_packed, bias=float_bias, stride=conv.stride,
                                            pads=pads, dilation=conv.dilation).astype(np.int32)
                if float_bias is None:
                    sums += bias.reshape(1, -1, 1, 1)   # int32, wrapping as the accumulator does
                return requantizer(sums, channel_axis=1)
            if conv.groups == 1 and x.shape[2] * x.shape[3] <= self.BATCH_GEMM_PIXELS:
                oh, ow = (output_size(n, k, s, p0, p1, d) for n, k, s, p0, p1, d in zip(
                    x.shape[2:], (kh, kw), conv.stride, pads[:2], pads[2:], conv.dilation))
                cols = channels_last_patches(x, (kh, kw), conv.stride, pads, conv.dilation, (oh, ow), zx)
                y = kernels.gemm(cols, gemm_weights, bias=bias, a_zero_point=zx, requantizer=fused,
                                 **gemm_extra)
                if after is not None:
                    y = after(y, channel_axis=1)
                return y.reshape(x.shape[0], oh, ow, o).transpose(0, 3, 1, 2)
            y = kernels.conv2d(x, packed, bias=bias, stride=conv.stride, padding=pads,
                               dilation=conv.dilation, groups=conv.groups, x_zero_point=zx,
                               requantizer=fused, **conv_extra)
            return y if after is None else after(y, channel_axis=1)
        return run
