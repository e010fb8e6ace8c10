"""fp.import_tflite against the real LiteRT interpreter (ai-edge-litert), profile by profile.

Every committed model (the bundled digits models, `fp.examples.model_file`, and the every-op model
of tests/data; made by examples/make_tflite_models.py) runs in the emulation
under each LiteRT profile and in the interpreter with the matching op resolver, on the bundled
validation digits and on full-range random inputs, at batch 1 and at larger batches; the outputs
must be np.array_equal. Smaller models made with tests/tflite_builder.py cover layouts, uint8 I/O
and the errors of malformed or unsupported files.
"""
from __future__ import annotations

import functools
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from tflite_builder import ModelBuilder, T, make_interpreter, single_op_model  # noqa: E402

import fixedpoint as fp  # noqa: E402
from fixedpoint.tflite import TfliteImportError, read_model, supported_operators  # noqa: E402

DATA = Path(__file__).parent / "data"


def model_path(name: str):
    """A test model's file: the bundled digits models, or the every-op model of tests/data."""
    return Path(fp.examples.model_file(f"{name}.tflite")) if name.startswith("digits") else DATA / f"{name}.tflite"

MODELS = ["digits_cnn_int8", "digits_cnn_float_io", "digits_mobilenet_int8", "digits_mobilenet_float_io",
          "ops_int8", "ops_float_io"]
PROFILES = {"litert": "xnnpack", "litert-optimized": "optimized", "litert-reference": "reference"}
I8 = np.int8
RANDOM_BATCH = 256


@functools.lru_cache(maxsize=None)
def content(name: str) -> bytes:
    return model_path(name).read_bytes()


@functools.lru_cache(maxsize=None)
def imported(name: str):
    return fp.import_tflite(model_path(name))


def litert_outputs(model: bytes, resolver: str, *inputs):
    """The interpreter's first output for these inputs (resized to their shapes)."""
    interp = make_interpreter(model, resolver)
    details = interp.get_input_details()
    for detail, x in zip(details, inputs):
        interp.resize_tensor_input(detail["index"], x.shape)
    interp.allocate_tensors()
    for detail, x in zip(details, inputs):
        interp.set_tensor(detail["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def model_inputs(qnet, seed=0):
    """(validation digits, full-range random data) as the model takes them: NHWC, quantized with the
    input's parameters for an integer input; random data spans every int8 value, or for a float
    input normal values (x3) with the extremes of the quantized range and beyond."""
    (_, _), (x_val, _) = fp.examples.digits_data()
    x = np.ascontiguousarray(x_val.transpose(0, 2, 3, 1))
    rng = np.random.default_rng(seed)
    if qnet.input_params:
        p = next(iter(qnet.input_params.values()))
        x = np.clip(np.round(x / p.scale[0]) + p.zero_point[0], p.qmin, p.qmax).astype(p.dtype)
        r = rng.integers(p.qmin, p.qmax + 1, (RANDOM_BATCH,) + x.shape[1:]).astype(p.dtype)
        r.reshape(-1)[:2] = (p.qmin, p.qmax)
        return x, r
    r = (rng.normal(size=(RANDOM_BATCH,) + x.shape[1:]) * 3).astype(np.float32)
    r.reshape(-1)[:4] = (-1e3, 1e3, 0.5, -0.5)
    return x, r


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("name", MODELS)
def test_models_match_litert(name, profile):
    """Validation digits (all 1258 at once and the first 4 one by one) and 256 random inputs."""
    qnet = imported(name)
    resolver = PROFILES[profile]
    x_val, x_rand = model_inputs(qnet)
    for x in (x_val, x_rand, x_val[:1], x_val[1:2], x_val[2:3], x_rand[:1]):
        got = qnet.predict(x, runtime=profile)
        want = litert_outputs(content(name), resolver, x)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), (name, profile, len(x), int(np.sum(got != want)))


def test_the_digits_models_classify_as_converted():
    """The int8 CNN's accuracy on the validation digits is what the converter printed (0.9801)."""
    (_, _), (_, y_val) = fp.examples.digits_data()
    qnet = imported("digits_cnn_int8")
    x_val, _ = model_inputs(qnet)
    assert np.mean(qnet.predict(x_val).argmax(axis=1) == y_val) == pytest.approx(0.9801, abs=5e-5)


def test_the_ops_model_covers_every_operator_asked_for():
    ops = {op.op for op in read_model(DATA / "ops_int8.tflite").operators}
    ops |= {op.op for op in read_model(DATA / "ops_float_io.tflite").operators}
    ops |= {op.op for op in read_model(model_path("digits_mobilenet_int8")).operators}
    wanted = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "CONCATENATION",
              "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "RESHAPE", "PAD", "SOFTMAX", "LOGISTIC", "TANH",
              "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE"}
    assert wanted <= ops
    assert wanted <= set(supported_operators())


