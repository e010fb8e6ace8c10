"""The independent reference path of affine networks (fixedpoint/quantization/reference_affine.py)
against `QuantizedNetwork.predict`: equal bit for bit, layer by layer, under every runtime profile of
the network's family, on the imported .tflite and ONNX models of the suite and on hand-made affine
networks, with full-range and bundled inputs. The reference never calls fixedpoint.kernels or the
affine kinds; its MLAS accumulation rule table is checked against `ort_accumulation` on the grid of
tests/test_ort_accumulation.py; deliberately wrong variants of it must fail."""
from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest

import fixedpoint as fp
from fixedpoint.nn import Network
from fixedpoint.nn.layers.base import make_layer
from fixedpoint.quantization import reference_affine as ra
from fixedpoint.quantization.layers import AffineLayer
from fixedpoint.quantization.reference import predict_reference
from fixedpoint.quantization.reference_affine import ReferenceNotSupportedError, reference_coverage
from fixedpoint.quantization.targets import get_target
from fixedpoint.runtime import RUNTIMES

P = fp.QuantParams
ORT_PROFILES = [name for name, p in RUNTIMES.items() if p.family == "onnxruntime"]
LITERT_PROFILES = [name for name, p in RUNTIMES.items() if p.family == "litert"]


# --- comparison -------------------------------------------------------------------------------------
def _ancestors(net, name, found=None):
    found = set() if found is None else found
    if name not in found:
        found.add(name)
        for source in net.layer_inputs(name):
            _ancestors(net, source, found)
    return found


def assert_same_layer_by_layer(qnet, x, runtime) -> int:
    """Every layer the reference covers (its sources too) equal to predict's, as `fi` with the same
    numerictype or float32 arrays; the whole network too when every layer is covered; layers it does
    not cover raise ReferenceNotSupportedError naming themselves and the runtime. Returns the number
    of quantized layer outputs compared."""
    coverage = reference_coverage(qnet, runtime)
    net = qnet.network
    names = [n for n in net.layer_names if all(coverage[a] is None for a in _ancestors(net, n))]
    kernel = qnet.predict(x, outputs=names, runtime=runtime)
    reference = predict_reference(qnet, x, outputs=names, runtime=runtime)
    compared = 0
    for name, k, r in zip(names, kernel, reference):
        if isinstance(k, fp.fi):
            assert isinstance(r, fp.fi) and r.numerictype == k.numerictype, (runtime, name)
            np.testing.assert_array_equal(np.asarray(r.stored_integer, np.int64),
                                          np.asarray(k.stored_integer, np.int64), err_msg=f"{runtime} {name}")
            compared += 1
        else:
            assert not isinstance(r, fp.fi) and np.asarray(r).dtype == np.asarray(k).dtype, (runtime, name)
            np.testing.assert_array_equal(r, k, err_msg=f"{runtime} {name}")
    missing = [n for n in net.layer_names if n not in names]
    if not missing:
        got, want = predict_reference(qnet, x, runtime=runtime), qnet.predict(x, runtime=runtime)
        for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
            assert g.dtype == w.dtype and np.array_equal(g, w), runtime
    for name in missing:   # the error names the first uncovered layer computed, and the runtime
        with pytest.raises(ReferenceNotSupportedError, match=f"under runtime '{runtime}'") as error:
            predict_reference(qnet, x, outputs=name, runtime=runtime)
        culprit = str(error.value).split("'")[1]
        assert coverage[culprit] is not None and culprit in _ancestors(net, name), (name, culprit)
    return compared


