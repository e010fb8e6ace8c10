"""Network graph rules, execution order, intermediate outputs, batching and editing."""
import gc
import weakref

import numpy as np
import pandas as pd
import pytest

import fixedpoint as fp
from fixedpoint import NetworkError

RNG = np.random.default_rng(7)


def randn(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def residual_net():
    """input -> conv -> relu -> (conv2 + relu) -> add -> gap -> flatten -> fc -> softmax."""
    layers = [
        fp.SoftmaxLayer("prob"),      # deliberately out of order: the network sorts topologically
        fp.ImageInputLayer("data", (3, 8, 8)),
        fp.Convolution2DLayer("conv1", randn(4, 3, 3, 3), randn(4), padding="same"),
        fp.ReLULayer("relu1"),
        fp.Convolution2DLayer("conv2", randn(4, 4, 1, 1), randn(4)),
        fp.AdditionLayer("add"),
        fp.GlobalAveragePooling2DLayer("gap"),
        fp.FlattenLayer("flat"),
        fp.FullyConnectedLayer("fc", randn(5, 4), randn(5)),
    ]
    connections = [("data", "conv1"), ("conv1", "relu1"), ("relu1", "conv2"),
                   ("conv2", "add/in1"), ("relu1", "add/in2"), ("add", "gap"), ("gap", "flat"),
                   ("flat", "fc/in"), ("fc", "prob")]
    return fp.Network(layers, connections)


def reference_forward(net, x):
    """Explicit, hand-written walk of the residual network (float64)."""
    c1 = net.layer("conv1").forward(x).astype(np.float64)
    r1 = np.maximum(c1, 0)
    c2 = net.layer("conv2").forward(r1.astype(np.float32)).astype(np.float64)
    pooled = (c2 + r1).mean(axis=(2, 3))
    logits = pooled @ net.layer("fc").weights.T.astype(np.float64) + net.layer("fc").bias
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), r1


def test_structure_and_tables():
    net = residual_net()
    assert [layer.name for layer in net.layers] == [
        "data", "conv1", "relu1", "conv2", "add", "gap", "flat", "fc", "prob"]
    assert net.input_names == ["data"] and net.output_names == ["prob"]
    assert list(net.connections.columns) == ["Source", "Destination"]
    assert ("relu1", "add/in2") in set(map(tuple, net.connections.values))
    assert ("flat", "fc") in set(map(tuple, net.connections.values))
    table = net.learnables
    assert list(table.columns) == ["Layer", "Parameter", "Value"]
    assert list(zip(table.Layer, table.Parameter)) == [
        ("conv1", "Weights"), ("conv1", "Bias"), ("conv2", "Weights"), ("conv2", "Bias"),
        ("fc", "Weights"), ("fc", "Bias")]
    assert table.Value[0] is net.layer("conv1").weights
    assert net.layer_inputs("add") == ["conv2", "relu1"]
    assert net.layer_consumers("relu1") == ["conv2", "add"]
    assert net.origin["conv1"] == ["conv1"]


def test_summary_table(capsys):
    table = residual_net().summary()
    printed = capsys.readouterr().out
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["Name", "Type", "Output shape", "Learnables"]
    row = table.set_index("Name").loc["conv1"]
    assert (row.Type, row["Output shape"], row.Learnables) == ("Convolution2D", "1×4×8×8", 112)
    assert table.set_index("Name").loc["fc", "Output shape"] == "1×5"
    assert "conv1" in printed and "157 learnables" in printed


def test_predict_matches_hand_written_reference_and_intermediates():
    net = residual_net()
    x = randn(3, 3, 8, 8)
    probs, relu = reference_forward(net, x)
    y = net.predict(x)
    assert y.shape == (3, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y, probs, rtol=1e-5)
    got_relu, got_prob = net.predict(x, outputs=["relu1", "prob"])
    np.testing.assert_allclose(got_relu, relu, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got_prob, y)
    assert isinstance(net.predict(x, outputs="relu1"), np.ndarray)
    assert isinstance(net.predict(x, outputs=["prob"]), list)


def test_unknown_output_names_listed():
    with pytest.raises(NetworkError, match=r"unknown layer names \['relu9'\]; layers are .*relu1"):
        residual_net().predict(randn(1, 3, 8, 8), outputs=["relu9"])


