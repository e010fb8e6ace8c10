"""ONNX Runtime's NCHWc float layers (ORT_ENABLE_ALL's NchwcTransformer, MLAS's MlasNchwcConv /
MlasNchwcPool) against the installed onnxruntime, bit for bit (np.array_equal), one thread:

* single float Conv / pooling models of many shapes: the optimized graph (SessionOptions.
  optimized_model_filepath) must hold the com.microsoft.nchwc node exactly when
  `nchwc_conv_applies` / `nchwc_pool_applies` say so, and the output equals `conv_float_nchwc` /
  the NCHWc pools then (else the NCHW `conv_float`);
* fused neighbours: Relu / Clip / LeakyRelu / Sigmoid / HardSigmoid (the "activation" attribute) and
  an Add of two NCHWc convolutions (the fourth, "sum" input);
* a quantize_static QDQ model of the bundled digits CNN with its float convolutions excluded
  (nodes_to_exclude), imported with fp.import_onnx: the float convolution's output and the prediction;
* the block size ORT uses on this host is read from the optimized graph (the padded filter count);
  the other block (16 on an AVX2 host) is checked against an independent float32 reference written
  here in the documented order (fma per tap and channel, one accumulator per kernel call).
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fixedpoint as fp  # noqa: E402
from fixedpoint.kernels import onnxruntime as k  # noqa: E402
from fixedpoint.runtime.profile import RuntimeNotSupportedError  # noqa: E402


def _optimized(model, feeds, path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.optimized_model_filepath = str(path)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds)
    return outputs, onnx.load(str(path)).graph


def _model(nodes, x_shape, initializers, outputs=("y",), y_shape=None):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, y_shape) for o in outputs],
                              [numpy_helper.from_array(v, n) for n, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _nchwc_nodes(graph, op):
    return [n for n in graph.node if n.domain == "com.microsoft.nchwc" and n.op_type == op]


def _data(rng, shape):
    """Normal values over six decades: sums whose order shows."""
    return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, shape)).astype(np.float32)


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    """MlasNchwcGetBlockSize() of this host: the filter count ORT pads a 4-filter Conv to."""
    path = tmp_path_factory.mktemp("nchwc") / "block.onnx"
    w = np.ones((4, 1, 1, 1), np.float32)
    _, graph = _optimized(_model([helper.make_node("Conv", ["x", "W"], ["y"])], (1, 1, 2, 2), {"W": w}),
                          {"x": np.ones((1, 1, 2, 2), np.float32)}, path)
    conv = _nchwc_nodes(graph, "Conv")[0]
    weights = {t.name: t for t in graph.initializer}[conv.input[1]]
    return int(weights.dims[0])


def _profile(block):
    """The profile standing for this host's ORT (its NCHWc block and its integer kernels), when its
    block is `block` (the other block is checked against the reference below)."""
    from fixedpoint.runtime import RUNTIMES, RuntimeNotSupportedError as NotSupported, host_runtime
    try:
        host = host_runtime()
    except NotSupported as error:   # a CPU without AVX2
        pytest.skip(str(error))
    layout = RUNTIMES[host].ops["Convolution2D"]["float-layout"]
    if layout != f"nchwc{block}":
        pytest.skip(f"this host's ORT ({host!r}) runs NCHWc float layers as {layout}, not in blocks of {block}")
    return host


GEOMETRIES = [((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
              ((1, 1), (2, 2), (0, 0, 0, 0), (1, 1)), ((3, 3), (2, 2), (0, 1, 1, 0), (1, 1)),
              ((5, 3), (1, 2), (2, 1, 2, 1), (2, 1)), ((3, 3), (1, 1), (0, 0, 0, 0), (2, 2))]


def _check_conv(tmp_path, rng, block, n, c, m, group, geometry, hw=(9, 11)):
    kernel, strides, pads, dilations = geometry
    x = _data(rng, (n, c) + hw)
    w = _data(rng, (m, c // group) + kernel)
    b = _data(rng, (m,))
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], strides=list(strides), pads=list(pads),
                            dilations=list(dilations), group=group)
    (expected,), graph = _optimized(_model([node], x.shape, {"W": w, "B": b}), {"x": x}, tmp_path / "m.onnx")
    rewritten = bool(_nchwc_nodes(graph, "Conv"))
    assert rewritten == k.nchwc_conv_applies(w.shape, group, block), (c, m, group)
    options = dict(strides=strides, pads=pads, dilations=dilations, group=group)
    got = k.conv_float_nchwc(x, w, b, block=block, **options) if rewritten else k.conv_float(x, w, b, **options)
    assert np.array_equal(got, expected), (c, m, group, geometry)
    return rewritten and not np.array_equal(k.conv_float(x, w, b, **options), expected)


@pytest.mark.parametrize("c", [1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 36, 40])
def test_group1_convolutions_equal_onnxruntime(tmp_path, block, c):
    rng = np.random.default_rng(c)
    order_shows = 0
    for m in (4, 8, 12, 16, 24):
        for geometry in GEOMETRIES:
            order_shows += _check_conv(tmp_path, rng, block, 2, c, m, 1, geometry)
    if c >= 3 and k.nchwc_conv_applies((4, c, 3, 3), 1, block):   # MlasConv sums otherwise: the test can fail
        assert order_shows > 0


def test_pointwise_batches_of_128_channels(tmp_path, block):
    rng = np.random.default_rng(128)
    for c in (136, 264):
        _check_conv(tmp_path, rng, block, 1, c, 16, 1, GEOMETRIES[1], hw=(5, 6))
        _check_conv(tmp_path, rng, block, 1, c, 8, 1, GEOMETRIES[0], hw=(5, 6))


@pytest.mark.parametrize("c,m,group", [(4, 4, 4), (8, 8, 8), (12, 12, 12), (16, 16, 16), (20, 20, 20),
                                       (24, 24, 24), (6, 6, 6), (32, 32, 2), (16, 32, 2), (48, 48, 3),
                                       (24, 48, 3), (16, 16, 4), (32, 64, 4), (16, 32, 16), (64, 64, 2)])
def test_grouped_convolutions_equal_onnxruntime(tmp_path, block, c, m, group):
    rng = np.random.default_rng(c * 100 + m + group)
    for geometry in GEOMETRIES:
        _check_conv(tmp_path, rng, block, 2, c, m, group, geometry, hw=(10, 9))


def test_fused_activations_and_sum_equal_onnxruntime(tmp_path, block):
    rng = np.random.default_rng(7)
    c = 2 * block
    x = _data(rng, (2, c, 8, 8))
    init = {"W1": _data(rng, (c, c, 3, 3)), "B1": _data(rng, (c,)), "W2": _data(rng, (c, c, 3, 3)),
            "B2": _data(rng, (c,)), "lo": np.float32(-0.5), "hi": np.float32(0.7)}
    w1, b1, w2, b2 = init["W1"], init["B1"], init["W2"], init["B2"]

    def conv(i, o, n="1"):
        return helper.make_node("Conv", [i, "W" + n, "B" + n], [o], pads=[1, 1, 1, 1])
    p = dict(pads=[1, 1, 1, 1], block=block)
    cases = {
        "Relu": ([conv("x", "c"), helper.make_node("Relu", ["c"], ["y"])],
                 lambda: k.conv_float_nchwc(x, w1, b1, activation="Relu", **p)),
        "Clip": ([conv("x", "c"), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
                 lambda: k.conv_float_nchwc(x, w1, b1, activation="Clip", activation_params=(-0.5, 0.7), **p)),
        "LeakyRelu": ([conv("x", "c"), helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.1)],
                      lambda: k.conv_float_nchwc(x, w1, b1, activation="LeakyRelu", activation_params=(0.1,), **p)),
        "Sigmoid": ([conv("x", "c"), helper.make_node("Sigmoid", ["c"], ["y"])],
                    lambda: k.conv_float_nchwc(x, w1, b1, activation="Sigmoid", **p)),
        "Tanh": ([conv("x", "c"), helper.make_node("Tanh", ["c"], ["y"])],
                 lambda: k.conv_float_nchwc(x, w1, b1, activation="Tanh", **p)),
        "HardSigmoid": ([conv("x", "c"), helper.make_node("HardSigmoid", ["c"], ["y"])],
                        lambda: k.conv_float_nchwc(x, w1, b1, activation="HardSigmoid", activation_params=(0.2, 0.5),
                                                   **p)),
        # Add(c, d): the transformer feeds d into c's convolution as its sum input
        "Add": ([conv("x", "c"), conv("x", "d", "2"), helper.make_node("Add", ["c", "d"], ["y"])],
                lambda: k.conv_float_nchwc(x, w1, b1, sum=k.conv_float_nchwc(x, w2, b2, **p), **p)),
        "Add+Relu": ([conv("x", "c"), conv("x", "d", "2"), helper.make_node("Add", ["c", "d"], ["a"]),
                      helper.make_node("Relu", ["a"], ["y"])],
                     lambda: k.conv_float_nchwc(x, w1, b1, sum=k.conv_float_nchwc(x, w2, b2, **p), activation="Relu",
                                                **p)),
        # Add(c, conv(c)): c has two readers, so the second convolution takes c as its sum
        "chain Add": ([conv("x", "c"), conv("c", "d", "2"), helper.make_node("Add", ["c", "d"], ["y"])],
                      lambda: k.conv_float_nchwc(k.conv_float_nchwc(x, w1, b1, **p), w2, b2,
                                                 sum=k.conv_float_nchwc(x, w1, b1, **p), **p)),
    }
    for name, (nodes, ours) in cases.items():
        (expected,), graph = _optimized(_model(nodes, x.shape, init), {"x": x}, tmp_path / "m.onnx")
        assert len(_nchwc_nodes(graph, "Conv")) == sum(n.op_type == "Conv" for n in nodes), name
        assert not [n for n in graph.node if n.domain == "" and n.op_type != "Constant"], name   # all fused
        assert np.array_equal(ours(), expected), name
    # the sum is added before the bias: adding it after gives other numbers here
    (expected,), _ = _optimized(_model(cases["Add"][0], x.shape, init), {"x": x}, tmp_path / "m.onnx")
    assert not np.array_equal(k.conv_float_nchwc(x, w1, b1, **p) + k.conv_float_nchwc(x, w2, b2, **p), expected)


POOLS = [((3, 3), (2, 2), (1, 1, 1, 1), 0, 0), ((3, 3), (1, 1), (1, 1, 1, 1), 0, 1), ((2, 2), (2, 2), (0, 0, 0, 0), 1, 0),
         ((3, 3), (2, 2), (0, 0, 1, 1), 1, 1), ((3, 3), (2, 2), (1, 1, 1, 1), 1, 1), ((5, 5), (1, 1), (2, 2, 2, 2), 0, 0),
         ((3, 2), (1, 2), (0, 1, 2, 0), 1, 0)]


@pytest.mark.parametrize("c", [4, 8, 12, 16, 24, 32])
def test_pools_equal_onnxruntime(tmp_path, block, c):
    rng = np.random.default_rng(c + 1000)
    different = 0
    for hw in ((7, 7), (13, 11), (32, 32)):
        x = _data(rng, (2, c) + hw)
        cases = [(helper.make_node("GlobalAveragePool", ["x"], ["y"]), "GlobalAveragePool", {},
                  lambda: k.global_average_pool_nchwc(x), lambda: k.global_average_pool_float(x)),
                 (helper.make_node("GlobalMaxPool", ["x"], ["y"]), "GlobalMaxPool", {},
                  lambda: k.global_max_pool_nchwc(x), None)]
        for kernel, strides, pads, ceil, include in POOLS:
            a = dict(kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=bool(ceil))
            cases.append((helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(kernel), strides=list(strides),
                                           pads=list(pads), ceil_mode=ceil, count_include_pad=include), "AveragePool",
                          dict(count_include_pad=bool(include), ceil_mode=bool(ceil)),
                          lambda a=a, include=include: k.average_pool_nchwc(x, count_include_pad=bool(include), **a),
                          lambda a=a, include=include: k.average_pool_float(x, count_include_pad=bool(include), **a)))
            cases.append((helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=list(kernel), strides=list(strides),
                                           pads=list(pads), ceil_mode=ceil), "MaxPool", {},
                          lambda a=a: k.max_pool_nchwc(x, **a), None))
        for node, op, rule, ours, nchw in cases:
            (expected,), graph = _optimized(_model([node], x.shape, {}), {"x": x}, tmp_path / "p.onnx")
            rewritten = bool(_nchwc_nodes(graph, op))
            assert rewritten == k.nchwc_pool_applies(c, block, **rule), (op, c, node.attribute)
            if rewritten:
                assert np.array_equal(ours(), expected), (op, c, hw, node.attribute)
                different += nchw is not None and not np.array_equal(nchw(), expected)
    if c % block == 0:   # MLAS's NCHW pooling sums in another order: the test can fail
        assert different > 0


# ---- a quantize_static QDQ model with float convolutions (nodes_to_exclude) --------------------------------

@pytest.fixture(scope="module")
def digits_excluded(tmp_path_factory):
    """f(excluded node names) -> (QDQ model path, the same with the excluded nodes' outputs as graph outputs
    too, feed name, inputs): the prepared digits CNN quantized by quantize_static without those nodes."""
    pytest.importorskip("onnxruntime.quantization")
    from onnxruntime import quantization
    directory = tmp_path_factory.mktemp("nchwc_qdq")
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    source = directory / "cnn.onnx"
    onnx.save(fp.export_onnx(fp.prepare_network(fp.examples.digits_cnn())), str(source))
    feed = onnx.load(str(source)).graph.input[0].name
    rng = np.random.default_rng(11)
    x = np.concatenate([x_val, rng.uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])

    def make(exclude):
        class Reader(quantization.CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{feed: x_cal[i:i + 64]} for i in range(0, 256, 64)])

            def get_next(self):
                return next(self.batches, None)
        path = directory / f"cnn_without_{'_'.join(exclude)}.onnx"
        quantization.quantize_static(str(source), str(path), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                     activation_type=quantization.QuantType.QUInt8,
                                     weight_type=quantization.QuantType.QInt8, nodes_to_exclude=list(exclude))
        quantized = onnx.load(str(path))
        for node in quantized.graph.node:
            if node.name in exclude:
                quantized.graph.output.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None))
        probe = directory / f"probe_{path.name}"
        onnx.save(quantized, str(probe))
        return path, probe, feed, x
    return make


@pytest.mark.parametrize("exclude,nchwc", [
    (("conv1", "conv2"), {"Conv": 2}),
    (("conv3", "relu3", "gap"), {"Conv": 1, "GlobalAveragePool": 1}),
    (("conv2", "relu2", "maxpool", "conv3", "relu3", "gap"), {"Conv": 2, "MaxPool": 1, "GlobalAveragePool": 1})])
def test_qdq_model_with_excluded_nodes_equals_onnxruntime(tmp_path, block, digits_excluded, exclude, nchwc):
    """quantize_static(..., nodes_to_exclude): the float nodes run in NCHWc (also the GlobalAveragePool after
    an NCHWc convolution); each float output (a graph output too in the probe model) and the prediction
    equal ORT's."""
    path, probe, feed, x = digits_excluded(exclude)
    profile = _profile(block)
    model = onnx.load(str(probe))
    expected, graph = _optimized(model, {feed: x}, tmp_path / "opt.onnx")
    for op, count in nchwc.items():
        assert len(_nchwc_nodes(graph, op)) == count, op
    qnet = fp.import_onnx(str(path))
    names = [o.name for o in model.graph.output]
    layers = [n for n in exclude if n.startswith(("conv", "gap"))]
    differs = False
    for name, ours in zip(layers, qnet.predict(x, outputs=layers, runtime=profile)):
        assert np.array_equal(ours, expected[names.index(name)]), name
        nchw = qnet.predict(x, outputs=name, runtime="onnxruntime-reference")   # MLAS's NCHW kernels
        differs |= not np.array_equal(nchw, expected[names.index(name)])
    assert differs   # the NCHW kernels give other numbers: the test can fail
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert np.array_equal(qnet.predict(x, runtime=profile), session.run(None, {feed: x})[0])


