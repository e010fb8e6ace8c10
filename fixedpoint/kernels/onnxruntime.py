"""ONNX Runtime's operator formulas (CPU execution provider, x86-64 with AVX2 + FMA3), bit for bit.

Each function is one ONNX / com.microsoft operator as onnxruntime 1.32 computes it on an AVX2 CPU, as a
function of numpy arrays, quantization parameters and the operator's attributes (NCHW layout as in
ONNX unless ``channels_last``). The arithmetic runs in C++ (``fixedpoint._onnxruntime``,
csrc/ops/onnxruntime/*.hpp, where each formula is written once with the ORT source it follows);
this module checks arguments, resolves attributes (pads, axes, broadcasting) and shapes.

The integer GEMM / convolution accumulation and their requantizer live in ``fixedpoint.kernels``
(``Requantizer.fp32``); docs/runtimes-onnxruntime-ops.md gives every formula and how it was verified.

``isa``: "portable" or "avx2" selects the code path (identical bits, only speed differs); None takes
``fixedpoint.kernels.get_kernel_path()`` ("portable" stays portable, any other path runs AVX2).
"""
import numbers

import numpy as np

from .. import _onnxruntime as _ort
from .threads import get_kernel_path

_QDTYPES = (np.dtype(np.uint8), np.dtype(np.int8))


# ---- argument helpers ----------------------------------------------------------------------------------

def _isa(isa):
    if isa is None:
        return 0 if get_kernel_path() == "portable" else 1
    if isa == "portable":
        return 0
    if isa == "avx2":
        return 1
    raise ValueError(f"isa must be None, 'portable' or 'avx2', got {isa!r}")


def _qarray(x, name):
    a = np.asarray(x)
    if a.dtype not in _QDTYPES:
        raise ValueError(f"{name} must be a uint8 or int8 array, got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _float_array(x, name):
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise ValueError(f"{name} must be a float32 array, got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _scale(s, name):
    """A per-tensor scale: a positive finite float32 (given as a number or a one-element array)."""
    if isinstance(s, (float, np.floating)) and not isinstance(s, np.float64):   # fast path of the common case
        v = np.float32(s)
    else:
        a = np.asarray(s)
        if a.size != 1:
            raise ValueError(f"{name} must be a scalar (one element), got shape {a.shape}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a number, got dtype {a.dtype}")
        v = np.float32(a.reshape(()))
    if not (v > 0 and v < np.inf):
        raise ValueError(f"{name} must be finite and > 0, got {s!r}")
    return float(v)


_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127), np.dtype(np.int32): (-2**31, 2**31 - 1)}


def _zero_point(z, name, dtype):
    """A per-tensor zero point in the range of `dtype` (None: 0)."""
    if z is None:
        return 0
    dtype = np.dtype(dtype)
    if isinstance(z, np.integer) and z.dtype.itemsize == 1 and z.dtype != dtype:
        raise ValueError(f"{name} has dtype {z.dtype} but the data are {dtype}")
    if isinstance(z, (int, np.integer)) and not isinstance(z, bool):
        v = int(z)
    else:
        a = np.asarray(z)
        if a.size != 1:
            raise ValueError(f"{name} must be a scalar (one element), got shape {a.shape}")
        if a.dtype.kind not in "iub":
            raise ValueError(f"{name} must be an integer, got dtype {a.dtype}")
        if a.dtype.kind in "iu" and a.dtype.itemsize == 1 and a.dtype != dtype:
            raise ValueError(f"{name} has dtype {a.dtype} but the data are {dtype}")
        v = int(a.reshape(()))
    lo, hi = _RANGES[dtype]
    if not lo <= v <= hi:
        raise ValueError(f"{name} {v} outside the range of {dtype} [{lo}, {hi}]")
    return v


def _axis(axis, ndim, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} out of range for a tensor of rank {ndim}")
    return int(axis) % ndim


def _ints(v, n, name, minimum):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = [v] * n
    try:
        out = [int(i) for i in v]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {n} ints, got {v!r}") from None
    if len(out) != n or any(i < minimum for i in out):
        raise ValueError(f"{name} must be {n} ints >= {minimum}, got {v!r}")
    return out


# ---- QuantizeLinear / DequantizeLinear ---------------------------------------------------------------

def _per_axis(x, scale, zero_point, axis, zdtype, op):
    """(outer, channels, inner, scale array, zero-point array) of a per-tensor or per-axis Q/DQ."""
    s = np.asarray(scale)
    if s.dtype.kind not in "fiu":
        raise ValueError(f"scale must be float32, got dtype {s.dtype}")
    s = np.ascontiguousarray(s, dtype=np.float32).reshape(-1)
    if s.size == 0:
        raise ValueError("scale is empty")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("scale must be finite and > 0")
    if s.size == 1 and np.ndim(scale) <= 1:
        outer, channels, inner = 1, 1, x.size
    else:
        if np.ndim(scale) != 1:
            raise ValueError(f"{op}: a per-axis scale must be 1-D, got shape {np.shape(scale)}")
        if x.ndim == 0:
            raise ValueError(f"{op}: a per-axis scale needs x with at least one dimension")
        ax = _axis(axis, x.ndim)
        if x.shape[ax] != s.size:
            raise ValueError(f"{op}: scale has {s.size} values but x has {x.shape[ax]} along axis {ax}")
        outer = int(np.prod(x.shape[:ax], dtype=np.int64))
        channels = x.shape[ax]
        inner = int(np.prod(x.shape[ax + 1:], dtype=np.int64))
    if zero_point is None:
        z = np.zeros(s.size, zdtype)
    else:
        z = np.asarray(zero_point)
        if z.dtype != zdtype:
            raise ValueError(f"zero_point must have dtype {np.dtype(zdtype)}, got {z.dtype}")
        z = np.ascontiguousarray(z).reshape(-1)
        if z.size != s.size:
            raise ValueError(f"zero_point has {z.size} values but scale has {s.size}")
    return outer, channels, inner, s, z


