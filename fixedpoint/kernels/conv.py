"""Exact 2-D convolution in the ONNX layout: NCHW int8/uint8 input with a zero point, OIHW int8/uint8
weights with an optional zero point, int32 output (or a fused requantizer's dtype).

Padding uses the zero point (so padded taps contribute exactly nothing), groups include depthwise
(groups == C, weights (C*m, 1, kh, kw)), which runs its own direct kernel. A weight zero point,
uint8 weights or ONNX Runtime's int16-pair accumulation run as a GEMM of the packed weights by im2col
columns packed tile by tile (csrc/kernels/conv_gemm.cpp).
See docs/kernels.md.
"""
import numpy as np

from .. import _kernels
from .accumulation import ACCUMULATION_KINDS, K_ORDERS, as_accumulation
from .gemm import (PackedWeights, _scalar_zero_point, as_array, bias_array, describe, requantizer_params,
                   zero_point_array)
from .threads import path_code, setting_path_code


def _pair(value, name):
    """An int or a pair of ints >= 1 as (h, w)."""
    v = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if v is None or len(v) != 2 or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in v):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(v) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(v[0]), int(v[1])


def resolve_padding(padding, size, kernel, stride, dilation):
    """(top, left, bottom, right) from an int, (h, w), ONNX-order (h_begin, w_begin, h_end, w_end),
    or "same"/"same_upper" (ONNX SAME_UPPER: the odd pixel at the end) / "same_lower" (at the start).
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "same_upper", "same_lower"):
            raise ValueError(f"padding must be an int, a 2- or 4-tuple, 'same' or 'same_lower'; got {padding!r}")
        pads = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small = total // 2
            pads.append((total - small, small) if mode == "same_lower" else (small, total - small))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(
            isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in padding):
        p = tuple(int(t) for t in padding)
        p = p * 2 if len(p) == 2 else p
    else:
        raise ValueError(f"padding must be an int, a 2- or 4-tuple of ints, 'same' or 'same_lower'; got {padding!r}")
    if min(p) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return p


def _usual_call(x, w, bias, stride, padding, dilation, groups, x_zero_point) -> bool:
    """Whether a call has the usual form both compiled fast routes take: contiguous 4-D int8/uint8 x
    with an int zero point in its range, packed 4-D w, int stride / padding / dilation whose window
    fits, int32 bias of one value per output channel or none."""
    if not (type(x) is np.ndarray and x.ndim == 4 and x.flags.c_contiguous and len(w.shape) == 4
            and type(stride) is int and type(padding) is int and type(dilation) is int and stride >= 1
            and padding >= 0 and dilation >= 1 and (groups == 1 or groups == w.groups) and type(x_zero_point) is int):
        return False
    kind = x.dtype.char
    if not ((kind == "b" and -128 <= x_zero_point <= 127) or (kind == "B" and 0 <= x_zero_point <= 255)):
        return False
    o, cg, kh, kw = w.shape
    _, c, h, wd = x.shape
    if c != cg * w.groups or h + 2 * padding < (kh - 1) * dilation + 1 or wd + 2 * padding < (kw - 1) * dilation + 1:
        return False
    return bias is None or (type(bias) is np.ndarray and bias.dtype == np.int32 and bias.shape == (o,)
                            and bias.flags.c_contiguous)


def _fast_call(x, w, bias, stride, padding, dilation, groups, x_zero_point, requantizer):
    """The usual call of a quantized layer (contiguous int8/uint8 x, packed w, int stride, padding and
    dilation, an int zero point, int32 bias or none) checked in one pass: the general checks cost
    ~6 us. None when the call needs the general route (which also words the errors)."""
    if not _usual_call(x, w, bias, stride, padding, dilation, groups, x_zero_point):
        return None
    return _kernels.conv2d(x, w.handle, x_zero_point, (stride, stride), (dilation, dilation), (padding,) * 4, bias,
                           requantizer_params(requantizer), path_code())


_ORDER_CODES = {None: K_ORDERS.index("hwc"), "hwc": K_ORDERS.index("hwc"), "chw": K_ORDERS.index("chw")}
_KIND_CODES = {kind: code for code, kind in enumerate(ACCUMULATION_KINDS)}


def _fast_gemm_call(x, w, bias, stride, padding, dilation, groups, x_zero_point, requantizer, w_zero_point, acc):
    """The usual call of a layer on the im2col + GEMM route (an emulated ONNX Runtime QLinearConv /
    ConvInteger: contiguous x, packed w, int stride, padding and dilation, int zero points or an int32
    array of weight zero points, int32 bias or none) checked in one pass, like `_fast_call`. None when
    the call needs the general route (which also words the errors). The compiled call checks the
    weight zero points' range and FIXEDPOINT_FORCE_PORTABLE itself."""
    if not _usual_call(x, w, bias, stride, padding, dilation, groups, x_zero_point):
        return None
    kind = x.dtype.char
    w_uint8 = w.dtype.char == "B"
    if acc.kind != "exact" and (acc.k_order is None or (kind == "B") == w_uint8):
        return None
    o = w.shape[0]
    if type(w_zero_point) is int:
        zw = _scalar_zero_point(w_zero_point, 0, 255) if w_uint8 else _scalar_zero_point(w_zero_point, -128, 127)
        if zw is None:
            return None
    elif not (type(w_zero_point) is np.ndarray and w_zero_point.dtype == np.int32 and w_zero_point.ndim == 1
              and w_zero_point.shape[0] in (1, o) and w_zero_point.flags.c_contiguous):
        return None
    else:
        zw = w_zero_point
    handle = w.conv_gemm(_ORDER_CODES[acc.k_order], _KIND_CODES[acc.kind])
    return _kernels.conv2d_gemm(x, handle, x_zero_point, zw, (stride, stride), (dilation, dilation), (padding,) * 4,
                                bias, None if requantizer is None else requantizer_params(requantizer),
                                setting_path_code())