def test_imported_network_defaults_and_boundaries():
    q8, qf = imported("digits_cnn_int8"), imported("digits_cnn_float_io")
    assert q8.default_runtime == "litert" and q8.integer_outputs and not qf.integer_outputs
    p = q8.input_params[q8.input_names[0]]
    assert p.dtype == np.int8 and not qf.input_params
    x8, _ = model_inputs(q8)
    assert q8.predict(x8[:3]).dtype == np.int8
    with pytest.raises(ValueError, match="takes int8 integers"):
        q8.predict(x8[:3].astype(np.float32))
    with pytest.raises(ValueError, match="litert"):
        q8.predict(x8[:3], runtime="onnxruntime-avx2")
    xf, _ = model_inputs(qf)
    assert qf.predict(xf[:3]).dtype == np.float32


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mobilenet"])
def test_float_network_holds_the_dequantized_weights(name):
    """The imported float network is the converted model without quantization: it computes what our
    bundled network computes, up to the weights' quantization (OIHW / flatten order right)."""
    ours = fp.prepare_network(getattr(fp.examples, name)())
    (_, _), (x_val, _) = fp.examples.digits_data()
    qnet = imported(f"{name}_float_io")
    got = qnet.network.predict(np.ascontiguousarray(x_val.transpose(0, 2, 3, 1)))
    want = ours.predict(x_val)
    error = np.abs(got - want)   # measured: mean 3.3e-4 / 4.3e-4, max 0.091 / 0.055 (CNN / MobileNet)
    assert error.mean() < 1e-3 and error.max() < 0.15
    assert np.mean(got.argmax(axis=1) == want.argmax(axis=1)) > 0.995
    learnables = qnet.learnables
    conv = learnables[learnables.Parameter == "Weights"].iloc[0].Value
    assert conv.ndim == 4 and conv.shape[1:] == ours.layers[1].weights.shape[1:]


def test_save_and_load_keep_every_bit(tmp_path):
    qnet = imported("ops_float_io")
    path = tmp_path / "ops.npz"
    qnet.save(path)
    loaded = fp.load_quantized_network(path)
    assert loaded.integer_outputs == qnet.integer_outputs and loaded.input_params == qnet.input_params
    x, r = model_inputs(qnet)
    for profile in PROFILES:
        assert np.array_equal(loaded.predict(r[:32], runtime=profile), qnet.predict(r[:32], runtime=profile))


# --- small models from the builder: layouts, types, shape arithmetic ----------------------------------
def rand_i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(I8)


def assert_matches(model: bytes, *inputs):
    qnet = fp.import_tflite(model)
    for profile, resolver in PROFILES.items():
        got = qnet.predict(*inputs, runtime=profile)
        want = litert_outputs(model, resolver, *inputs)
        assert got.shape == want.shape and got.dtype == want.dtype, profile
        assert np.array_equal(got, want), (profile, int(np.sum(got != want)))
    return qnet


def conv_tensors(rng, c_in, c_out, k=3):
    w = rng.integers(-127, 128, (c_out, k, k, c_in)).astype(I8)
    s_w = rng.uniform(0.002, 0.02, c_out).astype(np.float32)
    bias = rng.integers(-2000, 2000, c_out).astype(np.int32)
    return w, s_w, bias


def test_four_d_output_comes_back_nhwc():
    """A CONV_2D whose output is the model's output: the emulation returns NHWC as LiteRT does."""
    rng = np.random.default_rng(1)
    w, s_w, bias = conv_tensors(rng, 3, 11)
    model = single_op_model(
        "CONV_2D", [T((1, 7, 6, 3), I8, 0.02, -5), T(w.shape, I8, s_w, 0, data=w),
                    T(bias.shape, np.int32, (0.02 * s_w).astype(np.float32), 0, data=bias)],
        [T((1, 4, 3, 11), I8, 0.07, 9)], padding="SAME", stride_w=2, stride_h=2, fused_activation_function="RELU")
    assert_matches(model, rand_i8(rng, (5, 7, 6, 3)))


