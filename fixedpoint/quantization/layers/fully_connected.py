"""Quantized fully connected layer: int8 weights, int32 accumulation, one fused requantization."""
from __future__ import annotations

import numpy as np

from ... import kernels
from .base import register_affine_kind, register_kind
from .learnable import (FLOAT_EXACT_MAX_PRODUCTS, FLOAT_EXACT_MAX_TERMS, AffineLinearKind, LearnableKind,
                        exact_float_sums, flip_to_uint8)


@register_kind("FullyConnected")
class FullyConnectedKind(LearnableKind):
    """Small products in exact float32 BLAS (see `exact_float_sums`), others in the int8 GEMM."""

    def prepare(self, ql):
        super().prepare(ql)
        ql.packed_weights = kernels.pack_weights(np.ascontiguousarray(ql.weights.T))
        ql.float_weights_t = (np.ascontiguousarray(ql.weights.T, np.float32)
                              if ql.weights.shape[1] <= FLOAT_EXACT_MAX_TERMS else None)
        ql.bias_row = np.asarray(ql.bias, np.int32)
        # as for convolutions: the bias joins the exact float32 sums while they stay within 2^24
        bias_fits = ql.weights.shape[1] * 128 * 128 + int(np.abs(ql.bias_row).max(initial=0)) <= 1 << 24
        ql.float_bias = np.asarray(ql.bias, np.float32) if bias_fits else None

    def run(self, ql, x, requantizer=None):
        """`requantizer` as for convolutions."""
        rq = requantizer or ql.requantizer
        rows = x.reshape(x.shape[0], -1)
        if ql.float_weights_t is not None and rows.shape[0] * ql.weights.size <= \
                FLOAT_EXACT_MAX_PRODUCTS:
            if ql.float_bias is not None:
                sums = np.matmul(rows.astype(np.float32), ql.float_weights_t)
                sums += ql.float_bias
                return rq(sums.astype(np.int32), channel_axis=1)
            acc = exact_float_sums(lambda xf: xf @ ql.float_weights_t, rows)
            np.add(acc, ql.bias_row, out=acc)   # int32, wrapping as the accumulator does
            return rq(acc, channel_axis=1)
        return kernels.gemm(rows, ql.packed_weights, bias=ql.bias, requantizer=rq)


@register_affine_kind("FullyConnected")
class AffineFullyConnectedKind(AffineLinearKind):
    """Affine fully connected layer (ONNX QLinearMatMul / QGemm, TFLite FULLY_CONNECTED): int32 sums
    of (x − z_x)·(w − z_w) plus the bias, then the runtime's requantizer, in one compiled pass."""

    ORT_OPS = ("QLinearMatMul", "QGemm")

    def integer_function(self, layer, requantizer, accumulation, flip_input, channels_last=False):
        fused, after = self.split(requantizer)
        packed = kernels.pack_weights(np.ascontiguousarray(layer.weights.T))
        zx = int(layer.input_params[0].zero_point[0]) + (128 if flip_input else 0)
        extra = {}
        zw = layer.weight_params.zero_point
        if np.any(zw != 0):
            extra["b_zero_point"] = int(zw[0]) if np.all(zw == zw[0]) else zw.astype(np.int32)
        if accumulation is not None:
            extra["accumulation"] = accumulation
        bias = layer.bias

        def run(x):
            x = x.reshape(x.shape[0], -1)
            if flip_input:
                x = flip_to_uint8(x)
            y = kernels.gemm(x, packed, bias=bias, a_zero_point=zx, requantizer=fused, **extra)
            return y if after is None else after(y, channel_axis=1)
        return run
