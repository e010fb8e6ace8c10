"""`fixedpoint quantize` and `fixedpoint demo`: the files and numbers equal the Python API's."""
import io
import json

import numpy as np
import pandas as pd
import pytest

import fixedpoint as fp
from fixedpoint import cli

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

needs_importer = pytest.mark.skipif(not hasattr(fp, "import_onnx"),
                                    reason="the ONNX importer is not part of this build")
needs_examples = pytest.mark.skipif(not hasattr(fp, "examples"),
                                    reason="the bundled digits examples are not part of this build")


def tiny_onnx(path, seed=0):
    rng = np.random.default_rng(seed)
    init = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "w1"),
            numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b1"),
            numpy_helper.from_array(rng.normal(0, 0.3, (3, 36)).astype(np.float32), "w2"),
            numpy_helper.from_array(rng.normal(0, 0.1, 3).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def run_quantize_command(tmp_path, model, load):
    rng = np.random.default_rng(1)
    x_cal = rng.uniform(0, 1, (40, 1, 6, 6)).astype(np.float32)
    x_val = rng.uniform(0, 1, (30, 1, 6, 6)).astype(np.float32)
    net = load(str(model))
    y_val = np.argmax(net.predict(x_val), axis=1)
    np.savez(tmp_path / "cal.npz", x=x_cal)
    np.savez(tmp_path / "val.npz", x=x_val, y=y_val)
    out = tmp_path / "out"
    code = cli.main(["quantize", str(model), "--calibration", str(tmp_path / "cal.npz"), "--validation",
                     str(tmp_path / "val.npz"), "--environment", "FPGA", "--exponent-scheme", "Histogram",
                     "--quiet", "--out", str(out)])
    assert code == 0
    q = fp.dlquantizer(net, "FPGA")
    table = q.calibrate(x_cal, progress=False)
    qnet = q.quantize("Histogram")
    written = pd.read_csv(out / "calibration.csv")
    assert list(written.columns) == list(table.columns)
    assert list(written["Optimized Layer Name"]) == list(table["Optimized Layer Name"])
    assert np.array_equal(written["MinValue"].to_numpy(np.float32), table["MinValue"].to_numpy(np.float32))
    loaded = fp.load_quantized_network(out / "quantized_network.npz")
    assert np.array_equal(loaded.predict(x_val), qnet.predict(x_val))
    details = json.loads((out / "details.json").read_text())
    assert details["target_library"] == "fpga"
    assert details["quantized_layer_names"] == qnet.quantized_layer_names
    validation = json.loads((out / "validation.json").read_text())
    expected = q.validate((x_val, y_val), exponent_scheme="Histogram")
    assert validation["top1"]["Quantized"] == expected.metric_results.loc["Quantized", "top1"]
    assert validation["memory_bytes"]["Quantized"] == expected.statistics.iloc[1, 0]


def test_quantize_command_on_a_saved_network(tmp_path):
    from test_quant_workflow import small_net
    model = tmp_path / "net.npz"
    fp.save_network(small_net(), model)
    run_quantize_command(tmp_path, model, fp.load_network)


@needs_importer
def test_quantize_command_on_onnx(tmp_path):
    model = tmp_path / "tiny.onnx"
    tiny_onnx(model)
    run_quantize_command(tmp_path, model, fp.import_onnx)


def test_quantize_command_reports_errors(tmp_path, capsys):
    from test_quant_workflow import small_net
    model = tmp_path / "net.npz"
    fp.save_network(small_net(), model)
    np.savez(tmp_path / "cal.npz", images=np.zeros((2, 1, 6, 6), np.float32))
    code = cli.main(["quantize", str(model), "--calibration", str(tmp_path / "cal.npz"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "must hold an array 'x'" in capsys.readouterr().err
    np.savez(tmp_path / "cal.npz", x=np.zeros((2, 6, 6), np.float32))
    code = cli.main(["quantize", str(model), "--calibration", str(tmp_path / "cal.npz"), "--quiet",
                     "--out", str(tmp_path / "o")])
    assert code == 2
    assert "input layer 'input' must have shape (N, 1, 6, 6)" in capsys.readouterr().err


def check_evaluate(net, x_cal, x_val, y_val):
    rows = cli.evaluate(net, x_cal, (x_val, y_val), environments=("FPGA",), schemes=("MinMax",))
    q = fp.dlquantizer(net, "FPGA")
    q.calibrate(x_cal, progress=False)
    result = q.validate((x_val, y_val))
    assert rows == [("FPGA", "MinMax", result.metric_results.loc["Floating-Point", "top1"],
                     result.metric_results.loc["Quantized", "top1"], int(result.statistics.iloc[0, 0]),
                     int(result.statistics.iloc[1, 0]), result.memory_reduction)]
    return rows[0]


def test_evaluate_rows_equal_validate():
    from test_quant_workflow import small_net
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (60, 1, 6, 6)).astype(np.float32)
    net = small_net()
    check_evaluate(net, x[:30], x[30:], np.argmax(net.predict(x[30:]), axis=1))


@needs_examples
def test_digits_cnn_int8_within_one_point_of_float():
    (x_cal, _), (x_val, y_val) = fp.examples.digits_data()
    row = check_evaluate(fp.examples.digits_cnn(), x_cal, x_val, y_val)
    assert abs(row[3] - row[2]) <= 1.0  # acceptance: int8 within 1 percentage point of float


@needs_examples
def test_demo_prints_both_models_for_every_environment_and_scheme():
    stream = io.StringIO()
    assert cli.demo(out=stream) == 0
    text = stream.getvalue()
    assert "digits CNN" in text and "digits MobileNet-style" in text
    rows = [line for line in text.splitlines() if line.startswith("| MATLAB") or line.startswith("| FPGA")]
    assert len(rows) == 8


def test_demo_shows_each_runtime_on_the_bundled_models():
    stream = io.StringIO()
    cli.runtimes_demo(*fp.examples.digits_data()[1], out=stream)
    text = stream.getvalue()
    accuracy = {cells[0]: cells[1] for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| "))
        if cells[0].startswith(("onnxruntime", "litert"))}
    # MobileNet, 1258 validation images: exact counts 1225 / 1214 / 1225 (ORT), 1223 (LiteRT, every resolver)
    assert accuracy["onnxruntime-vnni"] == "97.38" and accuracy["onnxruntime-avx2"] == "96.50"
    assert accuracy["onnxruntime-reference"] == "97.38"
    assert accuracy["litert"] == accuracy["litert-optimized"] == accuracy["litert-reference"] == "97.22"
    assert "Layers whose integers differ from onnxruntime-vnni" in text and "| pw2 " in text