def quantize_linear(x, scale, zero_point=None, *, axis=1, dtype=None, isa=None):
    """ONNX QuantizeLinear float32 -> uint8/int8, per tensor or per axis (MLAS MlasQuantizeLinear).

    q = clamp(RNE(x / scale), lo - zp, hi - zp) + zp with a true float32 division; NaN gives the
    type's minimum. `zero_point` (a uint8/int8 scalar or 1-D array) sets the output type; without one,
    `dtype` does (default uint8). A 1-D `scale` with more than one value quantizes along `axis`.
    """
    a = _float_array(x, "x")
    if zero_point is not None:
        zdtype = np.asarray(zero_point).dtype
        if zdtype not in _QDTYPES:
            raise ValueError(f"zero_point must be uint8 or int8, got dtype {zdtype}")
        if dtype is not None and np.dtype(dtype) != zdtype:
            raise ValueError(f"dtype {np.dtype(dtype)} differs from zero_point's dtype {zdtype}")
    else:
        zdtype = np.dtype(np.uint8 if dtype is None else dtype)
        if zdtype not in _QDTYPES:
            raise ValueError(f"dtype must be uint8 or int8, got {zdtype}")
    outer, channels, inner, s, z = _per_axis(a, scale, zero_point, axis, zdtype, "QuantizeLinear")
    return _ort.quantize_linear(a, s, z, outer, channels, inner, _isa(isa))


def dynamic_quantize_linear(x, *, isa=None):
    """ONNX DynamicQuantizeLinear: (y uint8, y_scale float32, y_zero_point uint8) over the whole tensor x,
    as dynamicquantizelinear.cc / qmath.h GetQuantizationParameter compute it (also what the com.microsoft
    DynamicQuantizeMatMul kernel quantizes its input with).

    The range [min(x, 0), max(x, 0)]; scale = (max - min) / 255 in float (1 when max == min); zero point =
    RoundHalfToEven(clamp(0 - min / scale, 0, 255)); y = MlasQuantizeLinear(x, scale, zero point) (true
    division, round to nearest even, saturated). NaN in x raises ValueError (ORT's min/max then depends on
    its vector lane order).
    """
    a = _float_array(x, "x")
    if a.size == 0:
        raise ValueError("x is empty (DynamicQuantizeLinear needs at least one value)")
    y, scale, zero = _ort.dynamic_quantize_linear(a, _isa(isa))
    return y, np.float32(scale), np.uint8(zero)


def dequantize_linear(x, scale, zero_point=None, *, axis=1, isa=None):
    """ONNX DequantizeLinear uint8/int8/int32 -> float32, per tensor or per axis.

    y = float(int32(x) - zp) * scale (quantize_linear.cc DequantizeLinearApply); `zero_point` has x's
    dtype (int32 inputs: ORT requires it to be 0).
    """
    a = np.ascontiguousarray(np.asarray(x))
    if a.dtype not in (np.uint8, np.int8, np.int32):
        raise ValueError(f"x must be uint8, int8 or int32, got dtype {a.dtype}")
    if a.dtype == np.int32 and zero_point is not None and np.any(np.asarray(zero_point) != 0):
        raise ValueError("DequantizeLinear of int32 takes no zero point other than 0 (ORT enforces it)")
    outer, channels, inner, s, z = _per_axis(a, scale, zero_point, axis, a.dtype, "DequantizeLinear")
    return _ort.dequantize_linear(a, s, z, outer, channels, inner, _isa(isa))


# ---- QLinearAdd / QLinearMul ---------------------------------------------------------------------------

def _qbinary(op, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, isa):
    qa, qb = _qarray(a, "a"), _qarray(b, "b")
    if qa.dtype != qb.dtype:
        raise ValueError(f"a and b must have the same dtype, got {qa.dtype} and {qb.dtype}")
    try:
        np.broadcast_shapes(qa.shape, qb.shape)
    except ValueError:
        raise ValueError(f"shapes {qa.shape} and {qb.shape} do not broadcast") from None
    if qa.size == 0 or qb.size == 0:
        raise ValueError("empty inputs are not supported")
    dt = qa.dtype
    return _ort.qlinear_binary(op, qa, _scale(a_scale, "a_scale"), _zero_point(a_zero_point, "a_zero_point", dt),
                               qb, _scale(b_scale, "b_scale"), _zero_point(b_zero_point, "b_zero_point", dt),
                               _scale(c_scale, "c_scale"), _zero_point(c_zero_point, "c_zero_point", dt), _isa(isa))


def qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, *, isa=None):
    """com.microsoft QLinearAdd (uint8/int8, numpy broadcasting) as MLAS's AVX2 kernel computes it.

    With rA = sA/sC, rB = sB/sC and F = zC - fma(rA, zA, rB*zB):
    c = sat8(sat16(cvtps(fma(a, rA, fma(b, rB, F))))); an operand that is a scalar for ORT's broadcast
    span is folded into F first (fma(b, rB, F)), with the operands swapped when it is input a.
    """
    return _qbinary(0, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, isa)


def qlinear_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, *, isa=None):
    """com.microsoft QLinearMul (uint8/int8, numpy broadcasting), MLAS qlmul.cpp (SSE2 path).

    c = sat8(sat16(cvtps(float((a - zA) * (b - zB)) * ((sA * sB) / sC) + zC))), two roundings.
    """
    return _qbinary(1, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, isa)


# ---- table-driven ops ----------------------------------------------------------------------------------

_TABLE_FUNCTIONS = {"identity": 0, "leaky_relu": 1, "sigmoid": 2}


def qlinear_lookup_table(function, x_scale, x_zero_point, y_scale, y_zero_point, *, dtype=np.uint8, alpha=0.01):
    """The 256-entry table ORT builds for a table-driven op (qlinear_lookup_table.cc).

    table[byte] = MlasQuantizeLinear(f(x_scale * (T(byte) - x_zp)), y_scale, y_zp) with f one of
    "identity" (QLinearConcat), "leaky_relu" (v >= 0 ? v : alpha * v), "sigmoid" (MLAS logistic,
    FMA3 kernel). Index the table with the input's bytes (x.view(np.uint8)).
    """
    if function not in _TABLE_FUNCTIONS:
        raise ValueError(f"function must be one of {sorted(_TABLE_FUNCTIONS)}, got {function!r}")
    dt = np.dtype(dtype)
    if dt not in _QDTYPES:
        raise ValueError(f"dtype must be uint8 or int8, got {dt}")
    a = np.float32(alpha)
    if not np.isfinite(a):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return _ort.lookup_table(_TABLE_FUNCTIONS[function], float(a), _scale(x_scale, "x_scale"),
                             _zero_point(x_zero_point, "x_zero_point", dt), _scale(y_scale, "y_scale"),
                             _zero_point(y_zero_point, "y_zero_point", dt), dt == np.int8)


def apply_lookup_table(x, table):
    """y[i] = table[byte of x[i]] (QLinearLookupTableTransform); table: 256 values of x's dtype."""
    q = _qarray(x, "x")
    t = np.asarray(table)
    if t.dtype != q.dtype or t.shape != (256,):
        raise ValueError(f"table must be 256 values of dtype {q.dtype}, got shape {t.shape} dtype {t.dtype}")
    return _ort.apply_lookup_table(q, np.ascontiguousarray(t))


