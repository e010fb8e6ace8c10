"""The dlquantizer workflow: calibration table, batch norm origin, skip_layers, details, validation,
memory, save/load, and the errors that tell the user what to do."""
import numpy as np
import pandas as pd
import pytest

from fixedpoint.types import numerictype

from fixedpoint.nn import Network
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization import dlquantizer, load_quantized_network, quantization_details
from fixedpoint.quantization.qnetwork import QTensor
from fixedpoint.quantization.validate import learnable_memory, top1

from test_quant_semantics import check_against_oracle, quantize as oracle_quantize


def small_net(seed=3):
    rng = np.random.default_rng(seed)
    layers = [
        make_layer("ImageInput", "input", input_size=(1, 6, 6)),
        make_layer("Convolution2D", "conv", weights=rng.normal(0, 0.5, (4, 1, 3, 3)),
                   bias=rng.normal(0, 0.1, 4), padding=1),
        make_layer("BatchNormalization", "bn", scale=rng.uniform(0.5, 2, 4), offset=rng.normal(0, 0.1, 4),
                   mean=rng.normal(0, 0.1, 4), variance=rng.uniform(0.5, 2, 4)),
        make_layer("ReLU", "relu"),
        make_layer("Dropout", "drop", probability=0.2),
        make_layer("MaxPooling2D", "pool", pool_size=2, stride=2),
        make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.3, (3, 36)), bias=rng.normal(0, 0.1, 3)),
        make_layer("Softmax", "prob"),
    ]
    names = [l.name for l in layers]
    return Network(layers, list(zip(names[:-1], names[1:])))


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    return rng.uniform(0, 1, (64, 1, 6, 6)).astype(np.float32)


@pytest.fixture
def calibrated(data):
    q = dlquantizer(small_net(), execution_environment="FPGA")
    table = q.calibrate(data, batch_size=10, progress=False)
    return q, table


def test_calibration_table_rows_ranges_and_origin(calibrated, data):
    q, table = calibrated
    assert list(table.columns) == ["Optimized Layer Name", "Network Layer Name",
                                   "Learnables / Activations", "MinValue", "MaxValue"]
    rows = {r["Optimized Layer Name"]: r for _, r in table.iterrows()}
    # batch norm folded into the convolution: the row names both original layers
    assert rows["conv_Weights"]["Network Layer Name"] == "conv, bn"
    assert "bn" not in rows and "drop" not in rows
    prepared = q.prepared_network
    conv_out = prepared.predict(data, outputs="conv")
    assert rows["conv"]["MinValue"] == np.float32(conv_out.min())
    assert rows["conv"]["MaxValue"] == np.float32(conv_out.max())
    weights = prepared.layer("fc").learnables["Weights"]
    assert rows["fc_Weights"]["MinValue"] == weights.min() and rows["fc_Weights"]["Learnables / Activations"] == "Weights"


def test_calibration_accepts_pairs_and_iterables_with_the_same_result(data):
    reference = dlquantizer(small_net(), "MATLAB").calibrate(data, progress=False)
    labels = np.zeros(len(data), int)
    for form in [(data, labels), [data[:20], data[20:]], ((data[i:i + 7], labels[i:i + 7]) for i in range(0, 64, 7))]:
        table = dlquantizer(small_net(), "MATLAB").calibrate(form, progress=False)
        pd.testing.assert_frame_equal(table, reference)


