"""ONNX Runtime's integer operators in the affine reference: the MLAS accumulation rule table, QLinearConv
/ QLinearMatMul / QGemm, the float-output integer products (ConvInteger, MatMulInteger,
MatMulIntegerToFloat, DynamicQuantizeMatMul, QGemm without y_scale), QLinearAdd / Mul (broadcasting),
Concat, pooling, LeakyRelu, Sigmoid, Softmax, Clamp, and the DQ -> float operator -> Q route."""
from __future__ import annotations

import numpy as np

from ..layers.ort_graph import DEFAULT_OPS as _ORT_DEFAULT_OPS, GRAPH_FIELDS as _GRAPH_FIELDS
from ..qparams import QuantParams
from .primitives import (
    F32, _EXP, _LOGF, _conv_geometry, _move, _pool_pads, _pool_windows, _unsupported, explicit_pads, fi_sum,
    float_to_int32, fma32, linear_sums, max_pool_int, requantize_fp32, rne, sat)
from .boundaries import _scale, _zp, dequantize_float32, ort_quantize_linear
from .mlas_float import (
    _float_function, mlas_logistic, mlas_nchwc_average_pool, mlas_nchwc_conv, mlas_nchwc_global_average_pool,
    ort_resize_linear)


# =================================================================================================
# ONNX Runtime: which accumulation MLAS uses (docs/runtimes-onnxruntime-accumulation.md, re-derived)
# =================================================================================================
ORT_GEMM_OPS = ("MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
ORT_CONV_OPS = ("ConvInteger", "QLinearConv")
ORT_ISAS = ("avx2", "avx512bw", "vnni", "avx2-precise", "avx512bw-precise")
# session.x64quantprecision converts constant int8 weights of these ops: (domain, SinceVersions)
_PRECISE = {"MatMulInteger": ("", (10,)), "QLinearMatMul": ("", (10,)), "QLinearConv": ("", (10,)),
            "QGemm": ("com.microsoft", (1,)), "MatMulIntegerToFloat": ("com.microsoft", (1,)),
            "DynamicQuantizeMatMul": ("com.microsoft", (1,))}


def ort_accumulation_rule(op, isa, activation_dtype, weight_dtype, weight_zero_point=0, groups=1,
                          in_channels=None, out_channels=None, weight_is_constant=True, domain="",
                          since_version=None) -> tuple:
    """(kind, K order, unsigned operand) of ONNX Runtime 1.32's accumulation for one op, from the
    table of docs/runtimes-onnxruntime-accumulation.md: kind "exact" or "int16_pairs" (MLAS U8S8
    vpmaddubsw), K order None / "hwc" / "chw", the unsigned operand "activation" / "weight".
    Raises ValueError for the combinations ORT cannot run (and for unknown arguments)."""
    if op not in ORT_GEMM_OPS + ORT_CONV_OPS:
        raise ValueError(f"unknown ORT op {op!r}")
    if isa not in ORT_ISAS:
        raise ValueError(f"unknown ORT CPU profile {isa!r}")
    if domain not in ("", "ai.onnx", "com.microsoft"):
        raise ValueError(f"unknown domain {domain!r}")
    domain = "" if domain == "ai.onnx" else domain
    act, wt = (np.dtype(d).name for d in (activation_dtype, weight_dtype))
    if act not in ("uint8", "int8") or wt not in ("uint8", "int8"):
        raise ValueError(f"8-bit operands only, got {act} x {wt}")
    if op == "DynamicQuantizeMatMul" and act != "uint8":
        raise ValueError("DynamicQuantizeMatMul quantizes its activation to uint8")
    if op in ("QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat") and (act, wt) == ("int8", "uint8"):
        raise ValueError(f"no {op} kernel for int8 activations with uint8 weights")
    if isa.endswith("-precise") and wt == "int8" and weight_is_constant and op in _PRECISE:
        want_domain, versions = _PRECISE[op]
        version = versions[0] if since_version is None else int(since_version)
        if domain == want_domain and version in versions:   # the weights become uint8
            if act == "int8" and op != "MatMulInteger":
                raise ValueError(f"{op}: int8 activations with converted uint8 weights have no kernel")
            return ("exact", None, None)
    if isa == "vnni":                                       # vpdpbusd: exact
        return ("exact", None, None)
    if op in ORT_GEMM_OPS:                                  # U8S8 pairs; U8U8, S8S8, S8U8 exact
        return ("int16_pairs", None, "activation") if (act, wt) == ("uint8", "int8") else ("exact", None, None)
    if op == "ConvInteger":                                 # A = weights: s8 x u8 is U8S8
        return ("int16_pairs", "chw", "weight") if (act, wt) == ("int8", "uint8") else ("exact", None, None)
    if (act, wt) == ("uint8", "int8"):                      # QLinearConv
        zp = np.asarray(weight_zero_point).reshape(-1)
        uniform = zp.size == 0 or bool(np.all(zp == zp[0]))
        depthwise = (in_channels is not None and out_channels is not None and groups >= 1
                     and in_channels == groups and out_channels == groups)
        if depthwise and uniform:                           # MlasConvDepthwise: exact
            return ("exact", None, None)
        return ("int16_pairs", "hwc", "activation")
    return ("exact", None, None)


# =================================================================================================
# ONNX Runtime layers (which operator ORT runs for a layer is recorded data, read through the layers'
# tables, GRAPH_FIELDS / DEFAULT_OPS; the reference re-derives the arithmetic only)
# =================================================================================================
_MOVING_OPS = ("Flatten", "Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Resize", "MaxPool",
               "GlobalMaxPool")


def ort_operator(ql, profile) -> str:
    """The operator ORT runs for the layer in the profile's graph ("" = the float operator between
    DequantizeLinear and QuantizeLinear), from the layer's recorded `ort_op*` fields."""
    graph = profile.recipe(ql).get("graph")
    if graph not in _GRAPH_FIELDS:
        raise _unsupported(ql, profile, f"unknown ORT graph {graph!r}")
    op = getattr(ql, _GRAPH_FIELDS[graph], None)
    if op is None and graph == "optimized-precise":
        op = getattr(ql, "ort_op", None)
    if op is None:
        op = _ORT_DEFAULT_OPS.get(ql.type_name, "")
    return str(op)


def _ort_isa(ql, profile) -> str:
    """The MLAS accumulation profile: the recipe's, "host" mapped to this machine's ORT kernels,
    "-precise" dropped when every int8 weight lies in [−64, 64] (ORT then skips the conversion)."""
    isa = profile.recipe(ql).get("accumulation")
    if isa == "host":   # CPU detection is not arithmetic: the one place it lives (csrc/cpu/features.hpp)
        from ...kernels import host_ort_profile
        isa = host_ort_profile() or "avx2"
        isa = "avx2" if isa == "avx512bw" else isa
    if isa not in ("avx2", "avx2-precise", "vnni"):
        raise _unsupported(ql, profile, f"unknown ORT accumulation {isa!r}")
    if isa.endswith("-precise") and ql.weights.dtype == np.int8 and \
            int(np.abs(ql.weights.astype(np.int64)).max(initial=0)) <= 64:
        isa = isa[:-len("-precise")]
    return isa


def _linear_clamp(ql) -> tuple[int, int]:
    c = getattr(ql, "clamp", None)
    out = ql.output_params
    return (out.qmin, out.qmax) if c is None else (int(c[0]), int(c[1]))


_COM_MICROSOFT_OPS = ("QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")


def _ort_layer_accumulation(ql, profile, op: str, activation) -> tuple:
    """`ort_accumulation_rule` for the layer's operator on the profile's CPU; a combination ORT cannot
    run raises ReferenceNotSupportedError (ORT fails to create the session)."""
    groups = getattr(ql.layer, "groups", 1)
    try:
        return ort_accumulation_rule(
            op, _ort_isa(ql, profile), activation, ql.weights.dtype, ql.weight_params.zero_point, groups,
            ql.weights.shape[1] * groups if ql.weights.ndim == 4 else None, ql.weights.shape[0],
            domain="com.microsoft" if op in _COM_MICROSOFT_OPS else "")
    except ValueError as error:
        raise _unsupported(ql, profile, f"ONNX Runtime cannot run {op} here ({error})") from None


def _ort_linear(ql, profile, op: str | None):
    """QLinearConv / QLinearMatMul / QGemm (op None: exact sums, a hand-made "integer" recipe):
    MLAS's accumulation on the profile's CPU, + bias, MlasRequantizeOutput with the float32 scale
    float32(s_x · s_w[c]) / s_y."""
    x_params = ql.input_params[0]
    zx = _zp(x_params)
    flip = False
    accumulation = "exact"
    if op is not None:
        activation = np.dtype(getattr(ql, "ort_activation_dtype", None) or x_params.dtype)
        flip = activation != x_params.dtype
        accumulation = _ort_layer_accumulation(ql, profile, op, activation)[0]
    scale = (F32(_scale(x_params)) * np.asarray(ql.weight_params.scale, F32)).astype(F32) / _scale(ql.output_params)
    lo, hi = _linear_clamp(ql)
    zy = _zp(ql.output_params)
    geometry_of = _conv_geometry if ql.type_name == "Convolution2D" else None

    def run(x):
        if flip:   # ORT's S8 -> U8 conversion: x + 128 as uint8, zero point + 128 (same real values)
            x, z = x + 128, zx + 128
        else:
            z = zx
        geometry = None if geometry_of is None else geometry_of(ql.layer, x.shape, ql.weights.shape)
        acc = linear_sums(x, ql.weights, z, ql.weight_params.zero_point, ql.bias, accumulation, geometry)
        return requantize_fp32(acc, scale, zy, lo, hi)
    return run


def ort_dynamic_quantize_linear(x) -> tuple[np.ndarray, QuantParams]:
    """ONNX DynamicQuantizeLinear over the whole tensor (dynamicquantizelinear.cc, qmath.h
    GetQuantizationParameter; DynamicQuantizeMatMul computes the same): lo = min(min(x), 0),
    hi = max(max(x), 0), scale = hi == lo ? 1 : (hi − lo) / 255 and zero point RoundHalfToEven(clamp(
    0 − lo / scale, 0, 255)) in float32, then MlasQuantizeLinear. (integers, uint8 QuantParams)."""
    x = np.asarray(x, F32)
    if x.size == 0 or np.isnan(x).any():
        raise ValueError("DynamicQuantizeLinear needs a non-empty tensor without NaN (MLAS's min/max of NaN "
                         "depends on its lane order)")
    lo, hi = min(F32(x.min()), F32(0)), max(F32(x.max()), F32(0))
    scale = F32(1) if hi == lo else (hi - lo) / F32(255)
    zero = F32(0) - lo / scale
    zero = int(rne(min(max(zero, F32(0)), F32(255))))
    params = QuantParams(np.uint8, scale, zero)
    return ort_quantize_linear(x, params), params


def _ort_float_ports(ql, profile, op: str):
    """ConvInteger, MatMulInteger, MatMulIntegerToFloat, DynamicQuantizeMatMul and QGemm without
    y_scale (ort_float_ports.py's layers: an input without parameters is quantized by
    DynamicQuantizeLinear over the batch; the output is float32): the operator's accumulation on the
    profile's CPU (+ the int32 bias), y = float32(float32(acc) · m) [+ float_bias] with m =
    output_scale for an integer input, float32(x_scale · output_scale) for a dynamic one (two
    roundings: MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR, or the graph's Cast → Mul → Add)."""
    x_params = ql.input_params[0]
    activation = np.dtype(getattr(ql, "ort_activation_dtype", None)
                          or (x_params.dtype if x_params is not None else np.uint8))
    accumulation, k_order, _ = _ort_layer_accumulation(ql, profile, op, activation)
    scale = np.asarray(ql.output_scale, F32).reshape(-1)
    float_bias = getattr(ql, "float_bias", None)
    conv = ql.type_name == "Convolution2D"
    shape = (1, -1, 1, 1) if conv else (1, -1)

    def run(x):
        if x_params is None:
            q, dynamic = ort_dynamic_quantize_linear(x)
            zx, m = _zp(dynamic), (_scale(dynamic) * scale).astype(F32)
        else:
            q, zx, m = np.asarray(x, np.int64), _zp(x_params), scale
        q = q if conv else q.reshape(q.shape[0], -1)
        geometry = _conv_geometry(ql.layer, q.shape, ql.weights.shape) if conv else None
        acc = linear_sums(q, ql.weights, zx, ql.weight_params.zero_point, ql.bias, accumulation, geometry,
                          k_order or "hwc")
        y = acc.astype(F32) * m.reshape(shape)
        return y if float_bias is None else y + np.asarray(float_bias, F32).reshape(shape)
    return run


def _ort_resize_integers(ql, profile, op: str):
    """A linear Resize ORT runs on the integers (a QOperator model): "ResizeNHWC" between NHWC
    QLinearConvs in the optimized graph (NhwcUpsampleBilinearInteger), "Resize" in NCHW in the
    as-written one (UpsampleBilinear's float formula truncated to the type); the same parameters in
    and out (a nearest Resize moves the integers)."""
    layer = ql.layer
    if any(p != ql.output_params for p in ql.input_params):
        if op == "ResizeNHWC":
            raise _unsupported(ql, profile, "a Resize on integers needs the same quantization on its input and output")
        return _ort_float_route(ql, profile)
    if getattr(layer, "mode", "nearest") == "nearest":
        if op == "ResizeNHWC":
            raise _unsupported(ql, profile, "ONNX Runtime runs a nearest Resize as ResizeNHWC, not re-derived")
        return _move(ql, profile)
    dtype = ql.output_params.dtype
    return lambda q: ort_resize_linear(np.asarray(q).astype(dtype), layer.scale, layer.coordinate_transformation_mode,
                                       integer_nhwc=op == "ResizeNHWC").astype(np.int64)


def _pack_ort(v: np.ndarray, dtype) -> np.ndarray:
    """cvtps2dq (RNE; out of range → INT32_MIN), packssdw (int16 saturation), then packuswb /
    packsswb into the 8-bit type."""
    i = sat(float_to_int32(rne(v)), -32768, 32767)
    info = np.iinfo(dtype)
    return sat(i, info.min, info.max)


def ort_input0_is_scalar(shape0, shape1) -> bool:
    """InputBroadcaster::IsInput0Scalar (element_wise_ops.h Broadcaster): from the innermost
    dimension, the first one either input has > 1 (or the outermost shared one) decides: input 0 is
    the kernel's scalar for every output span when it has 1 there (also when both are 1 everywhere, or
    input 0 is a 0-D scalar)."""
    shape0, shape1 = tuple(shape0), tuple(shape1)
    if not shape0:
        return True
    if not shape1:
        return shape0[-1] <= 1
    common = min(len(shape0), len(shape1))
    for i in range(common):
        a0, a1 = shape0[-1 - i], shape1[-1 - i]
        dim = min(a0, a1) if min(a0, a1) == 0 else max(a0, a1)
        if dim <= 1 and i + 1 < common:
            continue
        return a0 <= 1
    return True


def ort_qlinear_add_values(a, pa: QuantParams, b, pb: QuantParams, pc: QuantParams) -> np.ndarray:
    """com.microsoft QLinearAdd of stored integers (numpy broadcasting) as MLAS's AVX2 kernel
    (qladd_avx2.cpp, FMA contracted) computes it: rA = sA/sC, rB = sB/sC, F = float(zC) − fma(rA, zA,
    rB·zB), c = fma(a, rA, fma(b, rB, F)) (a scalar B folded as fma(b, rB, F) once: the same value),
    packed with saturation. ORT's broadcast loop calls the kernel with the operands swapped when
    input 0 is the span's scalar (qlinear_binary_op.cc: the first functor), which moves the fused
    rounding to the other input."""
    if ort_input0_is_scalar(np.shape(a), np.shape(b)):
        (a, pa), (b, pb) = (b, pb), (a, pa)
    ra, rb = _scale(pa) / _scale(pc), _scale(pb) / _scale(pc)
    f = F32(_zp(pc)) - fma32(ra, F32(_zp(pa)), rb * F32(_zp(pb)))
    a, b = np.asarray(a, np.int64).astype(F32), np.asarray(b, np.int64).astype(F32)
    return _pack_ort(fma32(a, ra, fma32(b, rb, f)), pc.dtype)


def ort_qlinear_mul_values(a, pa: QuantParams, b, pb: QuantParams, pc: QuantParams) -> np.ndarray:
    """com.microsoft QLinearMul of stored integers (numpy broadcasting), MLAS's SSE2 kernel (qlmul.cpp):
    ratio = (sA·sB)/sC, c = float((a − zA)(b − zB)) · ratio + float(zC) (two roundings), packed with
    saturation; symmetric in its operands, so ORT's operand swap changes nothing."""
    ratio = (_scale(pa) * _scale(pb)) / _scale(pc)
    product = ((np.asarray(a, np.int64) - _zp(pa)) * (np.asarray(b, np.int64) - _zp(pb))).astype(F32)
    return _pack_ort(product * ratio + F32(_zp(pc)), pc.dtype)


def _ort_qlinear_add(ql, profile):
    """com.microsoft QLinearAdd of two tensors (`ort_qlinear_add_values`)."""
    (pa, pb), pc = ql.input_params, ql.output_params
    return lambda a, b: ort_qlinear_add_values(a, pa, b, pb, pc)


def _ort_qlinear_mul(ql, profile):
    """com.microsoft QLinearMul of two tensors (`ort_qlinear_mul_values`)."""
    (pa, pb), pc = ql.input_params, ql.output_params
    return lambda a, b: ort_qlinear_mul_values(a, pa, b, pb, pc)


def _ort_qlinear_constant(ql, profile, op: str):
    """QLinearAdd / QLinearMul of the layer's input and a constant operand (the importer's per-channel
    float layer holding `operand`, `operand_params`, `operand_first`: the constant is ORT's input 0),
    the constant in its ONNX shape broadcast against the input as ORT does."""
    c, pcst = np.asarray(ql.operand, np.int64), ql.operand_params
    (px,), py = ql.input_params, ql.output_params
    values = {"QLinearAdd": ort_qlinear_add_values, "QLinearMul": ort_qlinear_mul_values}[op]
    if bool(ql.operand_first):
        return lambda x: values(c, pcst, x, px, py)
    return lambda x: values(x, px, c, pcst, py)


def _ort_qlinear_concat(ql, profile):
    """QLinearConcat (qlinear_concat.cc): an input whose scale and zero point equal the output's is
    copied, others pass a table MlasQuantizeLinear(x_scale · float(x − x_zp))."""
    out, axis = ql.output_params, ql.layer.axis

    def requantized(x, p):
        if float(p.scale[0]) == float(out.scale[0]) and _zp(p) == _zp(out):
            return x
        return ort_quantize_linear(_scale(p) * (x - _zp(p)).astype(F32), out)
    return lambda *xs: np.concatenate([requantized(x, p) for x, p in zip(xs, ql.input_params)], axis=axis)


def _ort_qlinear_global_average_pool(ql, profile):
    """QLinearGlobalAveragePool (qlgavgpool.cpp): the exact int32 sum of x − x_zp per channel,
    then fp32 requantization by x_scale / (y_scale · float(H·W))."""
    (px,), py = ql.input_params, ql.output_params

    def run(x):
        n, c, h, w = x.shape
        total = fi_sum((x - _zp(px)).reshape(n, c, h * w), axis=2).reshape(n, c, 1, 1)
        scale = _scale(px) / (_scale(py) * F32(h * w))
        if h * w >= 1 << 24 or not F32(2.0 ** -32) <= scale < F32(256.0):
            raise ValueError(f"layer {ql.name!r}: QLinearGlobalAveragePool's scale {scale} or image size "
                             f"{h * w} is outside what MLAS computes (ORT rejects it)")
        return requantize_fp32(total, scale, _zp(py), py.qmin, py.qmax)
    return run


def _ort_qlinear_average_pool(ql, profile):
    """com.microsoft QLinearAveragePool (qlinear_pool.cc): each cell dequantized x_scale·float(x −
    zp), the window's valid cells summed in float32 in index order, divided by the kernel size
    (count_include_pad) or the valid count, q = clamp(nearbyintf(avg / y_scale + y_zp)). A kernel
    covering the whole image without padding runs as QLinearGlobalAveragePool."""
    pool = ql.layer
    (px,), py = ql.input_params, ql.output_params
    global_pool = _ort_qlinear_global_average_pool(ql, profile)

    def run(x):
        pads = _pool_pads(pool, x.shape)
        if tuple(pool.pool_size) == tuple(x.shape[2:]) and not any(pads):
            return global_pool(x)
        windows, inside = _pool_windows(x, pool.pool_size, pool.stride, pads, pool.ceil_mode, fill=_zp(px))
        cells = _scale(px) * (windows - _zp(px)).astype(F32)
        total = np.zeros(windows.shape[:-1], F32)
        for t in range(windows.shape[-1]):          # in index order, float32 sums
            total = np.where(inside[..., t], total + cells[..., t], total)
        if pool.count_include_pad:
            count = F32(pool.pool_size[0] * pool.pool_size[1])
        else:
            count = inside.sum(-1).astype(F32)
        v = rne((total / count) / _scale(py) + F32(_zp(py)))
        return sat(float_to_int32(v), py.qmin, py.qmax)
    return run


def _ort_leaky_relu(ql, profile):
    """QLinearLeakyRelu (qlinear_lookup_table.cc): a 256-entry table of MlasQuantizeLinear(f(x_scale ·
    float(i − zp))), f(v) = v ≥ 0 ? v : alpha · v in float32."""
    (px,), py = ql.input_params, ql.output_params
    alpha = F32(ql.layer.scale)
    info = np.iinfo(px.dtype)
    values = np.arange(info.min, info.max + 1)
    v = _scale(px) * (values - _zp(px)).astype(F32)
    table = ort_quantize_linear(np.where(v >= 0, v, alpha * v), py)
    return lambda x: table[x - info.min]


def _ort_qlinear_softmax(ql, profile):
    """com.microsoft QLinearSoftmax (qlinear_softmax.cc, as ORT 1.32 computes it): shift =
    max(0, logf(FLT_MAX / float(D)) − 5) / x_scale in double, e(k) = float(exp((k − 255 + shift) ·
    x_scale)) for k = x − max + 255, the row sum in float32 in order, then
    q = nearbyint(double(e) · double(floorf(1 / y_scale)) / double(sum)) + y_zp, clamped at the top
    (255 for uint8, 127 for int8). The quotient in double is measured, not read: it is the only
    formula among float (e / sum)·ys, (e·ys) / sum, e·(ys / sum) and this one that equals ORT on
    every row where they differ (tests/test_quant_reference_affine.py)."""
    (px,), py = ql.input_params, ql.output_params
    axis, opset = ql.layer.axis, int(getattr(ql, "ort_opset", 13))
    xs = float(_scale(px))
    y_scale = float(np.floor(F32(1.0) / _scale(py)))

    def run(x):
        ax = axis % x.ndim
        if opset < 13:
            rows = x.reshape(int(np.prod(x.shape[:ax])), -1)
        else:
            rows = np.moveaxis(x, ax, -1)
            moved = rows.shape
            rows = rows.reshape(-1, rows.shape[-1])
        d = rows.shape[1]
        shift = float(_LOGF(float(F32(np.finfo(F32).max) / F32(d))))
        shift = max(0.0, shift - 5.0) / xs
        table = np.array([_EXP((k - 255 + shift) * xs) for k in range(256)], np.float64).astype(F32)
        e = table[rows - rows.max(axis=1, keepdims=True) + 255]
        total = np.zeros(rows.shape[0], F32)
        for j in range(d):
            total = total + e[:, j]
        quotient = (e.astype(np.float64) * y_scale) / total.astype(np.float64)[:, None]
        q = rne(quotient).astype(np.int64) + _zp(py)
        q = np.minimum(q, 255 if py.dtype == np.uint8 else 127)
        if opset < 13:
            return q.reshape(x.shape)
        return np.moveaxis(q.reshape(moved), -1, ax)
    return run


def _ort_clamp(ql, profile):
    """A ReLU / Clip moved after its QuantizeLinear: clamp to [Q(0), Q(ceiling)] (Q monotone)."""
    out = ql.output_params
    ceiling = getattr(ql.layer, "ceiling", None)
    lo = int(ort_quantize_linear(np.zeros(1, F32), out)[0])
    hi = out.qmax if ceiling is None else int(ort_quantize_linear(np.array([ceiling], F32), out)[0])
    return lambda x: np.minimum(np.maximum(x, lo), hi)


def _ort_qlinear_sigmoid(ql, profile):
    """QLinearSigmoid (qlinear_lookup_table.cc): a 256-entry table of MlasQuantizeLinear(
    MlasComputeLogistic(x_scale · float(i − zp)))."""
    (px,), py = ql.input_params, ql.output_params
    info = np.iinfo(px.dtype)
    v = _scale(px) * (np.arange(info.min, info.max + 1) - _zp(px)).astype(F32)
    table = ort_quantize_linear(mlas_logistic(v), py)
    return lambda x: table[x - info.min]


NCHWC_BLOCKS = {"nchwc8": 8, "nchwc16": 16}   # MlasNchwcGetBlockSize(): AVX2 + FMA3, AVX-512F


def nchwc_conv_rewritten(w_shape, groups: int, block: int) -> bool:
    """Whether ORT's NchwcTransformer (optimizer/nchwc_transformer.cc, TransformConv) rewrites a float
    Conv with constant float weights of this OIHW shape to NCHWc: group 1 with fewer input channels
    than the block or a multiple of 4; depthwise with a group count that is a multiple of 4; other
    groups with input and output channels per group that are multiples of the block
    (docs/runtimes-onnxruntime-ops.md, measured there with block 8)."""
    m, c = int(w_shape[0]), int(w_shape[1])
    if len(w_shape) != 4 or m % groups:
        return False
    if groups == 1:
        return c < block or c % 4 == 0
    if c == 1 and m == groups:
        return groups % 4 == 0
    return c % block == 0 and (m // groups) % block == 0


def ort_nchwc_function(layer, profile, hint, constant_weights: bool, nchw_function):
    """The float Conv / AveragePool / GlobalAveragePool as ORT runs it under `profile`: where the recipe's
    "float-layout" is NCHWc ("nchwc8" / "nchwc16") and ORT's NchwcTransformer (optimizer/
    nchwc_transformer.cc) rewrites the layer, MLAS's NCHWc kernel (`mlas_nchwc_conv`,
    `mlas_nchwc_average_pool`, `mlas_nchwc_global_average_pool`), else `nchw_function`. The rewrite: a
    Conv with constant float weights of a shape `nchwc_conv_rewritten` accepts; an AveragePool whose
    channel count is a multiple of the block, unless it has both count_include_pad and ceil_mode; a
    GlobalAveragePool only where the importer's hint says "nchwc" (after a graph input or an NCHWc
    output) and the channels are a multiple of the block. `hint`: the importer's {"8" | "16": "nchw" |
    "nchwc" | "refuse: ..."}; "refuse" raises ReferenceNotSupportedError (the rewrite folds something
    not emulated, e.g. an Add into the convolution). `constant_weights`: False between DQ and Q."""
    t = layer.type_name
    if t not in ("Convolution2D", "AveragePooling2D", "GlobalAveragePooling2D") or nchw_function is None:
        return nchw_function
    layout = profile.recipe(layer).get("float-layout", "nchw")
    if layout == "nchw":
        return nchw_function
    if layout not in NCHWC_BLOCKS:
        raise _unsupported(layer, profile, f"float-layout {layout!r} is not re-derived")
    block = NCHWC_BLOCKS[layout]
    note = (hint or {}).get(str(block))
    if isinstance(note, str) and note.startswith("refuse:"):
        raise _unsupported(layer, profile, f"ONNX Runtime's {note[len('refuse:'):].strip()} (not emulated)")
    if note == "nchw":
        return nchw_function
    if t == "Convolution2D":
        w = np.asarray(layer.learnables["Weights"], F32)
        if not (constant_weights and nchwc_conv_rewritten(w.shape, layer.groups, block)):
            return nchw_function
        b = layer.learnables.get("Bias")

        def conv(x):
            pads = explicit_pads(layer.padding, x.shape[2:], w.shape[2:], layer.stride, layer.dilation)
            return mlas_nchwc_conv(x, w, b, layer.stride, pads, layer.dilation, layer.groups, block)
        return conv
    if t == "AveragePooling2D":
        if layer.count_include_pad and layer.ceil_mode:
            return nchw_function

        def average_pool(x):
            if np.shape(x)[1] % block:
                return nchw_function(x)
            return mlas_nchwc_average_pool(x, layer.pool_size, layer.stride, _pool_pads(layer, np.shape(x)),
                                           layer.count_include_pad, layer.ceil_mode)
        return average_pool
    if note != "nchwc":
        return nchw_function
    return lambda x: nchw_function(x) if np.shape(x)[1] % block else mlas_nchwc_global_average_pool(x)


def _ort_float_route(ql, profile):
    """DequantizeLinear of each input, the float operator, QuantizeLinear of the output: ORT's QDQ
    group left unfused (and every group of the as-written graph)."""
    graph = profile.recipe(ql).get("graph")
    bias = getattr(ql, "ort_float_bias", None) if graph != "as-written" else None
    # the weights of a QDQ group reach ORT's Gemm through a DequantizeLinear: a run-time B, not prepacked
    function = _float_function(ql.layer, "onnxruntime", packed_b=False, bias=bias,
                               opset=int(getattr(ql, "ort_opset", 13)))
    if function is None:
        raise _unsupported(ql, profile, f"ONNX Runtime runs the float {ql.type_name} operator between "
                                        f"DequantizeLinear and QuantizeLinear on MLAS's float kernel, whose "
                                        f"summation order / polynomial this reference does not re-derive")
    if graph != "as-written":   # pooling between DQ and Q may run in NCHWc (a DQ'd Conv never does)
        function = ort_nchwc_function(ql.layer, profile, getattr(ql, "ort_nchwc", None), False, function)
    inputs, out = ql.input_params, ql.output_params
    return lambda *qs: ort_quantize_linear(function(*[dequantize_float32(q, p) for q, p in zip(qs, inputs)]), out)


def _ort_layer(ql, profile):
    recipe = profile.recipe(ql)
    compute = recipe.get("compute")
    t = ql.type_name
    if compute == "integer" and t in ("Convolution2D", "FullyConnected"):
        if recipe.get("requantization") != "onnxruntime" or recipe.get("accumulation") != "exact":
            raise _unsupported(ql, profile, f"recipe {dict(recipe)} is not re-derived")
        return _ort_linear(ql, profile, None)
    if compute != "ort-graph":
        raise _unsupported(ql, profile, f"recipe compute={compute!r} is not re-derived")
    if recipe.get("float") not in (None, "mlas"):
        raise _unsupported(ql, profile, f"float kernels {recipe.get('float')!r} are not re-derived")
    op = ort_operator(ql, profile)
    if op == "":
        return _ort_float_route(ql, profile)
    if t in ("Convolution2D", "FullyConnected") and getattr(ql, "operand", None) is not None:
        if op not in ("QLinearAdd", "QLinearMul"):
            raise _unsupported(ql, profile, f"ONNX Runtime runs a constant operand's layer as {op}")
        return _ort_qlinear_constant(ql, profile, op)
    if t in ("Convolution2D", "FullyConnected") and (ql.input_params[0] is None or ql.output_params is None):
        ports = ("ConvInteger",) if t == "Convolution2D" else \
            ("MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm")
        if op not in ports:
            raise _unsupported(ql, profile, f"ONNX Runtime runs a layer with a float port as {op}")
        return _ort_float_ports(ql, profile, op)
    if t in ("Convolution2D", "FullyConnected"):
        if op not in (("QLinearConv",) if t == "Convolution2D" else ("QLinearMatMul", "QGemm")):
            raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}")
        if recipe.get("requantization") != "onnxruntime":
            raise _unsupported(ql, profile, f"requantization {recipe.get('requantization')!r} is not re-derived")
        return _ort_linear(ql, profile, op)
    if t == "Resize2D" and op in ("Resize", "ResizeNHWC"):
        return _ort_resize_integers(ql, profile, op)
    if t in ("MaxPooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Transpose", "Identity", "Dropout",
             "Resize2D"):
        if op not in _MOVING_OPS:
            raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}, not re-derived for {t} layers")
        if any(p != ql.output_params for p in ql.input_params):   # DQ/Q kept: the float operator
            return _ort_float_route(ql, profile)
        if t in ("MaxPooling2D", "GlobalMaxPooling2D"):
            return lambda q: max_pool_int(ql.layer, q)
        return _move(ql, profile)
    if t in ("ReLU", "ClippedReLU") and op == "Clamp":
        if ql.input_params[0] != ql.output_params:
            return _ort_float_route(ql, profile)
        return _ort_clamp(ql, profile)
    table = {("Addition", "QLinearAdd"): _ort_qlinear_add, ("Multiplication", "QLinearMul"): _ort_qlinear_mul,
             ("Concatenation", "QLinearConcat"): _ort_qlinear_concat,
             ("AveragePooling2D", "QLinearAveragePool"): _ort_qlinear_average_pool,
             ("GlobalAveragePooling2D", "QLinearGlobalAveragePool"): _ort_qlinear_global_average_pool,
             ("LeakyReLU", "QLinearLeakyRelu"): _ort_leaky_relu, ("Softmax", "QLinearSoftmax"): _ort_qlinear_softmax,
             ("Sigmoid", "QLinearSigmoid"): _ort_qlinear_sigmoid}
    make = table.get((t, op))
    if make is None:
        raise _unsupported(ql, profile, f"ONNX Runtime runs it as {op}, not re-derived for {t} layers")
    return make(ql, profile)
