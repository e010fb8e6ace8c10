"""dlquantizer for the ONNXRuntime and LiteRT environments, QDQ export, and the power-of-two export
compared with ONNX Runtime.

Peers: onnxruntime.quantization (compute_scale_zp, quantize_nparray, quantize_static with a
calibration cache holding our ranges), ONNX Runtime itself on the exported QDQ models (host profile,
graph optimizations disabled, session.x64quantprecision), and the TFLite converter's own output for
the bundled digits networks (fp.examples.model_file("<model>_float_io.tflite"), made by
examples/make_tflite_models.py from the same prepared networks and the same calibration images).
"""

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization.affine import (ort_quantize_values, ort_range_params, round_half_away,
                                            tflite_range_params, tflite_weights)
from fixedpoint.runtime import host_runtime

from net_builders import chain, conv

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

MODELS = {"digits_cnn": fp.examples.digits_cnn, "digits_mobilenet": fp.examples.digits_mobilenet}
N_CHECK = 400   # validation images run through ONNX Runtime per comparison


@pytest.fixture(scope="module")
def digits():
    return fp.examples.digits_data()


@pytest.fixture(scope="module")
def calibrated(digits):
    """{(model, environment): dlquantizer after calibrate} (calibration shared by the tests)."""
    (x_cal, _), _ = digits
    cache = {}

    def get(model, environment):
        key = (model, environment)
        if key not in cache:
            q = fp.dlquantizer(MODELS[model](), environment)
            q.calibrate(x_cal, progress=False)
            cache[key] = q
        return cache[key]
    return get


def ort_run(model, x, *, precise=False, disable_all=False):
    options = ort.SessionOptions()
    if disable_all:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if precise:
        options.add_session_config_entry("session.x64quantprecision", "1")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# --- formulas against the runtimes' own quantizers ----------------------------------------------
def test_range_params_equal_onnxruntime_compute_scale_zp():
    from onnxruntime.quantization.quant_utils import compute_scale_zp
    rng = np.random.default_rng(0)
    lows = np.concatenate([-rng.lognormal(0, 3, 1500), rng.uniform(-1, 1, 300), [0, 0, -1e-30, 1e-30, -7,
                                                                                 -3.4e38, 0]])
    highs = np.concatenate([rng.lognormal(0, 3, 1500), rng.uniform(-1, 1, 300), [0, 1e-30, 0, 2e-30, -2,
                                                                                 3.4e38, 1e-45]])
    checked = 0
    for lo, hi in zip(lows.astype(np.float32), highs.astype(np.float32)):
        lo, hi = min(lo, hi), max(lo, hi)
        for dtype in (np.uint8, np.int8):
            info = np.iinfo(dtype)
            zero, scale = compute_scale_zp(np.array(lo, np.float32), np.array(hi, np.float32),
                                           np.array(info.min, dtype), np.array(info.max, dtype))
            ours = ort_range_params(lo, hi, dtype)
            assert np.float32(ours.scale[0]) == np.float32(scale) and int(ours.zero_point[0]) == int(zero), \
                (lo, hi, dtype)
            checked += 1
        zero, scale = compute_scale_zp(np.array(lo, np.float32), np.array(hi, np.float32),
                                       np.array(-127, np.int8), np.array(127, np.int8), symmetric=True)
        ours = ort_range_params(lo, hi, np.int8, symmetric=True)
        assert np.float32(ours.scale[0]) == np.float32(scale) and int(ours.zero_point[0]) == int(zero)
    assert checked == 2 * len(lows)


def test_weight_rounding_equals_quantize_nparray_on_ties_and_edges():
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import quantize_nparray
    scale = np.float32(0.5)
    values = np.array([0.25, -0.25, 0.75, -0.75, 1.25, 63.25, -64.0, -64.25, 200.0, -200.0,
                       np.float32(0.2500001)], np.float32)
    for zero, dtype, proto in ((0, np.int8, TensorProto.INT8), (128, np.uint8, TensorProto.UINT8)):
        expected = quantize_nparray(proto, values, scale, np.array(zero, dtype))
        assert np.array_equal(ort_quantize_values(values, scale, zero, dtype), expected)
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (6, 50)).astype(np.float32)
    scales = rng.uniform(0.001, 0.05, 6).astype(np.float32)
    expected = np.stack([quantize_nparray(TensorProto.INT8, w[c], scales[c], np.array(0, np.int8))
                         for c in range(6)])
    assert np.array_equal(ort_quantize_values(w, scales, np.zeros(6, np.int64), np.int8, axis=0), expected)