def test_wrong_input_count_and_shape():
    net = residual_net()
    with pytest.raises(NetworkError, match="1 inputs"):
        net.predict(randn(1, 3, 8, 8), randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"'data'.*\(1, 3, 7, 8\)"):
        net.predict(randn(1, 3, 7, 8))


def test_intermediates_are_freed_as_soon_as_possible():
    net = residual_net()
    refs = {}

    def compute(layer, *inputs):
        gc.collect()
        # "data" is the caller's own array and "conv1" is requested: both stay alive
        alive = sorted(name for name, ref in refs.items()
                       if ref() is not None and name not in ("data", "conv1"))
        expected = {"data": [], "conv1": [], "relu1": [], "conv2": ["relu1"],
                    "add": ["conv2", "relu1"], "gap": ["add"], "flat": ["gap"],
                    "fc": ["flat", "gap"],          # flat is a view of gap's array
                    "prob": ["fc"]}[layer.name]
        assert alive == expected, (layer.name, alive)
        assert refs.get("conv1", lambda: 1)() is not None
        out = layer.forward(*inputs)
        refs[layer.name] = weakref.ref(out)
        return out

    net.run({"data": randn(1, 3, 8, 8)}, outputs=["conv1", "prob"], compute=compute)


def test_run_only_computes_what_is_needed_unless_observed():
    net = residual_net()
    ran, seen = [], []
    net.run({"data": randn(1, 3, 8, 8)}, outputs=["relu1"],
            compute=lambda layer, *a: ran.append(layer.name) or layer.forward(*a))
    assert ran == ["data", "conv1", "relu1"]
    net.run({"data": randn(1, 3, 8, 8)}, outputs=["relu1"],
            observe=lambda layer, out: seen.append((layer.name, out.shape)))
    assert [name for name, _ in seen] == [layer.name for layer in net.layers]
    assert dict(seen)["gap"] == (1, 4, 1, 1)


def test_minibatch_predict_equals_full_batch():
    net = residual_net()
    x = randn(23, 3, 8, 8)
    full = net.predict(x)
    batched = net.minibatch_predict(x, batch_size=5, progress=False)
    np.testing.assert_allclose(batched, full, rtol=1e-6, atol=1e-7)
    two = net.minibatch_predict(x, batch_size=7, progress=False, outputs=["gap", "prob"])
    assert two[0].shape == (23, 4, 1, 1) and two[1].shape == (23, 5)
    with pytest.raises(ValueError, match="batch_size"):
        net.minibatch_predict(x, batch_size=0)


def test_progress_bar_writes_only_to_terminals():
    import io

    from fixedpoint.progress import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with ProgressBar(10, "predict", stream=stream) as bar:
        bar.update(4)
        bar.update(6)
    assert "10/10" in stream.getvalue() and stream.getvalue().endswith("\n")
    quiet = Terminal()
    with ProgressBar(10, stream=quiet, enabled=False) as bar:
        bar.update(10)
    plain = io.StringIO()
    with ProgressBar(10, stream=plain) as bar:
        bar.update(10)
    assert quiet.getvalue() == "" and plain.getvalue() == ""


def test_multiple_inputs_and_outputs():
    layers = [fp.FeatureInputLayer("a", 3), fp.FeatureInputLayer("b", 3),
              fp.MultiplicationLayer("mul"), fp.TanhLayer("t"), fp.ConcatenationLayer("cat")]
    connections = [("a", "mul/in1"), ("b", "mul/in2"), ("mul", "t"), ("t", "cat/in1"),
                   ("a", "cat/in2")]
    net = fp.Network(layers, connections, input_names=["b", "a"], output_names=["cat", "mul"])
    a, b = randn(4, 3), randn(4, 3)
    cat, mul = net.predict(b, a)
    np.testing.assert_allclose(mul, a * b, rtol=1e-6)
    np.testing.assert_allclose(cat, np.concatenate([np.tanh(a * b), a], axis=1), rtol=1e-6)
    batched = net.minibatch_predict((b, a), batch_size=3, progress=False)
    np.testing.assert_array_equal(batched[0], cat)


# --- graph errors ------------------------------------------------------------------------------
def chain(*extra_connections, layers=None):
    layers = layers or [fp.FeatureInputLayer("in", 2), fp.ReLULayer("r1"), fp.ReLULayer("r2"),
                        fp.AdditionLayer("add")]
    return fp.Network(layers, [("in", "r1"), ("r1", "add/in1"), *extra_connections])