def test_quantized_network_matches_the_oracle_and_follows_the_profile(calibrated, data):
    q, _ = calibrated
    qnet = q.quantize()
    assert qnet.quantized_layer_names == ["conv", "relu", "pool", "fc"]
    check_against_oracle(qnet, data[:4])
    details = quantization_details(qnet)
    assert details.is_quantized and details.target_library == "fpga"
    assert list(details.quantized_learnables["Parameter"]) == ["Weights", "Bias"] * 2
    bias = details.quantized_learnables.iloc[1]["Value"]
    assert bias.dtype == np.int32
    ql = qnet.qlayers["conv"]
    # Q12: bias at the accumulator's exponent, rounded half away from zero (FPGA profile)
    folded_bias = q.prepared_network.layer("conv").learnables["Bias"]
    f_bias = ql.input_fraction_lengths[0] + ql.weight_fraction_lengths
    assert np.array_equal(bias, [oracle_quantize([b], f, "Round", 32)[0] for b, f in zip(folded_bias, f_bias)])
    types = details.numerictypes
    assert types[("conv", "Weights")] == numerictype(1, 8, int(ql.weight_fraction_lengths[0]))
    assert types[("conv", "Bias")] == numerictype(1, 32, int(f_bias[0]))
    assert types[("pool", "Activations")] == numerictype(1, 8, qnet.qlayers["relu"].output_fraction_length)
    assert ("pool", "Weights") not in types


def test_gpu_bias_is_single_on_the_accumulator_grid(data):
    q = dlquantizer(small_net(), "GPU")
    q.calibrate(data, progress=False)
    qnet = q.quantize()
    details = quantization_details(qnet)
    assert details.target_library == "cudnn"
    bias = details.quantized_learnables.iloc[1]["Value"]
    ql = qnet.qlayers["conv"]
    assert bias.dtype == np.float32
    assert np.array_equal(bias * 2.0 ** (ql.input_fraction_lengths[0] + ql.weight_fraction_lengths), ql.bias)


def test_float_network_details_are_not_quantized():
    details = quantization_details(small_net())
    assert not details.is_quantized and details.target_library == "" and details.quantized_layer_names == []


def test_outputs_return_int8_activations(calibrated, data):
    q, _ = calibrated
    qnet = q.quantize()
    values = qnet.run({"input": data[:2]}, outputs=["input", "pool", "prob"])
    assert isinstance(values["pool"], QTensor) and values["pool"].q.dtype == np.int8
    assert values["input"].dtype == np.float32 and values["prob"].dtype == np.float32
    scores = qnet.predict(data[:2])
    assert np.array_equal(scores, values["prob"])
    pool, prob = qnet.predict(data[:2], outputs=["pool", "prob"])
    assert pool.numerictype == numerictype(1, 8, values["pool"].f)
    assert np.array_equal(pool.stored_integer, values["pool"].q)
    assert np.array_equal(pool.double(), values["pool"].q * 2.0 ** -values["pool"].f)
    assert np.array_equal(prob, values["prob"])


def test_skip_layers_keep_float_with_boundaries(calibrated, data):
    q, _ = calibrated
    # original name "bn" maps to the prepared layer holding it ("conv")
    qnet = q.quantize(skip_layers=["bn"])
    assert "conv" not in qnet.quantized_layer_names
    # relu/pool are conditional: their input is now float, so they run in float too
    assert qnet.quantized_layer_names == ["fc"]
    check_against_oracle(qnet, data[:4])
    float_pool = q.prepared_network.predict(data[:4], outputs="pool")
    values = qnet.run({"input": data[:4]}, outputs=["pool"])
    assert np.array_equal(values["pool"], float_pool)


def test_errors_say_what_to_do(data):
    q = dlquantizer(small_net(), "MATLAB")
    with pytest.raises(ValueError, match=r"call calibrate\(data\) first"):
        q.quantize()
    with pytest.raises(ValueError, match=r"input layer 'input' must have shape \(N, 1, 6, 6\).*\(8, 6, 6\)"):
        q.calibrate(np.zeros((8, 6, 6), np.float32), progress=False)
    q.calibrate(data, progress=False)
    with pytest.raises(ValueError, match=r"skip_layers: unknown layer names \['nope'\]; valid names: .*conv"):
        q.quantize(skip_layers=["nope"])
    with pytest.raises(ValueError, match="exponent_scheme"):
        q.quantize("Entropy")
    cpu = dlquantizer(small_net(), "CPU")
    cpu.calibrate(data, progress=False)
    with pytest.raises(ValueError, match="quantize is not supported for the CPU execution environment.*"
                                         "choose MATLAB, GPU or FPGA"):
        cpu.quantize()
    with pytest.raises(ValueError, match="execution_environment"):
        dlquantizer(small_net(), "TPU")
    with pytest.raises(ValueError, match="empty"):
        dlquantizer(small_net(), "MATLAB").calibrate(data[:0], progress=False)