def test_round_half_away_is_std_round():
    x = np.array([0.5, -0.5, 1.5, -1.5, 2.5, 0.49999997, -0.49999997, 8388609.0, 8388607.5,
                  -8388607.5, 2.0 ** 30 + 0.5], np.float64)
    assert round_half_away(x).tolist() == [1, -1, 2, -2, 3, 0, -0, 8388609, 8388608, -8388608,
                                           2.0 ** 30 + 1]
    assert round_half_away(np.float32(8388607.5)) == 8388608


def test_tflite_range_params_by_hand():
    # the digits models' input [0, 1] and the converter's softmax-free cases
    p = tflite_range_params(0.0, 1.0)
    assert np.float32(p.scale[0]) == np.float32(np.float32(1) / np.float32(255)) and p.zero_point[0] == -128
    p = tflite_range_params(-1.0, 3.0)   # zero_from_min = -128 + 63.75 = -64.25 -> -64
    assert np.float32(p.scale[0]) == np.float32(4) / np.float32(255) and p.zero_point[0] == -64
    p = tflite_range_params(2.0, 3.0)    # widened to [0, 3]
    assert p.zero_point[0] == -128 and np.float32(p.scale[0]) == np.float32(3) / np.float32(255)
    p = tflite_range_params(0.0, 0.0)    # ExpandVerySmallRange: [-5e-7, 5e-7]
    assert np.float32(p.scale[0]) == (np.float32(5e-7) - np.float32(-5e-7)) / np.float32(255)
    assert p.zero_point[0] == 0   # -128 + 5e-7 / scale = -0.4999927 (float32 scale below 1e-6 / 255)
    with pytest.raises(ValueError, match="int8"):
        tflite_range_params(0, 1, np.uint8)