@pytest.mark.parametrize("connections, message", [
    ([("r2", "add/in2")], r"unconnected input ports: \['r2/in'\]"),
    ([("in", "r2"), ("r2", "add/in2"), ("r1", "add/in2")],
     r"input port add/in2 is connected twice \(from 'r2' and 'r1'\)"),
    ([("in", "r2"), ("r2", "add/in3")], r"layer 'add' has input ports \['in1', 'in2'\]"),
    ([("in", "r2"), ("r2", "add")], r"'add' has input ports \['in1', 'in2'\]; name one"),
    ([("in", "r2"), ("r2", "nope/in2")], "unknown destination layer 'nope'"),
    ([("ghost", "r2"), ("r2", "add/in2")], "unknown source layer 'ghost'"),
    ([("in", "r2"), ("r2", "add/in2"), ("r1", "in")], "'in' is an input layer"),
    ([("r2", "r2/in"), ("r2", "add/in2")], r"cycle through layers \['r2'\]"),
    ([("in", "r2"), ("r2", "add/in2"), ("add",)], "must be a \\(source, destination\\) pair"),
])
def test_graph_errors(connections, message):
    with pytest.raises(NetworkError, match=message):
        chain(*connections)


def test_cycle_is_named():
    layers = [fp.FeatureInputLayer("in", 2), fp.AdditionLayer("add"), fp.ReLULayer("r1"),
              fp.TanhLayer("t"), fp.SigmoidLayer("s")]
    connections = [("in", "add/in1"), ("t", "add/in2"), ("add", "r1"), ("r1", "t"), ("t", "s")]
    with pytest.raises(NetworkError, match=r"cycle through layers \['add', 'r1', 't'\]"):
        fp.Network(layers, connections)


def test_duplicates_missing_inputs_and_bad_names():
    with pytest.raises(NetworkError, match=r"duplicate layer names: \['r'\]"):
        fp.Network([fp.FeatureInputLayer("in", 2), fp.ReLULayer("r"), fp.TanhLayer("r")],
                   [("in", "r")])
    with pytest.raises(NetworkError, match="no input layer"):
        fp.Network([], [])
    with pytest.raises(NetworkError, match="input_names"):
        fp.Network([fp.FeatureInputLayer("in", 2), fp.ReLULayer("r")], [("in", "r")],
                   input_names=["r"])
    with pytest.raises(NetworkError, match="output_names: unknown layer names"):
        fp.Network([fp.FeatureInputLayer("in", 2), fp.ReLULayer("r")], [("in", "r")],
                   output_names=["x"])
    with pytest.raises(NetworkError, match="Layer objects"):
        fp.Network(["relu"], [])


# --- editing -----------------------------------------------------------------------------------
def test_replace_remove_insert():
    net = residual_net()
    x = randn(2, 3, 8, 8)
    y = net.predict(x)
    tanh = net.replace_layer("relu1", fp.TanhLayer("act"))
    assert tanh.layer_consumers("act") == ["conv2", "add"] and "relu1" not in tanh.layer_names
    assert tanh.origin["act"] == ["relu1"]
    probs = net.predict(x, outputs="relu1")
    assert not np.allclose(tanh.predict(x, outputs="act"), probs)
    inserted = net.insert_layer_after("relu1", fp.IdentityLayer("id"))
    assert inserted.layer_inputs("conv2") == ["id"]
    assert inserted.layer_inputs("add") == ["conv2", "id"]
    np.testing.assert_array_equal(inserted.predict(x), y)
    removed = inserted.remove_layer("id").remove_layer("flat")
    assert removed.layer_inputs("fc") == ["gap"]
    np.testing.assert_array_equal(removed.predict(x), y)
    tail = net.remove_layer("prob")
    assert tail.output_names == ["fc"]
    assert [layer.name for layer in net.layers][-1] == "prob"       # the original is untouched
    with pytest.raises(NetworkError, match="only single-input layers"):
        net.remove_layer("add")
    with pytest.raises(NetworkError, match="has 1 inputs but 'add' has 2"):
        net.replace_layer("add", fp.ReLULayer("r"))
    with pytest.raises(NetworkError, match="'conv2' already exists"):
        net.insert_layer_after("relu1", fp.ReLULayer("conv2"))


