"""prepare_network: function unchanged (1e-5 relative), structure (BN gone, dropout/identity gone),
the origin mapping, the folding formula of the spec and cross-layer equalization."""
import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.nn.prepare import _equalization_pairs, _input_channel_ranges


def rel_err(got, want):
    return np.abs(got.astype(np.float64) - want).max() / np.abs(want).max()


def random_bn(rng, name, channels):
    return fp.BatchNormalizationLayer(name, rng.normal(size=channels), rng.normal(size=channels),
                                      rng.normal(size=channels),
                                      rng.uniform(0.2, 2.0, size=channels), epsilon=1e-3)


def random_network(seed):
    """A random NCHW network: conv blocks with random groups (incl. depthwise), batch norms both
    foldable and not (after an input, after an addition, after a conv with two consumers), dropout,
    identity, pooling, residual additions, then a fully connected head with a batch norm."""
    rng = np.random.default_rng(seed)
    layers, connections = [fp.ImageInputLayer("input", (4, 10, 10))], []
    current, channels = "input", 4

    def add(layer, *sources):
        layers.append(layer)
        if len(sources) == 1:
            connections.append((sources[0], layer.name))
        else:
            connections.extend((s, f"{layer.name}/in{k + 1}") for k, s in enumerate(sources))
        return layer.name

    if rng.random() < 0.5:
        current = add(random_bn(rng, "bn_input", channels), current)
    for block in range(int(rng.integers(2, 5))):
        kind = rng.choice(["dense", "grouped", "depthwise"])
        groups = {"dense": 1, "grouped": 2, "depthwise": channels}[kind]
        out = channels * (int(rng.integers(1, 3)) if kind == "depthwise" else 2)
        conv = add(fp.Convolution2DLayer(
            f"conv{block}", rng.normal(size=(out, channels // groups, 3, 3)) * 0.5,
            rng.normal(size=out), padding="same", groups=groups), current)
        if rng.random() < 0.3:
            conv = add(fp.DropoutLayer(f"drop{block}"), conv)
        bn = add(random_bn(rng, f"bn{block}", out), conv)
        act = add(fp.ReLULayer(f"relu{block}"), bn)
        if rng.random() < 0.5:
            side = add(fp.Convolution2DLayer(f"side{block}", rng.normal(size=(out, out, 1, 1)),
                                             rng.normal(size=out)), act)
            act = add(fp.AdditionLayer(f"add{block}"), act, side)
            act = add(random_bn(rng, f"bn_add{block}", out), act)
        if rng.random() < 0.4:
            act = add(fp.IdentityLayer(f"id{block}"), act)
        if block == 0:
            act = add(fp.MaxPooling2DLayer("pool", 2, 2), act)
        current, channels = act, out
    current = add(fp.GlobalAveragePooling2DLayer("gap"), current)
    current = add(fp.FlattenLayer("flat"), current)
    current = add(fp.FullyConnectedLayer("fc", rng.normal(size=(6, channels)), rng.normal(size=6)),
                  current)
    current = add(random_bn(rng, "bn_fc", 6), current)
    add(fp.SoftmaxLayer("prob"), current)
    return fp.Network(layers, connections)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("equalize", [False, True])
def test_prepared_network_is_equivalent(seed, equalize):
    net = random_network(seed)
    prepared = fp.prepare_network(net, cross_layer_equalization=equalize)
    x = np.random.default_rng(100 + seed).normal(size=(3, 4, 10, 10)).astype(np.float32)
    assert rel_err(prepared.predict(x), net.predict(x)) < 1e-5
    if not equalize:
        # each prepared layer computes what the last original layer it stands for computed
        names = prepared.layer_names
        originals = [prepared.origin[name][-1] for name in names]
        for got, want in zip(prepared.predict(x, outputs=names), net.predict(x, outputs=originals)):
            assert rel_err(got, want) < 1e-5
    types = {layer.type_name for layer in prepared.layers}
    assert not types & {"BatchNormalization", "Dropout", "Identity"}
    # every original layer is accounted for exactly once, except the dropped ones
    covered = [name for names in prepared.origin.values() for name in names]
    dropped = [layer.name for layer in net.layers if layer.type_name in ("Dropout", "Identity")]
    assert sorted(covered + dropped) == sorted(net.layer_names)
    # the original network is untouched
    assert any(layer.type_name == "BatchNormalization" for layer in net.layers)


def test_folding_follows_the_spec_example():
    # spec B.8: W = [0.5, -1.0], b = 0.2, gamma = 2, beta = 0.1, mu = 0.4, var = 0.99, eps = 0.01
    net = fp.Network(
        [fp.FeatureInputLayer("in", 2), fp.FullyConnectedLayer("fc", [[0.5, -1.0]], [0.2]),
         fp.BatchNormalizationLayer("bn", [2.0], [0.1], [0.4], [0.99], epsilon=0.01)],
        [("in", "fc"), ("fc", "bn")])
    prepared = fp.prepare_network(net)
    assert prepared.layer_names == ["in", "fc"]
    np.testing.assert_array_equal(prepared.layer("fc").weights, np.float32([[1.0, -2.0]]))
    np.testing.assert_allclose(prepared.layer("fc").bias, [-0.3], rtol=1e-7)
    assert prepared.origin == {"in": ["in"], "fc": ["fc", "bn"]}


def test_batch_norm_that_cannot_be_folded_becomes_a_per_channel_scale():
    rng = np.random.default_rng(3)
    layers = [fp.ImageInputLayer("in", (3, 5, 5)),
              fp.Convolution2DLayer("conv", rng.normal(size=(3, 3, 3, 3)), padding=1),
              random_bn(rng, "bn", 3), fp.ReLULayer("relu"), fp.AdditionLayer("add"),
              fp.FeatureInputLayer("feat", 4), random_bn(rng, "bn_feat", 4)]
    connections = [("in", "conv"), ("conv", "bn"), ("conv", "relu"), ("bn", "add/in1"),
                   ("relu", "add/in2"), ("feat", "bn_feat")]
    net = fp.Network(layers, connections)
    prepared = fp.prepare_network(net)
    scale = prepared.layer("bn")      # conv also feeds relu: not foldable
    assert isinstance(scale, fp.Convolution2DLayer) and scale.groups == 3
    assert scale.filter_size == (1, 1) and prepared.origin["bn"] == ["bn"]
    assert isinstance(prepared.layer("bn_feat"), fp.FullyConnectedLayer)
    x, f = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(2, 4))
    for got, want in zip(prepared.predict(x, f), net.predict(x, f)):
        assert rel_err(got, want) < 1e-5


def test_output_layer_is_not_folded_into():
    rng = np.random.default_rng(4)
    net = fp.Network([fp.FeatureInputLayer("in", 3),
                      fp.FullyConnectedLayer("fc", rng.normal(size=(2, 3))),
                      random_bn(rng, "bn", 2)],
                     [("in", "fc"), ("fc", "bn")], output_names=["fc", "bn"])
    prepared = fp.prepare_network(net)
    assert prepared.output_names == ["fc", "bn"]
    x = rng.normal(size=(4, 3))
    for got, want in zip(prepared.predict(x), net.predict(x)):
        assert rel_err(got, want) < 1e-5


def test_cross_layer_equalization_balances_ranges():
    rng = np.random.default_rng(5)
    spread = np.array([8.0, 0.1, 1.0, 30.0]).reshape(4, 1, 1, 1)
    layers = [fp.ImageInputLayer("in", (2, 6, 6)),
              fp.Convolution2DLayer("c1", rng.normal(size=(4, 2, 3, 3)) * spread,
                                    rng.normal(size=4)),
              fp.ReLULayer("r1"), fp.MaxPooling2DLayer("mp", 2, 2),
              fp.Convolution2DLayer("dw", rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4),
                                    padding=1, groups=4),
              fp.LeakyReLULayer("lr", 0.1),
              fp.Convolution2DLayer("pw", rng.normal(size=(3, 4, 1, 1)), rng.normal(size=3)),
              fp.ClippedReLULayer("r6", 6.0),
              fp.Convolution2DLayer("c3", rng.normal(size=(2, 3, 1, 1)))]
    net = fp.Network(layers, [(a.name, b.name) for a, b in zip(layers, layers[1:])])
    prepared = fp.prepare_network(net, cross_layer_equalization=True)
    assert _equalization_pairs(prepared) == [("c1", "dw"), ("dw", "pw")]   # not across ReLU6
    for first, second in [("c1", "dw"), ("dw", "pw")]:
        w1 = prepared.layer(first).weights
        r1 = np.abs(w1).reshape(w1.shape[0], -1).max(axis=1)
        np.testing.assert_allclose(r1, _input_channel_ranges(prepared.layer(second)), rtol=1e-4)
    np.testing.assert_array_equal(prepared.layer("c3").weights, net.layer("c3").weights)
    x = rng.normal(size=(2, 2, 6, 6)).astype(np.float32)
    assert rel_err(prepared.predict(x), net.predict(x)) < 1e-5