def _table_op(function, x, x_scale, x_zero_point, y_scale, y_zero_point, alpha=0.01):
    q = _qarray(x, "x")
    table = qlinear_lookup_table(function, x_scale, x_zero_point, y_scale, y_zero_point, dtype=q.dtype, alpha=alpha)
    return _ort.apply_lookup_table(q, table)


def qlinear_leaky_relu(x, x_scale, x_zero_point, y_scale, y_zero_point, *, alpha=0.01):
    """com.microsoft QLinearLeakyRelu: a 256-entry table of quantize(leaky_relu(dequantize(byte)))."""
    return _table_op("leaky_relu", x, x_scale, x_zero_point, y_scale, y_zero_point, alpha)


def qlinear_sigmoid(x, x_scale, x_zero_point, y_scale, y_zero_point):
    """com.microsoft QLinearSigmoid: a 256-entry table of quantize(MLAS logistic(dequantize(byte)))."""
    return _table_op("sigmoid", x, x_scale, x_zero_point, y_scale, y_zero_point)


def qlinear_concat(inputs, y_scale, y_zero_point, *, axis):
    """com.microsoft QLinearConcat: each (x, x_scale, x_zero_point) requantized to (y_scale, y_zero_point).

    An input whose scale and zero point equal the output's (exact float equality) is copied; any other
    goes through the identity table (MlasQuantizeLinear of x_scale * (x - x_zp)).
    """
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError("inputs must be a non-empty list of (x, x_scale, x_zero_point) tuples")
    arrays, tables = [], []
    ys = _scale(y_scale, "y_scale")
    first = None
    for i, item in enumerate(inputs):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise ValueError(f"inputs[{i}] must be an (x, x_scale, x_zero_point) tuple")
        x, xs, xz = item
        q = _qarray(x, f"inputs[{i}]")
        if first is None:
            first = q
            dt = q.dtype
            yz = _zero_point(y_zero_point, "y_zero_point", dt)
            ax = _axis(axis, q.ndim)
        if q.dtype != dt or q.ndim != first.ndim or q.shape[:ax] != first.shape[:ax] or q.shape[ax + 1:] != first.shape[ax + 1:]:
            raise ValueError(f"inputs[{i}] of shape {q.shape} {q.dtype} does not concatenate with {first.shape} "
                             f"{first.dtype} along axis {ax}")
        s = _scale(xs, f"inputs[{i}] scale")
        z = _zero_point(xz, f"inputs[{i}] zero point", dt)
        arrays.append(q)
        tables.append(None if (s == ys and z == yz) else
                      _ort.lookup_table(0, 0.0, s, z, ys, yz, dt == np.int8))
    out_shape = list(first.shape)
    out_shape[ax] = sum(a.shape[ax] for a in arrays)
    outer = int(np.prod(first.shape[:ax], dtype=np.int64))
    if any(a.size == 0 for a in arrays) or outer == 0:
        raise ValueError("empty inputs are not supported")
    return _ort.qlinear_concat(arrays, tables, outer, out_shape)


# ---- QLinearSoftmax ----------------------------------------------------------------------------------

def qlinear_softmax(x, x_scale, x_zero_point, y_scale, y_zero_point, *, axis=-1, opset=13):
    """com.microsoft QLinearSoftmax (uint8/int8) as qlinear_softmax.cc computes it.

    A table of float exp((i - 255 + shift) * x_scale) with shift = max(0, log(FLT_MAX / D) - 5) / x_scale;
    per row: sum (float, in order) of the table entries shifted so the row maximum is entry 255, then
    q = int(rint(double(e) * floor(1 / y_scale) / double(sum))) + y_zp, in double as onnxruntime 1.32
    computes it (measured; the float orders of the public sources round differently on about 1 row in
    10^5), capped at 255 (u8) or 127 (s8); q >= 0, so no lower clamp. opset >= 13 reduces along `axis` alone (D = x.shape[axis]); opset < 13
    along the flattened dimensions from `axis` on. x_zero_point is unused, as in ORT.
    """
    q = _qarray(x, "x")
    if q.ndim == 0 or q.size == 0:
        raise ValueError("x must have at least one dimension and one element")
    dt = q.dtype
    xs, ys = _scale(x_scale, "x_scale"), _scale(y_scale, "y_scale")
    _zero_point(x_zero_point, "x_zero_point", dt)
    yz = _zero_point(y_zero_point, "y_zero_point", dt)
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset < 1:
        raise ValueError(f"opset must be a positive int, got {opset!r}")
    ax = _axis(axis, q.ndim)
    if opset < 13:
        d = int(np.prod(q.shape[ax:], dtype=np.int64))
        return _ort.qlinear_softmax(q, xs, ys, yz, d)
    if ax == q.ndim - 1:
        return _ort.qlinear_softmax(q, xs, ys, yz, q.shape[ax])
    moved = np.ascontiguousarray(np.moveaxis(q, ax, -1))
    y = _ort.qlinear_softmax(moved, xs, ys, yz, q.shape[ax])
    return np.ascontiguousarray(np.moveaxis(y, -1, ax))


# ---- pooling -----------------------------------------------------------------------------------------