def test_copy_is_independent():
    net = residual_net()
    twin = net.copy()
    x = randn(2, 3, 8, 8)
    np.testing.assert_array_equal(twin.predict(x), net.predict(x))
    assert not np.shares_memory(twin.layer("conv1").weights, net.layer("conv1").weights)
    twin.layer("conv1").bias[...] = 1  # weights are read-only; the bias shows changes stay in the copy
    assert np.any(net.layer("conv1").bias != 1)
    assert twin.connection_list() == net.connection_list()
    from_table = fp.Network(net.layers, net.connections)
    assert from_table.connection_list() == net.connection_list()


def test_in_place_activations_never_clobber_live_values():
    """ReLUs may overwrite their input only when nothing else reads it: here the convolution
    output is also read by a tanh, requested by the caller, or passed through identity/flatten
    views, and the caller's own input array must stay untouched."""
    rng = np.random.default_rng(9)
    layers = [fp.ImageInputLayer("data", (2, 4, 4)),
              fp.Convolution2DLayer("conv", rng.normal(size=(3, 2, 1, 1))),
              fp.ReLULayer("relu"), fp.TanhLayer("tanh"), fp.AdditionLayer("add"),
              fp.IdentityLayer("id"), fp.ClippedReLULayer("clip", 0.5), fp.FlattenLayer("flat"),
              fp.LeakyReLULayer("leaky", 0.5), fp.ReLULayer("relu_in"), fp.DropoutLayer("drop"),
              fp.ReLULayer("relu_drop")]
    connections = [("data", "conv"), ("conv", "relu"), ("conv", "tanh"), ("relu", "add/in1"),
                   ("tanh", "add/in2"), ("add", "id"), ("id", "clip"), ("add", "flat"),
                   ("flat", "leaky"), ("data", "relu_in"), ("data", "drop"), ("drop", "relu_drop")]
    net = fp.Network(layers, connections)
    x = rng.normal(size=(2, 2, 4, 4)).astype(np.float32)
    original = x.copy()
    conv = np.einsum("oc,nchw->nohw", net.layer("conv").weights[:, :, 0, 0].astype(np.float64), x)
    add = np.maximum(conv, 0) + np.tanh(conv)
    want = {"conv": conv, "add": add, "clip": np.clip(add, 0, 0.5),
            "leaky": np.where(add >= 0, add, 0.5 * add).reshape(2, -1),
            "relu_in": np.maximum(x, 0), "relu_drop": np.maximum(x, 0)}
    for outputs in (["clip", "leaky", "relu_in", "relu_drop"], ["relu_drop"],
                    ["conv", "add", "clip", "leaky", "relu_in"]):
        got = net.predict(x, outputs=outputs)
        for name, value in zip(outputs, got):
            np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(x, original)


def test_in_place_activation_used_when_safe(monkeypatch):
    net = residual_net()
    net.fuse_activations = False   # otherwise conv1 applies relu1 itself
    x = randn(2, 3, 8, 8)
    want = net.predict(x, outputs=["conv1", "prob"])[1]     # conv1 asked for: no overwrite
    calls = []
    relu = net.layer("relu1")
    monkeypatch.setattr(relu, "forward_into",
                        lambda v: calls.append(v.shape) or np.maximum(v, 0, out=v))
    np.testing.assert_array_equal(net.predict(x), want)
    assert calls == [(2, 4, 8, 8)]
    net.predict(x, outputs=["conv1", "prob"])
    assert len(calls) == 1


