"""Speed of float inference: `Network.predict` against ONNX Runtime's CPU provider on the same network
and batch, measured in the same run (target: at most 3x ONNX Runtime's time), on the bundled digits
CNN and MobileNet-style models (batches of 1 and 64) and on SqueezeNet at 1x3x224x224 (the onnx
package's light model with seeded random weights).

    python -m pytest bench/bench_float_predict.py --benchmark-only     # pytest-benchmark cases
    python bench/bench_float_predict.py                                 # ratio table (markdown)

On a machine shared with other jobs, threads that wait for each other inflate times by up to 50x
(OpenBLAS, OpenMP and ONNX Runtime alike); `FIXEDPOINT_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1` runs
everything, ONNX Runtime included, on one thread each, which is the reproducible comparison.

When `fp.examples` or `fp.import_onnx` / `fp.export_onnx` are not available, the bench builds
networks of the same shape with the layer classes and translates them to ONNX itself (the few
layer types these networks use), so the comparison still runs on identical weights.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest

import fixedpoint as fp

DIGITS_BATCHES = (1, 64)
SQUEEZENET_BATCH = 1


# ---- networks ------------------------------------------------------------------------------------


def _conv(name, rng, out_ch, in_ch, k, **options):
    fan_in = in_ch * k * k // options.get("groups", 1)
    w = rng.normal(0, np.sqrt(2 / fan_in), (out_ch, in_ch // options.get("groups", 1), k, k))
    return fp.Convolution2DLayer(name, w, rng.normal(0, 0.05, out_ch), **options)


def _bn(name, rng, channels):
    return fp.BatchNormalizationLayer(
        name, mean=rng.normal(0, 0.1, channels), variance=rng.uniform(0.5, 1.5, channels),
        scale=rng.uniform(0.8, 1.2, channels), offset=rng.normal(0, 0.1, channels))


def digits_cnn_like(seed: int = 0) -> fp.Network:
    """conv-BN-ReLU blocks on 1x8x8 inputs, max pooling, global average pooling, FC, softmax."""
    rng = np.random.default_rng(seed)
    layers = [fp.ImageInputLayer("input", (1, 8, 8)),
              _conv("conv1", rng, 16, 1, 3, padding=1), _bn("bn1", rng, 16), fp.ReLULayer("relu1"),
              _conv("conv2", rng, 32, 16, 3, padding=1), _bn("bn2", rng, 32), fp.ReLULayer("relu2"),
              fp.MaxPooling2DLayer("pool", 2, stride=2),
              _conv("conv3", rng, 32, 32, 3, padding=1), _bn("bn3", rng, 32), fp.ReLULayer("relu3"),
              fp.GlobalAveragePooling2DLayer("gap"),
              fp.FullyConnectedLayer("fc", rng.normal(0, 0.25, (10, 32)), np.zeros(10)),
              fp.SoftmaxLayer("softmax")]
    return fp.Network(layers, [(a.name, b.name) for a, b in zip(layers, layers[1:])])


def digits_mobilenet_like(seed: int = 0) -> fp.Network:
    """Depthwise-separable blocks with ReLU6 and a residual addition on 1x8x8 inputs."""
    rng = np.random.default_rng(seed)
    chain = [fp.ImageInputLayer("input", (1, 8, 8)),
             _conv("stem", rng, 16, 1, 3, padding=1), _bn("stem_bn", rng, 16),
             fp.ClippedReLULayer("stem_relu"),
             _conv("dw1", rng, 16, 16, 3, padding=1, groups=16), _bn("dw1_bn", rng, 16),
             fp.ClippedReLULayer("dw1_relu"),
             _conv("pw1", rng, 32, 16, 1), _bn("pw1_bn", rng, 32), fp.ClippedReLULayer("pw1_relu"),
             _conv("dw2", rng, 32, 32, 3, padding=1, groups=32), _bn("dw2_bn", rng, 32),
             fp.ClippedReLULayer("dw2_relu"),
             _conv("pw2", rng, 32, 32, 1), _bn("pw2_bn", rng, 32),
             fp.AdditionLayer("add"), fp.ClippedReLULayer("add_relu"),
             _conv("dw3", rng, 32, 32, 3, stride=2, padding=1, groups=32), _bn("dw3_bn", rng, 32),
             fp.ClippedReLULayer("dw3_relu"),
             _conv("pw3", rng, 32, 32, 1), _bn("pw3_bn", rng, 32), fp.ClippedReLULayer("pw3_relu"),
             fp.GlobalAveragePooling2DLayer("gap"),
             fp.FullyConnectedLayer("fc", rng.normal(0, 0.25, (10, 32)), np.zeros(10)),
             fp.SoftmaxLayer("softmax")]
    connections = [(a.name, b.name + ("/in1" if b.name == "add" else ""))
                   for a, b in zip(chain, chain[1:])]
    connections.append(("pw1_relu", "add/in2"))
    return fp.Network(chain, connections)


def digits_networks() -> list[tuple[str, fp.Network]]:
    examples = getattr(fp, "examples", None)
    if examples is not None:
        return [("digits CNN", examples.digits_cnn()),
                ("digits MobileNet", examples.digits_mobilenet())]
    return [("digits CNN (stand-in)", digits_cnn_like()),
            ("digits MobileNet (stand-in)", digits_mobilenet_like())]


def light_squeezenet_model(seed: int = 0):
    """SqueezeNet from onnx's backend test data as an ONNX model, its constant weights replaced by
    seeded He-init values (biases small)."""
    import onnx
    import onnx.version_converter
    from onnx import numpy_helper

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        "light_squeezenet.onnx")
    model = onnx.load(path)
    rng = np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    graph = model.graph
    nodes, consumed = [], set()
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            consumed.add(node.input[0])
            shape = tuple(int(d) for d in shapes[node.input[0]])
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 0
            value = (rng.normal(0, np.sqrt(2 / fan_in), shape) if fan_in
                     else rng.normal(0, 0.05, shape)).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [t for t in graph.initializer if t.name not in consumed]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    names = {t.name for t in kept}
    inputs = [i for i in graph.input if i.name not in names and i.name not in consumed]
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)  # initializers need not be graph inputs
    return onnx.version_converter.convert_version(model, 13)  # the importer reads opset >= 11


def light_squeezenet(seed: int = 0) -> fp.Network:
    """The seeded light SqueezeNet as a float Network."""
    model = light_squeezenet_model(seed)
    if hasattr(fp, "import_onnx"):
        return fp.import_onnx(model)
    return _network_from_squeezenet_onnx(model)


def _network_from_squeezenet_onnx(model) -> fp.Network:
    """The handful of ONNX ops SqueezeNet uses, mapped to our layers (stand-in for import_onnx)."""
    from onnx import helper, numpy_helper

    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    data = model.graph.input[0]
    dims = [d.dim_value for d in data.type.tensor_type.shape.dim]
    layers, connections, producer = [fp.ImageInputLayer("input", tuple(dims[1:]))], [], {}
    producer[data.name] = "input"
    for k, node in enumerate(model.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        name = f"{node.op_type.lower()}{k}"
        pads = attrs.get("pads", [0, 0, 0, 0])
        if node.op_type == "Conv":
            layer = fp.Convolution2DLayer(name, weights[node.input[1]], weights[node.input[2]],
                                          stride=attrs.get("strides", 1), padding=pads)
            sources = node.input[:1]
        elif node.op_type == "Relu":
            layer, sources = fp.ReLULayer(name), node.input
        elif node.op_type == "MaxPool":
            layer = fp.MaxPooling2DLayer(name, attrs["kernel_shape"], attrs["strides"], pads,
                                         ceil_mode=bool(attrs.get("ceil_mode", 0)))
            sources = node.input
        elif node.op_type == "Concat":
            layer, sources = fp.ConcatenationLayer(name, attrs["axis"], len(node.input)), node.input
        elif node.op_type == "Dropout":
            layer, sources = fp.DropoutLayer(name), node.input[:1]
        elif node.op_type == "GlobalAveragePool":
            layer, sources = fp.GlobalAveragePooling2DLayer(name), node.input
        elif node.op_type == "Softmax":
            layer, sources = fp.SoftmaxLayer(name, axis=1), node.input
        else:
            raise ValueError(f"stand-in importer: unsupported op {node.op_type}")
        layers.append(layer)
        ports = layer.input_ports
        connections += [(producer[s], f"{name}/{p}") for s, p in zip(sources, ports)]
        producer[node.output[0]] = name
    return fp.Network(layers, connections)


def to_onnx(net: fp.Network):
    """Our float network as an ONNX model for ONNX Runtime: `fp.export_onnx` when present,
    otherwise a direct translation of the layer types the digits networks use."""
    if hasattr(fp, "export_onnx"):
        return fp.export_onnx(net)
    return _onnx_from_network(net)


def _onnx_from_network(net: fp.Network):
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    for layer in net.layers:
        name, sources = layer.name, net.layer_inputs(layer.name)
        kind = layer.type_name
        if kind == "ImageInput":
            continue
        if kind == "Convolution2D":
            top, left, bottom, right = layer.padding
            nodes.append(helper.make_node(
                "Conv", [sources[0], const(name + "/W", layer.weights), const(name + "/B", layer.bias)],
                [name], strides=list(layer.stride), pads=[top, left, bottom, right],
                dilations=list(layer.dilation), group=layer.groups,
                kernel_shape=list(layer.filter_size)))
        elif kind == "BatchNormalization":
            p = layer.learnables
            nodes.append(helper.make_node(
                "BatchNormalization", [sources[0]] + [const(f"{name}/{k}", p[k]) for k in (
                    "Scale", "Offset", "TrainedMean", "TrainedVariance")], [name],
                epsilon=layer.epsilon))
        elif kind == "ReLU":
            nodes.append(helper.make_node("Relu", sources, [name]))
        elif kind == "ClippedReLU":
            nodes.append(helper.make_node("Clip", [sources[0], const(name + "/lo", 0.0),
                                                   const(name + "/hi", layer.ceiling)], [name]))
        elif kind == "MaxPooling2D":
            top, left, bottom, right = layer.padding
            nodes.append(helper.make_node("MaxPool", sources, [name],
                                          kernel_shape=list(layer.pool_size),
                                          strides=list(layer.stride),
                                          pads=[top, left, bottom, right]))
        elif kind == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", sources, [name]))
        elif kind == "FullyConnected":
            nodes.append(helper.make_node("Flatten", sources, [name + "/flat"], axis=1))
            nodes.append(helper.make_node("Gemm", [name + "/flat", const(name + "/W", layer.weights),
                                                   const(name + "/B", layer.bias)], [name], transB=1))
        elif kind == "Addition":
            nodes.append(helper.make_node("Sum", sources, [name]))
        elif kind == "Softmax":
            nodes.append(helper.make_node("Softmax", sources, [name], axis=layer.axis))
        else:
            raise ValueError(f"stand-in exporter: unsupported layer type {kind}")
    (input_name,), (output_name,) = net.input_names, net.output_names
    shape = ["N"] + list(net.layer(input_name).input_size)
    graph = helper.make_graph(nodes, "net",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def ort_session(model):
    """An ONNX Runtime CPU session; FIXEDPOINT_NUM_THREADS, when set, also fixes its thread count
    (set OPENBLAS_NUM_THREADS alike for numpy), so that both sides use the same cores."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(os.environ.get("FIXEDPOINT_NUM_THREADS", "0"))
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def cases():
    """(name, batch, our predict, ORT's run), both taking the same float32 batch."""
    rng = np.random.default_rng(1)
    examples = getattr(fp, "examples", None)
    digits = (examples.digits_data()[1][0] if examples is not None
              else rng.uniform(0, 16, (max(DIGITS_BATCHES), 1, 8, 8)).astype(np.float32))
    for name, net in digits_networks():
        session = ort_session(to_onnx(net))
        feed = session.get_inputs()[0].name
        for batch in DIGITS_BATCHES:
            x = np.ascontiguousarray(digits[:batch])
            yield (name, batch, net, x, lambda x, s=session, f=feed: s.run(None, {f: x})[0])
    net = light_squeezenet()
    session = ort_session(light_squeezenet_model())
    feed = session.get_inputs()[0].name
    x = rng.uniform(0, 1, (SQUEEZENET_BATCH, 3, 224, 224)).astype(np.float32)
    yield ("SqueezeNet", SQUEEZENET_BATCH, net, x,
           lambda x, s=session, f=feed: s.run(None, {f: x})[0])