def test_hints_refuse_an_add_fused_into_the_convolution(tmp_path):
    """A float Add of two NCHWc convolutions folds into one of them (its sum input): refused with a clear
    error under the NCHWc profiles, computed as written by the reference profile."""
    rng = np.random.default_rng(3)
    c = 16
    init = {"W1": _data(rng, (c, c, 3, 3)), "B1": _data(rng, (c,)), "W2": _data(rng, (c, c, 3, 3)),
            "B2": _data(rng, (c,)), "s": np.float32(0.05), "z": np.uint8(128)}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c"], pads=[1, 1, 1, 1], name="conv_c"),
             helper.make_node("Conv", ["x", "W2", "B2"], ["d"], pads=[1, 1, 1, 1], name="conv_d"),
             helper.make_node("Add", ["c", "d"], ["a"], name="add"),
             helper.make_node("QuantizeLinear", ["a", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    model = _model(nodes, (1, c, 6, 6), init, y_shape=(1, c, 6, 6))
    x = _data(rng, (1, c, 6, 6))
    _, optimized = _optimized(model, {"x": x}, tmp_path / "m.onnx")
    assert [len(n.input) for n in _nchwc_nodes(optimized, "Conv")] == [3, 4]   # one takes the other as its sum
    qnet = fp.import_onnx(model)
    hints = qnet.options["runtime_float_hints"]
    assert set(hints) == {"conv_c"} and hints["conv_c"]["8"].startswith("refuse:")
    for profile in ("onnxruntime-avx2", "onnxruntime-vnni"):
        with pytest.raises(RuntimeNotSupportedError, match="conv_c"):
            qnet.predict(x, runtime=profile)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"), session.run(None, {"x": x})[0])


# ---- block 16 (AVX-512F) against an independent float32 reference --------------------------------------------

def _fma32(a, b, c):
    """float32 fma(a, b, c) exactly rounded, in numpy: a·b is exact in float64; the float64 sum's
    rounding error (TwoSum) decides the one case its rounding to float32 can get wrong (a tie)."""
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    r = s.astype(np.float32)
    d = s - r.astype(np.float64)
    toward = np.nextafter(r, np.where(d > 0, np.float32(np.inf), np.float32(-np.inf)))
    tie = (d != 0) & (2 * d == toward.astype(np.float64) - r.astype(np.float64)) & (np.sign(err) == np.sign(d))
    return np.where(tie, toward, r).astype(np.float32)


def _reference_conv(x, w, b, block, strides, pads, dilations, group):
    """The documented NCHWc order, one numpy step per fma: per output, the kernel calls over channel
    chunks (Nchwc: `block` channels zero-padded; Pointwise 1x1 unpadded: 128; Nchw, group 1 under `block`
    channels: 1; depthwise: all), each from +0 over the valid taps in (kh, kw) order then the chunk's
    channels; output = first call's sum, then sum + output; then + bias."""
    n, c, ih, iw = x.shape
    m, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    oh = (ih + pt + pb - (dh * (kh - 1) + 1)) // sh + 1
    ow = (iw + pl + pr - (dw * (kw - 1) + 1)) // sw + 1
    fg = m // group
    depthwise = group > 1 and cg == 1 and fg == 1
    pointwise = kh == kw == 1 and not any(pads)
    if depthwise:
        chunk, channels = 1, 1
    elif cg >= block:
        channels = -(-cg // block) * block
        chunk = 128 if pointwise else block
    else:
        chunk, channels = 1, cg
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    y = np.empty((n, m, oh, ow), np.float32)
    for o in range(m):
        g = o // fg
        out = None
        for c0 in range(0, channels, chunk):
            acc = np.zeros((n, oh, ow), np.float32)
            for r in range(kh):
                for s in range(kw):
                    iy, ix = oy * sh - pt + r * dh, ox * sw - pl + s * dw
                    valid = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
                    iyc, ixc = np.clip(iy, 0, ih - 1), np.clip(ix, 0, iw - 1)
                    for ci in range(c0, min(channels, c0 + chunk)):
                        xv = x[:, g * cg + ci][:, iyc, ixc] if ci < cg else np.zeros((n, oh, ow), np.float32)
                        wv = np.float32(w[o, ci, r, s]) if ci < cg else np.float32(0)
                        acc = np.where(valid, _fma32(xv, np.full_like(xv, wv), acc), acc)
            out = acc if out is None else (acc + out).astype(np.float32)
        y[:, o] = (out + b[o]).astype(np.float32)
    return y


def test_fma32_reference_is_exact():
    rng = np.random.default_rng(0)
    a, b, c = (_data(rng, (20000,)) for _ in range(3))
    # exact in fractions for a sample
    from fractions import Fraction
    got = _fma32(a, b, c)
    for i in range(0, 20000, 97):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        lo = np.float32(float(exact))
        candidates = [lo, np.nextafter(lo, np.float32(np.inf)), np.nextafter(lo, np.float32(-np.inf))]
        best = min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.uint32)) & 1))
        assert got[i] == best
    # a tie in float64 that the float64 rounding resolves the wrong way
    x = np.float32(1 + 2 ** -23)
    assert _fma32(np.array([x]), np.array([x]), np.array([np.float32(2 ** -47)]))[0] == np.float32(1 + 2 ** -22)


