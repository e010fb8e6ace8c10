"""The bundled digits examples: data split, model structure, recorded float accuracy, and the
issue-5 acceptance (int8 top-1 within one percentage point of float on the digits CNN).

The accuracies are exact sample counts measured once (examples/train_digits.py prints the float
ones; docs/examples.md tabulates all of them): a change in the models, the data or the arithmetic
shows up as a different count.
"""
import inspect

import numpy as np
import pytest

import fixedpoint as fp

N_CAL, N_VAL = 539, 1258
FLOAT_CORRECT = {"digits_cnn": 1233, "digits_mobilenet": 1225}   # of N_VAL validation images
# int8 correct counts of the CNN, MinMax exponents, calibrated on x_cal (MATLAB and FPGA share the
# Round rounding method and int32 biases, hence the same integers).
INT8_CNN_MINMAX_CORRECT = {"MATLAB": 1232, "FPGA": 1232}


@pytest.fixture(scope="module")
def data():
    return fp.examples.digits_data()


def correct(net, x, y):
    return int(np.sum(np.argmax(net.predict(x), axis=1) == y))


# --- data -----------------------------------------------------------------------------------------
def test_data_shapes_and_types(data):
    (x_cal, y_cal), (x_val, y_val) = data
    assert x_cal.shape == (N_CAL, 1, 8, 8) and x_val.shape == (N_VAL, 1, 8, 8)
    assert x_cal.dtype == x_val.dtype == np.float32
    assert y_cal.shape == (N_CAL,) and y_val.shape == (N_VAL,)
    assert y_cal.dtype == y_val.dtype == np.int64
    for x in (x_cal, x_val):
        # pixel values 0..16 divided by 16: in [0, 1] and exact multiples of 1/16
        assert x.min() == 0 and x.max() == 1
        assert np.array_equal(x * 16, np.round(x * 16))


def test_split_is_stratified(data):
    (_, y_cal), (_, y_val) = data
    assert set(y_cal) == set(y_val) == set(range(10))
    cal, val = np.bincount(y_cal), np.bincount(y_val)
    # every class is split about 30/70 (stratification: within one image of the exact share)
    assert np.all(np.abs(cal - 0.3 * (cal + val)) <= 1)


def test_split_is_the_scikit_learn_digits_data_set(data):
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    (x_cal, y_cal), (x_val, y_val) = data
    ours = np.concatenate([x_cal, x_val]).reshape(-1, 64) * 16
    ours = np.concatenate([ours, np.concatenate([y_cal, y_val])[:, None]], axis=1)
    theirs = np.concatenate([digits.data, digits.target[:, None]], axis=1)
    # the same multiset of (image, label) rows: nothing lost, duplicated or altered
    order = np.lexsort(ours.T[::-1])
    assert np.array_equal(ours[order], theirs[np.lexsort(theirs.T[::-1])])


def test_data_arrays_are_fresh_copies():
    (x_cal, _), _ = fp.examples.digits_data()
    x_cal[0, 0, 0, 0] = 5
    (again, _), _ = fp.examples.digits_data()
    assert again[0, 0, 0, 0] != 5


# --- structure ------------------------------------------------------------------------------------
def types(net):
    return [layer.type_name for layer in net.layers]


def test_cnn_structure():
    net = fp.examples.digits_cnn()
    assert isinstance(net, fp.Network)
    block = ["Convolution2D", "BatchNormalization", "ReLU"]
    assert types(net) == ["ImageInput", *block, *block, "MaxPooling2D", *block,
                          "GlobalAveragePooling2D", "FullyConnected", "Softmax"]
    assert net.input_names == ["input"] and net.output_names == ["softmax"]
    assert net.layer("input").input_size == (1, 8, 8)
    assert net.layer("maxpool").pool_size == (2, 2) and net.layer("maxpool").stride == (2, 2)
    assert [net.layer(f"conv{i}").learnables["Weights"].shape for i in (1, 2, 3)] == [
        (8, 1, 3, 3), (16, 8, 3, 3), (32, 16, 3, 3)]
    assert net.layer("fc").learnables["Weights"].shape == (10, 32)