_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def pool_output_shape(in_spatial, kernel_shape, strides=None, pads=None, *, dilations=None, ceil_mode=False,
                      auto_pad="NOTSET"):
    """(output spatial sizes, [head pads], [tail pads]) as ORT's PoolAttributes computes them.

    out = floor((in + head + tail - dilation * (k - 1) - 1) / stride) + 1, or with ceil_mode the ceiling
    (computed in float, as ORT does), less one when the last window would start past in + head.
    auto_pad SAME_UPPER/SAME_LOWER pad (ceil(in / stride) - 1) * stride + k - in, the extra cell at the
    tail (UPPER) or the head (LOWER); VALID pads nothing.
    """
    d = len(in_spatial)
    k = _ints(kernel_shape, d, "kernel_shape", 1)
    s = _ints(strides if strides is not None else 1, d, "strides", 1)
    dil = _ints(dilations if dilations is not None else 1, d, "dilations", 1)
    if pads is None:
        pads = [0] * (2 * d)
    p = _ints(pads, 2 * d, "pads", 0)
    if auto_pad not in _AUTO_PADS:
        raise ValueError(f"auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    head, tail, out = p[:d], p[d:], []
    for i in range(d):
        n = int(in_spatial[i])
        if auto_pad == "VALID":
            head[i] = tail[i] = 0
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            target = (n + s[i] - 1) // s[i]
            need = (target - 1) * s[i] + k[i] - n
            head[i] = (need + 1) // 2 if auto_pad == "SAME_LOWER" else need // 2
            tail[i] = need - head[i]
        numerator = n + head[i] + tail[i] - dil[i] * (k[i] - 1) - 1
        size = numerator // s[i] + 1
        if ceil_mode:
            size = int(np.ceil(np.float32(numerator) / np.float32(s[i]))) + 1
            if (size - 1) * s[i] >= n + head[i]:
                size -= 1
        if size <= 0:
            raise ValueError(f"pooling output size {size} along spatial dimension {i} (input {n}, kernel {k[i]}, "
                             f"stride {s[i]}, pads {head[i]}/{tail[i]})")
        out.append(size)
    return out, head, tail


def _spatial(q, channels_last, op):
    if q.ndim < 3 or q.ndim > 5:
        raise ValueError(f"{op} takes an input of rank 3 to 5 (N, C and 1 to 3 spatial dimensions), got shape {q.shape}")
    if q.size == 0:
        raise ValueError(f"{op}: empty input")
    if channels_last:
        return q.shape[0], q.shape[-1], list(q.shape[1:-1])
    return q.shape[0], q.shape[1], list(q.shape[2:])


def qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=False):
    """com.microsoft QLinearGlobalAveragePool (MLAS qlgavgpool.cpp): exact int32 sum of (x - x_zp) per
    channel, then the fp32 requantizer with scale x_scale / (y_scale * image_size).

    Raises, as ORT does, when image_size >= 2^24 or that scale is outside [2^-32, 256).
    """
    q = _qarray(x, "x")
    n, c, sp = _spatial(q, channels_last, "QLinearGlobalAveragePool")
    dt = q.dtype
    image = int(np.prod(sp))
    out_shape = [n] + [1] * len(sp) + [c] if channels_last else [n, c] + [1] * len(sp)
    return _ort.qlinear_global_average_pool(q, _scale(x_scale, "x_scale"), _zero_point(x_zero_point, "x_zero_point", dt),
                                            _scale(y_scale, "y_scale"), _zero_point(y_zero_point, "y_zero_point", dt),
                                            n, c, image, bool(channels_last), out_shape)


def qlinear_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, kernel_shape, strides=None, pads=None,
                         count_include_pad=False, ceil_mode=False, auto_pad="NOTSET", channels_last=False):
    """com.microsoft QLinearAveragePool (qlinear_pool.cc): dequantize to float, sum each window's valid
    cells in order, divide by the count (the kernel size with count_include_pad), then
    q = clamp(int(nearbyintf(avg / y_scale + y_zp))). A window covering the whole image without padding
    takes the global pool's integer path, as ORT does.
    """
    q = _qarray(x, "x")
    n, c, sp = _spatial(q, channels_last, "QLinearAveragePool")
    dt = q.dtype
    xs, ys = _scale(x_scale, "x_scale"), _scale(y_scale, "y_scale")
    xz, yz = _zero_point(x_zero_point, "x_zero_point", dt), _zero_point(y_zero_point, "y_zero_point", dt)
    out, head, tail = pool_output_shape(sp, kernel_shape, strides, pads, ceil_mode=ceil_mode, auto_pad=auto_pad)
    k = _ints(kernel_shape, len(sp), "kernel_shape", 1)
    if k == sp and not any(head) and not any(tail):
        return qlinear_global_average_pool(q, xs, xz, ys, yz, channels_last=channels_last)
    s = _ints(strides if strides is not None else 1, len(sp), "strides", 1)
    out_shape = [n] + out + [c] if channels_last else [n, c] + out
    return _ort.qlinear_average_pool(q, xs, xz, ys, yz, n, c, sp, out, k, s, head, bool(count_include_pad),
                                     bool(channels_last), out_shape)


# ---- float kernels -------------------------------------------------------------------------------------

def sigmoid_float(x, *, isa=None):
    """ONNX Sigmoid on float32: MLAS logistic (LogisticKernelFma3: clamp [-18, 18], rational
    polynomial with FMA, max(0, p/q + 0.5))."""
    return _ort.mlas_unary(0, _float_array(x, "x"), _isa(isa))


def tanh_float(x, *, isa=None):
    """ONNX Tanh on float32: MLAS tanh (TanhKernelFma3: clamp [-9, 9], rational polynomial with FMA)."""
    return _ort.mlas_unary(1, _float_array(x, "x"), _isa(isa))


def _threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive int (ORT's intra-op thread count), got {threads!r}")
    return int(threads)


def gemm_float(a, b, c=None, *, alpha=1.0, beta=1.0, trans_a=False, trans_b=False, packed_b=True, threads=1, isa=None):
    """ONNX Gemm on float32 as ORT's CPU kernel (gemm.cc) runs it on MLAS SGEMM.

    Y = alpha * op(a) @ op(b) + beta * c. The bias c (scalar, (N,), (1, N), (M, 1) or (M, N)) is
    broadcast into Y first; each output then sums its K blocks with FMA (C = fma(block_sum, alpha, C)).
    `packed_b`: ORT prepacks a constant B (an initializer, the usual case): 256-wide K blocks;
    packed_b=False emulates B fed at run time (K blocks from the N slice, the M = 1 AVX kernels), whose
    result also depends on `threads` (ORT's intra-op thread count).
    """
    A, B = _float_array(a, "a"), _float_array(b, "b")
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"Gemm takes 2-D a and b, got shapes {A.shape} and {B.shape}")
    M, K = (A.shape[1], A.shape[0]) if trans_a else A.shape
    Kb, N = (B.shape[1], B.shape[0]) if trans_b else B.shape
    if K != Kb:
        raise ValueError(f"inner dimensions differ: op(a) is {M}x{K}, op(b) is {Kb}x{N}")
    al, be = np.float32(alpha), np.float32(beta)
    if not (np.isfinite(al) and np.isfinite(be)):
        raise ValueError("alpha and beta must be finite")
    y = np.zeros((M, N), np.float32)
    if c is not None and be != 0:
        C = _float_array(c, "c")
        if C.size == 1:
            y[...] = C.reshape(())
        elif C.shape in ((N,), (1, N)):
            y[...] = C.reshape(1, N)
        elif C.shape in ((M, 1), (M, N)):
            y[...] = C
        else:
            raise ValueError(f"bias c of shape {C.shape} does not broadcast to ({M}, {N}) as Gemm allows")
        beta_call = float(be)
    else:
        beta_call = 0.0
    _ort.sgemm(bool(trans_a), bool(trans_b), 1, M, N, K, float(al), A, B, True, beta_call, y, bool(packed_b),
               _threads(threads), _isa(isa))
    return y


