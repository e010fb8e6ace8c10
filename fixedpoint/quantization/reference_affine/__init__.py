"""The independent reference path of affine `QuantizedNetwork`s (ONNX Runtime and LiteRT profiles).

`predict_reference(qnet, x, outputs=..., runtime=...)` computes what `qnet.predict` returns, layer by
layer, from nothing but the layers' plain data (integer weights, `QuantParams`, int32 bias, clamps,
the recorded ORT operators, the TFLite operator and activation fields) and the runtime profile's
recipe names. Every formula is written here again from its definition (docs/requantization.md,
docs/runtimes-onnxruntime-*.md, docs/runtimes-litert-*.md and the runtime sources they cite):

* integer accumulations are `fi` arithmetic: stored integers as `fi`, products kept whole and summed
  in a wrapping 32-bit accumulator under an explicit `fimath`;
* MLAS's saturating int16 pair sums (vpmaddubsw) are explicit numpy int64 pair sums of the raw bytes,
  zero points corrected exactly afterwards, with the rule table of which op saturates re-derived
  from docs/runtimes-onnxruntime-accumulation.md (`ort_accumulation_rule`);
* fixed-point requantizers (gemmlowp double rounding, ruy's half-up rounding, TFLite's float-scale
  FC path, XNNPACK's multipliers) are derived with Python integers / `Fraction` and applied with
  numpy int64; float32 formulas (MLAS fp32 requantization, QLinearAdd / QLinearMul, QuantizeLinear,
  XNNPACK fp32) are written with numpy float32 scalars and arrays, an FMA as an exact fused
  multiply-add (`fma32`);
* table-driven ops built from libm functions (LiteRT's LOGISTIC / TANH / SOFTMAX tables, ORT's
  QLinearSoftmax) call the C library's `expf` / `tanhf` / `logf` / `exp` through ctypes, as the
  runtimes do;
* what ORT leaves in float (a QDQ group it does not fuse, every group of the as-written graph, a
  float layer) is MLAS's float kernel written as float32 numpy operations in the kernel's own order:
  SGEMM (FMA3 K loop, M = 1 kernels, K / N blocks, prepacked B), MlasConv's algorithms, the NCHWc
  kernels where ORT's NchwcTransformer rewrites a layer, MlasComputeSoftmax, MlasPool / ORT's
  AveragePool loop, the logistic and tanh polynomials, linear Resize (mlas_float.py, checked bit for bit against onnxruntime by
  tests/test_quant_reference_affine_mlas.py).

Modules: primitives (fixed-point steps, `fma32`, libm, window geometry, data movement, `fi` sums),
boundaries, mlas_float, onnxruntime_ops, litert_ops; this module walks the graph.

Nothing here calls `fixedpoint.kernels` (except `host_ort_profile`, CPU detection for the "host"
accumulation recipe), the affine layer kinds (their `bind`), the float layers' `forward`, the
package's geometry helpers, or the compiled extensions other than the `fi` engine; the shared pieces
are `QuantParams`, the network's graph walk and the runtime profiles (data). A layer whose runtime
arithmetic is not re-derived (a float HardSwish or LRN under ORT, a layer the importer's NCHWc hint
refuses, LiteRT's float kernels, broadcasting LiteRT ADD / SUB / MUL, per-channel activation
parameters, ...) raises `ReferenceNotSupportedError`
naming the layer, the runtime and why, and `reference_coverage` lists it; `outputs=` of the layers
before it still works. The coverage table is docs/reference-affine.md.

    y = predict_reference(qnet, x, runtime="onnxruntime-avx2")            # == qnet.predict(...)
    acts = predict_reference(qnet, x, outputs=names, runtime="litert")    # layer by layer
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...fi import fi
from ...runtime import get_runtime
from ..qparams import QuantParams
from .primitives import F32, ReferenceNotSupportedError, _unsupported
from .boundaries import _zp, dequantize_boundary, dequantize_float32, quantize_boundary
from .mlas_float import _float_function
from .onnxruntime_ops import _ort_layer, ort_nchwc_function
from .litert_ops import _litert_layer
from . import boundaries, litert_ops, mlas_float, onnxruntime_ops, primitives  # noqa: F401
from .primitives import (  # noqa: F401 (the public API)
    INT32_MAX, INT32_MIN, data_movement, explicit_pads, fi_matmul_bias, fi_sum, float32_literal,
    float_to_int32, fma32, left_shift_wrap, linear_sums, max_pool_int, mbqm, mbqm_half_up, pair_sums,
    quantize_multiplier, rdbpot, requantize_fp32, rne, round_half_away, sat, shift_half_up, srdhm,
    window_count, window_output_hw, wrap32)
from .boundaries import (  # noqa: F401 (the public API)
    litert_dequantize, litert_quantize, ort_quantize_linear)
from .mlas_float import (  # noqa: F401 (the public API)
    MLAS_MAXIMUM_THREADS, SGEMM_PACKED_STRIDEK, SGEMM_STRIDEK, SGEMM_STRIDEN, SGEMM_THREAD_ALIGN,
    SGEMM_THREAD_COMPLEXITY, mlas_average_pool, mlas_conv, mlas_gemm, mlas_logistic, mlas_softmax,
    mlas_nchwc_average_pool, mlas_nchwc_conv, mlas_nchwc_global_average_pool, mlas_softmax_rows,
    mlas_sum_exp_values, mlas_tanh, ort_resize_linear, sgemm_fma_block,
    sgemm_m1_kernel, sgemm_m1_transpose_b_kernel, sgemm_operation, sgemm_thread_ranges)
from .onnxruntime_ops import (  # noqa: F401 (the public API)
    NCHWC_BLOCKS, ORT_CONV_OPS, ORT_GEMM_OPS, ORT_ISAS, nchwc_conv_rewritten, ort_accumulation_rule, ort_operator,
    ort_dynamic_quantize_linear, ort_input0_is_scalar, ort_qlinear_add_values, ort_qlinear_mul_values)
from .litert_ops import (  # noqa: F401 (the public API)
    left_shift_sat, tflite_activation_range, xnnpack_activation_range)


# =================================================================================================
# the graph
# =================================================================================================
def _pad(ql, profile):
    """Constant padding: the new elements hold round(value / scale) + zero point (a stored integer)."""
    pad, out = ql.layer, ql.output_params
    fill = int(round(float(pad.value) / float(out.scale[0]) + _zp(out)))

    def run(x):
        y = np.full((x.shape[0],) + tuple(n + b + e for (b, e), n in zip(pad.pads, x.shape[1:])), fill, np.int64)
        y[(slice(None),) + tuple(slice(b, b + n) for (b, _), n in zip(pad.pads, x.shape[1:]))] = x
        return y
    return run


def layer_function(ql, profile):
    """f(*stored int64 arrays) -> stored int64 array: the affine layer `ql` as `profile` runs it."""
    if ql.type_name in ("ReLU", "ClippedReLU") and getattr(ql, "fused", False):
        return lambda x: x                       # the layer before applied it with its requantization
    if ql.type_name == "Pad":                  # every runtime copies the bytes around the zero point
        return _pad(ql, profile)
    if profile.family == "onnxruntime":
        return _ort_layer(ql, profile)
    if profile.family == "litert":
        return _litert_layer(ql, profile)
    raise _unsupported(ql, profile, f"runtime family {profile.family!r} has no reference formulas")


def _hint(qnet, layer):
    """What the importer recorded about ORT's NCHWc rewrite of a float layer, and its opset (or None)."""
    return (qnet.options or {}).get("runtime_float_hints", {}).get(layer.name)


