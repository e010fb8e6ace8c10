"""Float32 building blocks shared by the layers: padding resolution, output sizes, convolution and
pooling. One place for the arithmetic, so every layer (and the preparation passes) computes the same
thing the same way.

Convolution of small images runs in compiled code (`fixedpoint.kernels.conv_float`: bias and a
following activation fused, no per-call NumPy overhead); larger ones are im2col (a strided window
view, one gather copy) + one float32 matmul (BLAS), as ONNX Runtime's CPU provider does, grouped and
depthwise convolution being the same matmul batched over groups. Pooling and softmax run in
compiled code too (their NumPy formulations cost more in per-call overhead than the convolutions
around them on small images). No Python loop runs over pixels or channels.
"""
from __future__ import annotations

import functools
import math
import weakref

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _requant
from .. import _kernels
from ..kernels.conv_float import activation_code
from ..kernels.conv_float import pack_float_conv as _pack_compiled
from ..kernels.threads import path_code

SAME_MODES = ("same", "same_lower")
# depthwise convolutions on images this small, in batches this large, run as window matrices
DEPTHWISE_MATRIX_MAX_PIXELS, DEPTHWISE_MATRIX_MIN_BATCH = 100, 8
SINGLE_THREAD_GEMM_SIZE = 1 << 18   # m·n·k per BLAS call for batches of small images
CHANNELS_LAST_MAX_PIXELS = 128      # ungrouped convs with larger outputs run per image on NCHW
# conv2d runs compiled code on outputs of at most COMPILED_MAX_PIXELS pixels per plane wherever it
# measured faster than BLAS (docs/network.md): any convolution of at most COMPILED_MAX_WORK
# multiply-adds (NumPy's per-call overhead dominates there), and larger ones except 1x1 convolutions
# (a plain matmul on NCHW data) and strided ones with 2-7 filters per group (their patch gather is
# slower than BLAS's; plain depthwise ones have their own kernel)
COMPILED_MAX_PIXELS, COMPILED_MAX_WORK, COMPILED_1X1_MAX_WORK = 256, 1 << 18, 1 << 15
ACTIVATIONS = ("relu", "clip", "leaky")   # what conv2d can fuse (see `conv2d`'s `activation`)


def normalize_padding(padding, what: str = "padding"):
    """Padding as ``"same"``, ``"same_lower"`` or a 4-tuple (top, left, bottom, right).

    Accepts an int (all sides), a pair (vertical, horizontal) or a 4-tuple
    (h_begin, w_begin, h_end, w_end). ``"same"`` puts the odd extra row/column at the end (bottom,
    right), as MATLAB's ``'same'`` and ONNX's ``SAME_UPPER``; ``"same_lower"`` puts it at the start.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in SAME_MODES:
            raise ValueError(f"{what} must be 'same', 'same_lower' or explicit sizes, "
                             f"got {padding!r}")
        return mode
    values = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
    if len(values) == 2:
        values = (values[0], values[1], values[0], values[1])
    if len(values) != 4 or any(int(v) != v or v < 0 for v in values):
        raise ValueError(f"{what} must be a non-negative int, a pair or a 4-tuple "
                         f"(h_begin, w_begin, h_end, w_end), got {padding!r}")
    return tuple(int(v) for v in values)


def resolve_padding(padding, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) padding for an input of spatial size `in_hw`."""
    if not isinstance(padding, str):
        return padding
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if padding == "same" else large)
        end.append(large if padding == "same" else small)
    return begin[0], begin[1], end[0], end[1]


