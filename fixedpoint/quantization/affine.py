"""Affine quantization for the ONNXRuntime and LiteRT environments: what each runtime's own
quantizer makes of a calibrated network.

Two sets of formulas, each following one tool (docs/quantization.md, "ONNXRuntime" and "LiteRT"):

* "onnxruntime": `onnxruntime.quantization.quantize_static` (QDQ format) — quant_utils.py
  compute_scale_zp (activations asymmetric from [min, max], weights symmetric in [-127, 127]),
  quantize_nparray (float32 division, round half to even), base_quantizer.py
  quantize_bias_static_impl (int32 bias = round(b / float32(s_x·s_w)) in float64, half to even) and
  qdq_quantizer.py _adjust_weight_scale_for_int32_bias.
* "tflite": the TFLite converter's post-training quantizer, which runs with legacy float scales
  (tensorflow/compiler/mlir/quantization/common/quantization_lib/quantization_utils.cc
  ExpandVerySmallRange, DownCastScale, ExtractMinMaxFromAttr, GetUniformQuantizedTypeForBias,
  QuantizeLegacy; tensorflow/compiler/mlir/tools/optimize/quantization_utils.cc
  SymmetricPerChannelQuantizeValues, SymmetricBiasQuantize): float32 scales, zero points nudged
  into the type and rounded half away from zero, weights in [-127, 127].

`build_affine_network` walks the prepared network with the environment's rules
(`TargetProfile.affine_layers`) and returns the `QuantizedNetwork` of AffineLayers that the
runtime profiles compute.
"""
from __future__ import annotations

import numpy as np

from .qparams import QuantParams

INT32_MAX = np.iinfo(np.int32).max


# --- onnxruntime.quantization (quantize_static) ------------------------------------------------------

def ort_range_params(rmin, rmax, dtype, symmetric: bool = False, reduce_range: bool = False) -> QuantParams:
    """Scale and zero point of quant_utils.py compute_scale_zp for a float32 range [rmin, rmax] and
    the integer range get_qmin_qmax_for_qType gives `dtype`: the range is widened to hold 0,
    scale = float32((rmax − rmin) / (qmax − qmin)) formed in float64, zero point =
    round_half_even(qmin − rmin / scale) (float64, with the float64 scale); symmetric ranges become
    [−absmax, absmax] with the zero point the middle of the range; a scale below float32's smallest
    normal becomes 1 with zero point 0."""
    dtype = np.dtype(dtype)
    if reduce_range:
        qmin, qmax = {np.dtype(np.int8): (-64, 64), np.dtype(np.uint8): (0, 127)}[dtype]
    elif symmetric and dtype == np.int8:
        qmin, qmax = -127, 127
    else:
        info = np.iinfo(dtype)
        qmin, qmax = int(info.min), int(info.max)
    rmin = min(np.float32(rmin), np.float32(0))
    rmax = max(np.float32(rmax), np.float32(0))
    if symmetric:
        absmax = max(abs(rmin), abs(rmax))
        rmin, rmax = -absmax, absmax
    scale = (np.float64(rmax) - np.float64(rmin)) / (np.float64(qmax) - np.float64(qmin))
    if scale < np.finfo(np.float32).tiny:
        return QuantParams(dtype, 1.0, 0)
    if symmetric:
        zero = np.round((qmin + qmax) / np.float64(2.0))
    else:
        zero = np.round(np.float64(qmin) - np.float64(rmin) / scale)
    return QuantParams(dtype, np.float32(scale), int(zero))


def ort_quantize_values(values: np.ndarray, scale: np.ndarray, zero_point, dtype, axis=0) -> np.ndarray:
    """quant_utils.py quantize_nparray, per channel along `axis` when `scale` has one entry per
    channel: round_half_even(float32(x) / float32 scale) + zero point, saturated to `dtype`."""
    values = np.asarray(values, np.float32)
    scale = np.asarray(scale, np.float32).reshape(-1)
    zero = np.asarray(zero_point, np.float32).reshape(-1)
    shape = [1] * values.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    q = np.round(values / scale.reshape(shape)) + zero.reshape(shape)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def _weight_ranges(weights: np.ndarray, per_channel: bool):
    """(min, max) per output channel (axis 0) or of the whole tensor, as float32."""
    w = np.asarray(weights, np.float32)
    if per_channel:
        flat = w.reshape(w.shape[0], -1)
        return flat.min(axis=1), flat.max(axis=1)
    return np.array([w.min()]), np.array([w.max()])


