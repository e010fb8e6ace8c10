"""The `fi`-only execution path of a `QuantizedNetwork`: docs/quantized-semantics.md read literally.

Every quantized layer is computed with `fi` arrays of the stored integers and their numerictypes,
products and sums under an explicit `fimath`, and a final `cast` to the output type with the
target's rounding and saturation. Nothing here calls the compiled kernels or the quantized layers'
`run`; only their parameters (stored weights, bias, fraction lengths) are read. The path is slow on
purpose (no packing, no fusing, sequential int32 sums): its only job is to be obviously right, so
that the fast path can be checked against it bit for bit, layer by layer.

    scores = predict_reference(qnet, x)                     # == qnet.predict(x)
    acts = predict_reference(qnet, x, outputs=["conv_1"])   # == qnet.predict(x, outputs=[...])

Affine networks (scales and zero points: ONNX Runtime and LiteRT) have their own independent path,
`fixedpoint/quantization/reference_affine/` (docs/reference-affine.md); `predict_reference` dispatches to it (with `runtime=`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import arith
from ..cast import cast, removefimath, setfimath
from ..fi import concatenate, fi
from ..nn.functional import resolve_padding, spatial_output_shape
from ..types import fimath, numerictype

# Products of int8 values kept whole; sums accumulated in a wrapping int32 (the accumulator).
# Rows of an im2col matrix are taken in chunks so that the explicit product array stays small.
_PRODUCT_CHUNK = 1 << 21


def _int8(f: int) -> numerictype:
    return numerictype(1, 8, int(f))


def _from_stored(q: np.ndarray, T: numerictype) -> fi:
    return fi(int=np.asarray(q, dtype=np.int64), numerictype=T)


def _output_fimath(rounding: str) -> fimath:
    """The cast into an int8 output: one rounding with the target's method, then saturation."""
    return fimath(rounding_method=rounding, overflow_action="Saturate")


def _accumulator_fimath(fraction_length: int) -> fimath:
    """int16 products kept whole, summed one after another in a 32-bit two's-complement register."""
    return fimath(rounding_method="Floor", overflow_action="Wrap", product_mode="FullPrecision",
                  sum_mode="SpecifyPrecision", sum_word_length=32,
                  sum_fraction_length=int(fraction_length))


_EXACT = fimath(product_mode="FullPrecision", sum_mode="FullPrecision")


def _stored(x: fi) -> np.ndarray:
    return np.asarray(x.stored_integer, dtype=np.int64)


# --- convolution and fully connected --------------------------------------------------------------
def _linear(cols: fi, weights: np.ndarray, weight_f: np.ndarray, bias: np.ndarray, f_y: int,
            rounding: str) -> np.ndarray:
    """Stored int8 outputs (M, O) of `cols (M, K) @ weights (O, K)^T + bias`, requantized to f_y.

    Output channels sharing a weight fraction length share one accumulator type, so per-channel
    weights are handled one fraction length at a time."""
    f_x = cols.numerictype.fraction_length
    out = np.zeros((cols.shape[0], weights.shape[0]), np.int64)
    for f_w in np.unique(weight_f):
        channels = np.flatnonzero(weight_f == f_w)
        F = _accumulator_fimath(f_x + int(f_w))
        w = setfimath(_from_stored(weights[channels].T, _int8(f_w)), F)
        b = _from_stored(bias[channels], numerictype(1, 32, f_x + int(f_w)))
        rows = max(1, _PRODUCT_CHUNK // max(1, weights.shape[1] * len(channels)))
        for start in range(0, cols.shape[0], rows):
            x = setfimath(cols[start:start + rows], F)
            acc = arith.add(F, x @ w, b)                      # int32 sum of products, + bias
            y = cast(acc, _int8(f_y), _output_fimath(rounding))
            out[start:start + rows, channels] = _stored(y)
    return out


def _conv2d(ql, x: fi) -> fi:
    """im2col by explicit index gathering (zero padding as stored zeros), one fi matmul per group."""
    layer = ql.layer
    n, c, h, w = x.shape
    out_ch, c_group, kh, kw = ql.weights.shape
    (sh, sw), (dh, dw), groups = layer.stride, layer.dilation, layer.groups
    top, left, bottom, right = resolve_padding(layer.padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    padded = np.zeros((n, c, h + top + bottom, w + left + right), np.int64)
    padded[:, :, top:top + h, left:left + w] = _stored(x)
    xp = _from_stored(padded, x.numerictype)
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    rows = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]      # (oh, kh)
    cols = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]      # (ow, kw)
    per_group = out_ch // groups
    out = np.zeros((n * oh * ow, out_ch), np.int64)
    for g in range(groups):
        channel = (g * c_group + np.arange(c_group))[:, None, None, None, None]
        windows = xp[:, channel, rows[:, None, :, None], cols[None, :, None, :]]  # N,cg,oh,ow,kh,kw
        matrix = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c_group * kh * kw)
        sel = slice(g * per_group, (g + 1) * per_group)
        out[:, sel] = _linear(matrix, ql.weights[sel].reshape(per_group, -1),
                              np.asarray(ql.weight_fraction_lengths)[sel],
                              np.asarray(ql.bias).reshape(-1)[sel],
                              ql.output_fraction_length, ql.rounding)
    return _from_stored(out.reshape(n, oh, ow, out_ch).transpose(0, 3, 1, 2),
                        _int8(ql.output_fraction_length))