def conv2d(x, w, *, bias=None, stride=1, padding=0, dilation=1, groups=1, x_zero_point=0, requantizer=None,
           w_zero_point=0, accumulation=None):
    """Exact out[n, o] = sum over c, kh, kw of (x_pad - x_zero_point) * (w - w_zero_point), + bias[o].

    x: (N, C, H, W) int8/uint8; w: (O, C/groups, kh, kw) int8/uint8 or `pack_weights(w, groups=groups)`;
    stride, dilation: int or (h, w); padding: see `resolve_padding`; bias: int32 per output channel.
    w_zero_point: scalar or one per output channel, in the weights' range (uint8 weights of ONNX
    U8U8 models have zero points near 128).
    accumulation: None / "exact" (default), or ONNX Runtime's int16-pair saturation with its K order:
    "int16_pairs:hwc" (QLinearConv: K = (kh, kw, c) per group) or "int16_pairs:chw" (ConvInteger:
    K = (c, kh, kw)), or an `Accumulation` (see `ort_accumulation`); it needs exactly one of x, w uint8.
    Returns (N, O, H_out, W_out) int32, or the requantizer's dtype when `requantizer` is given.
    """
    acc = as_accumulation(accumulation)
    plain = acc.kind == "exact" and type(w_zero_point) is int and w_zero_point == 0
    if type(w) is PackedWeights:
        if plain and w.handle is not None:
            result = _fast_call(x, w, bias, stride, padding, dilation, groups, x_zero_point, requantizer)
        else:
            result = _fast_gemm_call(x, w, bias, stride, padding, dilation, groups, x_zero_point, requantizer,
                                     w_zero_point, acc)
        if result is not None:
            return result
    x = as_array(x, "x", ("int8", "uint8"), 4)
    if isinstance(w, PackedWeights):
        if len(w.shape) != 4:
            raise ValueError(f"w is packed GEMM weights {w.shape}; conv2d needs weights packed from OIHW")
        if groups != 1 and groups != w.groups:
            raise ValueError(f"groups={groups} disagrees with the packed weights (packed with groups={w.groups})")
        packed = w
    else:
        w = as_array(w, "w", ("int8", "uint8"), 4)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        if x.shape[1] % groups or w.shape[0] % groups:
            raise ValueError(f"groups={groups} must divide the input channels ({x.shape[1]}) and output channels "
                             f"({w.shape[0]})")
        packed = PackedWeights(w, groups)
    o, cg, kh, kw = packed.shape
    if x.shape[1] != cg * packed.groups:
        raise ValueError(f"x has {x.shape[1]} channels ({describe(x)}) but w expects {cg} per group x {packed.groups} "
                         f"groups = {cg * packed.groups}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = resolve_padding(padding, x.shape[2:], (kh, kw), stride, dilation)
    lo, hi = (0, 255) if x.dtype == np.uint8 else (-128, 127)
    if isinstance(x_zero_point, bool) or not isinstance(x_zero_point, (int, np.integer)) or not lo <= x_zero_point <= hi:
        raise ValueError(f"x_zero_point must be an int in [{lo}, {hi}] (the range of {x.dtype}), got {x_zero_point!r}")
    for axis, (n, k, d, p0, p1) in enumerate(zip(x.shape[2:], (kh, kw), dilation, pads[:2], pads[2:])):
        if n + p0 + p1 < (k - 1) * d + 1:
            raise ValueError(f"the dilated kernel ({(k - 1) * d + 1}) is larger than the padded input ({n + p0 + p1}) "
                             f"along {'HW'[axis]}")
    zw = zero_point_array(w_zero_point, "w_zero_point", o, packed.dtype, "output channel")
    if acc.kind == "exact" and packed.dtype == np.int8 and not zw.any():
        return _kernels.conv2d(x, packed.handle, int(x_zero_point), stride, dilation, pads,
                               bias_array(bias, o, "output channel"), requantizer_params(requantizer), path_code())
    if acc.kind != "exact":
        if acc.k_order is None:
            raise ValueError("conv2d with int16-pair accumulation needs its K order: 'int16_pairs:hwc' (ONNX Runtime "
                             "QLinearConv) or 'int16_pairs:chw' (ConvInteger)")
        if (x.dtype == np.uint8) == (packed.dtype == np.uint8):
            raise ValueError(f"int16-pair accumulation needs exactly one uint8 operand (MLAS U8S8): x is {x.dtype}, "
                             f"w is {packed.dtype}")
    # Exact sums do not depend on the K order (the packing is cached per order: hwc for them).
    order = K_ORDERS.index(acc.k_order or "hwc")
    handle = packed.conv_gemm(order, ACCUMULATION_KINDS.index(acc.kind))
    return _kernels.conv2d_gemm(x, handle, int(x_zero_point), zw, stride, dilation, pads,
                                bias_array(bias, o, "output channel"), requantizer_params(requantizer), path_code())