# --- the MLAS rule table against ort_accumulation -------------------------------------------------
def _accumulation_grid():
    """The argument sets of tests/test_ort_accumulation.py (rules, MatMulInteger, ConvInteger,
    QLinearConv, QLinearMatMul, float-output ops), then every combination of op, CPU profile,
    types, domain, version, constness, weight zero points and depthwise geometry."""
    grid = importlib.import_module("test_ort_accumulation")
    u8, s8 = np.uint8, np.int8
    cases = []
    for isa in ("avx2", "avx512bw"):
        for op in ("MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
            cases += [dict(op_type=op, isa=isa, activation_dtype=a, weight_dtype=w)
                      for a, w in ((u8, s8), (u8, u8), (s8, s8))]
        cases += [dict(op_type="ConvInteger", isa=isa, activation_dtype=a, weight_dtype=w)
                  for a, w in ((s8, u8), (u8, s8))]
        cases.append(dict(op_type="QLinearConv", isa=isa, activation_dtype=u8, weight_dtype=s8, groups=1,
                          in_channels=8, out_channels=8))
        dw = dict(op_type="QLinearConv", isa=isa, activation_dtype=u8, weight_dtype=s8, groups=6, in_channels=6)
        cases += [dict(dw, out_channels=6, weight_zero_point=[3] * 6),
                  dict(dw, out_channels=6, weight_zero_point=[0, 1, 0, 0, 0, 0]), dict(dw, out_channels=12)]
    cases += [dict(op_type="QLinearConv", isa="avx2-precise", activation_dtype=u8, weight_dtype=s8),
              dict(op_type="MatMulInteger", isa="avx2-precise", activation_dtype=u8, weight_dtype=s8,
                   weight_is_constant=False),
              dict(op_type="QLinearMatMul", isa="avx2-precise", activation_dtype=u8, weight_dtype=s8, since_version=21),
              dict(op_type="QLinearConv", isa="avx2-precise", activation_dtype=u8, weight_dtype=s8,
                   domain="com.microsoft"),
              dict(op_type="QLinearConv", isa="avx2-precise", activation_dtype=s8, weight_dtype=s8),
              dict(op_type="QLinearConv", isa="avx2", activation_dtype=s8, weight_dtype=u8),
              dict(op_type="QLinearConv", isa="sse", activation_dtype=u8, weight_dtype=s8),
              dict(op_type="Conv", isa="avx2", activation_dtype=u8, weight_dtype=s8)]
    isa_of = lambda precise: grid.ORT_ISA + ("-precise" if precise else "")  # noqa: E731
    pairs4 = [(u8, s8), (s8, s8), (u8, u8), (s8, u8)]
    for (a, w), const, precise in itertools.product(pairs4, (True, False), (False, True)):
        cases.append(dict(op_type="MatMulInteger", isa=isa_of(precise), activation_dtype=a, weight_dtype=w,
                          weight_is_constant=const, since_version=10))
    for (a, w), case in itertools.product([(u8, u8), (u8, s8), (s8, s8), (s8, u8)], grid.ORT_CONV_CASES):
        c, o, k, groups = case[:4]
        cases.append(dict(op_type="ConvInteger", isa=grid.ORT_ISA, activation_dtype=a, weight_dtype=w, groups=groups,
                          in_channels=c, out_channels=o))
    for (a, w), case, (pc, wz), domain, precise in itertools.product(
            [(u8, s8), (s8, s8), (u8, u8)], grid.ORT_CONV_CASES,
            [(False, "zero"), (False, "nz"), (True, "zero"), (True, "nz")], ("", "com.microsoft"), (False, True)):
        c, o, k, groups = case[:4]
        rng = np.random.default_rng(c * 7 + o * 3 + k + pc + (wz == "nz") * 5)
        rng.integers(0, 1, 2)   # the order of draws does not matter here: only uniformity does
        base = 0 if w == np.int8 else 128
        zp = np.zeros(o if pc else ()) + base + (rng.integers(-5, 5, o if pc else ()) if wz == "nz" else 0)
        cases.append(dict(op_type="QLinearConv", isa=isa_of(precise), activation_dtype=a, weight_dtype=w,
                          weight_zero_point=zp.astype(w), groups=groups, in_channels=c, out_channels=o, domain=domain))
    for (a, w), (opset, precise) in itertools.product([(u8, s8), (s8, s8), (u8, u8)],
                                                     [(21, False), (10, True), (21, True)]):
        cases.append(dict(op_type="QLinearMatMul", isa=isa_of(precise), activation_dtype=a, weight_dtype=w,
                          since_version=21 if opset >= 21 else 10))
    for op, (a, w), precise in itertools.product(("QGemm", "MatMulIntegerToFloat"), [(u8, s8), (s8, s8), (u8, u8)],
                                                 (False, True)):
        cases.append(dict(op_type=op, isa=isa_of(precise), activation_dtype=a, weight_dtype=w, domain="com.microsoft"))
    # and every combination of what the rules read
    ops = ra.ORT_GEMM_OPS + ra.ORT_CONV_OPS
    for op, isa, a, w, domain, version, const in itertools.product(
            ops, ra.ORT_ISAS, (u8, s8), (u8, s8), ("", "com.microsoft"), (None, 1, 10, 21), (True, False)):
        for geometry in (dict(), dict(groups=6, in_channels=6, out_channels=6),
                         dict(groups=6, in_channels=6, out_channels=6, weight_zero_point=[0, 1, 0, 0, 0, 0]),
                         dict(groups=6, in_channels=6, out_channels=12)):
            cases.append(dict(op_type=op, isa=isa, activation_dtype=a, weight_dtype=w, domain=domain,
                              since_version=version, weight_is_constant=const, **geometry))
    return cases


def test_rule_table_agrees_with_ort_accumulation():
    from fixedpoint.kernels import ort_accumulation   # the table under comparison (not used by the reference)
    outcomes = set()
    cases = _accumulation_grid()
    for kw in cases:
        try:
            acc = ort_accumulation(**kw)
            want = (acc.kind, acc.k_order if acc.kind != "exact" else None,
                    acc.unsigned_operand if acc.kind != "exact" else None)
        except ValueError:
            want = "raises"
        args = dict(kw)
        op, isa = args.pop("op_type"), args.pop("isa")
        try:
            got = ra.ort_accumulation_rule(op, isa, **args)
        except ValueError:
            got = "raises"
        assert got == want, kw
        outcomes.add(got if got == "raises" else got[0])
    assert outcomes == {"raises", "exact", "int16_pairs"} and len(cases) > 2000


# --- primitives against exact arithmetic -----------------------------------------------------------
def _half_away(v) -> int:
    from fractions import Fraction
    n = int(abs(v) + Fraction(1, 2))
    return n if v >= 0 else -n


def _round_to_float32(value):
    """Correct rounding of a Fraction to float32, ties to even, by comparing the neighbours."""
    from fractions import Fraction
    f = np.float32(float(value))
    candidates = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - value),
                                          int(np.array(c, np.float32).view(np.int32)) & 1))


