"""A QDQ model from PyTorch's ONNX exporter (a QAT network with FakeQuantize modules: per-channel int8
weights, uint8 activations, float biases, Relu between Conv and Q, float GlobalAveragePool / Flatten /
Gemm before the last Q) imported and run as ONNX Runtime runs it, bit for bit. ORT's Level-1
WeightBiasQuantization turns the float biases into int32 so the convolutions fuse into QLinearConv
(saturating on AVX2) in the optimized graph; ORT_DISABLE_ALL runs them in float."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fixedpoint as fp  # noqa: E402

from test_onnx_quantized_import import AVX2_HOST, _session  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.conv1, self.relu1 = torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU()
        self.conv2, self.relu2 = torch.nn.Conv2d(6, 12, 3, padding=1, stride=2), torch.nn.ReLU()
        self.pool, self.fc = torch.nn.AdaptiveAvgPool2d(1), torch.nn.Linear(12, 10)

    def forward(self, x):
        x = self.relu1(self.conv1(self.quant(x)))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.dequant(self.fc(torch.flatten(x, 1)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver,
                                       MovingAveragePerChannelMinMaxObserver, QConfig)
    torch.manual_seed(0)
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    net = Net().train()
    net.qconfig = QConfig(
        activation=FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                          dtype=torch.quint8, qscheme=torch.per_tensor_affine),
        weight=FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128,
                                      quant_max=127, dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    torch.ao.quantization.fuse_modules_qat(net, [["conv1", "relu1"], ["conv2", "relu2"]], inplace=True)
    torch.ao.quantization.prepare_qat(net, inplace=True)
    with torch.no_grad():
        for i in range(0, len(x_cal), 64):
            net(torch.from_numpy(x_cal[i:i + 64]))
    net.eval()
    net.apply(torch.ao.quantization.disable_observer)
    path = str(tmp_path_factory.mktemp("torch") / "qat.onnx")
    torch.onnx.export(net, (torch.from_numpy(x_val[:4]),), path, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
    return path, x_val


def test_pytorch_qat_export_equals_onnxruntime(exported):
    path, x_val = exported
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Relu", "Gemm"} <= ops
    qnet = fp.import_onnx(path)
    convs = [ql for ql in qnet.qlayers.values() if ql.type_name == "Convolution2D"]
    assert len(convs) == 2 and all(ql.ort_op == "QLinearConv" for ql in convs)
    x = np.concatenate([x_val, np.random.default_rng(3).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    assert np.array_equal(qnet.predict(x), _session(path).run(None, {"x": x})[0])
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"),
                          _session(path, disable=True).run(None, {"x": x})[0])
    if AVX2_HOST:
        assert np.array_equal(qnet.predict(x, runtime="onnxruntime-avx2-precise"),
                              _session(path, precise=True).run(None, {"x": x})[0])