def ort_weight_params(weights: np.ndarray, per_channel: bool, reduce_range: bool = False) -> QuantParams:
    """Symmetric int8 weight parameters (qdq_quantizer.py _calc_initializer_quant_params: per output
    channel along axis 0, or per tensor; [-127, 127], or [-64, 64] with reduce_range)."""
    lows, highs = _weight_ranges(weights, per_channel)
    params = [ort_range_params(lo, hi, np.int8, symmetric=True, reduce_range=reduce_range)
              for lo, hi in zip(lows, highs)]
    scales = np.array([float(p.scale[0]) for p in params], np.float32)
    zeros = np.array([int(p.zero_point[0]) for p in params], np.int64)
    return QuantParams(np.int8, scales, zeros, 0 if per_channel else None)


def ort_adjust_weight_scale(input_scale, weight_params: QuantParams, bias: np.ndarray) -> QuantParams:
    """qdq_quantizer.py _adjust_weight_scale_for_int32_bias: where s_x·s_w (float64) is too small for
    the bias to fit int32 with a 1.0001 margin, s_w grows by the ratio, in float64, rounded to float32
    (per tensor: for the largest |bias|, zero included, all in float64; per channel: for each
    channel's |bias|, whose margin ORT forms in float32 — numpy 2's rules for a float32 bias times
    Python floats)."""
    if np.any(weight_params.zero_point != 0):
        return weight_params
    bias = np.asarray(bias, np.float32).reshape(-1)
    qrange = np.float64(INT32_MAX) - np.float64(-INT32_MAX)
    sx = np.float64(np.float32(input_scale))
    scales = weight_params.scale.astype(np.float32).copy()
    if weight_params.per_channel:   # numpy 2 keeps |b|, 2·|b| and 1.0001·2·|b| in float32 here
        needed = [np.float64(np.float32(1.0001) * (np.float32(2.0) * np.abs(b))) / qrange for b in bias]
    else:
        absmax = max(abs(min(np.float64(bias.min(initial=0)), 0.0)), abs(max(np.float64(bias.max(initial=0)), 0.0)))
        needed = [1.0001 * (2.0 * absmax) / qrange]
    changed = False
    for c, smallest in enumerate(needed):
        sw = np.float64(scales[c])
        candidate = sx * sw
        if 0.0 < candidate < smallest:
            scales[c] = np.float32(sw * (smallest / candidate))
            changed = True
    if not changed:
        return weight_params
    return QuantParams(np.int8, scales, weight_params.zero_point, weight_params.axis)


def ort_bias(bias: np.ndarray, input_scale, weight_params: QuantParams) -> np.ndarray:
    """base_quantizer.py quantize_bias_static_impl: bias scale = float32(s_x)·float32(s_w) in float32;
    int32 = round_half_even(float64(b) / float64(bias scale)), saturated to int32."""
    scale = np.float32(input_scale) * weight_params.scale.astype(np.float32)
    q = np.round(np.asarray(bias, np.float32).astype(np.float64) / scale.astype(np.float64))
    return np.clip(q, np.iinfo(np.int32).min, INT32_MAX).astype(np.int32)


def ort_bias_scale(input_scale, weight_params: QuantParams) -> np.ndarray:
    """The float32 scale of the bias's DequantizeLinear (float32 s_x·s_w)."""
    return np.float32(input_scale) * weight_params.scale.astype(np.float32)


def ort_weights(weights, bias, input_scale, per_channel: bool, reduce_range: bool = False):
    """(int8 weights, their QuantParams, int32 bias) as quantize_static makes them."""
    params = ort_weight_params(weights, per_channel, reduce_range)
    if bias is not None:
        params = ort_adjust_weight_scale(input_scale, params, bias)
    q = ort_quantize_values(weights, params.scale, params.zero_point, np.int8)
    b = np.zeros(q.shape[0], np.int32) if bias is None else ort_bias(bias, input_scale, params)
    return q, params, b


# --- the TFLite converter --------------------------------------------------------------------------

NEAR_ZERO_TOLERANCE = 1.0e-6