def test_validate_metrics_and_memory(calibrated, data):
    q, _ = calibrated
    labels = np.argmax(q.prepared_network.predict(data), axis=1)
    result = q.validate((data, labels), metric=["top1", lambda s, y: float(np.mean(s.max(axis=1)))])
    assert result.num_samples == len(data)
    assert result.metric_results.loc["Floating-Point", "top1"] == 100.0
    qnet = q.quantize()
    assert result.metric_results.loc["Quantized", "top1"] == top1(qnet.predict(data), labels)
    # B.4: conv 36 weights + 4 bias, fc 108 weights + 3 bias (prepared network)
    float_bytes = (36 + 4 + 108 + 3) * 4
    quant_bytes = 36 + 108 + (4 + 3) * 4
    assert result.statistics["LearnableParameterMemory(bytes)"].tolist() == [float_bytes, quant_bytes]
    assert result.memory_reduction == pytest.approx(100 * (1 - quant_bytes / float_bytes))
    with pytest.raises(ValueError, match="metric: unknown name 'top5'"):
        q.validate((data, labels), metric="top5")
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        q.validate([data], metric="top1")


def test_memory_matches_the_spec_example():
    layer = make_layer("Convolution2D", "c", weights=np.zeros((64, 3, 3, 3)), bias=np.zeros(64))
    net = Network([make_layer("ImageInput", "i", input_size=(3, 8, 8)), layer], [("i", "c")])
    assert learnable_memory(net, {"c"}) == (7168, 1984)


def test_cpu_validate_reports_float_metric_and_estimated_memory(data):
    q = dlquantizer(small_net(), "CPU")
    labels = np.zeros(len(data), int)
    result = q.validate((data, labels))
    assert list(result.metric_results.index) == ["Floating-Point"]
    assert result.memory_reduction > 60


def test_save_and_load_give_identical_bits(calibrated, data, tmp_path):
    q, _ = calibrated
    qnet = q.quantize("Histogram", per_channel=True)
    path = tmp_path / "q.npz"
    qnet.save(path)
    loaded = load_quantized_network(path)
    assert loaded.quantized_layer_names == qnet.quantized_layer_names
    assert loaded.target.name == "FPGA" and loaded.options == qnet.options
    names = qnet.network.layer_names
    a = qnet.run({"input": data}, outputs=names)
    b = loaded.run({"input": data}, outputs=names)
    for name in names:
        x, y = a[name], b[name]
        if isinstance(x, QTensor):
            assert x.f == y.f and np.array_equal(x.q, y.q)
        else:
            assert np.array_equal(x, y)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match="plain.npy"):
        load_quantized_network(tmp_path / "plain.npy")


@pytest.mark.parametrize("layer, message", [
    (make_layer("AveragePooling2D", "odd", pool_size=2, stride=2, ceil_mode=True), "ceil_mode.*skip_layers=\\['odd'\\]"),
    (make_layer("LeakyReLU", "odd", scale=-0.5), "negative scale"),
])
def test_layers_without_an_integer_form_name_themselves_and_the_way_out(layer, message):
    net = Network([make_layer("ImageInput", "input", input_size=(1, 5, 5)),
                   make_layer("Convolution2D", "conv", weights=np.ones((2, 1, 1, 1)), bias=np.zeros(2)), layer],
                  [("input", "conv"), ("conv", "odd")])
    q = dlquantizer(net, "MATLAB")
    q.calibrate(np.random.default_rng(0).normal(size=(4, 1, 5, 5)).astype(np.float32), progress=False)
    with pytest.raises(ValueError, match=message):
        q.quantize()
    assert q.quantize(skip_layers=["odd"]).quantized_layer_names == ["conv"]