def test_mobilenet_structure():
    net = fp.examples.digits_mobilenet()
    assert isinstance(net, fp.Network)
    counts = {name: types(net).count(name) for name in set(types(net))}
    assert counts == {"ImageInput": 1, "Convolution2D": 5, "BatchNormalization": 5,
                      "ClippedReLU": 5, "Addition": 1, "GlobalAveragePooling2D": 1,
                      "FullyConnected": 1, "Softmax": 1}
    assert all(layer.ceiling == 6 for layer in net.layers if layer.type_name == "ClippedReLU")
    depthwise = [layer.name for layer in net.layers
                 if layer.type_name == "Convolution2D" and layer.is_depthwise]
    assert depthwise == ["dw1", "dw2"]
    assert [net.layer(n).learnables["Weights"].shape[2:] for n in ("pw1", "pw2")] == [(1, 1)] * 2
    # each depthwise 3x3 conv feeds BN, ReLU6, then a pointwise conv
    for dw, pw in (("dw1", "pw1"), ("dw2", "pw2")):
        assert net.layer_consumers(dw) == [f"{dw}_bn"]
        assert net.layer_consumers(f"{dw}_bn") == [f"{dw}_relu6"]
        assert net.layer_consumers(f"{dw}_relu6") == [pw]
    # the residual addition: the block's input plus the block's output
    assert net.layer_inputs("add") == ["stem_relu6", "pw1_relu6"]
    assert sorted(net.layer_consumers("stem_relu6")) == ["add", "dw1"]
    assert net.layer("dw2").stride == (2, 2)


def test_each_call_returns_an_independent_network():
    a, b = fp.examples.digits_cnn(), fp.examples.digits_cnn()
    # convolution weights are read-only (predict caches them packed): check they are not shared;
    # the writeable bias shows a change in one network stays there
    assert not np.shares_memory(a.layer("conv1").learnables["Weights"], b.layer("conv1").learnables["Weights"])
    a.layer("conv1").learnables["Bias"][...] = 0
    assert np.any(b.layer("conv1").learnables["Bias"] != 0)


def test_batch_normalizations_fold_without_changing_the_function(data):
    (x_cal, _), _ = data
    for net in (fp.examples.digits_cnn(), fp.examples.digits_mobilenet()):
        prepared = fp.prepare_network(net)
        assert "BatchNormalization" not in types(prepared)
        expected = net.predict(x_cal)
        assert np.max(np.abs(prepared.predict(x_cal) - expected)) <= 1e-5 * np.max(np.abs(expected))


# --- accuracy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(FLOAT_CORRECT))
def test_recorded_float_accuracy(data, model):
    _, (x_val, y_val) = data
    assert correct(getattr(fp.examples, model)(), x_val, y_val) == FLOAT_CORRECT[model]


@pytest.mark.parametrize("environment", sorted(INT8_CNN_MINMAX_CORRECT))
def test_int8_cnn_within_one_point_of_float(data, environment):
    (x_cal, _), (x_val, y_val) = data
    q = fp.dlquantizer(fp.examples.digits_cnn(), execution_environment=environment)
    q.calibrate(x_cal)
    qnet = q.quantize(exponent_scheme="MinMax")
    int8 = correct(qnet, x_val, y_val)
    assert int8 == INT8_CNN_MINMAX_CORRECT[environment]
    float_percent = 100 * FLOAT_CORRECT["digits_cnn"] / N_VAL
    assert abs(100 * int8 / N_VAL - float_percent) <= 1.0


def test_validate_reports_the_same_accuracies(data):
    (x_cal, _), (x_val, y_val) = data
    q = fp.dlquantizer(fp.examples.digits_cnn(), execution_environment="FPGA")
    q.calibrate(x_cal)
    result = q.validate((x_val, y_val), "top1", exponent_scheme="MinMax")
    top1 = result.metric_results["top1"]
    assert result.num_samples == N_VAL
    # percentages back to sample counts (the division may round either way in the last bit)
    assert float(top1["Floating-Point"]) * N_VAL / 100 == pytest.approx(
        FLOAT_CORRECT["digits_cnn"], abs=1e-9)
    assert float(top1["Quantized"]) * N_VAL / 100 == pytest.approx(
        INT8_CNN_MINMAX_CORRECT["FPGA"], abs=1e-9)
    # prepared CNN (batch norm folded): 6218 float32 learnables; int8 weights + int32 biases
    memory = result.statistics["LearnableParameterMemory(bytes)"]
    assert (int(memory["Floating-Point"]), int(memory["Quantized"])) == (6218 * 4, 6416)


