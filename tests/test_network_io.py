"""Network files: bit-identical round trip, the bundle container, and clear errors for bad files."""
import json
import zipfile

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.nn.layers import Resize2DLayer
from fixedpoint.nn.io import (NetworkFileError, network_from_bundle, network_to_bundle,
                              read_npz_bundle, write_npz_bundle)


def every_layer_network():
    rng = np.random.default_rng(11)
    r = lambda *s: rng.normal(size=s)  # noqa: E731
    layers = [
        fp.ImageInputLayer("img", (4, 8, None), "zscore", mean=r(4, 1, 1), std=r(4, 1, 1) ** 2 + 1),
        fp.Convolution2DLayer("conv", r(8, 2, 3, 3), r(8), (1, 2), "same", (2, 1), 2),
        fp.BatchNormalizationLayer("bn", r(8), r(8), r(8), r(8) ** 2 + 0.1, 1e-3),
        fp.LeakyReLULayer("leaky", 0.2),
        fp.CrossChannelNormalizationLayer("lrn", 3, 1e-3, 0.7, 1.5),
        fp.MaxPooling2DLayer("maxp", 3, 2, (1, 1, 1, 1), True),
        fp.AveragePooling2DLayer("avgp", 2, 1, (0, 0, 1, 1), False, True),
        Resize2DLayer("resize", (2, 1)), fp.ClippedReLULayer("relu6", 6),
        fp.GlobalMaxPooling2DLayer("gmp"),
        fp.GlobalAveragePooling2DLayer("gap"),
        fp.MultiplicationLayer("mul"),
        fp.ReshapeLayer("reshape", (2, 4, 0, -1)),
        fp.TransposeLayer("transpose", (0, 2, 1, 3, 4)),
        fp.FlattenLayer("flat"),
        fp.DropoutLayer("drop", 0.25),
        fp.FeatureInputLayer("feat", 3, "rescale-symmetric", min=-r(3) ** 2 - 1, max=r(3) ** 2 + 1),
        fp.FullyConnectedLayer("fc_feat", r(8, 3), r(8)),
        fp.SigmoidLayer("sig"), fp.TanhLayer("tanh"), fp.IdentityLayer("ident"),
        fp.ConcatenationLayer("cat", 1, 2), fp.ReLULayer("relu"), fp.AdditionLayer("add", 2),
        fp.FullyConnectedLayer("fc", r(5, 16), r(5)), fp.SoftmaxLayer("prob"),
        fp.nn.layers.TensorInputLayer("tin", (7,)), fp.nn.layers.PadLayer("pad", [(1, 0)]),
        fp.nn.layers.HardSwishLayer("hswish"), fp.nn.layers.SubtractionLayer("sub"),
    ]
    connections = [
        ("img", "conv"), ("conv", "bn"), ("bn", "leaky"), ("leaky", "lrn"), ("lrn", "maxp"),
        ("maxp", "avgp"), ("avgp", "resize"), ("resize", "relu6"), ("relu6", "gmp"), ("relu6", "gap"),
        ("gmp", "mul/in1"), ("gap", "mul/in2"), ("mul", "reshape"), ("reshape", "transpose"),
        ("transpose", "flat"), ("flat", "drop"),
        ("feat", "fc_feat"), ("fc_feat", "sig"), ("sig", "tanh"), ("tanh", "ident"),
        ("tin", "pad"), ("pad", "hswish"), ("ident", "sub/in1"), ("hswish", "sub/in2"),
        ("drop", "cat/in1"), ("sub", "cat/in2"), ("cat", "relu"),
        ("relu", "add/in1"), ("cat", "add/in2"), ("add", "fc"), ("fc", "prob"),
    ]
    return fp.Network(layers, connections, output_names=["prob", "cat"])


def inputs():
    rng = np.random.default_rng(12)
    return (rng.normal(size=(3, 4, 8, 7)).astype(np.float32),
            rng.normal(size=(3, 3)).astype(np.float32),
            rng.normal(size=(3, 7)).astype(np.float32))


def test_every_layer_type_is_covered():
    types = {layer.type_name for layer in every_layer_network().layers}
    assert types == set(fp.nn.layers.LAYER_REGISTRY)


def test_round_trip_is_bit_identical(tmp_path):
    net = every_layer_network()
    path = tmp_path / "net.npz"
    fp.save_network(net, path)
    loaded = fp.load_network(path)
    assert loaded.layer_names == net.layer_names
    assert loaded.connection_list() == net.connection_list()
    assert (loaded.input_names, loaded.output_names) == (net.input_names, net.output_names)
    for want, got in zip(net.predict(*inputs()), loaded.predict(*inputs())):
        np.testing.assert_array_equal(got, want)
    for layer in net.layers:
        for key, value in layer.arrays().items():
            np.testing.assert_array_equal(loaded.layer(layer.name).arrays()[key], value)
    with np.load(path, allow_pickle=False) as contents:
        assert "conv/Weights" in contents.files and "img/Mean" in contents.files