def _fully_connected(ql, x: fi) -> fi:
    matrix = x.reshape(x.shape[0], -1)                     # C, H, W order
    out = _linear(matrix, ql.weights, np.asarray(ql.weight_fraction_lengths),
                  np.asarray(ql.bias).reshape(-1), ql.output_fraction_length, ql.rounding)
    return _from_stored(out, _int8(ql.output_fraction_length))


# --- activations -----------------------------------------------------------------------------------
def _relu(ql, x: fi) -> fi:
    return _from_stored(np.maximum(_stored(x), 0), x.numerictype)


def _clipped_relu(ql, x: fi) -> fi:
    """The ceiling is the largest int8 not above it: a Floor cast of the float ceiling."""
    ceiling = fi(float(ql.layer.ceiling), x.numerictype, fimath(rounding_method="Floor",
                                                               overflow_action="Saturate"))
    top = int(_stored(ceiling))
    return _from_stored(np.clip(_stored(x), 0, top), x.numerictype)


def _leaky_relu(ql, x: fi) -> fi:
    """The scale is a signed 16-bit constant with best precision for a positive value,
    f = 14 - floor(log2 scale), rounded with Round; negative inputs are multiplied and cast back."""
    scale = float(ql.layer.scale)
    f_alpha = 14 - (math.frexp(scale)[1] - 1) if scale > 0 else 0
    alpha = fi(scale, numerictype(1, 16, f_alpha), fimath(rounding_method="Round",
                                                          overflow_action="Saturate"))
    product = arith.mpy(_EXACT, x, removefimath(alpha))    # exact, fraction f_x + f_alpha
    negative = cast(product, x.numerictype, _output_fimath(ql.rounding))
    q = _stored(x)
    return _from_stored(np.where(q >= 0, q, _stored(negative)), x.numerictype)


# --- pooling ---------------------------------------------------------------------------------------
def _windows(q: np.ndarray, pool, stride, pads, ceil_mode: bool, fill: int) -> np.ndarray:
    """Windows (N, C, OH, OW, kh*kw) of stored integers; explicit padding and any ceil_mode
    overhang hold `fill`."""
    n, c, h, w = q.shape
    (kh, kw), (sh, sw) = pool, stride
    oh, ow = spatial_output_shape(q.shape, pool, stride, pads, ceil_mode=ceil_mode)
    top, left = pads[0], pads[1]
    height, width = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    padded = np.full((n, c, max(height, top + h), max(width, left + w)), fill, np.int64)
    padded[:, :, top:top + h, left:left + w] = q
    rows = (np.arange(oh) * sh)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols = (np.arange(ow) * sw)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    return padded[:, :, rows, cols].reshape(n, c, oh, ow, kh * kw)


def _pool_geometry(layer, shape):
    pads = resolve_padding(layer.padding, shape[2:], layer.pool_size, layer.stride, (1, 1))
    return layer.pool_size, layer.stride, pads


def _max_pool(ql, x: fi) -> fi:
    """Padding never wins: it is filled below the int8 range."""
    pool, stride, pads = _pool_geometry(ql.layer, x.shape)
    windows = _windows(_stored(x), pool, stride, pads, ql.layer.ceil_mode, fill=-(1 << 8))
    return _from_stored(windows.max(axis=-1), x.numerictype)


def _divide_rounded(ql, total: fi, count: np.ndarray, T: numerictype) -> fi:
    """round_R(sum / n) into T, saturated: one exact rational rounding."""
    total = setfimath(total, _output_fimath(ql.rounding))
    n = _from_stored(count, numerictype(1, 32, 0))
    return removefimath(arith.divide(T, total, n))


def _int32_sum(x: fi, axis: int) -> fi:
    f = x.numerictype.fraction_length
    return arith.sum(setfimath(x, _accumulator_fimath(f)), axis=axis)