def output_size(size, kernel, stride, pad_begin, pad_end, dilation=1, ceil_mode=False):
    """Output length of a sliding window along one axis; None stays None (size known at run time).

    With ``ceil_mode`` a last, partial window is kept only if it starts inside the input or its
    leading padding (the rule of ONNX Runtime and PyTorch)."""
    if size is None:
        return None
    span = size + pad_begin + pad_end - (kernel - 1) * dilation - 1
    if span < 0:
        raise ValueError(f"window of extent {(kernel - 1) * dilation + 1} does not fit an input of "
                         f"size {size} with padding ({pad_begin}, {pad_end})")
    out = (math.ceil if ceil_mode else math.floor)(span / stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def spatial_output_shape(shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """(OH, OW) of a windowed operation on an NCHW shape; `padding` may be a same mode."""
    in_hw = shape[2:4]
    if isinstance(padding, str):
        return tuple(None if n is None else -(-n // s) for n, s in zip(in_hw, stride))
    pads = padding
    return tuple(output_size(in_hw[a], kernel[a], stride[a], pads[a], pads[a + 2], dilation[a],
                             ceil_mode) for a in range(2))


def pad_spatial(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """`x` with constant padding around H and W (allocation + one copy; `np.pad` costs ~10× more
    fixed overhead, which dominates on small images)."""
    top, left, bottom, right = pads
    if not any(pads):
        return x
    n, c, h, w = x.shape
    padded = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def patches(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """Read-only view (N, C, OH, OW, kh, kw) of the convolution windows of NCHW `x` (no copy)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, h, w = x.shape
    oh, ow = (output_size(size, k, s, 0, 0, d) for size, k, s, d in
              zip((h, w), kernel, stride, dilation))
    shape, strides = (n, c, oh, ow, kh, kw), (x.strides[0], x.strides[1], x.strides[2] * sh,
                                               x.strides[3] * sw, x.strides[2] * dh,
                                               x.strides[3] * dw)
    if x.flags.c_contiguous:   # a view on its buffer: as_strided costs 6x more
        view = np.ndarray(shape, x.dtype, x, 0, strides)
        view.flags.writeable = False
        return view
    return as_strided(x, shape, strides, writeable=False)


_packed_weights: dict[int, tuple] = {}


def packed_float_weights(weights: np.ndarray, groups: int):
    """`weights` packed for the compiled convolution, once per read-only weights array (a
    convolution layer's own weights are read-only, so their identity, checked through a weak
    reference that also drops the entry with the array, stands for their values). A writeable
    array could change in place after packing: it is packed on every call."""
    if weights.flags.writeable:
        return _pack_compiled(weights, groups)
    key = id(weights)
    entry = _packed_weights.get(key)
    if entry is not None and entry[0]() is weights and entry[1] == groups:
        return entry[2]
    packed = _pack_compiled(weights, groups)
    if len(_packed_weights) >= 1024:
        _packed_weights.clear()
    _packed_weights[key] = (weakref.ref(weights, lambda _, k=key: _packed_weights.pop(k, None)),
                            groups, packed)
    return packed


@functools.lru_cache(maxsize=512)
def conv2d_route(shape, weights_shape, stride, padding, dilation, groups):
    """(explicit pads, whether compiled code computes it) of `conv2d` on these shapes."""
    n, c, h, w = shape
    out_ch, c_group, kh, kw = weights_shape
    pads = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
    oh = output_size(h, kh, stride[0], pads[0], pads[2], dilation[0])
    ow = output_size(w, kw, stride[1], pads[1], pads[3], dilation[1])
    compiled = oh * ow <= COMPILED_MAX_PIXELS and _compiled_is_faster(
        n * out_ch * oh * ow * c_group * kh * kw, (kh, kw) == (1, 1), stride == (1, 1),
        out_ch // groups >= 8 or (c_group == 1 and out_ch == c))
    return pads, compiled


_activation_code = functools.lru_cache(maxsize=64)(activation_code)


def _compiled_is_faster(work: int, one_by_one: bool, unit_stride: bool, own_kernel: bool) -> bool:
    """The measured route rule for small images (see COMPILED_MAX_PIXELS)."""
    if work <= (COMPILED_1X1_MAX_WORK if one_by_one else COMPILED_MAX_WORK):
        return True
    return not one_by_one and (unit_stride or own_kernel)


def apply_activation(out: np.ndarray, activation) -> np.ndarray:
    """`activation` (see `conv2d`) applied in place to the float32 array `out`."""
    if activation is None:
        return out
    name, *params = (activation,) if isinstance(activation, str) else activation
    if name == "relu":
        return np.maximum(out, np.float32(0), out=out)
    if name == "clip":
        return np.clip(out, np.float32(params[0]), np.float32(params[1]), out=out)
    if name == "leaky":
        return np.multiply(out, np.where(out < 0, np.float32(params[0]), np.float32(1)), out=out)
    raise ValueError(f"activation must be None, 'relu', ('clip', lo, hi) or ('leaky', alpha), "
                     f"got {activation!r}")


def conv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, stride, padding,
           dilation, groups: int, activation=None, affine=None) -> np.ndarray:
    """2-D convolution (cross-correlation) of NCHW `x` with OIHW `weights` (I = C / groups),
    followed by `affine` = (gain, shift), float32 per output channel (a batch normalization:
    ``y * gain + shift`` with two roundings, as that layer computes it), then `activation`: None,
    "relu", ("clip", lo, hi) or ("leaky", alpha).

    Small outputs (at most `COMPILED_MAX_PIXELS` pixels per plane) run in compiled code, which
    adds the bias and applies the activation as it stores each output. Otherwise five shapes of
    one idea (patches times weights in BLAS), chosen by measured speed: a 1x1
    stride-1 convolution is a matmul per image on NCHW data as it is (no copy); other ungrouped
    convolutions gather their patches per image on NCHW when the output is large
    (`_conv2d_per_image`), from a channels-last copy of the batch when it is small
    (`_conv2d_channels_last`); depthwise convolutions of batches of small images multiply by window
    matrices (`_depthwise_as_matmul`); other grouped ones form one patch matrix per group and one
    batched matmul over the groups."""
    pads, compiled = conv2d_route(x.shape, weights.shape, tuple(stride),
                                  padding if isinstance(padding, str) else tuple(padding),
                                  tuple(dilation), groups)
    if compiled and x.dtype == np.float32 and weights.dtype == np.float32:
        if bias is not None and not (bias.dtype == np.float32 and bias.flags.c_contiguous):
            bias = np.ascontiguousarray(bias, np.float32)
        gain, shift = (None, None) if affine is None else affine
        code, lo, hi, alpha = _activation_code(activation)
        return _kernels.conv2d_float(np.ascontiguousarray(x), packed_float_weights(weights, groups),
                                     tuple(stride), tuple(dilation), pads, bias, gain, shift, code, lo, hi, alpha,
                                     path_code())
    out = _conv2d_blas(x, weights, bias, stride, pads, dilation, groups)
    if affine is None and activation is None:
        return out
    if out.dtype == np.float32 and out.flags.c_contiguous and out.flags.writeable:
        # the compiled store's epilogue, in place: one pass instead of one per operation
        gain, shift = (None, None) if affine is None else affine
        _kernels.float_epilogue(out, None, gain, shift, *_activation_code(activation), path_code())
        return out
    if affine is not None:
        view = (1, -1, 1, 1)
        np.multiply(out, affine[0].reshape(view), out=out)
        np.add(out, affine[1].reshape(view), out=out)
    return apply_activation(out, activation)


def _conv2d_blas(x, weights, bias, stride, pads, dilation, groups) -> np.ndarray:
    """`conv2d` through BLAS (see there); `pads` explicit."""
    n, c, h, w = x.shape
    out_ch, c_group, kh, kw = weights.shape
    if groups == 1 and (kh, kw) == (1, 1) and tuple(stride) == (1, 1) and not any(pads):
        result = np.empty((n, out_ch, h, w), np.float32)   # owned, not a view (in-place layers)
        out = np.matmul(weights.reshape(out_ch, c), x.reshape(n, c, h * w),
                        out=result.reshape(n, out_ch, h * w))
        if bias is not None:
            out += bias.reshape(out_ch, 1)
        return result
    if c_group == 1 and h * w <= DEPTHWISE_MATRIX_MAX_PIXELS and n >= DEPTHWISE_MATRIX_MIN_BATCH:
        # one input channel per group: depthwise, with or without a channel multiplier (a first
        # layer on a single channel is the multiplier case too)
        return _depthwise_as_matmul(x, weights, bias, stride, pads, dilation)
    if groups == 1:
        oh = output_size(h, kh, stride[0], pads[0], pads[2], dilation[0])
        ow = output_size(w, kw, stride[1], pads[1], pads[3], dilation[1])
        if oh * ow >= CHANNELS_LAST_MAX_PIXELS:
            return _conv2d_per_image(x, weights, bias, stride, pads, dilation)
        return _conv2d_channels_last(x, weights, bias, stride, pads, dilation)
    xp = pad_spatial(x, pads)
    windows = patches(xp, (kh, kw), stride, dilation)
    oh, ow = windows.shape[2:4]
    cols = windows.reshape(n, groups, c_group, oh, ow, kh, kw).transpose(1, 2, 5, 6, 0, 3, 4)
    cols = cols.reshape(groups, c_group * kh * kw, n * oh * ow)
    kernel = weights.reshape(groups, out_ch // groups, c_group * kh * kw)
    out = np.matmul(kernel, cols).reshape(out_ch, n, oh, ow).transpose(1, 0, 2, 3)
    if bias is None:
        return np.ascontiguousarray(out)
    return np.add(out, bias.reshape(1, out_ch, 1, 1), out=np.empty(out.shape, np.float32))


@functools.lru_cache(maxsize=128)
def _window_taps(in_hw, kernel, stride, pads, dilation):
    """For every tap of every window that falls inside the image (not on padding): the output
    pixel, the input pixel and the tap, as flat indices; plus the output size."""
    (h, w), (kh, kw), (sh, sw), (dh, dw) = in_hw, kernel, stride, dilation
    oh = output_size(h, kh, sh, pads[0], pads[2], dh)
    ow = output_size(w, kw, sw, pads[1], pads[3], dw)
    oy, ox, ky, kx = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw),
                                 indexing="ij")
    iy, ix = oy * sh - pads[0] + ky * dh, ox * sw - pads[1] + kx * dw
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    return ((oy * ow + ox)[inside], (iy * w + ix)[inside], (ky * kw + kx)[inside], oh, ow)


def _depthwise_as_matmul(x, weights, bias, stride, pads, dilation) -> np.ndarray:
    """Depthwise convolution of a small image as one matmul per input channel: the windows of the
    channel's m filters (channel multiplier m) over an H×W image are an (H·W) × (m·OH·OW) matrix
    holding the kernel taps (zero elsewhere, padding included), which multiplies the channel's
    N × (H·W) plane across the batch (for a single-channel first layer: one matmul in all).

    The matrix does H·W / (kh·kw) times the needed multiplications (by zeros, which add exact
    zeros for finite inputs), but on small images BLAS is still several times faster than the
    per-channel patch matmuls or kh·kw NumPy multiply-adds, which are bound by their overhead."""
    n, c, h, w = x.shape
    out_ch, _, kh, kw = weights.shape
    m = out_ch // c
    rows, cols, taps, oh, ow = _window_taps((h, w), (kh, kw), tuple(stride), tuple(pads),
                                            tuple(dilation))
    windows = np.zeros((c, h * w, m, oh * ow), np.float32)
    windows[:, cols, :, rows] = weights.reshape(c, m, kh * kw)[:, :, taps].transpose(2, 0, 1)
    planes = np.ascontiguousarray(x.reshape(n, c, h * w).transpose(1, 0, 2))
    windows = windows.reshape(c, h * w, m * oh * ow)
    out = np.empty((c, n, m * oh * ow), np.float32)
    images = max(1, SINGLE_THREAD_GEMM_SIZE // (h * w * m * oh * ow))   # see _conv2d_channels_last
    for start in range(0, n, images):
        np.matmul(planes[:, start:start + images], windows, out=out[:, start:start + images])
    out = out.reshape(c, n, m, oh * ow).transpose(1, 0, 2, 3).reshape(n, out_ch, oh * ow) \
        if c > 1 else out.reshape(n, out_ch, oh * ow)
    result = np.empty((n, out_ch, oh, ow), np.float32)
    if bias is None:
        result.reshape(n, out_ch, oh * ow)[...] = out
    else:
        np.add(out, bias.reshape(out_ch, 1), out=result.reshape(n, out_ch, oh * ow))
    return result


def _conv2d_per_image(x, weights, bias, stride, pads, dilation) -> np.ndarray:
    """Ungrouped convolution of large images: per image, the (C·kh·kw) × (OH·OW) patch matrix
    and one matmul whose (O) × (OH·OW) result is already that image's NCHW output (no transposing
    copy, which costs more than it saves once an image has a few hundred pixels)."""
    n, c, _, _ = x.shape
    out_ch, _, kh, kw = weights.shape
    windows = patches(pad_spatial(x, pads), (kh, kw), stride, dilation)
    oh, ow = windows.shape[2:4]
    kernel = weights.reshape(out_ch, c * kh * kw)
    result = np.empty((n, out_ch, oh, ow), np.float32)
    out = result.reshape(n, out_ch, oh * ow)
    for i in range(n):
        cols = windows[i].transpose(0, 3, 4, 1, 2).reshape(c * kh * kw, oh * ow)
        np.matmul(kernel, cols, out=out[i])
    if bias is not None:
        out += bias.reshape(out_ch, 1)
    return result


def _conv2d_channels_last(x, weights, bias, stride, pads, dilation) -> np.ndarray:
    """Ungrouped convolution through a padded NHWC copy of `x`.

    In NHWC the kw taps of one kernel row and all channels are one contiguous run of kw·C values,
    so the patch matrix (OH·OW) × (kh·kw·C) of each image is gathered in long contiguous runs
    (about 3x faster than the NCHW gather) and the matmul writes pixels × filters directly; one
    transposing copy returns NCHW. The matmul is one BLAS call per group of whole images of about
    `SINGLE_THREAD_GEMM_SIZE` multiply-adds (one image at least), not one for the batch: a batch of
    small images then stays below OpenBLAS's threading threshold (m·n·k = 2^18), whose threads
    cost up to 50x on a loaded machine for matrices this small, while large images still thread."""
    n, c, h, w = x.shape
    out_ch, _, kh, kw = weights.shape
    (sh, sw), (dh, dw) = stride, dilation
    top, left, bottom, right = pads
    xp = np.zeros((n, h + top + bottom, w + left + right, c), np.float32)
    xp[:, top:top + h, left:left + w, :] = x.transpose(0, 2, 3, 1)
    oh = output_size(h, kh, sh, top, bottom, dh)
    ow = output_size(w, kw, sw, left, right, dw)
    sn, sy, sx, sc = xp.strides
    # windows over the fresh padded copy (np.ndarray on its buffer: as_strided costs 6x more)
    if dw == 1:   # a kernel row is one run of kw·C values
        view = np.ndarray((n, oh, ow, kh, kw * c), np.float32, xp, 0,
                          (sn, sy * sh, sx * sw, sy * dh, sc))
    else:
        view = np.ndarray((n, oh, ow, kh, kw, c), np.float32, xp, 0,
                          (sn, sy * sh, sx * sw, sy * dh, sx * dw, sc))
    cols = view.reshape(n * oh * ow, kh * kw * c)
    kernel = weights.transpose(2, 3, 1, 0).reshape(kh * kw * c, out_ch)
    out = np.empty((n * oh * ow, out_ch), np.float32)
    rows = max(oh * ow, SINGLE_THREAD_GEMM_SIZE // (kh * kw * c * out_ch))  # whole images
    rows -= rows % (oh * ow)
    for start in range(0, len(cols), rows):
        np.matmul(cols[start:start + rows], kernel, out=out[start:start + rows])
    nchw = out.reshape(n, oh, ow, out_ch).transpose(0, 3, 1, 2)
    if bias is None:
        return np.ascontiguousarray(nchw)
    return np.add(nchw, bias.reshape(out_ch, 1, 1), out=np.empty(nchw.shape, np.float32))


@functools.lru_cache(maxsize=256)
def pool_pads(shape, kernel, stride, padding, ceil_mode):
    """(pads with a `ceil_mode` window's overhang added at the bottom and right, the layer's own
    bottom and right pads) of a pooling window on an NCHW shape."""
    pads = resolve_padding(padding, shape[2:4], kernel, stride, (1, 1))
    oh, ow = spatial_output_shape(shape, kernel, stride, pads, ceil_mode=ceil_mode)
    (kh, kw), (sh, sw) = kernel, stride
    top, left, bottom, right = pads
    over_h = max(0, (oh - 1) * sh + kh - (shape[2] + top + bottom))
    over_w = max(0, (ow - 1) * sw + kw - (shape[3] + left + right))
    return [top, left, bottom + over_h, right + over_w], bottom, right


def pool2d(x: np.ndarray, mode: str, kernel, stride, padding, ceil_mode: bool = False,
           count_include_pad: bool = False) -> np.ndarray:
    """Max or average pooling of NCHW `x`, in float32 (compiled: fixedpoint._requant).

    Max pooling never selects padding (NaN propagates, as numpy.maximum). Average pooling sums each
    kernel row left to right, the rows top to bottom, and divides once by the number of input
    elements in the window, or, with `count_include_pad`, also counts the explicit padding (as
    zeros) but never the part of a ``ceil_mode`` window that hangs beyond the padded input.
    """
    x = np.ascontiguousarray(x, np.float32)
    full, bottom, right = pool_pads(x.shape, tuple(kernel), tuple(stride),
                                     padding if isinstance(padding, str) else tuple(padding),
                                     bool(ceil_mode))
    if mode == "max":
        return _requant.max_pool2d_float(x, kernel, stride, full, (1, 1))
    return _requant.avg_pool2d_float(x, kernel, stride, full, bool(count_include_pad), bottom, right)


def global_pool2d(x: np.ndarray, mode: str) -> np.ndarray:
    """`pool2d` with one window over each whole plane (global max or average pooling)."""
    x = np.ascontiguousarray(x, np.float32)
    kernel = x.shape[2:4]
    if mode == "max":
        return _requant.max_pool2d_float(x, kernel, (1, 1), (0, 0, 0, 0), (1, 1))
    return _requant.avg_pool2d_float(x, kernel, (1, 1), (0, 0, 0, 0), False, 0, 0)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax in float32 (compiled): exp(x - max) / sum along `axis`."""
    x = np.ascontiguousarray(x, np.float32)
    return _requant.softmax_float(x, axis % x.ndim)