@pytest.mark.parametrize("model", list(MODELS))
def test_litert_weights_and_biases_equal_the_converters_file(model):
    """The converter's weights, weight scales and int32 biases of every CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED, from the same float weights and the file's own input scales."""
    from fixedpoint.tflite.reader import read_model
    net = fp.prepare_network(MODELS[model]())
    m = read_model(fp.examples.model_file(f"{model}_float_io.tflite"))
    ops = [op for op in m.operators if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    layers = [layer for layer in net.layers if layer.type_name in ("Convolution2D", "FullyConnected")]
    assert len(ops) == len(layers)
    for op, layer in zip(ops, layers):
        x, w, b = (m.tensors[i] for i in op.inputs[:3])
        q, wp, bias = tflite_weights(layer.weights, layer.bias, np.float32(x.quantization.scale[0]), True)
        file_w = {"CONV_2D": lambda a: a.transpose(0, 3, 1, 2), "FULLY_CONNECTED": lambda a: a,
                  "DEPTHWISE_CONV_2D": lambda a: a[0].transpose(2, 0, 1)[:, None]}[op.op](w.data)
        assert np.array_equal(wp.scale, np.asarray(w.quantization.scale, np.float32)), layer.name
        assert np.array_equal(q, file_w), layer.name
        assert np.array_equal(bias, b.data), layer.name


@pytest.mark.parametrize("model", list(MODELS))
def test_litert_network_matches_the_converters_structure_and_parameters(model, calibrated):
    """Fused activations, the operand of a residual ADD taking the ADD's parameters, MEAN without
    keep_dims before FULLY_CONNECTED, the fixed softmax output: as the converter wrote them. Scales
    agree to the converter's float32 calibration (its float convolutions round differently from ours,
    moving a range's end by a few ulps), zero points exactly."""
    qnet = calibrated(model, "LiteRT").quantize()
    file_net = fp.import_tflite(fp.examples.model_file(f"{model}_float_io.tflite"))
    ours = [ql for ql in qnet.qlayers.values() if not getattr(ql, "fused", False)]
    theirs = [ql for ql in file_net.qlayers.values() if not getattr(ql, "fused", False)
              and ql.type_name not in ("Transpose", "Pad", "Reshape")]   # the importer's layout layers
    assert [ql.type_name for ql in ours] == [ql.type_name for ql in theirs]
    exact = 0
    for a, b in zip(ours, theirs):
        pa, pb = a.output_params, b.output_params
        assert pa.zero_point[0] == pb.zero_point[0], a.name
        assert abs(float(pa.scale[0]) / float(pb.scale[0]) - 1) < 1e-6, a.name
        exact += int(pa == pb)
        assert getattr(a, "activation", "NONE") == getattr(b, "activation", "NONE"), a.name
        assert getattr(a, "keep_dims", True) == getattr(b, "keep_dims", True), a.name
        if a.type_name in ("Convolution2D", "FullyConnected"):
            assert a.tflite_op == b.tflite_op, a.name
    assert exact >= len(ours) - 3   # measured: 5 of 7 (CNN), 6 of 9 (MobileNet)


# --- ONNXRuntime environment ----------------------------------------------------------------------
def quantize_static_model(q, tmp_path, *, activation="uint8", per_channel=True, reduce_range=False):
    """quantize_static's QDQ model of the prepared network, its ranges read from a calibration cache
    holding ours (the float export names each tensor after its layer)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data
    net = q.prepared_network
    ranges = {}
    for (name, kind), s in q.calibration_statistics.items():
        if kind == "Activations":
            ranges[name] = TensorData(lowest=np.float32(s.min_value), highest=np.float32(s.max_value))
    for layer in net.layers:   # the Flatten the float export writes before a Gemm on 4-D data
        if layer.type_name == "FullyConnected":
            ranges[f"{layer.name}/flatten"] = ranges[net.layer_inputs(layer.name)[0]]
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, ranges), tmp_path / "cache.json")
    onnx.save(fp.export_onnx(net), tmp_path / "float.onnx")
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "qdq.onnx"), None,
                    quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=reduce_range,
                    activation_type=types[activation], weight_type=QuantType.QInt8,
                    calibration_cache_path=str(tmp_path / "cache.json"))
    return onnx.load(tmp_path / "qdq.onnx")


@pytest.mark.parametrize("model,options", [
    ("digits_cnn", {}), ("digits_mobilenet", {}),
    ("digits_cnn", {"activation": "int8", "per_channel": False}),
    ("digits_mobilenet", {"activation": "int8", "reduce_range": True}),
])
def test_parameters_equal_quantize_static_from_the_same_ranges(model, options, calibrated, digits, tmp_path):
    q = calibrated(model, "ONNXRuntime")
    qnet = q.quantize(activation_dtype=options.get("activation"), per_channel=options.get("per_channel", True),
                      reduce_range=options.get("reduce_range", False))
    theirs = quantize_static_model(q, tmp_path, **options)
    imported = fp.import_onnx(theirs)
    compared = 0
    for name, ql in imported.qlayers.items():
        if name not in qnet.qlayers:   # quantize_static's QuantizeLinear of the input, its Flatten
            continue
        ours = qnet.qlayers[name]
        assert ours.input_params == ql.input_params and ours.output_params == ql.output_params, name
        if getattr(ql, "weights", None) is not None:
            assert ours.weight_params == ql.weight_params, name
            assert np.array_equal(ours.weights, ql.weights) and np.array_equal(ours.bias, ql.bias), name
        compared += 1
    assert compared >= 7
    _, (x_val, _) = digits
    x = x_val[:N_CHECK]
    assert np.array_equal(ort_run(theirs, x), qnet.predict(x, runtime="onnxruntime"))


def test_parameters_equal_quantize_static_calibrating_itself(calibrated, digits, tmp_path):
    """quantize_static with its own MinMax calibrator on the same images: the same parameters
    (its float convolutions give the digits CNN's ranges bit for bit)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    (x_cal, _), _ = digits
    q = calibrated("digits_cnn", "ONNXRuntime")
    qnet = q.quantize()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": x_cal[k:k + 32]} for k in range(0, len(x_cal), 32)])

        def get_next(self):
            return next(self.batches, None)
    onnx.save(fp.export_onnx(q.prepared_network), tmp_path / "float.onnx")
    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "qdq.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    imported = fp.import_onnx(str(tmp_path / "qdq.onnx"))
    names = [n for n in imported.qlayers if n in qnet.qlayers]
    assert len(names) == 7
    for name in names:
        assert imported.qlayers[name].output_params == qnet.qlayers[name].output_params, name


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("activation", ["uint8", "int8"])
def test_ort_runs_the_export_as_predict_says_under_every_profile(model, activation, calibrated, digits):
    _, (x_val, y_val) = digits
    qnet = calibrated(model, "ONNXRuntime").quantize(activation_dtype=activation)
    exported = fp.export_onnx(qnet)
    x = x_val[:N_CHECK]
    assert np.array_equal(ort_run(exported, x), qnet.predict(x))   # "onnxruntime": this CPU
    assert np.array_equal(ort_run(exported, x, disable_all=True), qnet.predict(x, runtime="onnxruntime-reference"))
    if host_runtime() == "onnxruntime-avx2":   # on AVX2 hosts the precise option runs the avx2-precise graph
        precise = ort_run(exported, x, precise=True)
        assert np.array_equal(precise, qnet.predict(x, runtime="onnxruntime-avx2-precise"))
        # and exact sums, as VNNI's: the vnni profile computes the same on this network
        assert np.array_equal(precise, qnet.predict(x, runtime="onnxruntime-vnni"))
    imported = fp.import_onnx(exported)   # the round trip: an equivalent network under every profile
    for profile in ("onnxruntime-avx2", "onnxruntime-avx2-precise", "onnxruntime-vnni", "onnxruntime-reference"):
        assert np.array_equal(imported.predict(x, runtime=profile), qnet.predict(x, runtime=profile)), profile


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("environment", ["ONNXRuntime", "LiteRT"])
def test_accuracy_is_within_a_point_of_the_float_network(model, environment, calibrated, digits):
    """The band: quantized top-1 within 1.0 percentage point of the float network on the 1258
    validation images (measured: CNN +0.24 / 0.00, MobileNet -0.87 / -0.16 for ONNXRuntime / LiteRT)."""
    _, (x_val, y_val) = digits
    q = calibrated(model, environment)
    result = q.validate((x_val, y_val))
    top1 = result.metric_results["top1"]
    assert abs(top1["Quantized"] - top1["Floating-Point"]) <= 1.0
    assert q.quantized_network.default_runtime == ("onnxruntime" if environment == "ONNXRuntime" else "litert")
    assert result.memory_reduction > 70


def test_reduce_range_and_per_tensor_weights(calibrated, digits):
    q = calibrated("digits_mobilenet", "ONNXRuntime")
    qnet = q.quantize(reduce_range=True, per_channel=False)
    for name in ("stem", "dw1", "pw1", "fc"):
        ql = qnet.qlayers[name]
        assert not ql.weight_params.per_channel and np.abs(ql.weights.astype(int)).max() <= 64
    _, (x_val, _) = digits
    x = x_val[:N_CHECK]
    exported = fp.export_onnx(qnet)
    assert np.array_equal(ort_run(exported, x), qnet.predict(x))
    # 7-bit weights cannot saturate AVX2's int16 pair sums: avx2 and exact sums agree
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-avx2"), qnet.predict(x, runtime="onnxruntime-vnni"))


def test_float_layers_between_quantized_ones(digits, tmp_path):
    """Types quantize_static leaves in float (Tanh, Sub, LRN) run on ORT's float kernels between the
    quantized layers; a skipped layer stays float too; ORT agrees bit for bit."""
    rng = np.random.default_rng(4)
    layers = [make_layer("ImageInput", "input", input_size=(1, 8, 8)),
              conv("c1", rng, 6, 1, padding=1), make_layer("Tanh", "tanh"),
              conv("c2", rng, 6, 6, padding=1), make_layer("ReLU", "r2"),
              conv("c3", rng, 6, 6, padding=1), make_layer("ClippedReLU", "clip", ceiling=0.7),
              make_layer("AveragePooling2D", "avg", pool_size=2, stride=2),
              make_layer("GlobalMaxPooling2D", "gmax"),
              make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.5, (4, 6)), bias=rng.normal(0, 0.1, 4))]
    net = chain(layers)
    (x_cal, _), (x_val, _) = digits
    q = fp.dlquantizer(net, "ONNXRuntime")
    q.calibrate(x_cal[:200], progress=False)
    qnet = q.quantize(skip_layers=["c3"])
    assert set(qnet.qlayers) == {"c1", "c2", "r2", "fc"}   # avg: input float; gmax, tanh: float
    exported = fp.export_onnx(qnet, tmp_path / "m.onnx")
    x = x_val[:N_CHECK]
    assert np.array_equal(ort_run(exported, x), qnet.predict(x))
    assert np.array_equal(ort_run(exported, x, disable_all=True), qnet.predict(x, runtime="onnxruntime-reference"))
    assert np.array_equal(fp.import_onnx(tmp_path / "m.onnx").predict(x), qnet.predict(x))