def tflite_range_params(rmin, rmax, dtype=np.int8) -> QuantParams:
    """Activation parameters of the TFLite converter for a calibrated float32 range: the range is
    widened to hold 0 (prepare_quantize_helper ConvertStatsToQDQs), a range narrower than 1e-6 is
    widened to ±5e-7 (ExpandVerySmallRange), then with legacy float scales (DownCastScale):
    scale = float32(float32(max) − float32(min)) / 255 in float32, zero point from the minimum
    float32(qmin − min / scale) nudged into [qmin, qmax] and rounded half away from zero."""
    dtype = np.dtype(dtype)
    if dtype != np.int8:
        raise ValueError(f"the TFLite converter quantizes activations to int8, not {dtype}")
    lo = min(float(np.float32(rmin)), 0.0)
    hi = max(float(np.float32(rmax)), 0.0)
    if not hi - lo > NEAR_ZERO_TOLERANCE:
        lo, hi = min(lo, -NEAR_ZERO_TOLERANCE / 2), max(hi, NEAR_ZERO_TOLERANCE / 2)
    qmin, qmax = -128, 127
    scale = np.float32(np.float32(hi) - np.float32(lo)) / np.float32(qmax - qmin)
    zero_from_min = np.float32(qmin - lo / np.float64(scale))
    if zero_from_min < qmin:
        zero = qmin
    elif zero_from_min > qmax:
        zero = qmax
    else:
        zero = int(round_half_away(zero_from_min))
    return QuantParams(dtype, scale, zero)


def _tflite_weight_scales(absmax: np.ndarray) -> np.ndarray:
    """Scales of symmetric [-absmax, absmax] ranges: ExpandVerySmallRange (ranges up to 1e-6 wide
    become at least ±5e-7), then DownCastScale's float32(float32(max) − float32(min)) / 254."""
    lo, hi = -absmax.astype(np.float64), absmax.astype(np.float64)
    small = ~(hi - lo > NEAR_ZERO_TOLERANCE)
    lo = np.where(small, np.minimum(lo, -NEAR_ZERO_TOLERANCE / 2), lo)
    hi = np.where(small, np.maximum(hi, NEAR_ZERO_TOLERANCE / 2), hi)
    return ((hi.astype(np.float32) - lo.astype(np.float32)) / np.float32(254)).astype(np.float32)


def tflite_weights(weights, bias, input_scale, per_channel: bool):
    """(int8 weights, their QuantParams, int32 bias) as the converter makes them (QuantizeLegacy):
    symmetric in [-127, 127] per output channel or per tensor, scale float32(2·absmax) / 254 in
    float32 (`_tflite_weight_scales`); per channel w → round_half_away(float32(w · float32(1 /
    scale))) (SymmetricPerChannelQuantizeValues), per tensor round_half_away(float32(w ·
    float32(127 / absmax))) (PortableSymmetricQuantizeFloats), clamped to ±127; bias scale
    float32(s_x·s_w), bias round_half_away(float32(b · float32(1 / bias scale))) clamped to
    ±(2^31 − 1) (SymmetricBiasQuantize)."""
    w = np.asarray(weights, np.float32)
    lows, highs = _weight_ranges(w, per_channel)
    absmax = np.maximum(-np.minimum(lows, 0), np.maximum(highs, 0)).astype(np.float32)
    scales = _tflite_weight_scales(absmax)
    if per_channel:
        inverse = (1.0 / scales.astype(np.float64)).astype(np.float32)
    else:   # an all-zero tensor quantizes to zeros
        inverse = np.where(absmax == 0, np.float32(0),
                           np.float32(127) / np.where(absmax == 0, np.float32(1), absmax)).astype(np.float32)
    shape = (-1,) + (1,) * (w.ndim - 1)
    products = (w * inverse.reshape(shape)).astype(np.float32)
    q = np.clip(round_half_away(products), -127, 127).astype(np.int8)
    params = QuantParams(np.int8, scales, 0, 0 if per_channel else None)
    channels = w.shape[0]
    if bias is None:
        return q, params, np.zeros(channels, np.int32)
    bias_scale = tflite_bias_scale(input_scale, params, channels)
    bias_inverse = np.where(bias_scale == 0, np.float32(0),
                            (1.0 / bias_scale.astype(np.float64)).astype(np.float32)).astype(np.float32)
    values = (np.asarray(bias, np.float32).reshape(-1) * bias_inverse).astype(np.float32)
    b = np.clip(round_half_away(values), -INT32_MAX, INT32_MAX).astype(np.int32)
    return q, params, b