def test_reshape_then_fully_connected_flattens_in_nhwc_order():
    """CONV_2D -> RESHAPE [-1, H*W*C] (a constant shape) -> FULLY_CONNECTED: the weights read the
    NHWC order, so a wrong flatten order changes the result."""
    rng = np.random.default_rng(2)
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4, 5, 1), I8, scale=0.05, zero_point=3)
    w, s_w, bias = conv_tensors(rng, 1, 6)
    wt = b.add_tensor("w", w.shape, I8, data=w, scale=s_w, zero_point=0)
    bt = b.add_tensor("b", bias.shape, np.int32, data=bias, scale=(0.05 * s_w).astype(np.float32), zero_point=0)
    y = b.add_tensor("y", (1, 4, 5, 6), I8, scale=0.1, zero_point=-2)
    b.add_operator("CONV_2D", [x, wt, bt], [y], padding="SAME", stride_w=1, stride_h=1)
    shape = b.add_tensor("shape", (2,), np.int32, data=np.array([-1, 120], np.int32))
    flat = b.add_tensor("flat", (1, 120), I8, scale=0.1, zero_point=-2)
    b.add_operator("RESHAPE", [y, shape], [flat])
    fw = rng.integers(-127, 128, (7, 120)).astype(I8)
    fwt = b.add_tensor("fw", fw.shape, I8, data=fw, scale=np.float32(0.01), zero_point=0)
    out = b.add_tensor("out", (1, 7), I8, scale=0.5, zero_point=1)
    b.add_operator("FULLY_CONNECTED", [flat, fwt, -1], [out])
    model = b.build([x], [out])
    qnet = assert_matches(model, rand_i8(rng, (9, 4, 5, 1)))
    assert any(layer.type_name == "Transpose" for layer in qnet.layers[1:-1])


def test_uint8_input_and_output_are_requantized_as_litert_does():
    """uint8 in -> QUANTIZE -> int8 CONV_2D -> QUANTIZE -> uint8 out (the converter's uint8 I/O)."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 5, 5, 2), np.uint8, scale=0.04, zero_point=128)
    xi = b.add_tensor("xi", (1, 5, 5, 2), I8, scale=0.04, zero_point=0)
    b.add_operator("QUANTIZE", [x], [xi])
    w, s_w, bias = conv_tensors(rng, 2, 4)
    wt = b.add_tensor("w", w.shape, I8, data=w, scale=s_w, zero_point=0)
    bt = b.add_tensor("b", bias.shape, np.int32, data=bias, scale=(0.04 * s_w).astype(np.float32), zero_point=0)
    y = b.add_tensor("y", (1, 5, 5, 4), I8, scale=0.08, zero_point=-3)
    b.add_operator("CONV_2D", [xi, wt, bt], [y], padding="SAME", stride_w=1, stride_h=1)
    out = b.add_tensor("out", (1, 5, 5, 4), np.uint8, scale=0.08, zero_point=125)
    b.add_operator("QUANTIZE", [y], [out])
    model = b.build([x], [out])
    qnet = assert_matches(model, rng.integers(0, 256, (6, 5, 5, 2)).astype(np.uint8))
    assert qnet.input_params[qnet.input_names[0]].dtype == np.uint8


# --- errors --------------------------------------------------------------------------------------------
def patch_model_version(model: bytes, version: int) -> bytes:
    """The model with its schema version field rewritten (found through the root table's vtable)."""
    buf = bytearray(model)
    root = struct.unpack_from("<I", buf, 0)[0]
    vtable = root - struct.unpack_from("<i", buf, root)[0]
    field = struct.unpack_from("<H", buf, vtable + 4)[0]
    struct.pack_into("<I", buf, root + field, version)
    return bytes(buf)


def test_malformed_files_raise_clear_errors(tmp_path):
    good = content("digits_cnn_int8")
    for n in (0, 7, 8, 20, 100, len(good) // 2, len(good) - 1):
        with pytest.raises(TfliteImportError, match="malformed|not a .tflite"):
            fp.import_tflite(good[:n])
    with pytest.raises(TfliteImportError, match=r"not a \.tflite model \(file identifier b'XXXX'"):
        fp.import_tflite(good[:4] + b"XXXX" + good[8:])
    garbage = np.random.default_rng(4).integers(0, 256, 5000).astype(np.uint8).tobytes()
    with pytest.raises(TfliteImportError, match="not a .tflite model"):
        fp.import_tflite(garbage)
    with pytest.raises(TfliteImportError, match="unsupported .tflite schema version 2"):
        fp.import_tflite(patch_model_version(good, 2))
    with pytest.raises(TfliteImportError, match="cannot read"):
        fp.import_tflite(tmp_path / "missing.tflite")
    with pytest.raises(TfliteImportError, match="path or bytes"):
        fp.import_tflite(12)
    assert issubclass(TfliteImportError, ValueError)


def test_random_byte_flips_never_crash():
    """200 copies of a model with a byte changed: each imports (and then runs) or raises a
    TfliteImportError; no other exception escapes the importer."""
    good = bytearray(content("digits_mobilenet_int8"))
    rng = np.random.default_rng(5)
    errors = 0
    for _ in range(200):
        bad = bytearray(good)
        bad[int(rng.integers(0, len(bad)))] = int(rng.integers(0, 256))
        try:
            fp.import_tflite(bytes(bad))
        except TfliteImportError:
            errors += 1
    assert 0 < errors < 200


def one_conv_builder(rng):
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4, 4, 2), I8, scale=0.05, zero_point=0)
    w, s_w, bias = conv_tensors(rng, 2, 3)
    wt = b.add_tensor("w", w.shape, I8, data=w, scale=s_w, zero_point=0)
    bt = b.add_tensor("b", bias.shape, np.int32, data=bias, scale=(0.05 * s_w).astype(np.float32), zero_point=0)
    y = b.add_tensor("y", (1, 4, 4, 3), I8, scale=0.1, zero_point=0)
    b.add_operator("CONV_2D", [x, wt, bt], [y], padding="SAME", stride_w=1, stride_h=1)
    return b, x, y