def test_primitives_against_python_integers_and_fractions():
    from fractions import Fraction
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.integers(-2**31, 2**31, 2000), [-2**31, 2**31 - 1, 0, 1, -1, 3, -3, 2**30]])
    b = np.concatenate([rng.integers(-2**31, 2**31, 2000), [-2**31, -2**31, 5, 2**30, 2**30, 2**30, 2**30, 1]])
    want = [2**31 - 1 if x == y == -2**31 else (x * y + 2**30) // 2**31 for x, y in zip(a.tolist(), b.tolist())]
    assert ra.srdhm(a, b).tolist() == want                       # ties toward +inf
    for e in (0, 1, 5, 17, 31):
        assert ra.rdbpot(a, e).tolist() == [_half_away(Fraction(v, 2**e)) for v in a.tolist()]
        assert ra.shift_half_up(a, e).tolist() == [int((Fraction(v, 2**e) + Fraction(1, 2)).__floor__())
                                                    for v in a.tolist()]
    for real in (0.0003, 0.5, 0.999999999, 1.5, 2.0**-40, 123.456):
        m, shift = ra.quantize_multiplier(real)
        assert m == 0 and shift == 0 if real < 2**-32 else abs(m * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32)
    x = (rng.standard_normal(3000) * 1e3).astype(np.float32)
    y = rng.standard_normal(3000).astype(np.float32)
    z = (rng.standard_normal(3000) * 1e2).astype(np.float32)
    # double-rounding traps: a·b + c just off a float32 halfway point that the float64 sum lands on
    k = np.arange(-10, 10)
    x[:20] = -np.ldexp(np.float32(1 + 2**-20), k - 24)
    y[:20] = np.float32(1 - 2**-20)
    z[:20] = np.ldexp(np.float32(1 + 2**-23), k)
    x[20:40], z[20:40] = -x[:20], -z[:20]
    assert not np.array_equal((x[:40].astype(np.float64) * y[:40] + z[:40]).astype(np.float32),
                              ra.fma32(x[:40], y[:40], z[:40]))
    exact = [Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)) for p, q, r in zip(x, y, z)]
    assert np.array_equal(ra.fma32(x, y, z), np.array([_round_to_float32(t) for t in exact], np.float32))
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -1e10, 3e9], np.float32)
    assert ra.round_half_away(v).tolist() == [1, 2, 3, -1, -3, 0, -1e10, 3e9]
    assert ra.float_to_int32(np.array([3e9, -3e9, np.nan, 7.0])).tolist() == [-2**31, -2**31, -2**31, 7]


# --- imported .tflite models ------------------------------------------------------------------------
def _tflite():
    return importlib.import_module("test_tflite_import")   # skips without ai_edge_litert


TFLITE_MODELS = ["digits_cnn_int8", "digits_cnn_float_io", "digits_mobilenet_int8", "digits_mobilenet_float_io",
                 "ops_int8", "ops_float_io"]


@pytest.mark.parametrize("name", TFLITE_MODELS)
def test_tflite_models_layer_by_layer(name):
    t = _tflite()
    qnet = t.imported(name)
    x_val, x_rand = t.model_inputs(qnet)
    compared = 0
    for runtime in LITERT_PROFILES:
        for x in (x_val[:24], x_rand[:24], x_val[24:25]):
            compared += assert_same_layer_by_layer(qnet, x, runtime)
    assert compared >= 3 * 3 * 10
    assert all(v is None for v in reference_coverage(qnet, "litert").values())


# --- imported ONNX models (quantized here by onnxruntime's quantize_static, as the import tests do) ---
try:
    from test_onnx_quantized_import import _inputs, data, models  # noqa: F401 (fixtures)
    HAVE_ORT_QUANTIZATION = True
except pytest.skip.Exception:
    HAVE_ORT_QUANTIZATION = False

ONNX_VARIANTS = [  # (net, prepared, format, types, per channel, reduce_range)
    ("cnn", True, "QDQ", "U8S8", True, False), ("mobilenet", True, "QOperator", "U8S8", False, False),
    ("mobilenet", False, "QDQ", "S8S8", True, False), ("cnn", False, "QOperator", "S8S8", False, False),
    ("mobilenet", True, "QDQ", "U8U8", True, True), ("cnn", True, "QOperator", "U8U8", True, False),
    ("mobilenet", True, "QDQ", "S8S8", False, False), ("cnn", False, "QDQ", "U8S8", False, False)]