def test_mobilenet_style_network_matches_torch():
    """A MobileNetV2-style graph (stride-2 stem, BN, ReLU6, depthwise-separable inverted residual
    blocks with additions, global pooling, classifier) in torch eval mode and as our layers."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)

    def bn(channels):
        layer = nn.BatchNorm2d(channels)
        with torch.no_grad():
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
            layer.weight.uniform_(0.5, 1.5)
            layer.bias.uniform_(-0.5, 0.5)
        return layer

    def block(cin, cout, stride, expand):
        hidden = cin * expand
        return nn.ModuleList([nn.Conv2d(cin, hidden, 1, bias=False), bn(hidden), nn.ReLU6(),
                              nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                              bn(hidden), nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False),
                              bn(cout)])

    stem = nn.ModuleList([nn.Conv2d(3, 8, 3, 2, 1, bias=False), bn(8), nn.ReLU6()])
    specs = [(8, 8, 1, 3), (8, 16, 2, 4), (16, 16, 1, 4)]      # cin, cout, stride, expansion
    residual = [cin == cout and stride == 1 for cin, cout, stride, _ in specs]
    blocks = [block(*spec) for spec in specs]
    head = nn.Linear(16, 10)
    nn.ModuleList([stem, *blocks, head]).eval()

    def torch_forward(x):
        for m in stem:
            x = m(x)
        for b, skip in zip(blocks, residual):
            y = x
            for m in b:
                y = m(y)
            x = x + y if skip else y
        return head(x.mean(dim=(2, 3)))

    layers, connections = [fp.ImageInputLayer("data", (3, 32, 32))], []

    def add(layer, *sources):
        layers.append(layer)
        connections.extend([(sources[0], layer.name)] if len(sources) == 1 else
                           [(s, f"{layer.name}/in{k + 1}") for k, s in enumerate(sources)])
        return layer.name

    def convert(module, name, source):
        w = lambda t: t.detach().numpy()  # noqa: E731
        if isinstance(module, nn.Conv2d):
            conv = fp.Convolution2DLayer(name, w(module.weight), None, module.stride,
                                         module.padding, module.dilation, module.groups)
            return add(conv, source)
        if isinstance(module, nn.BatchNorm2d):
            return add(fp.BatchNormalizationLayer(name, w(module.weight), w(module.bias),
                                                  w(module.running_mean), w(module.running_var),
                                                  module.eps), source)
        return add(fp.ClippedReLULayer(name, 6.0), source)

    current = "data"
    for k, m in enumerate(stem):
        current = convert(m, f"stem_{k}", current)
    for b, (modules_b, skip) in enumerate(zip(blocks, residual)):
        start = current
        for k, m in enumerate(modules_b):
            current = convert(m, f"block{b}_{k}", current)
        if skip:
            current = add(fp.AdditionLayer(f"add{b}"), start, current)
    current = add(fp.GlobalAveragePooling2DLayer("gap"), current)
    current = add(fp.FlattenLayer("flat"), current)
    add(fp.FullyConnectedLayer("fc", head.weight.detach().numpy(), head.bias.detach().numpy()),
        current)
    net = fp.Network(layers, connections)

    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = torch_forward(torch.tensor(x)).numpy().astype(np.float64)
    got = net.predict(x)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
    prepared = fp.prepare_network(net, cross_layer_equalization=True)
    assert not any(layer.type_name == "BatchNormalization" for layer in prepared.layers)
    assert np.abs(prepared.predict(x) - want).max() / np.abs(want).max() < 1e-4


def test_observer_sees_values_before_in_place_layers_reuse_them():
    net = residual_net()
    x = randn(2, 3, 8, 8)
    seen = {}
    net.run({"data": x}, outputs=[], observe=lambda layer, out: seen.setdefault(layer.name,
                                                                               out.copy()))
    conv1 = net.predict(x, outputs="conv1")
    np.testing.assert_array_equal(seen["conv1"], conv1)
    assert seen["conv1"].min() < 0          # the ReLU after it did not clip what was observed


def test_layer_names_may_contain_slashes(tmp_path):
    """ONNX node names such as "/features/0/Conv" are kept: a whole-name match wins, otherwise the
    text after the last "/" is the port."""
    layers = [fp.FeatureInputLayer("/input", 3), fp.ReLULayer("/block/relu"),
              fp.TanhLayer("/block/tanh"), fp.AdditionLayer("/block/add"),
              fp.FullyConnectedLayer("/head/fc", np.eye(3) * 2)]
    connections = [("/input", "/block/relu"), ("/input/out", "/block/tanh/in"),
                   ("/block/relu", "/block/add/in1"), ("/block/tanh", "/block/add/in2"),
                   ("/block/add", "/head/fc")]
    net = fp.Network(layers, connections)
    assert net.layer_inputs("/block/add") == ["/block/relu", "/block/tanh"]
    assert ("/block/tanh", "/block/add/in2") in net.connection_list()
    x = randn(2, 3)
    np.testing.assert_allclose(net.predict(x), 2 * (np.maximum(x, 0) + np.tanh(x)), rtol=1e-6)
    fp.save_network(net, tmp_path / "slash.npz")
    np.testing.assert_array_equal(fp.load_network(tmp_path / "slash.npz").predict(x), net.predict(x))
    with pytest.raises(NetworkError, match="has input ports \\['in1', 'in2'\\]"):
        fp.Network(layers, connections[:3] + [("/block/tanh", "/block/add/in3"),
                                               ("/block/add", "/head/fc")])