def tflite_bias_scale(input_scale, weight_params: QuantParams, channels: int) -> np.ndarray:
    """GetUniformQuantizedTypeForBias with legacy float scales: float32(s_x · s_w) per channel."""
    scales = np.broadcast_to(weight_params.scale.astype(np.float64), (channels,))
    return (np.float64(np.float32(input_scale)) * scales).astype(np.float32)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round of float32 or float64 values: nearest integer, ties away from zero (in float64,
    where |x| + 0.5 is exact for every float32 and every float64 below 2^52)."""
    x = np.asarray(x, np.float64)
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


# the formulas of each quantizer, by `TargetProfile.quantizer`
def _ort_weights(weights, bias, input_scale, per_channel, options):
    return ort_weights(weights, bias, input_scale, per_channel, options.get("reduce_range", False))


def _tflite_weights(weights, bias, input_scale, per_channel, options):
    return tflite_weights(weights, bias, input_scale, per_channel)


QUANTIZERS = {
    "onnxruntime": {"range": lambda lo, hi, dtype: ort_range_params(lo, hi, dtype),
                    "weights": _ort_weights, "bias_scale": ort_bias_scale},
    "tflite": {"range": lambda lo, hi, dtype: tflite_range_params(lo, hi, dtype),
               "weights": _tflite_weights,
               "bias_scale": lambda sx, wp: tflite_bias_scale(sx, wp, wp.scale.size)},
}


# --- the network -----------------------------------------------------------------------------------

class AffinePlan:
    """Which calibrated range decides each tensor's parameters, and which activations fuse.

    `range_of[t]`: the layer whose calibrated range gives tensor `t` its parameters (itself unless a
    rule hands it over); `fused[p]`: the ReLU / clipped ReLU fused into producer `p` (TFLite)."""

    def __init__(self, net, target, skip):
        self.range_of: dict[str, str] = {}
        self.fused: dict[str, str] = {}
        rules = target.affine_layers
        consumers = net.layer_consumers
        outputs = set(net.output_names)

        def sole_reader(name):
            readers = consumers(name)
            return readers[0] if len(readers) == 1 and name not in outputs else None

        for layer in net.layers:
            name = layer.name
            if name in skip or rules.get(layer.type_name) != "activation":
                continue
            source = net.layer_inputs(name)[0]
            if sole_reader(source) != name or source in skip:
                continue
            producer = net.layer(source).type_name
            if target.fused_activation_producers:   # TFLite: fused into CONV_2D, ADD, ... (RELU, RELU6)
                if producer in target.fused_activation_producers and getattr(layer, "ceiling", 6.0) == 6.0:
                    self.fused[source] = name
                    self.range_of[source] = name
            else:   # quantize_static: the activation's range goes to its input (adjust_tensor_ranges)
                self.range_of[source] = name
        # TFLite: a convolution / fully connected operand read only by an ADD takes its parameters
        for layer in net.layers:
            if layer.name in skip or layer.type_name not in target.adopting_consumers:
                continue
            for source in net.layer_inputs(layer.name):
                producer = source
                if source in self.fused.values():
                    producer = net.layer_inputs(source)[0]
                if (sole_reader(source) == layer.name and producer not in skip
                        and rules.get(net.layer(producer).type_name) == "learnable"):
                    self.range_of[producer] = layer.name


def build_affine_network(net, statistics, target, *, skip=frozenset(), per_channel=True,
                         activation_dtype=None, options=None):
    """The QuantizedNetwork of AffineLayers the environment `target` makes of the prepared float
    network `net` with calibration `statistics` ({(layer, "Activations"): TensorStatistics})."""
    from .layers import AffineLayer
    from .qnetwork import QuantizedNetwork

    options = dict(options or {})
    formulas = QUANTIZERS[target.quantizer]
    dtype = np.dtype(activation_dtype or target.activation_dtypes[0])
    plan = AffinePlan(net, target, skip)
    rules = target.affine_layers

    def range_params(name):
        stats = statistics[(plan.range_of.get(name, name), "Activations")]
        if not np.isfinite(stats.min_value) or not np.isfinite(stats.max_value):
            raise ValueError(f"layer {name!r}: calibrated range [{stats.min_value}, {stats.max_value}] "
                             f"is not finite; its parameters cannot be chosen")
        return formulas["range"](stats.min_value, stats.max_value, dtype)

    qlayers: dict[str, AffineLayer] = {}
    float_params: dict[str, object] = {}   # float tensors quantized where a quantized layer reads them

    def tensor_params(name):
        if name in qlayers:
            return qlayers[name].output_params
        if name not in float_params:
            float_params[name] = range_params(name)
        return float_params[name]

    replaced = {}   # quantized learnable layers: float copies holding the dequantized values
    for layer in net.layers:
        name, type_name = layer.name, layer.type_name
        rule = rules.get(type_name)
        if name in skip or name in net.input_names or rule is None:
            continue
        sources = net.layer_inputs(name)
        quantized_inputs = all(s in qlayers for s in sources)
        data = {}
        if rule == "input" and not quantized_inputs and target.float_fallback:
            continue   # quantize_static quantizes these only when their input is quantized
        if rule == "activation":
            source = sources[0]
            if plan.fused.get(source) == name:      # TFLite fused activation: the producer clamps
                params = qlayers[source].output_params
                qlayers[name] = AffineLayer(layer, [params], params, fused=True)
                continue
            if plan.range_of.get(source) == name and source in qlayers and target.float_fallback:
                params = qlayers[source].output_params   # removed by quantize_static: a no-op clamp
                qlayers[name] = AffineLayer(layer, [params], params)
                continue
            if not quantized_inputs and target.float_fallback:
                continue   # QDQRemovableActivation keeps an activation of a float tensor in float
        in_params = [tensor_params(s) for s in sources]
        if rule == "input":
            out_params = in_params[0]
        elif rule == "fixed":
            kind, *values = target.fixed_outputs[type_name]
            if kind == "range":
                out_params = formulas["range"](values[0], values[1], dtype)
            else:
                out_params = QuantParams(dtype, values[0], values[1])
        else:
            out_params = range_params(name)
        if rule == "learnable":
            q, wp, bias = formulas["weights"](layer.weights, layer.learnables.get("Bias"),
                                              in_params[0].scale[0], per_channel, options)
            data = {"weights": q, "weight_params": wp, "bias": bias}
            bias_scale = formulas["bias_scale"](in_params[0].scale[0], wp)
            replaced[name] = _dequantized_copy(layer, q, wp, bias, bias_scale)
        if target.quantizer == "tflite":
            data.update(_tflite_data(net, layer, plan, name))
        qlayers[name] = AffineLayer(replaced.get(name, layer), in_params, out_params, **data)
    network = net
    for name, copy in replaced.items():
        network = network.replace_layer(name, copy)
    if replaced:   # the AffineLayers hold the layers of the network they belong to
        qlayers = {name: AffineLayer(network.layer(name), ql.input_params, ql.output_params, **ql.data)
                   for name, ql in qlayers.items()}
    activation = {name: ql.output_params for name, ql in qlayers.items()}
    activation.update(float_params)
    return QuantizedNetwork(network, qlayers, None, target, options, activation_params=activation)


def _dequantized_copy(layer, q, weight_params, bias, bias_scale):
    """A copy of a convolution / fully connected layer holding what its integers stand for (what a
    DequantizeLinear of them computes: float32(q) · float32 scale), as an imported model's layers do."""
    arrays = dict(layer.arrays())
    arrays["Weights"] = weight_params.dequantize(q)
    if "Bias" in arrays or np.any(bias != 0):
        scale = np.asarray(bias_scale, np.float32).reshape(-1)
        arrays["Bias"] = (bias.astype(np.float32) * scale).astype(np.float32)
    return type(layer).from_config(layer.name, layer.config(), arrays)


