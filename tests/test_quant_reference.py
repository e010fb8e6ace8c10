"""The fi-only reference path (fixedpoint/quantization/reference.py) against the kernel path of
`QuantizedNetwork`: equal bit for bit, layer by layer, for every target, exponent scheme and weight
granularity, on random networks covering every quantized layer type and float boundaries."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fixedpoint as fp
from fixedpoint.nn import Network
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization import dlquantizer
from fixedpoint.quantization.reference import LAYERS, predict_reference
from fixedpoint.quantization.layers import QUANTIZED_KINDS

from net_builders import chain, conv


def cnn(rng):
    """Convolutions (plain, depthwise, grouped/dilated), activations, every pooling, FC, softmax."""
    return chain([
        make_layer("ImageInput", "in", input_size=(3, 10, 10)),
        conv("c1", rng, 6, 3, padding="same"),
        make_layer("LeakyReLU", "lrelu", scale=0.3),
        conv("dw", rng, 6, 1, groups=6, stride=2, padding=1),
        make_layer("ClippedReLU", "relu6", ceiling=6.0),
        conv("expand", rng, 10, 6, k=1),
        conv("mix", rng, 6, 10, padding=1, scale=0.2),     # >= 8 input channels, few pixels
        conv("grouped", rng, 4, 3, groups=2, dilation=2, padding=(2, 1, 1, 2), scale=2.0),
        make_layer("ClippedReLU", "clip", ceiling=0.75),
        make_layer("AveragePooling2D", "avg", pool_size=2, stride=1, padding=(1, 0, 0, 1)),
        make_layer("AveragePooling2D", "avg_pad", pool_size=3, stride=1, padding=1,
                   count_include_pad=True),
        make_layer("MaxPooling2D", "max_ceil", pool_size=2, stride=2, ceil_mode=True),
        make_layer("MaxPooling2D", "max", pool_size=2, stride=1, padding=(0, 0, 1, 1)),
        make_layer("ReLU", "relu"),
        make_layer("GlobalAveragePooling2D", "gap"),
        make_layer("Flatten", "flat"),
        make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.5, (5, 4)),
                   bias=rng.normal(0, 0.1, 5)),
        make_layer("Softmax", "prob"),
    ])


def branches(rng, multiply=True):
    """Add and concat of tensors with different exponents, multiplication, global max pooling."""
    layers = [
        make_layer("ImageInput", "in", input_size=(3, 6, 6)),
        conv("a", rng, 4, 3, padding=1),
        make_layer("Convolution2D", "b", weights=rng.normal(0, 3.0, (4, 3, 1, 1)), bias=np.zeros(4)),
        conv("c", rng, 4, 3, k=1, scale=0.05),
        make_layer("Addition", "add", num_inputs=3),
        make_layer("Concatenation", "cat", num_inputs=3),
        make_layer("Multiplication" if multiply else "Addition", "mul", num_inputs=2),
        make_layer("GlobalMaxPooling2D", "gmax"),
        make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.5, (3, 12)), bias=np.zeros(3)),
    ]
    connections = [("in", "a"), ("in", "b"), ("in", "c"), ("a", "add/in1"), ("b", "add/in2"),
                   ("c", "add/in3"), ("a", "cat/in1"), ("add", "cat/in2"), ("b", "cat/in3"),
                   ("cat", "mul/in1"), ("cat", "mul/in2"), ("mul", "gmax"), ("gmax", "fc")]
    return Network(layers, connections)


def assert_same_layer_by_layer(qnet, x):
    names = list(qnet.network.layer_names)
    kernel = qnet.predict(x, outputs=names)
    reference = predict_reference(qnet, x, outputs=names)
    for name, k, r in zip(names, kernel, reference):
        if name in qnet.qlayers:
            assert isinstance(r, fp.fi), name
            assert r.numerictype == k.numerictype, name
            np.testing.assert_array_equal(np.asarray(r.stored_integer, np.int64),
                                          np.asarray(k.stored_integer, np.int64), err_msg=name)
        else:
            assert not isinstance(r, fp.fi), name
            np.testing.assert_array_equal(r, k, err_msg=name)
    np.testing.assert_array_equal(predict_reference(qnet, x), qnet.predict(x))


def quantized(net, environment, scheme, per_channel, rng, skip=()):
    q = dlquantizer(net, environment)
    shape = net.layer("in").sample_shape
    q.calibrate(rng.normal(0, 1, (24,) + shape).astype(np.float32), batch_size=8, progress=False)
    return q.quantize(scheme, per_channel=per_channel, skip_layers=skip)


CONFIGS = [(env, scheme, per_channel) for env in ("MATLAB", "GPU", "FPGA")
           for scheme in ("MinMax", "Histogram") for per_channel in (False, True)]


@pytest.mark.parametrize("environment, scheme, per_channel", CONFIGS)
@pytest.mark.parametrize("build, skip", [(cnn, ()), (cnn, ("grouped", "max_ceil")),
                                         (branches, ()), (branches, ("b", "add"))])
def test_reference_equals_kernel_path(build, skip, environment, scheme, per_channel):
    rng = np.random.default_rng(11)
    net = build(rng) if build is cnn or environment != "FPGA" else build(rng, multiply=False)
    qnet = quantized(net, environment, scheme, per_channel, rng, skip)
    # wider than the calibration data: saturation and large accumulators are exercised too
    x = rng.normal(0, 3.0, (2,) + net.layer("in").sample_shape).astype(np.float32)
    assert_same_layer_by_layer(qnet, x)


def test_every_quantized_layer_type_has_a_reference():
    assert set(LAYERS) == set(QUANTIZED_KINDS)


def test_reference_does_not_use_the_kernels(monkeypatch):
    rng = np.random.default_rng(3)
    qnet = quantized(cnn(rng), "MATLAB", "MinMax", True, rng)
    x = rng.normal(0, 1, (1, 3, 10, 10)).astype(np.float32)
    expected = qnet.predict(x)

    def forbidden(*args, **kwargs):
        raise AssertionError("the reference path called a kernel-path function")

    import fixedpoint.kernels as kernels
    for name in ("conv2d", "gemm", "requantize_shift", "quantize", "avg_pool2d", "global_avg_pool"):
        monkeypatch.setattr(kernels, name, forbidden)
    for ql in qnet.qlayers.values():
        monkeypatch.setattr(ql, "kind", None)
    np.testing.assert_array_equal(predict_reference(qnet, x), expected)


def test_single_output_name_and_multiple_outputs():
    rng = np.random.default_rng(5)
    qnet = quantized(branches(rng), "MATLAB", "MinMax", False, rng)
    x = rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32)
    one = predict_reference(qnet, x, outputs="cat")
    assert isinstance(one, fp.fi) and one.numerictype == qnet.predict(x, outputs="cat").numerictype
    assert isinstance(predict_reference(qnet, x, outputs="in"), np.ndarray)


def test_bundled_digits_models():
    examples = pytest.importorskip("fixedpoint.examples")
    if not hasattr(examples, "digits_data"):
        pytest.skip("fixedpoint.examples has no bundled digits models yet")
    (x_cal, _), (x_val, _) = examples.digits_data()
    for build in (examples.digits_cnn, examples.digits_mobilenet):
        for environment in ("MATLAB", "FPGA"):
            q = dlquantizer(build(), environment)
            q.calibrate(x_cal[:64], progress=False)
            assert_same_layer_by_layer(q.quantize("MinMax"), x_val[:2])


@pytest.mark.parametrize("scale", [0.0, 0.99999, 1.99999, 0.3])
def test_leaky_relu_scales_at_the_edge_of_their_16_bit_type(scale):
    rng = np.random.default_rng(8)
    net = chain([make_layer("ImageInput", "in", input_size=(2, 4, 4)),
                 conv("c", rng, 3, 2, padding=1),
                 make_layer("LeakyReLU", "lrelu", scale=scale)])
    qnet = quantized(net, "MATLAB", "MinMax", False, rng)
    assert_same_layer_by_layer(qnet, rng.normal(0, 3.0, (2, 2, 4, 4)).astype(np.float32))


@pytest.mark.parametrize("environment", ["MATLAB", "GPU"])
def test_learnables_are_the_fi_casts_the_semantics_doc_states(environment):
    """q_w = sat8(round_R(W·2^f_w[c])) and q_b = sat32(round_R(b·2^(f_x + f_w[c]))), per channel."""
    rng = np.random.default_rng(9)
    qnet = quantized(cnn(rng), environment, "MinMax", True, rng)
    F = fp.fimath(rounding_method=qnet.target.rounding, overflow_action="Saturate")
    for name, ql in qnet.qlayers.items():
        if not hasattr(ql, "weights"):
            continue
        W, b = ql.layer.learnables["Weights"], ql.layer.learnables["Bias"]
        for c, f_w in enumerate(ql.weight_fraction_lengths):
            expected_w = fp.fi(W[c].astype(np.float64), fp.numerictype(1, 8, int(f_w)), F)
            np.testing.assert_array_equal(ql.weights[c], expected_w.stored_integer, err_msg=name)
            f_b = ql.input_fraction_lengths[0] + int(f_w)
            expected_b = fp.fi(float(b[c]), fp.numerictype(1, 32, f_b), F)
            assert int(ql.bias[c]) == int(expected_b.stored_integer), name


def test_average_pooling_with_ceil_mode_stays_in_float_when_skipped():
    rng = np.random.default_rng(10)
    net = chain([make_layer("ImageInput", "in", input_size=(2, 5, 5)),
                 conv("c", rng, 3, 2, padding=1),
                 make_layer("AveragePooling2D", "avg", pool_size=2, stride=2, ceil_mode=True),
                 make_layer("ReLU", "relu")])
    with pytest.raises(ValueError, match="'avg': ceil_mode windows have no integer kernel"):
        quantized(net, "MATLAB", "MinMax", False, rng)
    qnet = quantized(net, "MATLAB", "MinMax", False, rng, skip=("avg",))
    assert "avg" not in qnet.qlayers and "relu" not in qnet.qlayers   # float input: stays float
    assert_same_layer_by_layer(qnet, rng.normal(0, 2.0, (2, 2, 5, 5)).astype(np.float32))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_random_geometries(data):
    """Convolution and pooling geometries drawn at random, every target and granularity."""
    draw = data.draw
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    groups = draw(st.sampled_from([1, 2, 3]))
    per_in, per_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    k, stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    size = draw(st.integers((k - 1) * dilation + 1, 8))
    top, left, bottom, right = pads
    extent = (k - 1) * dilation + 1
    conv_out = min((size + top + bottom - extent) // stride, (size + left + right - extent) // stride) + 1
    pool = draw(st.integers(1, min(3, conv_out)))
    pool_pads = tuple(draw(st.integers(0, pool - 1)) for _ in range(4))
    pooling = draw(st.sampled_from(["MaxPooling2D", "AveragePooling2D"]))
    extra = {"count_include_pad": draw(st.booleans())} if pooling == "AveragePooling2D" \
        else {"ceil_mode": draw(st.booleans())}
    environment = draw(st.sampled_from(["MATLAB", "GPU", "FPGA"]))
    net = chain([make_layer("ImageInput", "in", input_size=(groups * per_in, size, size)),
                 conv("conv", rng, groups * per_out, per_in, k=k, scale=draw(st.sampled_from([0.05, 0.5, 4.0])),
                      groups=groups, stride=stride, dilation=dilation, padding=pads),
                 make_layer(pooling, "pool", pool_size=pool, stride=draw(st.integers(1, 2)),
                            padding=pool_pads, **extra)])
    qnet = quantized(net, environment, draw(st.sampled_from(["MinMax", "Histogram"])),
                     draw(st.booleans()), rng)
    assert_same_layer_by_layer(qnet, rng.normal(0, 3.0, (2,) + net.layer("in").sample_shape)
                               .astype(np.float32))


def test_activation_fusion_keeps_every_output_and_notices_replaced_layers():
    """predict computes a ReLU after a convolution in the convolution's requantization; the
    convolution's own output, when asked for, is still the unclamped one."""
    examples = pytest.importorskip("fixedpoint.examples")
    (x_cal, _), (x_val, _) = examples.digits_data()
    q = dlquantizer(examples.digits_cnn(), "MATLAB")
    q.calibrate(x_cal[:64], progress=False)
    qnet = q.quantize("MinMax")
    fused = qnet._fusions(tuple(qnet.network.output_names))
    assert {"conv1", "relu1", "conv3", "relu3"} <= set(fused)
    x = x_val[:8]
    conv, relu = qnet.predict(x, outputs=["conv1", "relu1"])
    conv_q = np.asarray(conv.stored_integer, np.int64)
    assert conv_q.min() < 0
    np.testing.assert_array_equal(np.asarray(relu.stored_integer, np.int64), np.maximum(conv_q, 0))
    before = qnet.predict(x)
    np.testing.assert_array_equal(before, predict_reference(qnet, x))
    # a replaced quantized layer is seen by the next predict
    from fixedpoint.quantization.layers import QuantizedLayer
    old = qnet.qlayers["conv3"]
    data = {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in old.data.items()}
    data["bias"] = data["bias"] + (1 << 12)
    qnet.qlayers["conv3"] = QuantizedLayer(old.layer, old.rounding, old.input_fraction_lengths,
                                           old.output_fraction_length, **data)
    changed = qnet.predict(x)
    np.testing.assert_array_equal(changed, predict_reference(qnet, x))
    assert not np.array_equal(changed, before)