# Every per-tensor row of the table in docs/examples.md (update both together).
INT8_CORRECT = {
    ("digits_cnn", "MATLAB"): {"MinMax": 1232, "Histogram": 1233},
    ("digits_cnn", "FPGA"): {"MinMax": 1232, "Histogram": 1233},
    ("digits_cnn", "GPU"): {"MinMax": 1233, "Histogram": 1232},
    ("digits_mobilenet", "MATLAB"): {"MinMax": 1218, "Histogram": 1218},
    ("digits_mobilenet", "FPGA"): {"MinMax": 1218, "Histogram": 1218},
    ("digits_mobilenet", "GPU"): {"MinMax": 1219, "Histogram": 1218},
}


@pytest.mark.parametrize("model, environment", sorted(INT8_CORRECT))
def test_documented_int8_accuracies(data, model, environment):
    (x_cal, _), (x_val, y_val) = data
    q = fp.dlquantizer(getattr(fp.examples, model)(), execution_environment=environment)
    q.calibrate(x_cal)
    measured = {scheme: correct(q.quantize(exponent_scheme=scheme), x_val, y_val)
                for scheme in ("MinMax", "Histogram")}
    assert measured == INT8_CORRECT[model, environment]


# --- ONNX Runtime agreement (when an exporter is present) ----------------------------------------
@pytest.mark.parametrize("model", sorted(FLOAT_CORRECT))
def test_float_predict_matches_onnx_runtime(data, model, tmp_path):
    if not hasattr(fp, "export_onnx"):
        pytest.skip("fp.export_onnx is not part of this build")
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    net = getattr(fp.examples, model)()
    path = tmp_path / f"{model}.onnx"
    if len(inspect.signature(fp.export_onnx).parameters) >= 2:
        exported = fp.export_onnx(net, path)
    else:
        exported = fp.export_onnx(net)
    if isinstance(exported, onnx.ModelProto):
        onnx.save(exported, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, (x_val, _) = data
    theirs = session.run(None, {session.get_inputs()[0].name: x_val})[0]
    ours = net.predict(x_val)
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))


# --- the bundled quantized models: what each runtime computes --------------------------------------
# Correct counts of N_VAL, measured once against the real runtimes (the emulation must give exactly
# these on every machine: they are properties of the bit-exact arithmetic, not of this CPU).
RUNTIME_CORRECT = {
    "digits_mobilenet_qdq.onnx": {"onnxruntime-vnni": 1225, "onnxruntime-avx2": 1214,
                                  "onnxruntime-reference": 1225},
    "digits_cnn_qdq.onnx": {"onnxruntime-vnni": 1233, "onnxruntime-avx2": 1236,
                            "onnxruntime-reference": 1233},
}


@pytest.mark.parametrize("name", sorted(RUNTIME_CORRECT))
def test_bundled_onnx_models_on_each_cpu(name, data):
    pytest.importorskip("onnx")
    _, (x_val, y_val) = data
    qnet = fp.import_onnx(fp.examples.model_file(name))
    for runtime, count in RUNTIME_CORRECT[name].items():
        got = int(np.sum(np.argmax(qnet.predict(x_val, runtime=runtime), axis=1) == y_val))
        assert got == count, runtime


def test_bundled_onnx_model_equals_onnxruntime_on_this_cpu(data):
    ort = pytest.importorskip("onnxruntime")
    _, (x_val, _) = data
    path = fp.examples.model_file("digits_mobilenet_qdq.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x_val})[0]
    assert np.array_equal(fp.import_onnx(path).predict(x_val, runtime="onnxruntime"), expected)


def test_model_file_names_the_bundled_files():
    for name in fp.examples.MODEL_FILES:
        with open(fp.examples.model_file(name), "rb") as stream:
            assert len(stream.read()) > 1000
    with pytest.raises(ValueError, match="no bundled model"):
        fp.examples.model_file("resnet50.onnx")