def _conv_bn_folded(conv, bn):
    """ORT's ConvBNFusion (optimizer/conv_bn_fusion.cc), written out: per output channel k,
    g = Scale[k] / sqrt(Var[k] + eps), W[k] * g, (B[k] - Mean[k]) * g + Offset[k], each in float32."""
    folded = conv.copy()
    w = np.array(conv.learnables["Weights"], F32)
    b = conv.learnables.get("Bias")
    bias = np.zeros(w.shape[0], F32)
    for k in range(w.shape[0]):
        g = F32(F32(bn["Scale"][k]) / F32(np.sqrt(F32(F32(bn["TrainedVariance"][k]) + F32(bn["epsilon"])))))
        w[k] = w[k] * g
        mean, offset = F32(bn["TrainedMean"][k]), F32(bn["Offset"][k])
        bias[k] = F32(F32(F32(b[k]) - mean) * g) + offset if b is not None else F32(offset - F32(mean * g))
    folded.learnables["Weights"], folded.learnables["Bias"] = w, bias
    return folded


def float_layer_function(layer, profile, hint=None):
    """A float layer of an affine network: the runtime's float kernel where mlas_float re-derives it
    (MLAS's, Eigen's batch normalization, one-rounding element-wise operators, data movement)."""
    if profile.family == "onnxruntime" and hint and profile.recipe(layer).get("graph") != "as-written":
        if "folded_into" in hint:   # ConvBNFusion: this BatchNormalization lives in the convolution's weights
            return lambda x: np.asarray(x, F32)
        if "fold_batch_norm" in hint:
            layer = _conv_bn_folded(layer, hint["fold_batch_norm"])
    function = _float_function(layer, profile.family, opset=int((hint or {}).get("opset", 13)))
    if profile.family == "onnxruntime":   # Conv / pooling in NCHWc where ORT's NchwcTransformer rewrites them
        function = ort_nchwc_function(layer, profile, hint, True, function)
    if function is None:
        raise ReferenceNotSupportedError(
            f"layer {layer.name!r} ({layer.type_name}) under runtime {profile.name!r}: a float "
            f"{layer.type_name} layer runs the runtime's float kernel, which this reference does not re-derive")
    return function


