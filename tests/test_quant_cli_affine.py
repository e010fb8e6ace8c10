"""`fixedpoint quantize --environment ONNXRuntime | LiteRT`: the files equal the Python API's, and the
QDQ model ONNX Runtime runs computes what the saved network predicts."""
import json

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint import cli

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    (x_cal, _), (x_val, y_val) = fp.examples.digits_data()
    np.savez(directory / "cal.npz", x=x_cal[:200])
    np.savez(directory / "val.npz", x=x_val[:150], y=y_val[:150])
    fp.save_network(fp.examples.digits_cnn(), directory / "cnn.npz")
    return directory, x_cal[:200], x_val[:150], y_val[:150]


@pytest.mark.parametrize("environment,extra", [("ONNXRuntime", ["--activation-dtype", "int8"]),
                                               ("LiteRT", ["--per-tensor"])])
def test_quantize_command_for_runtime_environments(environment, extra, files):
    directory, x_cal, x_val, y_val = files
    out = directory / environment
    code = cli.main(["quantize", str(directory / "cnn.npz"), "--calibration", str(directory / "cal.npz"),
                     "--validation", str(directory / "val.npz"), "--environment", environment, "--quiet",
                     "--out", str(out), *extra])
    assert code == 0
    q = fp.dlquantizer(fp.examples.digits_cnn(), environment)
    q.calibrate(x_cal, progress=False)
    options = {"activation_dtype": "int8"} if environment == "ONNXRuntime" else {"per_channel": False}
    qnet = q.quantize(**options)
    loaded = fp.load_quantized_network(out / "quantized_network.npz")
    assert np.array_equal(loaded.predict(x_val), qnet.predict(x_val))
    details = json.loads((out / "details.json").read_text())
    assert details["target_library"] == environment.lower()
    conv1 = [p for p in details["parameters"] if p["layer"] == "conv1" and p["tensor"] == "Activations"][0]
    assert conv1["dtype"] == "int8" and conv1["scale"] == float(qnet.qlayers["conv1"].output_params.scale[0])
    weights = [p for p in details["parameters"] if p["layer"] == "conv1" and p["tensor"] == "Weights"][0]
    assert weights["per_channel"] == (environment == "ONNXRuntime")
    report = (out / "report.html").read_text()
    assert "<h2>Runtimes</h2>" in report and "Top-1 accuracy" in report
    if environment == "ONNXRuntime":
        session = ort.InferenceSession(str(out / "quantized_model.onnx"), providers=["CPUExecutionProvider"])
        assert np.array_equal(session.run(None, {"input": x_val})[0], loaded.predict(x_val))
    else:
        assert not (out / "quantized_model.onnx").exists()


def test_quantize_command_refuses_runtime_options_for_matlab(files, capsys):
    directory = files[0]
    code = cli.main(["quantize", str(directory / "cnn.npz"), "--calibration", str(directory / "cal.npz"),
                     "--environment", "MATLAB", "--reduce-range", "--quiet", "--out", str(directory / "m")])
    assert code == 2 and "apply to the ONNXRuntime and LiteRT" in capsys.readouterr().err
    code = cli.main(["quantize", str(directory / "cnn.npz"), "--calibration", str(directory / "cal.npz"),
                     "--environment", "LiteRT", "--exponent-scheme", "Histogram", "--quiet",
                     "--out", str(directory / "l")])
    assert code == 2 and "MinMax" in capsys.readouterr().err
