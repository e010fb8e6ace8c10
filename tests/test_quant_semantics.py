"""The quantized network against an independent numpy int64 oracle of docs/quantized-semantics.md,
layer by layer, on small random networks covering every quantized layer type and every target."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fixedpoint.nn import Network
from fixedpoint.nn import functional as F
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization import dlquantizer
from fixedpoint.quantization.qnetwork import QTensor

from net_builders import chain, conv

# ---- the oracle's own rounding: exact integer division num / den with a MATLAB rounding method ----


def round_div(num, den, method):
    num = np.asarray(num, dtype=object)
    out = np.empty(num.shape, dtype=object)
    for index, n in np.ndenumerate(num):
        q, r = divmod(int(n), int(den))  # floor quotient, 0 <= r < den
        up = {"Floor": False, "Ceiling": r != 0, "Zero": r != 0 and n < 0,
              "Nearest": 2 * r >= den, "Round": 2 * r > den or (2 * r == den and n >= 0),
              "Convergent": 2 * r > den or (2 * r == den and q % 2 == 1)}[method]
        out[index] = q + int(up)
    return out


def sat(values, bits=8):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.array([min(max(int(v), lo), hi) for v in np.ravel(values)],
                    dtype=np.int64).reshape(np.shape(values))


def requant(acc, shift, method):
    """sat8(round(acc / 2^shift)), shift per tensor or broadcast per channel (axis 1)."""
    acc = np.asarray(acc, dtype=object)
    shift = np.broadcast_to(np.asarray(shift).reshape((1, -1) + (1,) * (acc.ndim - 2))
                            if np.ndim(shift) else shift, acc.shape)
    out = np.empty(acc.shape, dtype=object)
    for index, a in np.ndenumerate(acc):
        s = int(shift[index])
        out[index] = round_div(a * 2 ** max(-s, 0), 2 ** max(s, 0), method)[()]
    return sat(out)


def quantize(values, f, method, bits=8):
    scaled = [Fraction(float(v)) * Fraction(2) ** f for v in np.ravel(values)]
    rounded = [round_div(s.numerator, s.denominator, method)[()] for s in scaled]
    return sat(np.array(rounded, dtype=object).reshape(np.shape(values)), bits)


METHODS = ["Ceiling", "Convergent", "Floor", "Nearest", "Round", "Zero"]


@settings(max_examples=300, deadline=None)
@given(st.integers(-10_000, 10_000), st.integers(1, 64), st.sampled_from(METHODS))
def test_oracle_rounding_matches_fractions(n, d, method):
    x, half = Fraction(n, d), Fraction(1, 2)

    def floor(v):
        return v.numerator // v.denominator

    expected = {"Floor": floor(x), "Ceiling": -floor(-x), "Zero": int(x), "Nearest": floor(x + half),
                "Round": floor(abs(x) + half) * (1 if x >= 0 else -1), "Convergent": round(x)}[method]
    assert round_div(n, d, method)[()] == expected


# ---- the oracle of each quantized layer ----------------------------------------------------------


def avg_pool_oracle(q, layer, method):
    n, c, h, w = q.shape
    (kh, kw), (sh, sw) = layer.pool_size, layer.stride
    top, left, bottom, right = F.resolve_padding(layer.padding, (h, w), layer.pool_size, layer.stride, (1, 1))
    oh, ow = F.spatial_output_shape(q.shape, layer.pool_size, layer.stride, (top, left, bottom, right),
                                    ceil_mode=layer.ceil_mode)
    out = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - top, j * sw - left
            rows = range(max(r0, 0), min(r0 + kh, h))
            cols = range(max(c0, 0), min(c0 + kw, w))
            if layer.count_include_pad:
                count = (min(r0 + kh, h + bottom) - r0) * (min(c0 + kw, w + right) - c0)
            else:
                count = len(rows) * len(cols)
            total = q[:, :, rows.start:rows.stop, cols.start:cols.stop].astype(np.int64).sum(axis=(2, 3))
            out[:, :, i, j] = sat(round_div(total, count, method))
    return out


def layer_oracle(ql, inputs):
    """Expected int8 output of one quantized layer from its int8 inputs, by the documented rules."""
    layer, method, t = ql.layer, ql.rounding, ql.type_name
    q = [np.asarray(v, np.int64) for v in inputs]
    if t in ("Convolution2D", "FullyConnected"):
        if t == "Convolution2D":
            acc = F.conv2d(q[0].astype(np.float64), ql.weights.astype(np.float64), None, layer.stride,
                           layer.padding, layer.dilation, layer.groups)  # exact: integers < 2^53
            acc = np.rint(acc).astype(np.int64) + ql.bias.astype(np.int64).reshape(1, -1, 1, 1)
        else:
            acc = q[0].reshape(len(q[0]), -1) @ ql.weights.astype(np.int64).T + ql.bias
        shift = np.asarray(inputs_f(ql)[0] + ql.weight_fraction_lengths - ql.output_fraction_length)
        return requant(acc, shift, method)
    if t == "ReLU":
        return np.maximum(q[0], 0)
    if t == "ClippedReLU":
        top = int(np.floor(Fraction(layer.ceiling) * Fraction(2) ** ql.input_fraction_lengths[0]))
        return np.clip(q[0], 0, min(top, 127))
    if t == "LeakyReLU":
        scale_q = quantize([layer.scale], ql.scale_fraction_length, "Round", 16)[0]
        return np.where(q[0] >= 0, q[0], requant(q[0] * scale_q, ql.scale_fraction_length, method))
    if t in ("MaxPooling2D", "GlobalMaxPooling2D"):
        return layer.forward(q[0].astype(np.float64)).astype(np.int64)
    if t == "AveragePooling2D":
        return avg_pool_oracle(q[0], layer, method)
    if t == "GlobalAveragePooling2D":
        total = q[0].sum(axis=(2, 3), keepdims=True)
        return sat(round_div(total, q[0].shape[2] * q[0].shape[3], method))
    f_in, f_out = ql.input_fraction_lengths, ql.output_fraction_length
    if t == "Addition":
        finest = max(f_in)
        total = sum(v * 2 ** (finest - f) for v, f in zip(q, f_in))
        return requant(total, finest - f_out, method)
    if t == "Concatenation":
        return np.concatenate([requant(v, f - f_out, method) for v, f in zip(q, f_in)], axis=layer.axis)
    if t == "Multiplication":
        product = np.prod(np.stack(q).astype(object), axis=0)
        return requant(product, sum(f_in) - f_out, method)
    return layer.forward(q[0])  # data movement


def inputs_f(ql):
    return ql.input_fraction_lengths


def check_against_oracle(qnet, x):
    """Every layer, from its own inputs, equals the oracle; boundary quantization included."""
    names = qnet.network.layer_names
    values = qnet.run({qnet.input_names[0]: x}, outputs=names)
    for name in names:
        ql = qnet.qlayers.get(name)
        if ql is None:
            assert not isinstance(values[name], QTensor)
            continue
        got = values[name]
        assert isinstance(got, QTensor) and got.q.dtype == np.int8 and got.f == ql.output_fraction_length
        inputs = []
        for source, f in zip(qnet.network.layer_inputs(name), ql.input_fraction_lengths):
            v = values[source]
            inputs.append(v.q if isinstance(v, QTensor) else quantize(v, f, ql.rounding))
        expected = layer_oracle(ql, inputs)
        assert np.array_equal(got.q.astype(np.int64), expected), f"layer {name} ({ql.type_name})"


# ---- random networks -----------------------------------------------------------------------------


def cnn(rng):
    """Conv variants, activations and pooling in a chain."""
    return chain([
        make_layer("ImageInput", "in", input_size=(2, 9, 9)),
        conv("c1", rng, 6, 2, padding="same"),
        make_layer("LeakyReLU", "lrelu", scale=0.1),
        conv("dw", rng, 6, 1, groups=6, stride=2, padding=1),
        make_layer("ClippedReLU", "relu6", ceiling=0.75),
        conv("grouped", rng, 4, 3, groups=2, dilation=2, padding=(2, 1, 1, 2)),
        make_layer("ReLU", "relu"),
        make_layer("AveragePooling2D", "avg", pool_size=2, stride=1, padding=(1, 0, 0, 1),
                   count_include_pad=False),
        make_layer("AveragePooling2D", "avg_pad", pool_size=3, stride=2, padding=1, count_include_pad=True),
        make_layer("MaxPooling2D", "max", pool_size=2, stride=1, padding=(0, 0, 1, 1)),
        make_layer("GlobalAveragePooling2D", "gap"),
        make_layer("Flatten", "flat"),
        make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.5, (5, 4)), bias=rng.normal(0, 0.1, 5)),
        make_layer("Softmax", "prob"),
    ])


def branches(rng):
    """Add and concat of tensors with different exponents, multiplication, global max pooling."""
    layers = [
        make_layer("ImageInput", "in", input_size=(3, 6, 6)),
        conv("a", rng, 4, 3, padding=1),
        make_layer("Convolution2D", "b", weights=rng.normal(0, 3.0, (4, 3, 1, 1)), bias=np.zeros(4)),
        make_layer("Addition", "add", num_inputs=2),
        make_layer("Concatenation", "cat", num_inputs=3),
        make_layer("Multiplication", "mul", num_inputs=2),
        make_layer("GlobalMaxPooling2D", "gmax"),
        make_layer("FullyConnected", "fc", weights=rng.normal(0, 0.5, (3, 12)), bias=np.zeros(3)),
    ]
    connections = [("in", "a"), ("in", "b"), ("a", "add/in1"), ("b", "add/in2"), ("a", "cat/in1"),
                   ("add", "cat/in2"), ("b", "cat/in3"), ("cat", "mul/in1"), ("cat", "mul/in2"),
                   ("mul", "gmax"), ("gmax", "fc")]
    return Network(layers, connections)


@pytest.mark.parametrize("build", [cnn, branches])
@pytest.mark.parametrize("environment", ["MATLAB", "GPU", "FPGA"])
@pytest.mark.parametrize("scheme, per_channel", [("MinMax", False), ("Histogram", True)])
def test_every_layer_matches_the_oracle(build, environment, scheme, per_channel):
    rng = np.random.default_rng(7)
    net = build(rng)
    shape = net.layer("in").sample_shape
    x_cal = rng.normal(0, 1, (40,) + shape).astype(np.float32)
    if environment == "FPGA" and build is branches:  # the HDL profile has no multiplication
        with pytest.raises(ValueError, match="'mul' of type Multiplication is not supported by the "
                                             "FPGA execution environment"):
            dlquantizer(net, environment)
        return
    q = dlquantizer(net, environment)
    q.calibrate(x_cal, batch_size=16, progress=False)
    qnet = q.quantize(scheme, per_channel=per_channel)
    floating = {"in", "prob"} if build is cnn else {"in"} | ({"mul", "gmax"} if environment == "GPU" else set())
    assert set(qnet.quantized_layer_names) == set(net.layer_names) - floating
    check_against_oracle(qnet, rng.normal(0, 1.5, (3,) + shape).astype(np.float32))


def test_exponents_differ_where_the_semantics_needs_alignment():
    rng = np.random.default_rng(7)
    q = dlquantizer(branches(rng), "MATLAB")
    q.calibrate(rng.normal(0, 1, (40, 3, 6, 6)).astype(np.float32), progress=False)
    qnet = q.quantize()
    add, cat = qnet.qlayers["add"], qnet.qlayers["cat"]
    assert len(set(add.input_fraction_lengths)) == 2 and any(cat.input_shifts)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_random_convolutions_match_the_oracle(data):
    draw = data.draw
    groups = draw(st.sampled_from([1, 2, 3]))
    per_group_in, per_group_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.one_of(st.just("same"), st.tuples(*[st.integers(0, 2)] * 4)))
    size = draw(st.integers((k - 1) * dilation + 1, 7))
    environment = draw(st.sampled_from(["MATLAB", "GPU", "FPGA"]))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    scale = 2.0 ** draw(st.integers(-6, 6))
    layers = [make_layer("ImageInput", "in", input_size=(groups * per_group_in, size, size)),
              make_layer("Convolution2D", "conv", weights=rng.normal(0, scale, (groups * per_group_out, per_group_in, k, k)),
                         bias=rng.normal(0, scale, groups * per_group_out), stride=stride, padding=padding,
                         dilation=dilation, groups=groups)]
    net = chain(layers)
    q = dlquantizer(net, environment)
    q.calibrate(rng.normal(0, 1, (6, groups * per_group_in, size, size)).astype(np.float32), progress=False)
    qnet = q.quantize(draw(st.sampled_from(["MinMax", "Histogram"])), per_channel=draw(st.booleans()))
    check_against_oracle(qnet, rng.normal(0, 2, (2, groups * per_group_in, size, size)).astype(np.float32))