# --- the workflow's other tools on affine networks -------------------------------------------------
@pytest.mark.parametrize("environment", ["ONNXRuntime", "LiteRT"])
def test_details_error_report_and_files(environment, calibrated, digits, tmp_path):
    _, (x_val, y_val) = digits
    q = calibrated("digits_cnn", environment)
    qnet = q.quantize()
    details = fp.quantization_details(qnet)
    assert details.is_quantized and details.target_library == environment.lower()
    assert details.quantized_layer_names == qnet.quantized_layer_names
    weights = details.parameters[(details.parameters.Layer == "conv2") & (details.parameters.Tensor == "Weights")]
    assert len(weights) == 1 and bool(weights["Per channel"].iloc[0])
    assert isinstance(details.numerictypes[("conv2", "Bias")], tuple)
    error = fp.quantization_error(q, x_val[:64])
    assert error.set_index("Layer").loc["fc", "SQNR (dB)"] > 15   # against the original float network
    path = fp.quantization_report(q, tmp_path / "r.html", data=x_val[:64], labels=y_val[:64])
    text = open(path).read()
    assert "<h2>Runtimes</h2>" in text and "Histograms" in text
    qnet.save(tmp_path / "q.npz")
    loaded = fp.load_quantized_network(tmp_path / "q.npz")
    x = x_val[:200]
    profiles = (["onnxruntime-avx2", "onnxruntime-vnni", "onnxruntime-reference"] if environment == "ONNXRuntime"
                else ["litert", "litert-reference"])
    for profile in profiles:
        assert np.array_equal(loaded.predict(x, runtime=profile), qnet.predict(x, runtime=profile)), profile