@pytest.mark.skipif(not HAVE_ORT_QUANTIZATION, reason="onnx / onnxruntime.quantization not installed")
@pytest.mark.parametrize("variant", ONNX_VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_onnx_models_layer_by_layer(variant, models, data):
    qnet = fp.import_onnx(models(variant))
    x, n_val = _inputs(qnet, data)
    compared = 0
    for runtime in ORT_PROFILES:
        try:
            qnet.predict(x[:1], runtime=runtime)
        except fp.runtime.RuntimeNotSupportedError:   # ORT cannot run it (S8S8 QOperator, x64quantprecision)
            with pytest.raises(ReferenceNotSupportedError, match=runtime):
                predict_reference(qnet, x[:1], runtime=runtime)
            continue
        for batch in (x[:16], x[n_val:n_val + 16], x[n_val + 200:n_val + 201]):
            compared += assert_same_layer_by_layer(qnet, batch, runtime)
    assert compared > 0


@pytest.mark.parametrize("name", ["digits_cnn_qdq.onnx", "digits_mobilenet_qdq.onnx"])
def test_bundled_onnx_models_layer_by_layer(name):
    """The QDQ models bundled with fp.examples (fp.examples.model_file), every ORT profile."""
    pytest.importorskip("onnx")
    qnet = fp.import_onnx(fp.examples.model_file(name))
    (_, _), (x_val, _) = fp.examples.digits_data()
    rng = np.random.default_rng(4)
    adversarial = rng.uniform(-0.3, 1.3, (16,) + x_val.shape[1:]).astype(np.float32)
    compared = 0
    for runtime in ORT_PROFILES:
        for x in (x_val[:16], adversarial, x_val[16:17]):
            compared += assert_same_layer_by_layer(qnet, x, runtime)
    assert compared > 0


# --- hand-made affine networks ------------------------------------------------------------------------
def _params(dtype, lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    info = np.iinfo(dtype)
    scale = np.float32(max(hi - lo, 1e-3) / (info.max - info.min))
    return P(dtype, scale, int(np.clip(round(info.min - lo / float(scale)), info.min, info.max)))


def _weights(w, dtype, rng):
    """Per-output-channel integer weights of float `w`: int8 symmetric (zero point 0), or uint8 with
    per-channel zero points; (integers, QuantParams)."""
    flat = w.reshape(w.shape[0], -1)
    if dtype == np.int8:
        scale = (np.abs(flat).max(1) / 127).astype(np.float32)
        q = np.clip(np.round(flat / scale[:, None]), -127, 127)
        return q.astype(np.int8).reshape(w.shape), P(np.int8, scale, 0, axis=0)
    lo, hi = np.minimum(flat.min(1), 0), np.maximum(flat.max(1), 0)
    scale = ((hi - lo) / 255).astype(np.float32)
    zp = np.clip(np.round(-lo / scale), 0, 255).astype(np.int64)
    q = np.clip(np.round(flat / scale[:, None]) + zp[:, None], 0, 255)
    return q.astype(np.uint8).reshape(w.shape), P(np.uint8, scale, zp, axis=0)


def _affine(net, ranges, qtypes, specs, x_params=None):
    """Affine layers for `net`: `specs` maps a layer name to dict(out=QuantParams or "same", dtype,
    extra data fields, weights=dtype); input parameters follow the producers' outputs."""
    rng = np.random.default_rng(7)
    out_params, layers = {}, {}
    if x_params is not None:
        out_params.update(x_params)
    for layer in net.layers:
        spec = specs.get(layer.name)
        if spec is None:
            continue
        sources = net.layer_inputs(layer.name)
        inputs = [out_params.get(s) or _params(qtypes, *ranges[s]) for s in sources]
        out = spec.get("out")
        out = inputs[0] if out == "same" else (out or _params(spec.get("dtype", qtypes), *ranges[layer.name]))
        data = dict(spec.get("data", {}))
        if layer.type_name in ("Convolution2D", "FullyConnected"):
            w, wp = _weights(layer.learnables["Weights"], spec.get("weights", np.int8), rng)
            bias = layer.learnables.get("Bias")
            bias = np.zeros(w.shape[0]) if bias is None else bias
            data.update(weights=w, weight_params=wp,
                        bias=np.round(bias / (float(inputs[0].scale[0]) * wp.scale)).astype(np.int32))
        layers[layer.name] = AffineLayer(layer, inputs, out, **data)
        out_params[layer.name] = out
    return layers


def _ranges(net, x):
    names = list(net.layer_names)
    return {n: (float(np.min(v)), float(np.max(v))) for n, v in zip(names, net.predict(x, outputs=names))}


def _ort_network(float_softmax=False):
    """Every ORT operator family of the reference in one graph: QuantizeLinear, QLinearConv (U8S8
    pairs after the S8 -> U8 flip, S8S8 depthwise, U8U8 grouped with weight zero points, U8S8 with
    weight zero points), Clamp, QLinearLeakyRelu, QLinearAdd, QLinearMul, QLinearConcat (one input
    requantized), QLinearAveragePool, MaxPool (ceil_mode), Pad, QLinearGlobalAveragePool, a float
    BatchNormalization and float-route layers (the as-written graph), Flatten, QGemm, QLinearSoftmax,
    QLinearSigmoid and a Tanh between DequantizeLinear and QuantizeLinear (MLAS's polynomials).
    `float_softmax`: the softmax runs in float (MLAS's softmax, which the reference does not cover)."""
    rng = np.random.default_rng(5)
    L = make_layer
    layers = [
        L("ImageInput", "in", input_size=(3, 9, 9)),
        L("Identity", "q_in"),
        L("Convolution2D", "c1", weights=rng.normal(0, 0.5, (8, 3, 3, 3)), bias=rng.normal(0, 0.1, 8), padding=1),
        L("ReLU", "r1"),
        L("Convolution2D", "dw", weights=rng.normal(0, 0.5, (8, 1, 3, 3)), bias=rng.normal(0, 0.1, 8), padding=1,
          groups=8),
        L("Convolution2D", "g", weights=rng.normal(0.1, 0.3, (8, 4, 3, 3)), bias=rng.normal(0, 0.1, 8),
          padding=(2, 0, 0, 2), stride=2, groups=2),
        L("LeakyReLU", "lr", scale=0.2),
        L("Convolution2D", "c2", weights=rng.normal(0, 0.5, (8, 8, 1, 1)), bias=np.zeros(8), stride=2),
        L("Addition", "add"), L("Multiplication", "mul"),
        L("Concatenation", "cat", num_inputs=2),
        L("AveragePooling2D", "ap", pool_size=2, stride=1, padding=(1, 1, 0, 0)),
        L("MaxPooling2D", "mp", pool_size=2, stride=2, ceil_mode=True),
        L("ClippedReLU", "clip", ceiling=1.5),
        L("Pad", "pad", pads=((0, 0), (1, 1), (0, 1))),
        L("GlobalAveragePooling2D", "gap"),
        L("BatchNormalization", "bn", scale=rng.uniform(0.5, 2, 16), offset=rng.normal(0, 0.3, 16),
          mean=rng.normal(0, 0.3, 16), variance=rng.uniform(0.2, 2, 16)),
        L("Flatten", "fl"),
        L("FullyConnected", "fc", weights=rng.normal(0, 0.5, (10, 16)), bias=rng.normal(0, 0.2, 10)),
        L("Softmax", "sm"), L("Sigmoid", "sig"), L("Tanh", "th")]
    conns = [("in", "q_in"), ("q_in", "c1"), ("c1", "r1"), ("r1", "dw"), ("dw", "g"), ("g", "lr"), ("r1", "c2"),
             ("lr", "add/in1"), ("c2", "add/in2"), ("add", "mul/in1"), ("c2", "mul/in2"), ("mul", "cat/in1"),
             ("lr", "cat/in2"), ("cat", "ap"), ("ap", "mp"), ("mp", "clip"), ("clip", "pad"), ("pad", "gap"),
             ("gap", "bn"), ("bn", "fl"), ("fl", "fc"), ("fc", "sm"), ("fc", "sig"), ("fc", "th")]
    net = Network(layers, conns)
    ranges = _ranges(net, np.random.default_rng(1).uniform(-1.5, 1.5, (64, 3, 9, 9)).astype(np.float32))
    s8, u8 = np.int8, np.uint8
    unopt = {"ort_op_unoptimized": ""}     # the as-written graph runs these between DQ and Q
    specs = {
        "q_in": dict(dtype=s8), "c1": dict(dtype=u8, data=dict(ort_activation_dtype="uint8")),
        "r1": dict(out="same", data=unopt), "dw": dict(dtype=u8),
        "g": dict(dtype=u8, weights=u8), "lr": dict(dtype=u8, data=unopt), "c2": dict(dtype=u8),
        "add": dict(dtype=u8, data=unopt), "mul": dict(dtype=u8, data=unopt), "cat": dict(data=unopt),
        "ap": dict(dtype=u8), "mp": dict(out="same", data=unopt), "clip": dict(out="same", data=unopt),
        "pad": dict(out="same"), "gap": dict(dtype=u8), "fl": dict(dtype=u8), "fc": dict(dtype=u8, weights=u8),
        "sm": dict(out=P(u8, 1 / 256, 0), data=dict(ort_op="") if float_softmax else {}),
        "sig": dict(out=P(u8, 1 / 256, 0)),
        "th": dict(out=P(u8, 1 / 128, 128), data=dict(ort_op="", ort_op_precise="")),
    }
    layers = _affine(net, ranges, u8, specs)
    # the concatenation's output keeps the product's parameters: that input is copied, the other requantized
    cat = layers["cat"]
    layers["cat"] = AffineLayer(cat.layer, cat.input_params, layers["mul"].output_params, **cat.data)
    layers["ap"] = AffineLayer(layers["ap"].layer, [layers["mul"].output_params], layers["ap"].output_params)
    for name in ("mp", "clip", "pad"):
        source = {"mp": "ap", "clip": "mp", "pad": "clip"}[name]
        p = layers[source].output_params
        layers[name] = AffineLayer(layers[name].layer, [p], p, **layers[name].data)
    return fp.QuantizedNetwork(net, layers, None, get_target("ONNXRuntime"))


def _ort_input(qnet, n, seed):
    """Full-range float inputs: uniform over twice the calibrated span, extremes planted, and a third
    of the values on the input quantizer's exact half steps (k + 1/2)·s."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n, 3, 9, 9)).astype(np.float32)
    s = qnet.qlayers["q_in"].output_params.scale[0]
    ties = ((rng.integers(-140, 140, x.size // 3) + 0.5) * float(s)).astype(np.float32)
    x.reshape(-1)[:ties.size] = ties
    x.reshape(-1)[-4:] = (-1e3, 1e3, 0.0, -0.0)
    return x


@pytest.mark.parametrize("runtime", ORT_PROFILES)
def test_hand_made_ort_network(runtime):
    qnet = _ort_network()
    assert all(v is None for v in reference_coverage(qnet, runtime).values())
    for x in (_ort_input(qnet, 12, seed=2), _ort_input(qnet, 1, seed=3)):
        assert assert_same_layer_by_layer(qnet, x, runtime) == len(qnet.qlayers)


def test_hand_made_ort_network_saturates_on_avx2():
    """The AVX2 profile's int16 pairs saturate on this network (so the reference's pair sums are
    exercised, not equal to the exact ones by luck)."""
    qnet = _ort_network()
    x = _ort_input(qnet, 12, seed=2)
    avx2 = predict_reference(qnet, x, outputs="c1", runtime="onnxruntime-avx2")
    vnni = predict_reference(qnet, x, outputs="c1", runtime="onnxruntime-vnni")
    assert not np.array_equal(avx2.stored_integer, vnni.stored_integer)


def _litert_network():
    """The LiteRT formulas on int8 tensors beyond the converter's models: DEPTHWISE_CONV_2D with 10
    channels (the optimized resolver's NEON channel split) and a fused RELU6, CONV_2D, PAD, MAX_POOL,
    AVERAGE_POOL (SAME), MEAN keep_dims with 16 channels, FULLY_CONNECTED per tensor with RELU and
    per channel, ADD / SUB / MUL (element counts not a multiple of 16), an ADD and a LEAKY_RELU XNNPACK
    declines, HARD_SWISH, LOGISTIC, TANH, QUANTIZE int -> int, CONCATENATION, RELU, RELU6, SOFTMAX."""
    rng = np.random.default_rng(9)
    L = make_layer
    layers = [
        L("ImageInput", "in", input_size=(10, 7, 9)),
        L("Convolution2D", "dw", weights=rng.normal(0, 0.5, (10, 1, 3, 3)), bias=rng.normal(0, 0.2, 10),
          padding="same", groups=10),
        L("ClippedReLU", "dw_act", ceiling=6.0),
        L("Convolution2D", "pw", weights=rng.normal(0, 0.4, (16, 10, 1, 1)), bias=rng.normal(0, 0.2, 16)),
        L("Pad", "pad", pads=((0, 0), (1, 0), (0, 1))),
        L("MaxPooling2D", "mp", pool_size=2, stride=2),
        L("AveragePooling2D", "ap", pool_size=3, stride=1, padding="same"),
        L("GlobalAveragePooling2D", "mean"),
        L("FullyConnected", "fc", weights=rng.normal(0, 0.4, (12, 16)), bias=rng.normal(0, 0.2, 12)),
        L("ReLU", "fc_act"),
        L("FullyConnected", "fc2", weights=rng.normal(0, 0.4, (12, 12)), bias=rng.normal(0, 0.2, 12)),
        L("Addition", "add"), L("Subtraction", "sub"), L("Multiplication", "mul"), L("Addition", "add_wide"),
        L("LeakyReLU", "lrelu", scale=0.3), L("LeakyReLU", "lrelu_tiny", scale=1e-3),
        L("HardSwish", "hs"), L("Sigmoid", "sig"), L("Tanh", "tanh"),
        L("Identity", "req"), L("Identity", "req2"),
        L("Concatenation", "cat", num_inputs=2), L("ReLU", "relu"), L("ClippedReLU", "relu6", ceiling=6.0),
        L("Softmax", "sm")]
    conns = [("in", "dw"), ("dw", "dw_act"), ("dw_act", "pw"), ("pw", "pad"), ("pad", "mp"), ("mp", "ap"),
             ("ap", "mean"), ("mean", "fc"), ("fc", "fc_act"), ("fc_act", "fc2"), ("fc_act", "add/in1"),
             ("fc2", "add/in2"), ("fc2", "sub/in1"), ("fc_act", "sub/in2"), ("add", "mul/in1"), ("sub", "mul/in2"),
             ("add", "add_wide/in1"), ("sub", "add_wide/in2"), ("mul", "lrelu"), ("add_wide", "lrelu_tiny"),
             ("lrelu", "hs"), ("hs", "sig"), ("lrelu_tiny", "tanh"), ("tanh", "req"), ("sig", "req2"),
             ("req", "cat/in1"), ("req2", "cat/in2"), ("cat", "relu"), ("relu", "relu6"), ("relu6", "sm")]
    net = Network(layers, conns)
    xp = P(np.int8, 0.02, -3)
    x = _litert_input(64, xp, seed=1)
    ranges = _ranges(net, xp.dequantize(x))
    s8 = np.int8
    conv = lambda op, act="NONE": dict(tflite_op=op, activation=act)  # noqa: E731
    specs = {
        "dw": dict(data=conv("DEPTHWISE_CONV_2D", "RELU6")), "dw_act": dict(out="same", data=dict(fused=True)),
        "pw": dict(data=conv("CONV_2D")), "pad": dict(out="same"), "mp": dict(out="same"), "ap": dict(out="same"),
        "mean": dict(data=dict(keep_dims=True)), "fc": dict(data=conv("FULLY_CONNECTED", "RELU")),
        "fc_act": dict(out="same", data=dict(fused=True)), "fc2": dict(data=conv("FULLY_CONNECTED")),
        "add": dict(), "sub": dict(), "mul": dict(), "lrelu": dict(), "hs": dict(),
        "add_wide": dict(out=P(s8, 1e-5, 0)),
        "lrelu_tiny": dict(), "sig": dict(out=P(s8, 1 / 256, -128)), "tanh": dict(out=P(s8, 1 / 128, 0)),
        "req": dict(out=P(s8, 0.011, 5)), "req2": dict(out=P(s8, 0.011, 5)), "cat": dict(out="same"),
        "relu": dict(), "relu6": dict(), "sm": dict(out=P(s8, 1 / 256, -128))}
    layers = _affine(net, ranges, s8, specs, x_params={"in": xp})
    # FC per tensor: one weight scale
    fc = layers["fc"]
    w = fc.layer.learnables["Weights"]
    scale = np.float32(np.abs(w).max() / 127)
    bias = np.round(fc.layer.learnables["Bias"] / (float(fc.input_params[0].scale[0]) * float(scale)))
    layers["fc"] = AffineLayer(fc.layer, fc.input_params, fc.output_params,
                               **dict(fc.data, weights=np.clip(np.round(w / scale), -127, 127).astype(np.int8),
                                      weight_params=P(np.int8, scale, 0), bias=bias.astype(np.int32)))
    return fp.QuantizedNetwork(net, layers, None, get_target("LiteRT"), input_params={"in": xp})


def _litert_input(n, params, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, 10, 7, 9)).astype(np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    return x


@pytest.mark.parametrize("runtime", LITERT_PROFILES)
def test_hand_made_litert_network(runtime):
    qnet = _litert_network()
    assert all(v is None for v in reference_coverage(qnet, runtime).values())
    xp = qnet.input_params["in"]
    for x in (_litert_input(7, xp, seed=2), _litert_input(1, xp, seed=3)):
        assert assert_same_layer_by_layer(qnet, x, runtime) == len(qnet.qlayers) + 1   # + the integer input


def test_the_litert_resolvers_differ_on_the_hand_made_network():
    """Each resolver's formulas matter on this network (so each comparison above can fail)."""
    qnet = _litert_network()
    x = _litert_input(7, qnet.input_params["in"], seed=2)
    outs = {r: predict_reference(qnet, x, outputs=list(qnet.qlayers), runtime=r) for r in LITERT_PROFILES}
    for a, b in itertools.combinations(LITERT_PROFILES, 2):
        assert any(not np.array_equal(u.stored_integer, v.stored_integer) for u, v in zip(outs[a], outs[b])), (a, b)


# --- the comparisons can fail --------------------------------------------------------------------------
@pytest.mark.parametrize("broken, runtime, network", [
    ("rdbpot", "litert-reference", "litert"),     # gemmlowp's final rounding made a floor shift
    ("mbqm_half_up", "litert-optimized", "litert"),
    ("requantize_fp32", "onnxruntime-vnni", "ort"),  # MLAS's RNE made a truncation
    ("pair_sums", "onnxruntime-avx2", "ort"),     # no int16 saturation
    ("ort_quantize_linear", "onnxruntime-avx2", "ort"),  # x / s made x · (1 / s)
])
def test_a_wrong_reference_fails(monkeypatch, broken, runtime, network):
    qnet = _ort_network() if network == "ort" else _litert_network()
    x = _ort_input(qnet, 12, seed=2) if network == "ort" else _litert_input(7, qnet.input_params["in"], seed=2)
    assert_same_layer_by_layer(qnet, x, runtime)
    original = getattr(ra, broken)
    if broken == "rdbpot":
        monkeypatch.setattr(ra, "rdbpot", lambda v, e: np.asarray(v, np.int64) >> np.asarray(e, np.int64))
    elif broken == "mbqm_half_up":
        monkeypatch.setattr(ra, "mbqm_half_up", ra.mbqm)
    elif broken == "requantize_fp32":
        def truncated(acc, scale, zp, lo, hi):
            s = np.asarray(scale, np.float32).reshape(ra._channel_shape(acc))
            v = np.clip(np.asarray(acc, np.int64).astype(np.float32) * s, lo - zp, hi - zp)
            return np.trunc(v).astype(np.int64) + zp
        monkeypatch.setattr(ra, "requantize_fp32", truncated)
    elif broken == "pair_sums":
        monkeypatch.setattr(ra, "pair_sums", lambda a, b: a @ b)
    else:
        def reciprocal(value, params):
            zp = int(params.zero_point[0])
            v = np.asarray(value, np.float32) * (np.float32(1) / np.float32(params.scale[0]))
            return np.rint(np.clip(v, params.qmin - zp, params.qmax - zp)).astype(np.int64) + zp
        monkeypatch.setattr(ra, "ort_quantize_linear", reciprocal)
    assert original is not getattr(ra, broken)
    with pytest.raises(AssertionError):
        assert_same_layer_by_layer(qnet, x, runtime)


# --- what is not covered fails clearly ------------------------------------------------------------------
def test_unsupported_layer_fails_clearly_and_earlier_outputs_still_work():
    qnet = _ort_network(float_softmax=True)
    x = _ort_input(qnet, 4, seed=4)
    coverage = reference_coverage(qnet, "onnxruntime-avx2")
    assert [n for n, why in coverage.items() if why] == ["sm"]
    with pytest.raises(ReferenceNotSupportedError, match=r"'sm' \(Softmax\) under runtime 'onnxruntime-avx2'.*MLAS"):
        predict_reference(qnet, x, runtime="onnxruntime-avx2")
    fc = predict_reference(qnet, x, outputs="fc", runtime="onnxruntime-avx2")
    assert np.array_equal(fc.stored_integer, qnet.predict(x, outputs="fc", runtime="onnxruntime-avx2").stored_integer)


def test_runtime_argument_checks():
    qnet = _ort_network()
    with pytest.raises(ValueError, match="litert"):
        predict_reference(qnet, _ort_input(qnet, 1, seed=0), runtime="litert")
    pow2 = fp.QuantizedNetwork(Network([make_layer("ImageInput", "in", input_size=(1, 2, 2))], []), {}, {},
                               get_target("MATLAB"))
    with pytest.raises(ValueError, match="power-of-two"):
        predict_reference(pow2, np.zeros((1, 1, 2, 2), np.float32), runtime="onnxruntime-avx2")


# --- the reference's float formulas against ONNX Runtime itself ------------------------------------------
def test_float_formulas_equal_onnxruntime():
    """MLAS's logistic and tanh polynomials and QuantizeLinear as the reference writes them, against
    one-node models in the installed onnxruntime (its AVX2/FMA3 kernels; 1 thread), as bit patterns."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from fixedpoint.kernels import cpu_features     # CPU detection only: which MLAS kernels ORT runs here
    features = cpu_features()
    if not (features["avx2"] and features["fma"]):
        pytest.skip("MLAS runs its SSE kernels on this CPU (not the FMA3 ones the reference follows)")
    h, TP = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-25, 25, 100003), rng.normal(0, 3, 50001),
                        [0, -0.0, 9, -9, 18, -18, 1e3, -1e3]]).astype(np.float32)

    def run(node, inputs, out_type):
        graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", TP.FLOAT, [None])],
                             [h.make_tensor_value_info("y", out_type, [None])], inputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]).SerializeToString(),
                                       options, providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]
    for op, function in (("Sigmoid", ra.mlas_logistic), ("Tanh", ra.mlas_tanh)):
        assert np.array_equal(run(h.make_node(op, ["x"], ["y"]), [], TP.FLOAT).view(np.uint32),
                              function(x).view(np.uint32)), op
    params = P(np.uint8, np.float32(0.0371), 131)
    ties = ((rng.integers(-200, 200, 20000) + 0.5) * float(params.scale[0])).astype(np.float32)
    x = np.concatenate([x, ties])
    inits = [onnx.numpy_helper.from_array(np.array(params.scale[0], np.float32), "s"),
             onnx.numpy_helper.from_array(np.array(131, np.uint8), "z")]
    got = run(h.make_node("QuantizeLinear", ["x", "s", "z"], ["y"]), inits, TP.UINT8)
    assert np.array_equal(got, ra.ort_quantize_linear(x, params))


def test_qlinear_softmax_equals_onnxruntime_on_rounding_ties():
    """QLinearSoftmax as the reference computes it (the quotient in double) against onnxruntime on
    random rows and on the rows where a float32 quotient (e / sum)·ys would round the other way (found
    among 600 000 seeded rows, plus the row docs/runtimes-onnxruntime-import.md reports)."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    h, TP, nh = onnx.helper, onnx.TensorProto, onnx.numpy_helper
    rng = np.random.default_rng(9)
    checked_ties = 0
    for dtype, xs, xz, d in ((np.uint8, 0.11962616, 154, 10), (np.int8, 0.0731, -20, 7), (np.uint8, 0.2, 3, 3)):
        info = np.iinfo(dtype)
        px, py = P(dtype, np.float32(xs), xz), P(dtype, np.float32(1 / 255), 0 if dtype == np.uint8 else -128)
        layer = AffineLayer(make_layer("Softmax", "sm"), [px], py)
        softmax = ra._ort_qlinear_softmax(layer, None)
        rows = rng.integers(info.min, info.max + 1, (200000, d))
        if d == 10:
            rows[0] = [100, 0, 65, 153, 109, 59, 87, 115, 224, 171]
        ours = softmax(rows)
        # the float32 quotient, for finding the rows where the rounding is a near tie
        f32 = np.float32
        shift = max(0.0, float(ra._LOGF(float(f32(np.finfo(f32).max) / f32(d)))) - 5.0) / float(f32(xs))
        table = np.array([ra._EXP((k - 255 + shift) * float(np.float32(xs))) for k in range(256)]).astype(np.float32)
        e = table[rows - rows.max(1, keepdims=True) + 255]
        total = np.zeros(len(rows), np.float32)
        for j in range(d):
            total = total + e[:, j]
        ys = np.floor(np.float32(1) / np.float32(1 / 255))
        single = np.minimum(np.rint((e / total[:, None]) * ys).astype(np.int64) + int(py.zero_point[0]), info.max)
        ties = np.flatnonzero((single != ours).any(1))
        pick = np.concatenate([ties, np.arange(2000)])
        inits = [nh.from_array(np.array(xs, np.float32), "xs"), nh.from_array(np.array(xz, dtype), "xz"),
                 nh.from_array(np.array(1 / 255, np.float32), "ys"),
                 nh.from_array(np.array(py.zero_point[0], dtype), "yz")]
        t = TP.UINT8 if dtype == np.uint8 else TP.INT8
        node = h.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", axis=1,
                           opset=13)
        graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", t, [None, d])],
                             [h.make_tensor_value_info("y", t, [None, d])], inits)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("com.microsoft", 1)])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = session.run(None, {"x": rows[pick].astype(dtype)})[0]
        assert np.array_equal(ours[pick], want)
        checked_ties += len(ties)
    assert checked_ties >= 3, checked_ties   # rows where the float32 quotient is wrong are compared