class _Q:
    """Stored integers (int64) in flight, with their quantization parameters."""

    __slots__ = ("q", "params")

    def __init__(self, q, params):
        self.q, self.params = q, params


def as_fi(q: np.ndarray, params: QuantParams) -> fi:
    """Stored integers as an `fi` of the parameters' exact (slope-bias) numerictype."""
    return fi(int=np.asarray(q, np.int64), numerictype=params.numerictype())


def _profile(qnet, runtime):
    if qnet.scheme != "affine":
        raise ValueError("the affine reference path runs affine networks (ONNXRuntime / LiteRT)")
    profile = get_runtime(qnet.default_runtime if runtime is None else runtime)
    if profile.family != qnet.target.runtime_family:
        raise ValueError(f"runtime {profile.name!r} emulates {profile.family} models; this network is a "
                         f"{qnet.target.runtime_family} network")
    return profile


def predict_reference(qnet, *x: np.ndarray, outputs: str | Sequence[str] | None = None, runtime=None):
    """What `qnet.predict(*x, outputs=outputs, runtime=runtime)` returns for an affine network,
    computed by this module's independent formulas (quantized layers' outputs as `fi`)."""
    profile = _profile(qnet, runtime)
    network = qnet.network
    functions: dict = {}

    def step(layer, *args):
        ql = qnet.qlayers.get(layer.name)
        if ql is None:
            if not layer.input_ports and layer.name in qnet.input_params:
                params = qnet.input_params[layer.name]
                value = np.asarray(args[0])
                if value.dtype != params.dtype:
                    raise ValueError(f"input {layer.name!r} takes {params.dtype} integers, got {value.dtype}")
                return _Q(value.astype(np.int64), params)
            function = functions.get(layer.name)
            if function is None:
                function = functions[layer.name] = float_layer_function(layer, profile, _hint(qnet, layer))
            return function(*[dequantize_boundary(profile, a.q, a.params) if isinstance(a, _Q) else a
                              for a in args])
        function = functions.get(layer.name)
        if function is None:
            function = functions[layer.name] = layer_function(ql, profile)
        stored = []
        for a, p in zip(args, ql.input_params):
            if p is None:   # a float port: the layer quantizes the float value itself (DynamicQuantizeLinear)
                stored.append(dequantize_boundary(profile, a.q, a.params) if isinstance(a, _Q) else a)
            elif isinstance(a, _Q) and a.params == p:
                stored.append(a.q)
            else:   # a float value, or integers of other parameters (DequantizeLinear then QuantizeLinear)
                value = dequantize_float32(a.q, a.params) if isinstance(a, _Q) else a
                stored.append(quantize_boundary(profile, value, p))
        if ql.output_params is None:   # a float output (ConvInteger / MatMulInteger → Cast → Mul, ...)
            return np.asarray(function(*stored), F32)
        return _Q(np.asarray(function(*stored), np.int64), ql.output_params)

    names = [outputs] if isinstance(outputs, str) else outputs
    result = network.run(network._input_dict(x), outputs=names, compute=step)
    if outputs is not None:
        convert = lambda v: as_fi(v.q, v.params) if isinstance(v, _Q) else v  # noqa: E731
    elif qnet.integer_outputs:
        convert = lambda v: v.q.astype(v.params.dtype) if isinstance(v, _Q) else v  # noqa: E731
    else:
        convert = lambda v: dequantize_boundary(profile, v.q, v.params) if isinstance(v, _Q) else v  # noqa: E731
    values = [convert(v) for v in result.values()]
    single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
    return values[0] if single else values


def reference_coverage(qnet, runtime=None) -> dict:
    """{layer name: None if this reference computes the layer under `runtime`, else the reason}
    for every layer the network computes (input layers included); a layer after an unsupported one
    can still be supported itself (`outputs=` of it then fails for its source's reason)."""
    profile = _profile(qnet, runtime)
    coverage = {}
    for layer in qnet.network.layers:
        ql = qnet.qlayers.get(layer.name)
        try:
            if ql is not None:
                layer_function(ql, profile)
            elif layer.input_ports or layer.name not in qnet.input_params:
                float_layer_function(layer, profile, _hint(qnet, layer))
            coverage[layer.name] = None
        except ReferenceNotSupportedError as error:
            coverage[layer.name] = str(error)
    return coverage