def test_power_of_two_export_and_the_runtime_comparison(calibrated, digits):
    """A MATLAB network written with scales 2^-f and zero point 0: ORT runs the file as its import
    predicts, and compare_runtimes shows, layer by layer, what ORT's rounding and kernels change."""
    _, (x_val, y_val) = digits
    qnet = calibrated("digits_cnn", "MATLAB").quantize()
    exported = fp.export_onnx(qnet)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in exported.graph.initializer}
    for node in exported.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and inits[node.input[1]].dtype == np.float32:
            scale, zero = inits[node.input[1]], inits[node.input[2]]
            assert np.all(np.frexp(scale)[0] == 0.5) and not np.any(zero), node.name
            assert zero.dtype in (np.int8, np.int32)
    x, y = x_val[:N_CHECK], y_val[:N_CHECK]
    imported = fp.import_onnx(exported)
    assert np.array_equal(ort_run(exported, x), imported.predict(x))
    assert np.array_equal(ort_run(exported, x, disable_all=True), imported.predict(x, runtime="onnxruntime-reference"))
    table = fp.compare_runtimes(qnet, x, runtimes=["MATLAB", "onnxruntime", "onnxruntime-vnni"], labels=y)
    assert table.attrs["runtimes"][0] == "MATLAB" and set(table["Baseline"]) == {"MATLAB"}
    assert set(table["Layer"]) == {n for n in qnet.network.layer_names if n != "input"}
    accuracy = table.attrs["accuracy"]
    assert accuracy["MATLAB"] == 100 * np.mean(qnet.predict(x).argmax(1) == y)
    assert accuracy[host_runtime()] == 100 * np.mean(ort_run(exported, x).argmax(1) == y)
    conv1 = table[(table.Layer == "conv1") & (table.Runtime == "onnxruntime-vnni")].iloc[0]
    assert conv1["Output"] == "int8" and 0 < conv1["Differing"] < conv1["Elements"] // 10
    assert conv1["Max |diff| (LSB)"] == 1   # exact sums, ORT's float requantization: at most 1 LSB