def _tflite_data(net, layer, plan, name) -> dict:
    """The TFLite fields LiteRT's formulas read: the operator of a convolution / fully connected
    layer, its fused activation, and MEAN's keep_dims (False when fully connected layers alone read
    it, as Keras's GlobalAveragePooling2D converts)."""
    type_name = layer.type_name
    data = {}
    if type_name == "Convolution2D":
        if layer.groups > 1 and not layer.is_depthwise:
            raise ValueError(f"layer {name!r}: a grouped convolution ({layer.groups} groups) has no "
                             f"TFLite operator (CONV_2D is ungrouped, DEPTHWISE_CONV_2D depthwise)")
        data["tflite_op"] = "DEPTHWISE_CONV_2D" if layer.groups > 1 else "CONV_2D"
    elif type_name == "FullyConnected":
        data["tflite_op"] = "FULLY_CONNECTED"
    if type_name in ("Convolution2D", "FullyConnected", "Addition"):
        activation = plan.fused.get(name)
        data["activation"] = "NONE" if activation is None else (
            "RELU" if net.layer(activation).type_name == "ReLU" else "RELU6")
    if type_name == "GlobalAveragePooling2D":
        readers = net.layer_consumers(name)
        data["keep_dims"] = not (readers and all(net.layer(r).type_name == "FullyConnected"
                                                 for r in readers))
    return data
