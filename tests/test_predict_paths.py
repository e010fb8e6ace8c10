"""The speed-chosen execution routes of float and int8 convolution give the results of their
independent references whatever route a shape takes: float conv2d (NCHW 1x1 matmul, channels-last
patches, window matrices for depthwise and single-channel layers, per-group matmuls) against float64
loops; quantized conv and FC (exact float32 sums, int8 GEMM on channels-last patches, conv kernel)
against the compiled conv kernel with the same requantizer, bit for bit."""
import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint import kernels
from fixedpoint.nn import functional as F
from fixedpoint.quantization.layers import (FLOAT_EXACT_MAX_TERMS, QUANTIZED_KINDS, BuildOptions,
                                             QuantizedLayer, exact_float_sums)

from float_references import conv_reference

RNG = np.random.default_rng(7)


# (batch, channels, filters, groups, kernel, stride, pads, dilation, size): each route, both sides
# of each size threshold
FLOAT_CASES = [
    (3, 6, 4, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), (5, 7)),      # 1x1 matmul on NCHW
    (20, 5, 7, 1, (3, 2), (2, 1), (1, 0, 2, 1), (1, 2), (9, 8)),     # channels-last patches
    (2, 4, 6, 1, (3, 3), (1, 1), (1, 1, 1, 1), (2, 1), (6, 6)),
    (2, 3, 5, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (14, 12)),    # per image on NCHW
    (1, 4, 3, 1, (2, 3), (2, 1), (0, 1, 1, 2), (1, 2), (30, 20)),
    (16, 8, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (8, 8)),     # depthwise window matrix
    (9, 4, 8, 4, (3, 3), (2, 2), (0, 1, 2, 1), (2, 1), (7, 9)),      # with a channel multiplier
    (12, 1, 5, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (8, 8)),     # single-channel first layer
    (2, 8, 8, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (8, 8)),      # depthwise, small batch
    (8, 3, 3, 3, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (11, 11)),    # depthwise, large image
    (8, 6, 4, 2, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (5, 5)),      # grouped
]


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_float_conv_routes_match_loops(case):
    n, c, o, groups, k, stride, pads, dilation, size = case
    x = RNG.normal(size=(n, c) + size).astype(np.float32)
    w = RNG.normal(size=(o, c // groups) + k).astype(np.float32)
    b = RNG.normal(size=o).astype(np.float32)
    got = F.conv2d(x, w, b, stride, pads, dilation, groups)
    want = conv_reference(x, w, b, stride, pads, dilation, groups)
    assert got.shape == want.shape and got.dtype == np.float32 and got.flags.c_contiguous
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_exact_float_sums_at_the_bound():
    """1024 products of -128 · -128 sum to 2^24, the largest integer float32 holds with all below."""
    assert FLOAT_EXACT_MAX_TERMS * 128 * 128 == 2 ** 24
    a = np.full((3, FLOAT_EXACT_MAX_TERMS), -128, np.int8)
    a[1] = RNG.integers(-128, 128, FLOAT_EXACT_MAX_TERMS)
    a[2, ::2] = 127
    w = np.full((FLOAT_EXACT_MAX_TERMS, 4), -128, np.int8)
    w[:, 1] = RNG.integers(-128, 128, FLOAT_EXACT_MAX_TERMS)
    got = exact_float_sums(lambda af: af @ w.astype(np.float32), a)
    want = a.astype(np.int64) @ w.astype(np.int64)
    assert want[0, 0] == 2 ** 24
    np.testing.assert_array_equal(got, want)


# (batch, channels, filters, groups, kernel, stride, padding, size): the float-sum route (small
# products; depthwise and single-channel small images), the int8 GEMM route (ungrouped, >= 8
# channels, small images) and the conv kernel (large images)
QUANT_CASES = [
    (1, 8, 16, 1, 3, 1, (1, 1, 1, 1), (8, 8)),
    (16, 8, 16, 1, 3, 2, "same", (8, 8)),
    (64, 16, 8, 1, 1, 1, (0, 0, 0, 0), (6, 6)),
    (16, 16, 16, 16, 3, 1, (1, 1, 1, 1), (8, 8)),
    (16, 1, 8, 1, 3, 1, (1, 1, 1, 1), (8, 8)),
    (2, 8, 8, 1, 3, 1, (1, 1, 1, 1), (20, 20)),
    (16, 8, 8, 8, 3, 1, (1, 1, 1, 1), (20, 20)),
    (8, 3, 8, 1, 3, 2, (0, 0, 1, 1), (40, 40)),
]


def quantized_layer(layer, rounding="Round", f_in=3, f_out=2):
    options = BuildOptions(rounding=rounding)
    data = QUANTIZED_KINDS[layer.type_name].build(layer, [f_in], f_out, options)
    return QuantizedLayer(layer, rounding, [f_in], f_out, **data)


@pytest.mark.parametrize("case", QUANT_CASES)
@pytest.mark.parametrize("rounding", ["Round", "Convergent"])
def test_quantized_conv_routes_match_conv_kernel(case, rounding):
    n, c, o, groups, k, stride, padding, size = case
    layer = fp.Convolution2DLayer("conv", RNG.normal(0, 0.3, (o, c // groups, k, k)),
                                  RNG.normal(0, 1, o), stride=stride, padding=padding,
                                  groups=groups)
    ql = quantized_layer(layer, rounding)
    x = RNG.integers(-128, 128, (n, c) + size).astype(np.int8)
    x[0] = -128   # largest products
    want = kernels.conv2d(x, ql.weights, bias=ql.bias, stride=layer.stride,
                          padding=layer.padding, dilation=layer.dilation, groups=groups,
                          requantizer=ql.requantizer)
    np.testing.assert_array_equal(ql(x), want)


@pytest.mark.parametrize("batch", [1, 4, 300])
def test_quantized_fully_connected_routes_match_gemm(batch):
    layer = fp.FullyConnectedLayer("fc", RNG.normal(0, 0.1, (24, 200)), RNG.normal(0, 1, 24))
    ql = quantized_layer(layer)
    x = RNG.integers(-128, 128, (batch, 200)).astype(np.int8)
    want = kernels.gemm(x, np.ascontiguousarray(ql.weights.T), bias=ql.bias,
                        requantizer=ql.requantizer)
    np.testing.assert_array_equal(ql(x), want)