def _average_pool(ql, x: fi) -> fi:
    """Window sums in int32, divided by the number of counted elements (input only, or input and
    explicit padding with count_include_pad)."""
    layer = ql.layer
    n, c, h, w = x.shape
    pool, stride, pads = _pool_geometry(layer, x.shape)
    windows = _windows(_stored(x), pool, stride, pads, False, fill=0)
    top, left, bottom, right = pads
    if layer.count_include_pad:
        counted = _windows(np.ones((1, 1, h + top + bottom, w + left + right), np.int64),
                           pool, stride, (0, 0, 0, 0), False, fill=0)
    else:
        counted = _windows(np.ones((1, 1, h, w), np.int64), pool, stride, pads, False, fill=0)
    total = _int32_sum(_from_stored(windows, x.numerictype), axis=4)
    count = np.broadcast_to(counted.sum(axis=-1), total.shape)
    return _divide_rounded(ql, total, count, x.numerictype)


def _global_average_pool(ql, x: fi) -> fi:
    n, c, h, w = x.shape
    total = _int32_sum(x.reshape(n, c, h * w), axis=2).reshape(n, c, 1, 1)
    return _divide_rounded(ql, total, np.full((n, c, 1, 1), h * w, np.int64), x.numerictype)


def _global_max_pool(ql, x: fi) -> fi:
    return _from_stored(_stored(x).max(axis=(2, 3), keepdims=True), x.numerictype)


# --- combination -----------------------------------------------------------------------------------
def _addition(ql, *inputs: fi) -> fi:
    """Full-precision fi sums align the binary points exactly; one cast rounds and saturates."""
    total = inputs[0]
    for x in inputs[1:]:
        total = arith.add(_EXACT, total, x)
    return removefimath(cast(total, _int8(ql.output_fraction_length), _output_fimath(ql.rounding)))


def _concatenation(ql, *inputs: fi) -> fi:
    T, F = _int8(ql.output_fraction_length), _output_fimath(ql.rounding)
    return concatenate([removefimath(cast(x, T, F)) for x in inputs], axis=ql.layer.axis)


def _multiplication(ql, *inputs: fi) -> fi:
    product = inputs[0]
    for x in inputs[1:]:
        product = arith.mpy(_EXACT, product, x)
    return removefimath(cast(product, _int8(ql.output_fraction_length), _output_fimath(ql.rounding)))


def _data_movement(ql, x: fi) -> fi:
    return _from_stored(ql.layer.forward(_stored(x)), x.numerictype)


LAYERS = {
    "Convolution2D": _conv2d,
    "FullyConnected": _fully_connected,
    "ReLU": _relu,
    "ClippedReLU": _clipped_relu,
    "LeakyReLU": _leaky_relu,
    "MaxPooling2D": _max_pool,
    "GlobalMaxPooling2D": _global_max_pool,
    "AveragePooling2D": _average_pool,
    "GlobalAveragePooling2D": _global_average_pool,
    "Addition": _addition,
    "Concatenation": _concatenation,
    "Multiplication": _multiplication,
    "Flatten": _data_movement,
    "Reshape": _data_movement,
    "Dropout": _data_movement,
    "Identity": _data_movement,
}


# --- the graph ---------------------------------------------------------------------------------
def _dequantize(x: fi) -> np.ndarray:
    return x.double().astype(np.float32)


def _quantize(value: np.ndarray, f: int, rounding: str) -> fi:
    return removefimath(fi(np.asarray(value, np.float32), _int8(f), _output_fimath(rounding)))


def predict_reference(qnet, *x: np.ndarray, outputs: str | Sequence[str] | None = None, runtime=None):
    """What `qnet.predict(*x, outputs=outputs, runtime=runtime)` returns, computed independently:
    `fi` arithmetic alone for power-of-two networks, `reference_affine` for affine ones."""
    if getattr(qnet, "scheme", "pow2") == "affine":
        from .reference_affine import predict_reference as affine_reference
        return affine_reference(qnet, *x, outputs=outputs, runtime=runtime)
    if runtime is not None:
        raise ValueError(f"runtime={runtime!r}: a power-of-two network computes one way (runtimes apply "
                         f"to ONNXRuntime / LiteRT networks)")
    network = qnet.network
    rounding = qnet.target.rounding

    def step(layer, *args):
        ql = qnet.qlayers.get(layer.name)
        if ql is None:                                     # float layer: exact dequantization
            return layer.forward(*[_dequantize(a) if isinstance(a, fi) else a for a in args])
        sources = network.layer_inputs(layer.name)
        operands = [a if isinstance(a, fi)
                    else _quantize(a, qnet.activation_fraction_lengths[s], rounding)
                    for a, s in zip(args, sources)]
        return LAYERS[ql.type_name](ql, *operands)

    names = [outputs] if isinstance(outputs, str) else outputs
    result = network.run(network._input_dict(x), outputs=names, compute=step)
    values = [(_dequantize(v) if outputs is None else v) if isinstance(v, fi) else v
              for v in result.values()]
    single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
    return values[0] if single else values