@pytest.mark.parametrize("damage, message", [
    (lambda b: b.tensors[1].update(buffer=99), "refers to buffer 99; the model has"),
    (lambda b: b.tensors[1].update(shape=(3, 3, 3, 3)), r"holds \d+ bytes; shape \[3, 3, 3, 3\] of int8 needs"),
    (lambda b: b.operators[0].update(inputs=[0, 1, 40]), "refers to tensor 40; the subgraph has 4 tensors"),
    (lambda b: b.operators[0].update(opcode=3), "uses operator code 3; the model defines 1"),
    (lambda b: b.tensors[0].update(quant=(np.array([-1.0], np.float32), np.array([0]), 0)),
     "scales that are not positive finite"),
    (lambda b: b.tensors[3].update(quant=(np.array([0.1], np.float32), np.array([300]), 0)),
     "lie outside the int8 range"),
])
def test_damaged_tables_are_named(damage, message):
    b, x, y = one_conv_builder(np.random.default_rng(6))
    damage(b)
    with pytest.raises(TfliteImportError, match=message):
        fp.import_tflite(b.build([x], [y]))


def test_unsupported_operator_names_itself_and_the_supported_list():
    model = single_op_model("FLOOR", [T((1, 4), np.float32)], [T((1, 4), np.float32)])
    with pytest.raises(TfliteImportError, match=r"operator 0 is FLOOR, which the importer does not "
                                                r"support; supported operators: ADD, .*CONV_2D"):
        fp.import_tflite(model)


def test_float_operators_and_constant_operands_are_refused():
    w = np.ones((3, 4), np.float32)
    model = single_op_model("FULLY_CONNECTED", [T((1, 4), np.float32), T(w.shape, np.float32, data=w), None],
                            [T((1, 3), np.float32)])
    with pytest.raises(TfliteImportError, match="operator 0 .FULLY_CONNECTED.: .*only int8 weights"):
        fp.import_tflite(model)
    c = np.ones((1, 4), I8)
    model = single_op_model("ADD", [T((1, 4), I8, 0.1, 0), T((1, 4), I8, 0.1, 0, data=c)], [T((1, 4), I8, 0.2, 0)])
    with pytest.raises(TfliteImportError, match=r"operator 0 \(ADD\): input 1 .* is a constant"):
        fp.import_tflite(model)


def test_the_profiles_compute_differently():
    """The comparisons above can fail: on the every-op model each pair of profiles disagrees on
    many of the 1514 inputs (measured 516 / 462 / 296 rows), so emulating one resolver with another's
    formulas would not pass."""
    qnet = imported("ops_int8")
    x_val, x_rand = model_inputs(qnet)
    x = np.concatenate([x_val, x_rand])
    outputs = {p: qnet.predict(x, runtime=p) for p in PROFILES}
    for a, b in (("litert", "litert-optimized"), ("litert", "litert-reference"),
                 ("litert-optimized", "litert-reference")):
        assert np.sum(np.any(outputs[a] != outputs[b], axis=1)) > 100, (a, b)
