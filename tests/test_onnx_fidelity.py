"""Float fidelity of imported ONNX models against ONNX Runtime (and the ONNX reference outputs):
the `light_*` architecture models shipped with the onnx package, networks exported from PyTorch,
and the ONNX backend node tests of the operators we map. Target: 1e-4 relative (max over
elements, relative to the largest reference magnitude)."""
import importlib
import io
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import numpy_helper, shape_inference, version_converter  # noqa: E402

import fixedpoint as fp  # noqa: E402
from fixedpoint.onnx import OnnxImportError  # noqa: E402

TOLERANCE = 1e-4
LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SLOW = os.environ.get("FIXEDPOINT_SLOW_TESTS") == "1"


def rel_err(got, want):
    want = np.asarray(want, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want)))


def run_ort(model, *xs):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip([i.name for i in session.get_inputs()], xs)))


# --- light_* architecture models ---------------------------------------------------------------

def randomized_light_model(name, seed=0):
    """The light model converted from its opset 9 to opset 13, with the input of its last Softmax
    added as an output (a softmax of random logits saturates to one-hot and would hide
    differences), and every constant-filled weight (a ConstantOfShape node) replaced by a seeded
    random initializer. Conversion and shape inference run before the weights exist (fast)."""
    model = onnx.load(os.path.join(LIGHT_DIR, f"light_{name}.onnx"))
    fills = {t.name for t in model.graph.initializer}
    model.graph.ClearField("input")            # opset-9 style: initializers listed as inputs
    model.graph.input.extend(i for i in onnx.load(os.path.join(
        LIGHT_DIR, f"light_{name}.onnx")).graph.input if i.name not in fills)
    model.ir_version = max(model.ir_version, 7)
    model = version_converter.convert_version(model, 13)
    softmax = [node for node in model.graph.node if node.op_type == "Softmax"]
    if softmax:
        info = {v.name: v for v in shape_inference.infer_shapes(model).graph.value_info}
        model.graph.output.insert(0, info[softmax[-1].input[0]])
    rng = np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes, new = [], []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            if len(shape) >= 2:      # weights: He-style scale keeps activations of order one
                value = rng.standard_normal(shape, dtype=np.float32)
                value *= np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
            else:                    # biases, scales, means, variances: positive, near one
                value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            new.append(numpy_helper.from_array(value, node.output[0]))
        else:
            nodes.append(node)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used] + new
    del model.graph.node[:], model.graph.initializer[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(kept)
    return model


LIGHT_MODELS = [
    "squeezenet", "shufflenet", "resnet50", "inception_v1", "inception_v2", "densenet121",
    "bvlc_alexnet",
    pytest.param("zfnet512", marks=pytest.mark.skipif(
        not SLOW, reason="ZFNet-512 uses AlexNet's operators; its 250 MB of random weights take "
                         "~10 s to build and check; set FIXEDPOINT_SLOW_TESTS=1 to run it")),
    pytest.param("vgg19", marks=pytest.mark.skipif(
        not SLOW, reason="VGG-19 holds 144M weights (0.6 GB float32) and 20 GFLOPs; set "
                         "FIXEDPOINT_SLOW_TESTS=1 to run it")),
]


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_onnxruntime(name):
    model = randomized_light_model(name)
    net = fp.import_onnx(model)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    want = run_ort(model, x)
    got = net.predict(x)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert np.std(w) > 0
        assert rel_err(g, w) < TOLERANCE


# --- networks exported from PyTorch ---------------------------------------------------------------

def torch_models():
    """A torchvision-style MobileNetV2 and ResNet-18 (reduced width), random weights and batch
    statistics, in inference mode."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def conv_bn(cin, cout, k=3, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.use_res = stride == 1 and cin == cout
            self.conv = nn.Sequential(
                *([conv_bn(cin, hidden, 1)] if expand != 1 else []),
                conv_bn(hidden, hidden, 3, stride, groups=hidden),
                conv_bn(hidden, cout, 1, act=False))

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, width=8, classes=10):
            super().__init__()
            settings = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 24, 2, 2), (6, 32, 2, 1)]
            blocks, cin = [conv_bn(3, width, 3, 2)], width
            for t, c, n, s in settings:
                for i in range(n):
                    blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            blocks.append(conv_bn(cin, 64, 1))
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self, width=8, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            stages, cin = [], width
            for k, stride in enumerate((1, 2, 2, 2)):
                cout = width * 2 ** k
                stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*stages)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.layers(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
            x = self.avgpool(x)
            return self.fc(x.view(x.size(0), -1))    # exported as Shape/Gather/.../Reshape

    torch.manual_seed(0)
    models = {"mobilenet_v2": MobileNetV2(), "resnet18": ResNet18()}
    for module in models.values():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
        module.eval()
    return torch, models


def export_torch(torch, module, x):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), buffer, dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_pytorch_export_matches_onnxruntime_and_torch(name):
    torch, models = torch_models()
    module = models[name]
    x = np.random.default_rng(2).standard_normal((3, 3, 96, 96), dtype=np.float32)
    model = export_torch(torch, module, x[:1])
    net = fp.import_onnx(model)
    ops = {node.op_type for node in model.graph.node}
    if name == "resnet18":
        assert "Shape" in ops or "Reshape" in ops
        assert not any(layer.type_name == "Shape" for layer in net.layers)
    else:
        assert any(getattr(layer, "is_depthwise", False) for layer in net.layers)
    got = net.predict(x)                    # a batch of 3 from a model exported with batch 1
    assert rel_err(got, run_ort(model, x)[0]) < TOLERANCE
    with torch.no_grad():
        assert rel_err(got, module(torch.from_numpy(x)).numpy()) < TOLERANCE


# --- ONNX backend node tests --------------------------------------------------------------------

NODE_TEST_MODULES = [
    "averagepool", "batch_normalization", "conv", "gemm", "globalaveragepool", "globalmaxpool",
    "lrn", "matmul", "maxpool", "softmax", "flatten", "identity", "relu", "sigmoid", "tanh",
    "leakyrelu", "clip", "dropout", "add", "mul", "sub", "div", "sum", "concat", "reshape",
    "transpose", "squeeze", "unsqueeze", "reducemean", "reducemax", "pad",
]
# Element-wise operators: their rank-1 and rank-3 test data are lifted to rank 2 / 4 by a leading
# unit (batch) axis, which does not change an element-wise result.
ELEMENTWISE = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Dropout", "Identity", "Add",
               "Mul", "Sub", "Div", "Sum"}
# Cases that must pass (a regression list); every other collected case must be rejected with an
# OnnxImportError (an unsupported feature), never give a wrong answer or another exception.
EXPECTED_PASS = {
    'test_add', 'test_averagepool_2d_ceil',
    'test_averagepool_2d_ceil_last_window_starts_on_pad', 'test_averagepool_2d_default',
    'test_averagepool_2d_pads', 'test_averagepool_2d_pads_count_include_pad',
    'test_averagepool_2d_precomputed_pads',
    'test_averagepool_2d_precomputed_pads_count_include_pad',
    'test_averagepool_2d_precomputed_same_upper', 'test_averagepool_2d_precomputed_strides',
    'test_averagepool_2d_same_lower', 'test_averagepool_2d_same_upper',
    'test_averagepool_2d_strides', 'test_basic_conv_with_padding',
    'test_basic_conv_without_padding', 'test_batchnorm_epsilon', 'test_batchnorm_example',
    'test_clip_default_inbounds_expanded', 'test_clip_default_min', 'test_concat_2d_axis_1',
    'test_concat_2d_axis_negative_1', 'test_conv_with_autopad_same',
    'test_conv_with_strides_and_asymmetric_padding', 'test_conv_with_strides_no_padding',
    'test_conv_with_strides_padding', 'test_dropout_default', 'test_dropout_default_old',
    'test_dropout_default_ratio', 'test_dropout_random_old', 'test_flatten_axis1',
    'test_flatten_default_axis', 'test_flatten_negative_axis3', 'test_gemm_alpha',
    'test_gemm_beta', 'test_gemm_default_no_bias', 'test_gemm_default_scalar_bias',
    'test_gemm_default_single_elem_vector_bias', 'test_gemm_default_vector_bias',
    'test_gemm_default_zero_bias', 'test_gemm_transposeB', 'test_globalaveragepool',
    'test_globalaveragepool_precomputed', 'test_globalmaxpool',
    'test_globalmaxpool_precomputed', 'test_identity', 'test_leakyrelu',
    'test_leakyrelu_default', 'test_leakyrelu_example', 'test_lrn', 'test_lrn_default',
    'test_matmul_2d', 'test_maxpool_2d_ceil', 'test_maxpool_2d_ceil_output_size_reduce_by_one',
    'test_maxpool_2d_default', 'test_maxpool_2d_pads', 'test_maxpool_2d_precomputed_pads',
    'test_maxpool_2d_precomputed_same_upper', 'test_maxpool_2d_precomputed_strides',
    'test_maxpool_2d_same_lower', 'test_maxpool_2d_same_upper', 'test_maxpool_2d_strides',
    'test_mul', 'test_mul_example', 'test_relu', 'test_sigmoid', 'test_sigmoid_example',
    'test_softmax_example', 'test_softmax_large_number', 'test_squeeze_negative_axes',
    'test_sub_bcast', 'test_sum_example', 'test_sum_one_input', 'test_sum_two_inputs',
    'test_tanh', 'test_tanh_example', 'test_training_dropout_zero_ratio',
    'test_unsqueeze_negative_axes',
}


def node_test_cases():
    """The generated node test cases of the operators we map (only their modules are loaded; the
    full collection takes several seconds)."""
    package = importlib.import_module("onnx.backend.test.case.node")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for module in NODE_TEST_MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
    collected = getattr(package, "_NodeTestCases", None)
    if collected is None:      # a future onnx without the registry: collect everything
        collected = package.collect_testcases()
    mapped = set(fp.onnx.HANDLERS)
    cases = {case.name: case for case in collected
             if case.model is not None and case.model.graph.node
             and {n.op_type for n in case.model.graph.node} <= mapped}
    return [cases[name] for name in sorted(cases)]


def prepared_node_test(case):
    """(model, first input, expected outputs): inputs after the first that differ in shape from
    it become initializers (our layers hold weights as constants); element-wise cases on rank 1 or
    3 are lifted by a leading unit axis."""
    inputs, outputs = case.data_sets[0]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    first = np.asarray(inputs[0])
    lift = first.ndim in (1, 3) and {n.op_type for n in model.graph.node} <= ELEMENTWISE
    runtime, feeds = [], []
    for k, (info, value) in enumerate(zip(list(model.graph.input), inputs)):
        value = np.asarray(value)
        if k == 0 or (value.shape == first.shape and value.dtype == first.dtype):
            runtime.append(info)
            feeds.append(value[None] if lift else value)
        else:
            model.graph.initializer.append(numpy_helper.from_array(value, info.name))
    del model.graph.input[:]
    model.graph.input.extend(runtime)
    if lift:
        for info in list(model.graph.input) + list(model.graph.output):
            info.type.tensor_type.shape.dim.insert(0, onnx.TensorShapeProto.Dimension(dim_value=1))
        outputs = [np.asarray(o)[None] for o in outputs]
    return model, feeds, outputs


def test_node_tests_pass_or_are_rejected_cleanly():
    passed, rejected = [], {}
    for case in node_test_cases():
        model, feeds, outputs = prepared_node_test(case)
        try:
            net = fp.import_onnx(model)
        except OnnxImportError as error:
            rejected[case.name] = str(error)
            continue
        got = net.predict(*feeds, outputs=net.output_names)
        assert len(got) == len(outputs), case.name
        for g, w in zip(got, outputs):
            assert g.shape == w.shape, case.name
            np.testing.assert_allclose(g, w, rtol=max(case.rtol, 1e-5),
                                       atol=max(case.atol, 1e-6), err_msg=case.name)
        passed.append(case.name)
    assert EXPECTED_PASS <= set(passed), sorted(EXPECTED_PASS - set(passed))
    assert len(passed) >= len(EXPECTED_PASS)