def matmul_float(a, b, *, packed_b=True, threads=1, isa=None):
    """ONNX MatMul on float32 (matmul.cc -> MlasGemmBatch), a of rank >= 2 with a 2-D b (the batch
    dimensions of a flattened into M, as ORT does), or a and b of equal rank with equal batch
    dimensions (one GEMM per batch entry). `packed_b` and `threads` as in gemm_float (a constant 2-D b
    is prepacked by ORT)."""
    A, B = _float_array(a, "a"), _float_array(b, "b")
    if A.ndim < 2 or B.ndim < 2:
        raise ValueError(f"matmul_float takes a and b of rank >= 2, got shapes {A.shape} and {B.shape}")
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"inner dimensions differ: {A.shape} @ {B.shape}")
    K, N = B.shape[-2], B.shape[-1]
    if B.ndim == 2:
        M = int(np.prod(A.shape[:-1]))
        y = np.empty(A.shape[:-1] + (N,), np.float32)
        _ort.sgemm(False, False, 1, M, N, K, 1.0, A, B, True, 0.0, y, bool(packed_b), _threads(threads), _isa(isa))
        return y
    if A.shape[:-2] != B.shape[:-2]:
        raise ValueError(f"batch dimensions differ: {A.shape} @ {B.shape} (only equal batch shapes are supported)")
    if packed_b:
        raise ValueError("ORT prepacks only a 2-D b; pass packed_b=False for batched b")
    batch = int(np.prod(A.shape[:-2]))
    M = A.shape[-2]
    y = np.empty(A.shape[:-1] + (N,), np.float32)
    _ort.sgemm(False, False, batch, M, N, K, 1.0, A, B, False, 0.0, y, False, _threads(threads), _isa(isa))
    return y