def test_prepared_network_keeps_its_origin(tmp_path):
    prepared = fp.prepare_network(every_layer_network())
    fp.save_network(prepared, tmp_path / "p.npz")
    loaded = fp.load_network(tmp_path / "p.npz")
    assert loaded.origin == prepared.origin and loaded.origin["conv"] == ["conv", "bn"]


def test_bundle_carries_extra_data(tmp_path):
    net = every_layer_network()
    meta, arrays = network_to_bundle(net, prefix="float/")
    extra = {"quant/conv/Weights": np.arange(-3, 3, dtype=np.int8)}
    write_npz_bundle(tmp_path / "q.qnet", {"network": meta, "word_length": 8}, {**arrays, **extra})
    meta2, arrays2 = read_npz_bundle(tmp_path / "q.qnet")
    assert meta2["word_length"] == 8
    assert arrays2["quant/conv/Weights"].dtype == np.int8
    rebuilt = network_from_bundle(meta2["network"], arrays2, prefix="float/")
    np.testing.assert_array_equal(rebuilt.predict(*inputs())[0], net.predict(*inputs())[0])
    assert (tmp_path / "q.qnet").exists()            # the exact path, no suffix added


def write_raw(path, meta, arrays=None):
    with open(path, "wb") as stream:
        np.savez(stream, __meta__=np.array(json.dumps(meta)), **(arrays or {}))


def test_malformed_files_are_named(tmp_path):
    net = every_layer_network()
    good = tmp_path / "good.npz"
    fp.save_network(net, good)
    data = good.read_bytes()
    cases = {}
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    cases["truncated.npz"] = "not a readable .npz bundle"
    (tmp_path / "text.npz").write_text("hello")
    cases["text.npz"] = "not a readable .npz bundle"
    np.save(tmp_path / "single.npy", np.zeros(3))
    cases["single.npy"] = "a single array, not a bundle"
    with open(tmp_path / "nometa.npz", "wb") as stream:
        np.savez(stream, a=np.zeros(2))
    cases["nometa.npz"] = "no __meta__ entry"
    with open(tmp_path / "badjson.npz", "wb") as stream:
        np.savez(stream, __meta__=np.array("{not json"))
    cases["badjson.npz"] = "__meta__ is not valid JSON"
    with open(tmp_path / "pickled.npz", "wb") as stream:
        np.savez(stream, __meta__=np.array("{}"), bad=np.array([{"a": 1}], dtype=object))
    cases["pickled.npz"] = "not a readable .npz bundle"
    meta, arrays = network_to_bundle(net)
    write_raw(tmp_path / "format.npz", {**meta, "format": "other"}, arrays)
    cases["format.npz"] = "format is 'other'"
    write_raw(tmp_path / "version.npz", {**meta, "version": 99}, arrays)
    cases["version.npz"] = "format version 99 is not supported"
    layers = [dict(entry) for entry in meta["layers"]]
    layers[1]["type"] = "Conv"
    write_raw(tmp_path / "type.npz", {**meta, "layers": layers}, arrays)
    cases["type.npz"] = "layer 'conv' has unknown type 'Conv'"
    missing = {k: v for k, v in arrays.items() if k != "fc/Weights"}
    write_raw(tmp_path / "missing.npz", meta, missing)
    cases["missing.npz"] = r"layer 'fc' \(FullyConnected\) cannot be rebuilt"
    write_raw(tmp_path / "extra.npz", meta, {**arrays, "ghost/Weights": np.zeros(1)})
    cases["extra.npz"] = r"arrays for unknown layers \['ghost'\]"
    write_raw(tmp_path / "graph.npz", {**meta, "connections": meta["connections"][1:]}, arrays)
    cases["graph.npz"] = r"invalid graph: unconnected input ports: \['conv/in'\]"
    write_raw(tmp_path / "nolayers.npz", {k: v for k, v in meta.items() if k != "layers"}, arrays)
    cases["nolayers.npz"] = "missing or malformed 'layers'"
    for name, message in cases.items():
        with pytest.raises(NetworkFileError, match=message) as info:
            fp.load_network(tmp_path / name)
        assert name in str(info.value)
        assert isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        fp.load_network(tmp_path / "nothere.npz")


def test_zip_member_corruption_is_reported(tmp_path):
    path = tmp_path / "net.npz"
    fp.save_network(every_layer_network(), path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content[:-8] if name == "conv/Weights.npy" else content)
    with pytest.raises(NetworkFileError, match="net.npz"):
        fp.load_network(path)


def test_bundle_rejects_non_numeric_arrays(tmp_path):
    with pytest.raises(TypeError, match="'names' must be numeric"):
        write_npz_bundle(tmp_path / "x.npz", {}, {"names": np.array(["a"])})
    with pytest.raises(ValueError, match="reserved"):
        write_npz_bundle(tmp_path / "x.npz", {}, {"__meta__": np.zeros(1)})