def test_tflite_uint8_boundaries_layer_by_layer():
    """uint8 in -> QUANTIZE -> int8 CONV_2D -> QUANTIZE -> uint8 out (the converter's uint8 I/O, made with
    tests/tflite_builder.py): the int <-> uint8 requantizations of every resolver."""
    pytest.importorskip("tflite")
    from tflite_builder import ModelBuilder
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 5, 5, 2), np.uint8, scale=0.04, zero_point=128)
    xi = b.add_tensor("xi", (1, 5, 5, 2), np.int8, scale=0.05, zero_point=7)
    b.add_operator("QUANTIZE", [x], [xi])
    w = rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8)
    s_w = rng.uniform(0.002, 0.02, 4).astype(np.float32)
    bias = rng.integers(-2000, 2000, 4).astype(np.int32)
    wt = b.add_tensor("w", w.shape, np.int8, data=w, scale=s_w, zero_point=0)
    bt = b.add_tensor("b", bias.shape, np.int32, data=bias, scale=(0.05 * s_w).astype(np.float32), zero_point=0)
    y = b.add_tensor("y", (1, 5, 5, 4), np.int8, scale=0.08, zero_point=-3)
    b.add_operator("CONV_2D", [xi, wt, bt], [y], padding="SAME", stride_w=1, stride_h=1)
    out = b.add_tensor("out", (1, 5, 5, 4), np.uint8, scale=0.07, zero_point=125)
    b.add_operator("QUANTIZE", [y], [out])
    qnet = fp.import_tflite(b.build([x], [out]))
    data = rng.integers(0, 256, (6, 5, 5, 2)).astype(np.uint8)
    data.reshape(-1)[:2] = (0, 255)
    for runtime in LITERT_PROFILES:
        assert assert_same_layer_by_layer(qnet, data, runtime) >= 4