def conv_output_shape(in_spatial, kernel_shape, strides=None, pads=None, dilations=None, auto_pad="NOTSET"):
    """(output spatial sizes, [head pads], [tail pads]) as ORT's ConvAttributes::InferPadsAndOutputShape
    computes them: out = floor((in + head + tail - dilation * (k - 1) - 1) / stride) + 1; SAME_UPPER /
    SAME_LOWER pad (ceil(in / stride) - 1) * stride + dilation * (k - 1) + 1 - in (the odd cell at the
    tail / head); VALID pads nothing."""
    d = len(in_spatial)
    k = _ints(kernel_shape, d, "kernel_shape", 1)
    s = _ints(strides if strides is not None else 1, d, "strides", 1)
    dil = _ints(dilations if dilations is not None else 1, d, "dilations", 1)
    p = _ints(pads if pads is not None else [0] * (2 * d), 2 * d, "pads", 0)
    if auto_pad not in _AUTO_PADS:
        raise ValueError(f"auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    head, tail, out = p[:d], p[d:], []
    for i in range(d):
        n = int(in_spatial[i])
        dk = dil[i] * (k[i] - 1) + 1
        if auto_pad == "VALID":
            head[i] = tail[i] = 0
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            target = (n + s[i] - 1) // s[i]
            need = max(0, (target - 1) * s[i] + dk - n)
            head[i] = (need + 1) // 2 if auto_pad == "SAME_LOWER" else need // 2
            tail[i] = need - head[i]
        size = (n + head[i] + tail[i] - dk) // s[i] + 1
        if size <= 0:
            raise ValueError(f"conv output size {size} along spatial dimension {i}")
        out.append(size)
    return out, head, tail


def _conv_channels(X, W, group):
    """(batch, input channels, output channels) of a float convolution, its group checked against them."""
    if isinstance(group, bool) or not isinstance(group, numbers.Integral) or group < 1:
        raise ValueError(f"group must be a positive int, got {group!r}")
    n, c = X.shape[:2]
    m, cg = W.shape[:2]
    if c % group or m % group or cg != c // group:
        raise ValueError(f"channels do not match: x has {c}, w {W.shape} with group={group}")
    if X.size == 0 or W.size == 0:
        raise ValueError("empty inputs are not supported")
    return n, c, m


def conv_float(x, w, b=None, *, strides=None, pads=None, dilations=None, group=1, auto_pad="NOTSET", threads=1,
               isa=None):
    """ONNX Conv on float32 as ORT's Conv<float> kernel runs it on MLAS (MlasConv, convolve.cpp): the
    algorithm MLAS picks (GEMM on the input for 1x1, im2col + SGEMM in K blocks otherwise; one filter
    per group takes the M = 1 kernel), FMA sums per K block, the bias added after the sums.

    x: [N, C, spatial...] (1 to 3 spatial dimensions), w: [M, C / group, kernel...], b: [M] or None.
    `threads` is ORT's intra-op thread count: it changes the K blocking of a single image.
    This is the kernel of a session without the NCHWc layout rewrite (the reference profile,
    optimization level below ORT_ENABLE_ALL); with it, ORT runs MlasNchwcConv instead.
    """
    X, W = _float_array(x, "x"), _float_array(w, "w")
    if X.ndim < 3 or X.ndim > 5 or W.ndim != X.ndim:
        raise ValueError(f"conv_float takes x of rank 3 to 5 and w of the same rank, got {X.shape} and {W.shape}")
    n, c, m = _conv_channels(X, W, group)
    sp, k = list(X.shape[2:]), list(W.shape[2:])
    out, head, tail = conv_output_shape(sp, k, strides, pads, dilations, auto_pad)
    d = len(sp)
    s = _ints(strides if strides is not None else 1, d, "strides", 1)
    dil = _ints(dilations if dilations is not None else 1, d, "dilations", 1)
    B = None
    if b is not None:
        B = _float_array(b, "b")
        if B.shape != (m,):
            raise ValueError(f"bias must have shape ({m},), got {B.shape}")
    return _ort.conv_float(X, W, B, n, group, c // group, m // group, sp, out, k, dil, s, head + tail, _threads(threads),
                           _isa(isa), [n, m] + out)


# ---- NCHWc: the float Conv / pooling of ORT's optimized graphs (ORT_ENABLE_ALL) ---------------------------

NCHWC_BLOCKS = (8, 16)   # MlasNchwcGetBlockSize(): 8 with AVX2 + FMA3, 16 with AVX-512F

# FusedConv / NchwcConv "activation" -> (code of mlas_nchwc.hpp, number of activation_params)
_NCHWC_ACTIVATIONS = {None: (0, 0), "Relu": (1, 0), "Clip": (2, 2), "LeakyRelu": (3, 1), "HardSigmoid": (4, 2),
                      "Sigmoid": (5, 0), "Tanh": (6, 0)}


def _nchwc_block(block):
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or int(block) not in NCHWC_BLOCKS:
        raise ValueError(f"block must be 8 (AVX2) or 16 (AVX-512F), got {block!r}")
    return int(block)


def nchwc_conv_applies(w_shape, group=1, block=8) -> bool:
    """Whether ORT 1.32's NchwcTransformer (optimizer/nchwc_transformer.cc, TransformConv) rewrites a
    float Conv whose weights of this OIHW shape (and its bias, if any) are constant float initializers
    into a com.microsoft.nchwc Conv, for the NCHWc block size `block`: group 1 with fewer input
    channels than the block (the input stays NCHW) or a multiple of 4 (padded with zero channels to a
    multiple of the block); depthwise (one input channel and one output channel per group) with a
    group count that is a multiple of 4; other grouped convolutions with input and output channels per
    group that are multiples of the block. Output channels are padded to the block with zero filters.
    Measured on the installed runtime with block 8 (tests/test_ort_nchwc.py); the same rule is taken
    for block 16. 1-D and 3-D convolutions stay as they are."""
    block = _nchwc_block(block)
    shape = tuple(int(v) for v in w_shape)
    if len(shape) != 4 or isinstance(group, bool) or not isinstance(group, numbers.Integral) or group < 1:
        return False
    m, c = shape[:2]
    if m % group:
        return False
    if group == 1:
        return c < block or c % 4 == 0
    if c == 1 and m == group:
        return group % 4 == 0
    return c % block == 0 and (m // group) % block == 0


def nchwc_pool_applies(channels, block=8, *, count_include_pad=False, ceil_mode=False) -> bool:
    """Whether the NchwcTransformer (TransformPool) runs a float MaxPool / AveragePool /
    GlobalAveragePool / GlobalMaxPool of this many channels (a static dimension) in NCHWc: a multiple
    of the block, except an AveragePool with both count_include_pad and ceil_mode (measured: left in
    NCHW)."""
    block = _nchwc_block(block)
    return int(channels) % block == 0 and not (count_include_pad and ceil_mode)


def conv_float_nchwc(x, w, b=None, *, strides=None, pads=None, dilations=None, group=1, auto_pad="NOTSET",
                     activation=None, activation_params=(), sum=None, block=8, isa=None):
    """ONNX Conv on float32 as ORT runs it after its NchwcTransformer (graph optimization level
    ORT_ENABLE_ALL): com.microsoft.nchwc Conv on MLAS's NCHWc kernels (MlasNchwcConv) with the block size
    `block` (MlasNchwcGetBlockSize(): 8 on AVX2 CPUs, 16 on AVX-512F CPUs).

    The algorithm MLAS picks decides each output's order: per call of the kernel an accumulator from
    +0 takes fma(x, w, acc) over the valid taps in (kh, kw) order and, per tap, a block of channels
    ("Nchwc": `block` channels per call, the channels padded with zeros to a multiple of it;
    "Pointwise", 1x1 without padding: 128 per call; "Nchw", group 1 with fewer than `block` channels:
    one channel per call; "Depthwise": one call); the output is the first call's
    sum, then sum + output for each further call; then + bias, then `activation` (the FusedConv
    attribute the transformer keeps: "Relu", "Clip" (params min, max), "LeakyRelu" (alpha),
    "HardSigmoid" (alpha, beta), "Sigmoid", "Tanh", or None). `sum` is the other operand of an Add the
    transformer fused into the convolution (NchwcConv's fourth input): it fills the output first, so
    it is added before the bias. The result does not depend on ORT's thread count.

    x: [N, C, H, W], w: [M, C / group, KH, KW], b: [M] or None, sum: [N, M, OH, OW] or None. ORT only
    takes this path for the shapes `nchwc_conv_applies` accepts; grouped convolutions other than those
    are refused here, group-1 convolutions of any channel count are computed as MLAS would.
    """
    block = _nchwc_block(block)
    X, W = _float_array(x, "x"), _float_array(w, "w")
    if X.ndim != 4 or W.ndim != 4:
        raise ValueError(f"conv_float_nchwc takes 4-D x and w (NCHW, OIHW), got {X.shape} and {W.shape}")
    n, c, m = _conv_channels(X, W, group)
    try:
        code, count = _NCHWC_ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(a for a in _NCHWC_ACTIVATIONS if a)} or None, "
                         f"got {activation!r}") from None
    params = [float(v) for v in np.asarray(activation_params if activation_params is not None else (),
                                           np.float32).reshape(-1)]
    if len(params) != count:
        raise ValueError(f"activation {activation!r} takes {count} activation_params, got {len(params)}")
    if any(np.isnan(params)):
        raise ValueError(f"activation_params must not be NaN, got {activation_params!r}")
    params += [0.0] * (2 - len(params))
    sp, k = list(X.shape[2:]), list(W.shape[2:])
    out, head, tail = conv_output_shape(sp, k, strides, pads, dilations, auto_pad)
    s = _ints(strides if strides is not None else 1, 2, "strides", 1)
    dil = _ints(dilations if dilations is not None else 1, 2, "dilations", 1)
    B = S = None
    if b is not None:
        B = _float_array(b, "b")
        if B.shape != (m,):
            raise ValueError(f"bias must have shape ({m},), got {B.shape}")
    if sum is not None:
        S = _float_array(sum, "sum")
        if S.shape != (n, m, out[0], out[1]):
            raise ValueError(f"sum must have the output's shape {(n, m, out[0], out[1])}, got {S.shape}")
    return _ort.nchwc_conv(X, W, B, S, n, group, c // group, m // group, sp, out, k, dil, s, head + tail, code,
                           params[0], params[1], block, _isa(isa))


def _nchwc_pool(kind, x, kernel_shape, strides, pads, dilations, ceil_mode, auto_pad, op, isa):
    X = _float_array(x, "x")
    if X.ndim != 4 or X.size == 0:
        raise ValueError(f"{op} (NCHWc) takes a non-empty 4-D input (N, C, H, W), got shape {X.shape}")
    n, c, sp = X.shape[0], X.shape[1], list(X.shape[2:])
    dil = _ints(dilations if dilations is not None else 1, 2, "dilations", 1)
    out, head, tail = pool_output_shape(sp, kernel_shape, strides, pads, dilations=dil, ceil_mode=ceil_mode,
                                        auto_pad=auto_pad)
    k = _ints(kernel_shape, 2, "kernel_shape", 1)
    s = _ints(strides if strides is not None else 1, 2, "strides", 1)
    return _ort.nchwc_pool(kind, X, n * c, sp, out, k, dil, s, head, [n, c] + out, _isa(isa))


