"""The per-layer error study and the HTML report: exact values on constructed networks, and a
report file that stands alone."""
import math
import re

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint import cli
from fixedpoint.nn import Network
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization import dlquantizer


def identity_fc(environment):
    """in -> fc (one weight 1.0, bias 0) -> relu. Calibrated on [-1, 0.5]: input, fc and relu all
    get f = 7, the weight f = 6 (q_w = 64), shift 7 + 6 - 7 = 6: the fc passes its int8 input on
    unchanged, so every error is the input quantization's, known exactly."""
    layers = [make_layer("FeatureInput", "in", num_features=1),
              make_layer("FullyConnected", "fc", weights=np.ones((1, 1)), bias=np.zeros(1)),
              make_layer("ReLU", "relu")]
    net = Network(layers, [("in", "fc"), ("fc", "relu")])
    q = dlquantizer(net, environment)
    q.calibrate(np.array([[-1.0], [0.5]], np.float32), progress=False)
    qnet = q.quantize()
    assert qnet.qlayers["fc"].input_fraction_lengths == [7]
    assert qnet.qlayers["fc"].output_fraction_length == 7
    assert list(qnet.qlayers["fc"].weights.ravel()) == [64]
    return q, qnet


def row(table, layer):
    return table.set_index("Layer").loc[layer]


def test_sqnr_and_max_error_exact():
    _, qnet = identity_fc("MATLAB")
    small = 0.25 + 2.0 ** -9                       # 32.25 LSB: rounds to 32, error -2^-9
    x = np.array([[0.5], [small], [-0.75]], np.float32)
    table = fp.quantization_error(qnet, x)
    assert list(table["Layer"]) == ["fc", "relu"]
    fc = row(table, "fc")
    signal = 0.25 + small ** 2 + 0.5625
    assert fc["SQNR (dB)"] == pytest.approx(10 * math.log10(signal / 2.0 ** -18), rel=1e-12)
    assert fc["Max abs error"] == 2.0 ** -9
    assert fc["Elements"] == 3 and bool(fc["Quantized"]) and fc["Output type"] == "int8, f=7"
    # relu: the same error on the positive values, none on the negative one
    assert row(table, "relu")["SQNR (dB)"] == pytest.approx(
        10 * math.log10((0.25 + small ** 2) / 2.0 ** -18), rel=1e-12)
    exact = fp.quantization_error(qnet, np.array([[0.5], [-0.25]], np.float32))
    assert row(exact, "fc")["SQNR (dB)"] == math.inf and row(exact, "fc")["Max abs error"] == 0


@pytest.mark.parametrize("environment, saturated, underflow", [
    # Round (ties away from zero): -128.5 LSB saturates, 0.5 LSB rounds up to 1
    ("MATLAB", 2, 1),
    # Convergent (ties to even): -128.5 LSB rounds to -128, 0.5 LSB rounds to 0
    ("GPU", 1, 2),
])
def test_saturation_and_underflow_counts_follow_the_rounding(environment, saturated, underflow):
    _, qnet = identity_fc(environment)
    lsb = 2.0 ** -7
    x = np.array([[3.0], [-1.0], [-1.0 - lsb / 2], [lsb / 4], [lsb / 2], [0.0], [0.5]], np.float32)
    fc = row(fp.quantization_error(qnet, x, batch_size=3), "fc")
    assert fc["Saturated"] == saturated and fc["Saturated (fraction)"] == saturated / 7
    assert fc["Underflow"] == underflow and fc["Underflow (fraction)"] == underflow / 6


def test_float_layers_have_no_saturation_figures():
    layers = [make_layer("FeatureInput", "in", num_features=3),
              make_layer("FullyConnected", "fc", weights=np.eye(3), bias=np.zeros(3)),
              make_layer("Softmax", "prob")]
    q = dlquantizer(Network(layers, [("in", "fc"), ("fc", "prob")]), "MATLAB")
    q.calibrate(np.random.default_rng(0).normal(0, 1, (10, 3)).astype(np.float32), progress=False)
    q.quantize()
    prob = row(fp.quantization_error(q, np.ones((2, 3), np.float32)), "prob")
    assert not prob["Quantized"] and math.isnan(prob["Saturated"]) and prob["Output type"] == "single"


def test_errors_name_what_to_do():
    q = dlquantizer(identity_fc("MATLAB")[1].network, "MATLAB")
    with pytest.raises(ValueError, match="call q.quantize"):
        fp.quantization_error(q, np.ones((1, 1), np.float32))
    _, qnet = identity_fc("MATLAB")
    with pytest.raises(ValueError, match="at least one observation"):
        fp.quantization_error(qnet, np.zeros((0, 1), np.float32))
    loaded_like = fp.QuantizedNetwork(qnet.network, qnet.qlayers, qnet.activation_fraction_lengths,
                                      qnet.target)
    with pytest.raises(ValueError, match="calibration statistics"):
        fp.quantization_report(loaded_like, "unused.html")