@pytest.mark.parametrize("c,m,group,geometry", [
    (12, 8, 1, GEOMETRIES[0]), (16, 16, 1, GEOMETRIES[0]), (20, 8, 1, GEOMETRIES[3]), (24, 24, 1, GEOMETRIES[4]),
    (40, 16, 1, GEOMETRIES[5]), (36, 8, 1, GEOMETRIES[1]), (144, 16, 1, GEOMETRIES[1]), (32, 32, 2, GEOMETRIES[0]),
    (16, 16, 16, GEOMETRIES[3]), (5, 8, 1, GEOMETRIES[4])])
@pytest.mark.parametrize("blk", [8, 16])
def test_block_sizes_equal_the_reference(c, m, group, geometry, blk):
    kernel, strides, pads, dilations = geometry
    rng = np.random.default_rng(c * 7 + m + group)
    x = _data(rng, (2, c, 9, 10))
    w = _data(rng, (m, c // group) + kernel)
    b = _data(rng, (m,))
    expected = _reference_conv(x, w, b, blk, strides, pads, dilations, group)
    for isa in ("avx2", "portable"):
        got = k.conv_float_nchwc(x, w, b, strides=strides, pads=pads, dilations=dilations, group=group, block=blk,
                                 isa=isa)
        assert np.array_equal(got, expected), (blk, isa)


def test_block_16_sums_in_another_order():
    rng = np.random.default_rng(24)
    x, w, b = _data(rng, (2, 24, 9, 9)), _data(rng, (16, 24, 3, 3)), _data(rng, (16,))
    eight = k.conv_float_nchwc(x, w, b, pads=(1, 1, 1, 1), block=8)
    sixteen = k.conv_float_nchwc(x, w, b, pads=(1, 1, 1, 1), block=16)
    assert not np.array_equal(eight, sixteen)


def test_bad_arguments_are_refused():
    x, w = np.zeros((1, 8, 4, 4), np.float32), np.zeros((8, 8, 3, 3), np.float32)
    with pytest.raises(ValueError, match="block"):
        k.conv_float_nchwc(x, w, block=4)
    with pytest.raises(ValueError, match="block"):
        k.nchwc_conv_applies(w.shape, 1, block=32)
    with pytest.raises(ValueError, match="activation"):
        k.conv_float_nchwc(x, w, activation="Elu")
    with pytest.raises(ValueError, match="sum"):
        k.conv_float_nchwc(x, w, sum=np.zeros((1, 8, 3, 3), np.float32))


# ---- pooling between DequantizeLinear and QuantizeLinear, left in float by ORT -----------------------------

@pytest.mark.parametrize("op", ["AveragePool", "GlobalAveragePool"])
def test_float_pooling_between_dq_and_q_equals_onnxruntime(tmp_path, block, op):
    """Q -> DQ(uint8) -> pool -> Q(int8, a graph output): the types differ, so ORT does not fuse the group and runs
    the float pool, AveragePool in NCHWc (TransformPool takes any float input), GlobalAveragePool in NCHW
    (converted only after a graph input or an NCHWc output). The output scale puts the rounding boundary
    between the NCHW and the NCHWc average of one element, so the other layout gives another integer."""
    rng = np.random.default_rng(17)
    c, s1, z1 = 2 * block, np.float32(0.02), np.uint8(128)
    attrs = dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]) if op == "AveragePool" else {}
    q = rng.integers(0, 256, (16, c, 7, 7)).astype(np.uint8)
    d = ((q.astype(np.float32) - np.float32(z1)) * s1).astype(np.float32)
    if op == "AveragePool":
        nchwc, nchw = (f(d, kernel_shape=(3, 3), pads=(1, 1, 1, 1)) for f in (k.average_pool_nchwc, k.average_pool_float))
    else:
        nchwc, nchw = k.global_average_pool_nchwc(d), k.global_average_pool_float(d)
    runs = nchwc if op == "AveragePool" else nchw
    other = nchw if op == "AveragePool" else nchwc
    where = np.flatnonzero((runs != other) & (np.abs(runs) > 0.05))
    assert where.size, "the layouts agree on every element: no check possible"
    # an output scale that puts a rounding boundary between the two averages of some element
    s2 = None
    for i in where:
        a, b = np.float32(runs.flat[i]), np.float32(other.flat[i])
        for n in range(1, 127):
            base = np.float32(abs((np.float64(a) + np.float64(b)) / 2) / (n + 0.5))
            for step in range(-3, 4):
                scale = base
                for _ in range(abs(step)):
                    scale = np.nextafter(scale, np.float32(np.inf if step > 0 else 0))
                if np.rint(a / scale) != np.rint(b / scale):
                    s2 = scale
                    break
            if s2 is not None:
                break
        if s2 is not None:
            break
    assert s2 is not None
    init = {"s1": s1, "z1": z1, "s2": s2, "z2": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s1", "z1"], ["d"]), helper.make_node(op, ["d"], ["p"], **attrs),
             helper.make_node("QuantizeLinear", ["p", "s2", "z2"], ["y"])]
    out_shape = (16, c, 7, 7) if op == "AveragePool" else (16, c, 1, 1)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, q.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, out_shape)],
                              [numpy_helper.from_array(np.asarray(v), name) for name, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (expected,), optimized = _optimized(model, {"x": d}, tmp_path / "m.onnx")
    assert bool(_nchwc_nodes(optimized, op)) == (op == "AveragePool")
    profile = _profile(block)
    qnet = fp.import_onnx(model)
    got = np.asarray(qnet.predict(d, runtime=profile))
    assert np.array_equal(got, expected)
    # quantizing the other layout's average gives another integer there
    wrong = np.clip(np.rint(other.astype(np.float32) / s2), -128, 127).astype(np.int8)
    assert wrong.flat[i] != expected.flat[i]


def test_hints_survive_save_and_load(tmp_path, block):
    """Conv -> GlobalAveragePool (float, NCHWc after the NCHWc convolution) -> Q -> DQ: the importer's hint
    for the pool is saved with the network; before and after loading, the pool's float output (a graph
    output too) and the result equal ORT's, where the NCHW global pool differs."""
    rng = np.random.default_rng(21)
    c = 2 * block
    init = {"W": _data(rng, (c, c, 3, 3)), "B": _data(rng, (c,)), "s": np.float32(0.01), "z": np.uint8(128)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("QuantizeLinear", ["g", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (8, c, 9, 9))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (8, c, 1, 1)),
                               helper.make_tensor_value_info("g", TensorProto.FLOAT, (8, c, 1, 1))],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = _data(rng, (8, c, 9, 9))
    (y, g), optimized = _optimized(model, {"x": x}, tmp_path / "m.onnx")
    assert _nchwc_nodes(optimized, "GlobalAveragePool")
    qnet = fp.import_onnx(model)
    assert qnet.options["runtime_float_hints"]["gap"] == {"8": "nchwc", "16": "nchwc"}
    profile = _profile(block)
    qnet.save(tmp_path / "q.npz")
    loaded = fp.load_quantized_network(tmp_path / "q.npz")
    for net in (qnet, loaded):
        assert np.array_equal(net.predict(x, outputs="gap", runtime=profile), g)
        assert np.array_equal(net.predict(x, runtime=profile)[0], y)
    assert not np.array_equal(k.global_average_pool_float(loaded.predict(x, outputs="conv", runtime=profile)), g)


def test_float_conv_with_dequantized_weights_stays_nchw(tmp_path, block):
    """A float Conv whose weights come out of a DequantizeLinear (no QuantizeLinear after it): ORT does not
    fold the DQ, so TransformConv finds no initializer and MlasConv runs; the importer's hint says so."""
    rng = np.random.default_rng(9)
    c = 2 * block
    init = {"Wq": rng.integers(-127, 128, (c, c, 3, 3)).astype(np.int8), "ws": np.float32(0.013),
            "wz": np.int8(0), "B": _data(rng, (c,))}
    nodes = [helper.make_node("DequantizeLinear", ["Wq", "ws", "wz"], ["W"]),
             helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    model = _model(nodes, (4, c, 9, 9), init, y_shape=(4, c, 9, 9))
    x = _data(rng, (4, c, 9, 9))
    (expected,), optimized = _optimized(model, {"x": x}, tmp_path / "m.onnx")
    assert not _nchwc_nodes(optimized, "Conv")
    qnet = fp.import_onnx(model)
    assert qnet.options["runtime_float_hints"]["conv"] == {"8": "nchw", "16": "nchw"}
    got = qnet.predict(x, runtime=_profile(block))
    assert np.array_equal(got, expected)
    w = (init["Wq"].astype(np.float32) * init["ws"]).astype(np.float32)
    assert not np.array_equal(k.conv_float_nchwc(x, w, init["B"], pads=(1, 1, 1, 1), block=block), expected)


def test_a_float_conv_with_its_batch_norm_is_folded_as_onnxruntime_folds_it(tmp_path):
    """A float Conv whose only reader is a float BatchNormalization (quantize_static of a model with batch
    norms, the pair excluded): every optimized ORT graph folds the BatchNormalization into the weights and
    bias in float32 (ConvBNFusion), which changes a third of the float results by an ulp. The optimized
    profiles fold it the same way (predict and the reference, the float outputs of relu1 and the network's
    outputs equal ORT's); the as-written profile runs the pair and equals ORT_DISABLE_ALL."""
    from onnxruntime import quantization

    from fixedpoint.quantization.reference import predict_reference
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    x = np.concatenate([x_val, np.random.default_rng(2).uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)])
    source = tmp_path / "cnn_bn.onnx"
    onnx.save(fp.export_onnx(fp.examples.digits_cnn()), str(source))   # batch norms not folded
    feed = onnx.load(str(source)).graph.input[0].name

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{feed: x_cal[i:i + 64]} for i in range(0, 256, 64)])

        def get_next(self):
            return next(self.batches, None)
    path = tmp_path / "cnn_bn_q.onnx"
    quantization.quantize_static(str(source), str(path), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8, nodes_to_exclude=["conv1", "conv1_bn"])
    probe = onnx.load(str(path))
    relu = next(n for n in probe.graph.node if n.name == "relu1").output[0]
    probe.graph.output.append(helper.make_tensor_value_info(relu, TensorProto.FLOAT, None))
    (y, relu_fused), optimized = _optimized(probe, {feed: x}, tmp_path / "opt.onnx")
    count = lambda nodes: sum(n.op_type == "BatchNormalization" for n in nodes)  # noqa: E731
    assert count(optimized.node) == count(probe.graph.node) - 1 and "conv1_bn" not in {n.name for n in optimized.node}
    qnet = fp.import_onnx(str(path))
    host = _profile(8)
    one = lambda v: v[0] if isinstance(v, (list, tuple)) else v  # noqa: E731  (outputs= gives a list)
    got_y, got_relu = qnet.predict(x, runtime=host), one(qnet.predict(x, outputs=["relu1"], runtime=host))
    assert np.array_equal(got_y, y) and np.array_equal(got_relu, relu_fused)
    ref = predict_reference(qnet, x[:64], outputs=["relu1"], runtime=host)
    assert np.array_equal(np.asarray(one(ref), np.float32), relu_fused[:64])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    written = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    y_written, relu_written = written.run(None, {feed: x})
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"), y_written)
    assert np.array_equal(one(qnet.predict(x, outputs=["relu1"], runtime="onnxruntime-reference")), relu_written)
    assert (relu_written != relu_fused).mean() > 0.1      # the fold matters: the check can fail
    qnet.save(tmp_path / "saved.npz")                     # the fold's parameters travel with the network
    assert np.array_equal(fp.load_quantized_network(tmp_path / "saved.npz").predict(x, runtime=host), y)


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_a_float_conv_with_a_per_channel_constant_is_refused(tmp_path, op):
    """ConvAddFusion / ConvMulFusion fold a per-channel constant (C, 1, 1) into the float convolution's
    bias / weights; refused under the optimized profiles, as written equal to ORT_DISABLE_ALL."""
    rng = np.random.default_rng(5)
    c = 6
    init = {"W": rng.normal(0, 0.3, (c, 3, 3, 3)).astype(np.float32), "B": rng.normal(0, 0.3, c).astype(np.float32),
            "k": rng.normal(0, 0.7, (c, 1, 1)).astype(np.float32), "s": np.float32(0.02), "z": np.uint8(128)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("Conv", ["xd", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node(op, ["c", "k"], ["m"], name="scale"),
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (None, 3, 6, 6))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (None, c, 6, 6))],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.normal(0, 1, (16, 3, 6, 6)).astype(np.float32)
    _, optimized = _optimized(model, {"x": x}, tmp_path / "opt.onnx")
    assert op not in {n.op_type for n in optimized.node}          # ORT folded it into the convolution
    qnet = fp.import_onnx(model)
    with pytest.raises(RuntimeNotSupportedError, match=f"'conv'.*Conv{op}Fusion folds the {op} 'scale'"):
        qnet.predict(x, runtime="onnxruntime-avx2")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    written = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert np.array_equal(qnet.predict(x, runtime="onnxruntime-reference"), written.run(None, {"x": x})[0])