def max_pool_nchwc(x, *, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False, auto_pad="NOTSET",
                   isa=None):
    """ONNX MaxPool (one output) on float32 as com.microsoft.nchwc MaxPool computes it (MlasNchwcPool,
    SpoolKernelAvx.S): per channel, from -FLT_MAX, MAXPS(acc, x) over the valid taps in (kh, kw) order
    (a window entirely in the padding gives -FLT_MAX)."""
    return _nchwc_pool(0, x, kernel_shape, strides, pads, dilations, ceil_mode, auto_pad, "MaxPool", isa)


def average_pool_nchwc(x, *, kernel_shape, strides=None, pads=None, count_include_pad=False, ceil_mode=False,
                       auto_pad="NOTSET", isa=None):
    """ONNX AveragePool on float32 as com.microsoft.nchwc AveragePool computes it: per channel the valid
    taps summed in (kh, kw) order from +0, divided by their count (count_include_pad False) or by
    kh * kw (True, also for windows reaching past the padding with ceil_mode)."""
    return _nchwc_pool(2 if count_include_pad else 1, x, kernel_shape, strides, pads, None, ceil_mode, auto_pad,
                       "AveragePool", isa)


def global_average_pool_nchwc(x, *, isa=None):
    """ONNX GlobalAveragePool on float32 in NCHWc (the NchwcTransformer converts it when its input is
    already NCHWc): the image summed in row-major order from +0, divided by its size."""
    X = _float_array(x, "x")
    if X.ndim != 4 or X.size == 0:
        raise ValueError(f"GlobalAveragePool (NCHWc) takes a non-empty 4-D input, got shape {X.shape}")
    return average_pool_nchwc(X, kernel_shape=list(X.shape[2:]), isa=isa)


def global_max_pool_nchwc(x, *, isa=None):
    """ONNX GlobalMaxPool on float32 in NCHWc: MAXPS(acc, x) over the image in row-major order."""
    X = _float_array(x, "x")
    if X.ndim != 4 or X.size == 0:
        raise ValueError(f"GlobalMaxPool (NCHWc) takes a non-empty 4-D input, got shape {X.shape}")
    return max_pool_nchwc(X, kernel_shape=list(X.shape[2:]), isa=isa)


def batch_norm_float(x, scale, bias, mean, var, *, epsilon=1e-5, isa=None):
    """ONNX BatchNormalization (inference) on float32 as batch_norm.h computes it:
    s = (1 / sqrt(var + eps)) * scale, t = bias - mean * s, y = x * s + t (no FMA)."""
    X = _float_array(x, "x")
    if X.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, ...), got shape {X.shape}")
    c = X.shape[1]
    params = []
    for name, v in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        a = _float_array(v, name)
        if a.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},), got {a.shape}")
        params.append(a)
    eps = np.float32(epsilon)
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    plane = int(np.prod(X.shape[2:], dtype=np.int64))
    return _ort.batch_norm_float(X, *params, float(eps), X.shape[0], c, plane, _isa(isa))


def softmax_float(x, *, axis=-1, opset=13, isa=None):
    """ONNX Softmax on float32 (softmax.cc -> MLAS MlasComputeSoftmax): exp(x - max) with MLAS's FMA3
    polynomial, the row sum in 8 lanes, then each value times 1 / sum. opset >= 13 reduces along
    `axis`; opset < 13 over the flattened dimensions from `axis` on."""
    X = _float_array(x, "x")
    if X.ndim == 0 or X.size == 0:
        raise ValueError("x must have at least one dimension and one element")
    ax = _axis(axis, X.ndim)
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset < 1:
        raise ValueError(f"opset must be a positive int, got {opset!r}")
    if opset < 13:
        return _ort.softmax_float(X, int(np.prod(X.shape[ax:], dtype=np.int64)), _isa(isa))
    if ax == X.ndim - 1:
        return _ort.softmax_float(X, X.shape[ax], _isa(isa))
    moved = np.ascontiguousarray(np.moveaxis(X, ax, -1))
    return np.ascontiguousarray(np.moveaxis(_ort.softmax_float(moved, X.shape[ax], _isa(isa)), -1, ax))


def _float_pool(kind, x, kernel_shape, strides, pads, ceil_mode, auto_pad, op, isa):
    X = _float_array(x, "x")
    n, c, sp = _spatial(X, False, op)
    out, head, tail = pool_output_shape(sp, kernel_shape, strides, pads, ceil_mode=ceil_mode, auto_pad=auto_pad)
    k = _ints(kernel_shape, len(sp), "kernel_shape", 1)
    s = _ints(strides if strides is not None else 1, len(sp), "strides", 1)
    return _ort.mlas_pool(kind, X, n * c, sp, out, k, s, head + tail, [n, c] + out, _isa(isa))


def max_pool(x, *, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False, auto_pad="NOTSET", isa=None):
    """ONNX MaxPool (one output) on float32 (MLAS MlasPool, or pool.cc's loop with dilations) or on
    uint8/int8 (an exact maximum, as ORT's loop takes it). Float maxima follow MLAS's MAXPS / std::max
    steps, so NaN and signed zeros come out as ORT's."""
    X = np.asarray(x)
    if X.dtype not in (np.float32, np.uint8, np.int8):
        raise ValueError(f"x must be float32, uint8 or int8, got dtype {X.dtype}")
    X = np.ascontiguousarray(X)
    n, c, sp = _spatial(X, False, "MaxPool")
    d = len(sp)
    dil = _ints(dilations if dilations is not None else 1, d, "dilations", 1)
    out, head, tail = pool_output_shape(sp, kernel_shape, strides, pads, dilations=dil, ceil_mode=ceil_mode,
                                        auto_pad=auto_pad)
    k = _ints(kernel_shape, d, "kernel_shape", 1)
    s = _ints(strides if strides is not None else 1, d, "strides", 1)
    if X.dtype == np.float32 and all(v == 1 for v in dil):
        return _ort.mlas_pool(0, X, n * c, sp, out, k, s, head + tail, [n, c] + out, _isa(isa))
    return _ort.max_pool_dilated(X, n * c, sp, out, k, s, head + tail, dil, [n, c] + out)


def average_pool_float(x, *, kernel_shape, strides=None, pads=None, count_include_pad=False, ceil_mode=False,
                       auto_pad="NOTSET", opset=13, isa=None):
    """ONNX AveragePool on float32 (MLAS MlasPool): window sums in MLAS's order (column sums first for
    2-D/3-D windows with a last stride <= 2), divided by the valid cell count or the kernel size.
    AveragePool of `opset` 19 on, and ceil_mode with count_include_pad before it, take pool.cc's own
    loop (AveragePool2DTask: cells in row-major order; divided by the valid cells, or by the cells
    inside the padded input), as ORT 1.32 does."""
    if int(opset) >= 19 or (ceil_mode and count_include_pad):
        kind = 3 if count_include_pad else 4
    else:
        kind = 2 if count_include_pad else 1
    return _float_pool(kind, x, kernel_shape, strides, pads, ceil_mode, auto_pad, "AveragePool", isa)