def test_histogram_scheme_trades_a_rare_outlier_for_resolution(data):
    spiky = data.copy()
    spiky[0, 0, 0, 0] = 100.0  # one value in 2304 -> above a 1e-4 threshold, below 1e-3
    q = dlquantizer(small_net(), "MATLAB")
    q.calibrate(spiky, progress=False)
    f_minmax = q.quantize("MinMax").qlayers["conv"].input_fraction_lengths[0]
    assert f_minmax == 6 - 6  # max 100 -> floor(log2 100) = 6
    assert q.quantize("Histogram").qlayers["conv"].input_fraction_lengths[0] == f_minmax
    f_loose = q.quantize("Histogram", histogram_threshold=1e-3).qlayers["conv"].input_fraction_lengths[0]
    assert f_loose == 7  # the bulk lies in bins k <= 0, i.e. |x| <= 1: the s8,7 window (bin approximation)


def test_save_and_load_with_slashes_in_layer_names(tmp_path):
    rng = np.random.default_rng(0)
    layers = [make_layer("ImageInput", "in", input_size=(1, 4, 4)),
              make_layer("Convolution2D", "a/b", weights=rng.normal(size=(2, 1, 3, 3)), bias=np.ones(2)),
              make_layer("Convolution2D", "a", weights=rng.normal(size=(2, 2, 1, 1)), bias=np.zeros(2))]
    q = dlquantizer(Network(layers, [("in", "a/b"), ("a/b", "a")]), "MATLAB")
    x = rng.normal(size=(4, 1, 4, 4)).astype(np.float32)
    q.calibrate(x, progress=False)
    qnet = q.quantize(per_channel=True)
    qnet.save(tmp_path / "s.npz")
    loaded = load_quantized_network(tmp_path / "s.npz")
    for name in ("a/b", "a"):
        assert np.array_equal(loaded.qlayers[name].weights, qnet.qlayers[name].weights)
        assert np.array_equal(loaded.qlayers[name].bias, qnet.qlayers[name].bias)
    assert np.array_equal(loaded.predict(x), qnet.predict(x))


def test_learnables_are_on_the_quantized_grid_and_summary_marks_quantized_layers(calibrated, capsys):
    q, _ = calibrated
    qnet = q.quantize(per_channel=True)
    table = qnet.learnables
    weights = table[(table.Layer == "conv") & (table.Parameter == "Weights")].Value.iloc[0]
    ql = qnet.qlayers["conv"]
    f = ql.weight_fraction_lengths.reshape(-1, 1, 1, 1)
    assert weights.dtype == np.float32 and np.array_equal(weights * 2.0 ** f, ql.weights)
    bias = table[(table.Layer == "fc") & (table.Parameter == "Bias")].Value.iloc[0]
    assert np.array_equal(bias * 2.0 ** qnet.qlayers["fc"].bias_fraction_lengths, qnet.qlayers["fc"].bias)
    summary = qnet.summary()
    assert "4 of 6 layers quantized" in capsys.readouterr().out
    marks = dict(zip(summary.Name, summary.Quantized))
    assert marks == {"input": "no", "conv": "yes", "relu": "yes", "pool": "yes", "fc": "yes", "prob": "no"}
    assert dict(zip(summary.Name, summary["Output type"]))["fc"] == f"s8,{qnet.qlayers['fc'].output_fraction_length}"


def test_quantized_integer_data_cannot_change_under_the_packed_kernels(calibrated, data):
    """The kernels compute from copies packed at quantize time; an in-place edit of the stored
    integers would silently disagree with them, so it is refused."""
    q, _ = calibrated
    qnet = q.quantize()
    conv = qnet.qlayers["conv"]
    for name in ("weights", "bias", "shifts"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(conv, name)[...] = 0
    assert np.array_equal(qnet.predict(data[:4]), q.quantize().predict(data[:4]))