# ---- pytest-benchmark ----------------------------------------------------------------------------

CASE_IDS = [f"{n}-{b}" for n in ("digits CNN", "digits MobileNet") for b in DIGITS_BATCHES] + [
    f"SqueezeNet-{SQUEEZENET_BATCH}"]


@pytest.fixture(scope="module", params=CASE_IDS)
def case(request):
    for name, batch, net, x, ort_run in cases():
        if f"{name.replace(' (stand-in)', '')}-{batch}" == request.param:
            return net, x, ort_run


def test_float_predict(benchmark, case):
    net, x, _ = case
    benchmark(net.predict, x)


def test_onnxruntime(benchmark, case):
    _, x, ort_run = case
    benchmark(ort_run, x)


# ---- ratio table -----------------------------------------------------------------------------------


def min_seconds_interleaved(functions, repeat: int, burst: int = 3) -> list[float]:
    """Minimum time of each function over `repeat` rounds, the functions alternating within each
    round, so that load from other jobs on the machine falls on both alike. Each takes `burst`
    consecutive calls per round: ONNX Runtime's idle workers keep spinning for a while after a
    run, holding a core that OpenBLAS's threads would wait for in the call right after it."""
    best = [float("inf")] * len(functions)
    for _ in range(repeat):
        for k, fn in enumerate(functions):
            for _ in range(burst):
                start = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - start)
    return best


def main(repeat: int = 30):
    """The ratio table; `prepared` is `fp.prepare_network(net)` (batch norm folded into the
    convolutions, as ONNX Runtime folds it when it loads a model)."""
    rows = []
    for name, batch, net, x, ort_run in cases():
        prepared = fp.prepare_network(net)
        ours, theirs = net.predict(x), ort_run(x)
        error = float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))
        t_ours, t_prepared, t_ort = min_seconds_interleaved(
            [lambda: net.predict(x), lambda: prepared.predict(x), lambda: ort_run(x)],
            repeat if name != "SqueezeNet" else repeat // 3)
        rows.append((name, batch, f"{t_ours * 1e3:.3f}", f"{t_prepared * 1e3:.3f}",
                     f"{t_ort * 1e3:.3f}", f"{t_ours / t_ort:.2f}", f"{t_prepared / t_ort:.2f}",
                     f"{error:.1e}"))
    print("| network | batch | predict (ms) | prepared (ms) | ONNX Runtime (ms) | predict / ORT | "
          "prepared / ORT | max rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