def small_cnn(rng):
    layers = [make_layer("ImageInput", "in", input_size=(2, 6, 6)),
              make_layer("Convolution2D", "conv", weights=rng.normal(0, 0.5, (4, 2, 3, 3)),
                         bias=rng.normal(0, 0.1, 4), padding=1),
              make_layer("ReLU", "relu"),
              make_layer("MaxPooling2D", "pool", pool_size=2, stride=2),
              make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.3, (3, 36)),
                         bias=np.zeros(3)),
              make_layer("Softmax", "prob")]
    names = [layer.name for layer in layers]
    return Network(layers, list(zip(names[:-1], names[1:])))


def check_self_contained(text):
    markup = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text)
    assert not re.search(r"https?:|//[a-z]|<script|<link|@import|url\(", markup, re.I)
    sources = re.findall(r"src='([^']*)'", text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_is_self_contained_with_one_histogram_per_quantized_tensor(tmp_path):
    rng = np.random.default_rng(2)
    q = dlquantizer(small_cnn(rng), "FPGA")
    x = rng.normal(0, 1, (20, 2, 6, 6)).astype(np.float32)
    q.calibrate(x, progress=False)
    result = q.validate((x[:10], np.arange(10) % 3), per_channel=True)
    path = fp.quantization_report(q, tmp_path / "report.html", validation=result, data=x[:5])
    text = (tmp_path / "report.html").read_text()
    assert path == str(tmp_path / "report.html")
    check_self_contained(text)
    # weights and bias of conv and fc, outputs of conv, relu, pool, fc, and the input (read by conv)
    tensors = re.findall(r"data-tensor='([^']*)'", text)
    assert sorted(tensors) == sorted(["conv_Weights", "conv_Bias", "fc_Weights", "fc_Bias", "in",
                                      "conv", "relu", "pool", "fc"])
    assert text.count("data:image/png;base64,") == len(tensors)
    for heading in ("Optimized Layer Name", "SQNR (dB)", "Floating-Point", "Validation",
                    "Saturation % (est.)"):
        assert heading in text
    # the calibration table gives every quantized tensor its type
    assert "int8, f=" in text and "int32, f=" in text


def test_histogram_window_and_estimates():
    from fixedpoint.analysis.report import QuantizedTensor
    from fixedpoint.quantization.calibration import TensorStatistics

    stats = TensorStatistics("t", "Activations", "t")
    # f = 4: representable bins k in [-4, 3]; 2^-6 (k=-6) and 2^-5 (k=-5) underflow, 16 (k=4) saturates
    stats.update(np.array([2.0 ** -6, 2.0 ** -5, 2.0 ** -4, 1.0, 8.0, 16.0, 0.0, 0.0]))
    tensor = QuantizedTensor("t", "Activations", fp.QuantParams.pow2(4), stats)
    assert tensor.window() == (-4, 3) and tensor.type_text == "int8, f=4"
    assert tensor.fractions() == (1 / 8, 2 / 6)
    # uint8, scale 1/8, zero point 8: values down to 1/16 round to the zero point (bins k <= -4 are
    # below the window), magnitudes up to (255 - 8) / 8 = 30.875 fit (bin 4 = (8, 16] is the last whole bin)
    affine = QuantizedTensor("t", "Activations", fp.QuantParams(np.uint8, 0.125, 8), stats)
    assert affine.window() == (-3, 4) and affine.type_text == "uint8, scale=0.125, zero point=8"
    assert affine.fractions() == (0.0, 3 / 6)


def test_cli_quantize_writes_the_report(tmp_path):
    rng = np.random.default_rng(4)
    net = small_cnn(rng)
    fp.save_network(net, tmp_path / "net.npz")
    x = rng.normal(0, 1, (12, 2, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", x=x)
    np.savez(tmp_path / "val.npz", x=x[:6], y=np.arange(6) % 3)
    out = tmp_path / "out"
    assert cli.main(["quantize", str(tmp_path / "net.npz"), "--calibration", str(tmp_path / "cal.npz"),
                     "--validation", str(tmp_path / "val.npz"), "--quiet", "--out", str(out)]) == 0
    text = (out / "report.html").read_text()
    check_self_contained(text)
    assert text.count("data:image/png;base64,") == 9 and "SQNR (dB)" in text
    assert "Floating-Point" in text