def global_average_pool_float(x, *, isa=None):
    """ONNX GlobalAveragePool on float32 (MLAS global kernel): 4 lane sums over the image, reduced
    (l0 + l2) + (l1 + l3), the tail added in order, divided by the image size."""
    X = _float_array(x, "x")
    n, c, sp = _spatial(X, False, "GlobalAveragePool")
    return _ort.mlas_pool(1, X, n * c, sp, [1] * len(sp), sp, [1] * len(sp), [0] * (2 * len(sp)), [n, c] + [1] * len(sp),
                          _isa(isa))


def global_max_pool_float(x, *, isa=None):
    """ONNX GlobalMaxPool on float32 (MLAS global kernel, MAXPS lanes then std::max over the tail)."""
    X = _float_array(x, "x")
    n, c, sp = _spatial(X, False, "GlobalMaxPool")
    return _ort.mlas_pool(0, X, n * c, sp, [1] * len(sp), sp, [1] * len(sp), [0] * (2 * len(sp)), [n, c] + [1] * len(sp),
                          _isa(isa))


def relu_float(x, *, isa=None):
    """ONNX Relu on float32 as ORT computes it: MAXPS(0, x), so -0 and NaN pass through unchanged."""
    return _ort.float_activation(0, _float_array(x, "x"), 0.0, 0.0, 0.0, _isa(isa))


def clip_float(x, lo=None, hi=None, *, isa=None):
    """ONNX Clip on float32: min(hi, max(lo, x)) in MINPS/MAXPS operand order (NaN and -0 pass through);
    a missing bound is the float lowest / max."""
    lo = np.float32(np.finfo(np.float32).min if lo is None else lo)
    hi = np.float32(np.finfo(np.float32).max if hi is None else hi)
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError("clip bounds must not be NaN")
    return _ort.float_activation(1, _float_array(x, "x"), float(lo), float(hi), 0.0, _isa(isa))


def leaky_relu_float(x, *, alpha=0.01, isa=None):
    """ONNX LeakyRelu on float32: x >= 0 ? x : alpha * x."""
    a = np.float32(alpha)
    if not np.isfinite(a):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return _ort.float_activation(2, _float_array(x, "x"), 0.0, 0.0, float(a), _isa(isa))


def binary_float(op, a, b):
    """ONNX Add/Sub/Mul/Div on float32 with numpy broadcasting: ORT computes each output with the one
    IEEE operation (Eigen, no FMA), which numpy's float32 arithmetic performs identically."""
    A, B = _float_array(a, "a"), _float_array(b, "b")
    fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}.get(op)
    if fn is None:
        raise ValueError(f"op must be Add, Sub, Mul or Div, got {op!r}")
    with np.errstate(all="ignore"):
        return fn(A, B, dtype=np.float32)


# ---- Resize --------------------------------------------------------------------------------------------

_RESIZE_MODES = {"nearest": 0, "linear": 1, "cubic": 2}
_RESIZE_COORDS = {"half_pixel": 0, "asymmetric": 1, "pytorch_half_pixel": 2, "tf_half_pixel_for_nn": 3,
                  "align_corners": 4, "tf_crop_and_resize": 5, "half_pixel_symmetric": 6}
_RESIZE_NEAREST = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3, "simple": 4}


def resize(x, *, scales=None, sizes=None, roi=None, mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=False, extrapolation_value=0.0):
    """ONNX Resize (opset 11..19 attributes, no antialias/axes/keep_aspect_ratio_policy) as ORT's CPU
    kernel (core/providers/cpu/tensor/upsample.cc) computes it on float32, uint8 or int8 data.

    Exactly one of ``scales`` (one float per dimension; output size int64(float32(scale) * in)) or
    ``sizes`` (output shape; scales become float32(out) / float32(in)) is given. ``roi`` (starts then
    ends, 2 * rank floats) is used by tf_crop_and_resize only, which fills outside points with
    ``extrapolation_value`` (cast to the data type as x86-64 GCC code does).

    nearest: data movement with ORT's index rules. linear: 2-D and 4-D NCHW (scales[1] == 1) use the
    4-term float formula (dx2*dy2)*X11 + (dx1*dy2)*X21 + (dx2*dy1)*X12 + (dx1*dy1)*X22 truncated to the
    data type; 4-D NHWC (scales == [1, h, w, 1]) on uint8/int8 uses 10-bit integer weights and an int32
    division by 2^20; 3-D / 5-D take the trilinear 8-term float formula. cubic: float32 only, 2-D or 4-D
    NCHW. ``nearest_mode="simple"`` is opset 10's rule (with coordinate_transformation_mode="asymmetric").
    """
    X = np.asarray(x)
    if X.dtype not in (np.float32, np.uint8, np.int8):
        raise ValueError(f"x must be float32, uint8 or int8, got dtype {X.dtype}")
    if X.ndim < 1:
        raise ValueError("x must have at least one dimension")
    if (scales is None) == (sizes is None):
        raise ValueError("give exactly one of scales and sizes")
    try:
        m = _RESIZE_MODES[mode]
        ct = _RESIZE_COORDS[coordinate_transformation_mode]
        nm = _RESIZE_NEAREST[nearest_mode]
    except KeyError as e:
        raise ValueError(f"unknown Resize attribute value {e.args[0]!r}") from None
    sc = sz = rg = None
    if scales is not None:
        s = np.asarray(scales, dtype=np.float64).reshape(-1)
        if s.size != X.ndim:
            raise ValueError(f"scales must have {X.ndim} values, got {s.size}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"scales must be finite, got {scales!r}")
        sc = [float(v) for v in s.astype(np.float32)]
    else:
        z = np.asarray(sizes).reshape(-1)
        if z.size != X.ndim or z.dtype.kind not in "iu":
            raise ValueError(f"sizes must be {X.ndim} integers, got {sizes!r}")
        sz = [int(v) for v in z]
    if roi is not None:
        r = np.asarray(roi, dtype=np.float32).reshape(-1)
        if r.size != 2 * X.ndim:
            raise ValueError(f"roi must have {2 * X.ndim} values (starts, then ends), got {r.size}")
        rg = [float(v) for v in r]
    a = np.float32(cubic_coeff_a)
    e = np.float32(extrapolation_value)
    if exclude_outside and m != 2:
        raise ValueError("exclude_outside can be set only in cubic mode (as ORT enforces)")
    return _ort.resize(np.ascontiguousarray(X), sc, sz, rg, m, ct, nm, float(a), bool(exclude_outside), float(e))