# --- errors ------------------------------------------------------------------------------------------
def test_errors_name_the_problem(calibrated, digits):
    (x_cal, _), _ = digits
    rng = np.random.default_rng(2)
    lrn = chain([make_layer("ImageInput", "input", input_size=(1, 8, 8)), conv("c", rng, 2, 1, padding=1),
                 make_layer("GlobalMaxPooling2D", "g")])
    with pytest.raises(ValueError, match="'g' of type GlobalMaxPooling2D is not supported by the LiteRT"):
        fp.dlquantizer(lrn, "LiteRT")
    q = calibrated("digits_cnn", "ONNXRuntime")
    with pytest.raises(ValueError, match="MinMax"):
        q.quantize("Histogram")
    with pytest.raises(ValueError, match="activation_dtype must be one of uint8, int8"):
        q.quantize(activation_dtype="int16")
    with pytest.raises(ValueError, match="per_channel"):
        q.quantize(per_channel="yes")
    lite = calibrated("digits_cnn", "LiteRT")
    with pytest.raises(ValueError, match="activation_dtype must be one of int8"):
        lite.quantize(activation_dtype="uint8")
    with pytest.raises(ValueError, match="reduce_range"):
        lite.quantize(reduce_range=True)
    with pytest.raises(ValueError, match="full-integer"):
        lite.quantize(skip_layers=["conv1"])
    with pytest.raises(ValueError, match="tflite writer"):
        fp.export_onnx(lite.quantize())
    with pytest.raises(ValueError, match="activation_dtype and reduce_range apply"):
        calibrated("digits_cnn", "MATLAB").quantize(activation_dtype="int8")
    uncalibrated = fp.dlquantizer(fp.examples.digits_cnn(), "ONNXRuntime")
    with pytest.raises(ValueError, match="calibrate"):
        uncalibrated.quantize()
    clip4 = chain([make_layer("ImageInput", "input", input_size=(1, 8, 8)), conv("c", rng, 2, 1, padding=1),
                   make_layer("ClippedReLU", "clip", ceiling=4.0)])
    q = fp.dlquantizer(clip4, "LiteRT")
    q.calibrate(x_cal[:20], progress=False)
    with pytest.raises(ValueError, match="clip.*6"):
        q.quantize()
    grouped = chain([make_layer("ImageInput", "input", input_size=(4, 8, 8)),
                     conv("c", rng, 4, 2, groups=2, padding=1)])
    q = fp.dlquantizer(grouped, "LiteRT")
    q.calibrate(rng.uniform(0, 1, (8, 4, 8, 8)).astype(np.float32), progress=False)
    with pytest.raises(ValueError, match="grouped convolution"):
        q.quantize()
    pow2 = calibrated("digits_cnn", "MATLAB").quantize()
    with pytest.raises(ValueError, match="litert"):
        fp.compare_runtimes(pow2, digits[1][0][:4], runtimes=["MATLAB", "litert"])


@pytest.mark.parametrize("per_channel", [True, False])
def test_weight_scale_grows_for_a_bias_int32_cannot_hold_as_quantize_static_does(per_channel, tmp_path):
    """Tiny inputs and weights with a large bias: s_x·s_w would put the bias beyond int32, so
    quantize_static enlarges the weight scale (_adjust_weight_scale_for_int32_bias); ours the same."""
    rng = np.random.default_rng(9)
    weights = rng.normal(0, 1e-4, (3, 1, 3, 3))
    if per_channel:
        weights[1] *= 50                                # one channel that needs no adjustment
    net = chain([make_layer("ImageInput", "input", input_size=(1, 5, 5)),
                 make_layer("Convolution2D", "conv", weights=weights, bias=np.array([0.7, 1e-6, -0.4]), padding=1),
                 make_layer("GlobalAveragePooling2D", "gap"),
                 make_layer("FullyConnected", "fc", weights=rng.normal(0, 1, (2, 3)), bias=np.zeros(2))])
    x = rng.uniform(0, 1e-3, (30, 1, 5, 5)).astype(np.float32)
    q = fp.dlquantizer(net, "ONNXRuntime")
    q.calibrate(x, progress=False)
    qnet = q.quantize(per_channel=per_channel)
    theirs = fp.import_onnx(quantize_static_model(q, tmp_path, per_channel=per_channel))
    ours, ref = qnet.qlayers["conv"], theirs.qlayers["conv"]
    assert ours.weight_params == ref.weight_params
    assert np.array_equal(ours.weights, ref.weights) and np.array_equal(ours.bias, ref.bias)
    plain = fp.quantization.affine.ort_weight_params(q.prepared_network.layer("conv").weights, per_channel)
    assert np.any(ours.weight_params.scale > plain.scale)   # the adjustment happened
    assert np.all(np.abs(ours.bias.astype(np.int64)) < 2 ** 31 - 1)
