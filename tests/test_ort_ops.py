"""fixedpoint.kernels.onnxruntime against the real onnxruntime (CPU EP) on single-op models.

Every test builds a one-node ONNX model (opset 13, com.microsoft for the QLinear ops), runs it in
onnxruntime with all graph optimizations disabled and one intra-op thread unless stated, and requires
np.array_equal with the emulation (float outputs compared as bits). Inputs are full-range random
bytes, edge values (saturation, zero points at the ends, ties) and several shapes.

The emulation is of ORT's AVX2 kernels. On a host with AVX-512 (where ORT picks other kernels for
some ops) the ORT side runs under `qemu-x86_64 -cpu Haswell` when qemu is on PATH, else the
comparison is skipped.
"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fixedpoint.kernels import onnxruntime as fo  # noqa: E402

ISAS = ("portable", "avx2")

_NP2TP = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
          np.dtype(np.int8): TensorProto.INT8, np.dtype(np.int32): TensorProto.INT32,
          np.dtype(np.int64): TensorProto.INT64}


def _host_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


_AVX512 = _host_has_avx512()
_QEMU = shutil.which("qemu-x86_64")

_RUNNER = """
import sys, numpy as np, onnxruntime as ort
d = sys.argv[1]
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
so.intra_op_num_threads = int(sys.argv[2])
s = ort.InferenceSession(open(d + '/m.onnx', 'rb').read(), so, providers=['CPUExecutionProvider'])
f = np.load(d + '/in.npz', allow_pickle=False)
np.savez(d + '/out.npz', *s.run(None, dict(f)))
"""


def run_model(model, feeds, threads=1, all_outputs=False):
    """Runs an ONNX model on ORT's AVX2 kernels: in this process, or under qemu on an AVX-512 host. Returns
    the first output, or the list of all with `all_outputs`."""
    data = model.SerializeToString()
    if not _AVX512:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = threads
        s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        outputs = s.run(None, feeds)
        return outputs if all_outputs else outputs[0]
    if not _QEMU:
        pytest.skip("host has AVX-512 (ORT would not run its AVX2 kernels) and qemu-x86_64 is not on PATH")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "m.onnx"), "wb") as f:
            f.write(data)
        np.savez(os.path.join(d, "in.npz"), **feeds)
        subprocess.run([_QEMU, "-cpu", "Haswell", sys.executable, "-c", _RUNNER, d, str(threads)], check=True)
        with np.load(os.path.join(d, "out.npz"), allow_pickle=False) as f:
            outputs = [f[f"arr_{k}"] for k in range(len(f.files))]
        return outputs if all_outputs else outputs[0]


def run_op(op, inputs, out_dtype, attrs=None, domain="", consts=(), threads=1, opset=13):
    """One node; inputs are arrays (or None for an absent optional input); `consts` indices become
    initializers (ORT then builds tables at kernel creation, as in a real model)."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        a = np.asarray(a)
        name = f"in{i}"
        names.append(name)
        if i in consts:
            inits.append(numpy_helper.from_array(a, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, _NP2TP[a.dtype], list(a.shape)))
            feeds[name] = a
    node = helper.make_node(op, names, ["out"], domain=domain, **(attrs or {}))
    out = helper.make_tensor_value_info("out", _NP2TP[np.dtype(out_dtype)], None)
    graph = helper.make_graph([node], "g", graph_inputs, [out], inits)
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return run_model(model, feeds, threads)


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == np.float32:
        return np.array_equal(a.view(np.uint32), b.view(np.uint32))
    return np.array_equal(a, b)


def assert_same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if not bits_equal(got, want):
        diff = np.nonzero((got.view(np.uint32) != want.view(np.uint32)) if got.dtype == np.float32 else (got != want))
        raise AssertionError(f"{len(diff[0])} of {got.size} differ; first at {tuple(int(d[0]) for d in diff)}: "
                             f"{got[tuple(d[0] for d in diff)]!r} vs ORT {want[tuple(d[0] for d in diff)]!r}")


def on_isas(fn):
    """fn(isa) on both paths; asserts identical results and returns one."""
    r = [fn(isa) for isa in ISAS]
    assert bits_equal(r[0], r[1]), "portable and avx2 paths differ"
    return r[0]


def all_bytes(dtype):
    info = np.iinfo(dtype)
    return np.arange(info.min, info.max + 1).astype(dtype)


def random_scale(rng, lo=1e-3, hi=0.2):
    return np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi))))


QDTYPES = (np.uint8, np.int8)


# ---- QuantizeLinear / DequantizeLinear -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", QDTYPES)
def test_quantize_linear_per_tensor(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    for scale in (np.float32(0.1), np.float32(1.0), np.float32(0.0078125), np.float32(3.3e-3), random_scale(rng)):
        for zp in (info.min, 0, info.max, int(rng.integers(info.min, info.max + 1))):
            # ties of x / scale at .5, values that round differently with x * (1 / scale), saturation,
            # NaN and infinities, and a length that leaves a tail for the 4-wide MLAS loop
            k = np.arange(-300, 301, dtype=np.float32)
            x = np.concatenate([(k + np.float32(0.5)) * scale, k * scale, rng.uniform(-3, 3, 1001).astype(np.float32) * 128 * scale,
                                np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], np.float32)]).astype(np.float32)
            want = run_op("QuantizeLinear", [x, scale, dtype(zp)], dtype)
            got = on_isas(lambda isa: fo.quantize_linear(x, scale, dtype(zp), isa=isa))
            assert_same(got, want)


def test_quantize_linear_true_division():
    """x / s and x * (1 / s) round differently on these inputs: ORT divides."""
    rng = np.random.default_rng(2)
    found = 0
    for _ in range(200):
        s = random_scale(rng)
        x = (rng.integers(-127, 128, 4096) + np.float32(0.5)).astype(np.float32) * s
        x = (x + rng.normal(0, 1e-6, x.size).astype(np.float32) * s).astype(np.float32)
        div = np.rint(x / s)
        mul = np.rint(x * (np.float32(1) / s))
        idx = np.nonzero(div != mul)[0]
        if len(idx) == 0:
            continue
        xs = x[idx]
        want = run_op("QuantizeLinear", [xs, s, np.int8(0)], np.int8)
        assert_same(fo.quantize_linear(xs, s, np.int8(0)), want)
        found += len(idx)
        if found > 64:
            break
    assert found > 64


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_linear_per_axis(dtype, axis):
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 1, (3, 5, 7)) * 20).astype(np.float32)
    c = x.shape[axis]
    scale = np.array([random_scale(rng, 0.01, 0.5) for _ in range(c)], np.float32)
    info = np.iinfo(dtype)
    zp = rng.integers(info.min, info.max + 1, c).astype(dtype)
    want = run_op("QuantizeLinear", [x, scale, zp], dtype, attrs={"axis": axis})
    assert_same(on_isas(lambda isa: fo.quantize_linear(x, scale, zp, axis=axis, isa=isa)), want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_dequantize_linear(dtype):
    rng = np.random.default_rng(4)
    if dtype == np.int32:
        x = np.concatenate([rng.integers(-2**31, 2**31, 999), [2**31 - 1, -2**31, 0, 16777217]]).astype(np.int32)
        zps = [np.int32(0)]
    else:
        info = np.iinfo(dtype)
        x = np.concatenate([all_bytes(dtype), rng.integers(info.min, info.max + 1, 1001)]).astype(dtype)
        zps = [dtype(info.min), dtype(0), dtype(info.max), dtype(rng.integers(info.min, info.max + 1))]
    for zp in zps:
        for scale in (np.float32(0.1), random_scale(rng), np.float32(3.0e-5)):
            want = run_op("DequantizeLinear", [x, scale, zp], np.float32)
            assert_same(on_isas(lambda isa: fo.dequantize_linear(x, scale, zp, isa=isa)), want)


@pytest.mark.parametrize("dtype", QDTYPES)
def test_dequantize_linear_per_axis(dtype):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, (2, 6, 3, 5)).astype(dtype)
    scale = np.array([random_scale(rng) for _ in range(6)], np.float32)
    zp = rng.integers(info.min, info.max + 1, 6).astype(dtype)
    want = run_op("DequantizeLinear", [x, scale, zp], np.float32, attrs={"axis": 1})
    assert_same(on_isas(lambda isa: fo.dequantize_linear(x, scale, zp, axis=1, isa=isa)), want)


# ---- DynamicQuantizeLinear -------------------------------------------------------------------------------

def _dynamic_quantize_linear_cases():
    rng = np.random.default_rng(21)
    cases = [rng.normal(0, 1, (64, 10)), rng.normal(0.3, 2, (3, 7, 5, 5)), rng.uniform(0, 4, 1000),   # min -> 0
             -rng.uniform(0, 4, 999),                                    # max -> 0
             np.zeros(5), np.full(4, 5.0), np.full(3, -2.5), np.array([7.0]),
             np.array([-0.5, 254.5]), np.array([-1.5, 253.5]),          # zero point exactly on .5 ties
             np.array([-2.5, 252.5, 1.0]), np.array([-0.0, 0.0, -0.0]),
             rng.normal(0, 1e-30, 50), rng.normal(0, 1e30, 50),        # tiny and huge ranges
             np.array([np.inf, 1.0, -2.0]), np.array([-np.inf, 3.0]), np.array([3e38, -3e38, 0.5])]
    # values on the half steps of their own quantization grid (ties of the quantizer)
    x = rng.normal(0, 1, 300).astype(np.float32)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = np.float32(np.float32(hi - lo) / np.float32(255))
    half = ((np.round(x / scale) + 0.5) * scale).astype(np.float32)
    half[:2] = [lo, hi]
    cases.append(half)
    return [np.asarray(c, np.float32) for c in cases]


@pytest.mark.parametrize("case", range(len(_dynamic_quantize_linear_cases())))
def test_dynamic_quantize_linear(case):
    x = _dynamic_quantize_linear_cases()[case]
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info(n, t, None) for n, t in
                               (("y", TensorProto.UINT8), ("s", TensorProto.FLOAT), ("z", TensorProto.UINT8))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    y, s, z = run_model(model, {"x": x}, all_outputs=True)
    for isa in ISAS:
        got = fo.dynamic_quantize_linear(x, isa=isa)
        assert_same(got[0], y)
        assert_same(np.asarray(got[1]).reshape(s.shape), s)
        assert_same(np.asarray(got[2]).reshape(z.shape), z)


def test_dynamic_quantize_linear_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        fo.dynamic_quantize_linear(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="float32"):
        fo.dynamic_quantize_linear(np.array([1.0, 2.0]))


# ---- QLinearAdd / QLinearMul -------------------------------------------------------------------------------

def _binary_case(rng, dtype, extreme=False):
    info = np.iinfo(dtype)
    scales = [random_scale(rng, 1e-3, 0.1) for _ in range(3)]
    if extreme:
        scales[2] = np.float32(scales[2] * 1e-3)   # saturate, and exceed int16 before packing
    zps = [dtype(v) for v in rng.integers(info.min, info.max + 1, 3)]
    return scales, zps


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", QDTYPES)
def test_qlinear_binary_all_pairs(op, dtype):
    """All 65536 (a, b) pairs, several scale / zero-point sets, incl. zero points at the ends."""
    rng = np.random.default_rng(6)
    v = all_bytes(dtype)
    a, b = [m.ravel() for m in np.meshgrid(v, v, indexing="ij")]
    fn = fo.qlinear_add if op == "QLinearAdd" else fo.qlinear_mul
    info = np.iinfo(dtype)
    cases = [_binary_case(rng, dtype) for _ in range(5)] + [_binary_case(rng, dtype, True)]
    cases.append(([np.float32(0.05), np.float32(0.02), np.float32(0.03)], [dtype(info.min), dtype(info.max), dtype(info.min)]))
    for (sa, sb, sc), (za, zb, zc) in cases:
        want = run_op(op, [a, sa, za, b, sb, zb, sc, zc], dtype, domain="com.microsoft")
        got = on_isas(lambda isa: fn(a, sa, za, b, sb, zb, sc, zc, isa=isa))
        assert_same(got, want)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("shapes", [
    ((2, 3, 4, 5), (1, 3, 1, 1)),      # per-channel operand: spans of H*W with b a scalar
    ((1, 3, 1, 1), (2, 3, 4, 5)),      # per-channel first: operands swapped inside ORT
    ((2, 3, 4, 5), ()),                # scalar b
    ((), (2, 3, 4, 5)),                # scalar a
    ((2, 3, 4, 5), (5,)),              # a row broadcast over leading dimensions
    ((4, 1), (1,)),                    # ORT quirk: spans of 1 with input 0 as the scalar
    ((1,), (1,)), ((1, 1), (1, 1, 1)),
    ((3, 1, 5), (1, 4, 1)), ((2, 1, 4, 1), (3, 1, 1)), ((7, 33), (7, 33)), ((37,), (37,)),
])
def test_qlinear_binary_broadcast(op, dtype, shapes):
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    fn = fo.qlinear_add if op == "QLinearAdd" else fo.qlinear_mul
    for trial in range(40):
        (sa, sb, sc), (za, zb, zc) = _binary_case(rng, dtype, trial % 5 == 4)
        a = rng.integers(info.min, info.max + 1, shapes[0]).astype(dtype)
        b = rng.integers(info.min, info.max + 1, shapes[1]).astype(dtype)
        want = run_op(op, [a, sa, za, b, sb, zb, sc, zc], dtype, domain="com.microsoft")
        got = on_isas(lambda isa: fn(a, sa, za, b, sb, zb, sc, zc, isa=isa))
        assert_same(got, want)


def test_qlinear_add_scalar_fold_is_fused():
    """Parameters where folding the scalar operand with one rounding (FMA) and with two differ:
    ORT (the compiled AVX2 kernel) fuses."""
    rng = np.random.default_rng(8)
    dtype = np.uint8
    v = all_bytes(dtype)
    checked = 0
    for _ in range(20000):
        (sa, sb, sc), (za, zb, zc) = _binary_case(rng, dtype)
        b0 = dtype(rng.integers(0, 256))
        ra, rb = np.float32(sa / sc), np.float32(sb / sc)
        fixed = np.float32(np.float32(zc) - np.float32(np.float64(ra) * np.float64(za) + np.float64(np.float32(rb * np.float32(zb)))))
        fused = np.float32(np.float64(b0) * np.float64(rb) + np.float64(fixed))
        split = np.float32(fixed + np.float32(np.float32(b0) * rb))
        if fused == split:
            continue
        got = fo.qlinear_add(v, sa, za, np.array([b0]), sb, zb, sc, zc)
        want = run_op("QLinearAdd", [v, sa, za, np.array([b0]), sb, zb, sc, zc], dtype, domain="com.microsoft")
        assert_same(got, want)
        checked += 1
        if checked >= 20:
            break
    assert checked >= 20


# ---- table-driven ops ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("const_params", [False, True])
def test_qlinear_leaky_relu(dtype, const_params):
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)
    x = np.concatenate([all_bytes(dtype), rng.integers(info.min, info.max + 1, 777).astype(dtype)])
    for alpha in (0.01, 0.1, 0.3333, 1.7):
        for _ in range(4):
            xs, ys = random_scale(rng), random_scale(rng)
            xz, yz = [dtype(z) for z in rng.integers(info.min, info.max + 1, 2)]
            want = run_op("QLinearLeakyRelu", [x, xs, xz, ys, yz], dtype, attrs={"alpha": alpha}, domain="com.microsoft",
                          consts=(1, 2, 3, 4) if const_params else ())
            assert_same(fo.qlinear_leaky_relu(x, xs, xz, ys, yz, alpha=alpha), want)


@pytest.mark.parametrize("dtype", QDTYPES)
def test_qlinear_sigmoid(dtype):
    rng = np.random.default_rng(10)
    info = np.iinfo(dtype)
    x = all_bytes(dtype)
    cases = [(np.float32(0.1), dtype(0), np.float32(1 / 256), dtype(info.min))]
    for _ in range(30):
        cases.append((random_scale(rng, 0.005, 0.5), dtype(rng.integers(info.min, info.max + 1)),
                      random_scale(rng, 1e-3, 0.01), dtype(rng.integers(info.min, info.max + 1))))
    for xs, xz, ys, yz in cases:
        want = run_op("QLinearSigmoid", [x, xs, xz, ys, yz], dtype, domain="com.microsoft", consts=(1, 2, 3, 4))
        assert_same(fo.qlinear_sigmoid(x, xs, xz, ys, yz), want)


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("axis", [0, 1, 3, -1])
def test_qlinear_concat(dtype, axis):
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    base = [2, 3, 4, 5]
    parts, feeds = [], []
    ys, yz = random_scale(rng), dtype(rng.integers(info.min, info.max + 1))
    for i, extra in enumerate((1, 2, 3)):
        shape = list(base)
        shape[axis] = extra
        x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
        if i == 1:   # same parameters as the output: a plain copy in ORT
            s, z = ys, yz
        else:
            s, z = random_scale(rng), dtype(rng.integers(info.min, info.max + 1))
        parts.append((x, s, z))
        feeds += [x, s, z]
    want = run_op("QLinearConcat", [ys, yz] + feeds, dtype, attrs={"axis": axis}, domain="com.microsoft")
    assert_same(fo.qlinear_concat(parts, ys, yz, axis=axis), want)


# ---- QLinearSoftmax --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((2, 3, 17), 1), ((3, 1), -1), ((2, 5, 300), -1),
                                         ((6, 7), 0), ((1, 1000), 1)])
def test_qlinear_softmax(dtype, shape, axis):
    rng = np.random.default_rng(12)
    info = np.iinfo(dtype)
    for trial in range(8):
        x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
        if trial == 1:
            x[...] = info.max
        xs = random_scale(rng, 0.01, 0.5)
        xz = dtype(rng.integers(info.min, info.max + 1))
        ys = np.float32(1 / 256) if trial % 2 == 0 else random_scale(rng, 0.002, 0.05)
        yz = dtype(info.min if trial % 3 == 0 else rng.integers(info.min, info.max + 1))
        want = run_op("QLinearSoftmax", [x, xs, xz, ys, yz], dtype, attrs={"axis": axis, "opset": 13},
                      domain="com.microsoft", consts=(1, 2, 3, 4))
        assert_same(fo.qlinear_softmax(x, xs, xz, ys, yz, axis=axis), want)


@pytest.mark.parametrize("case", [
    # rows where the table's shift computed with the double log (instead of logf) changes an output
    (0.39701399207115173, 0.0056838286109268665, [154, 85, 86, 36, 88, 113, 73, 18, 154]),
    (0.04415687918663025, 0.0020342585630714893, [249, 3, 241, 128, 77, 133, 157, 161, 88, 85, 129, 223, 224, 13,
                                                  204, 244, 185, 122, 58]),
    (0.3968694508075714, 0.009682504460215569, [240, 50, 119, 100, 198, 56, 135, 153, 169, 0, 10, 240, 185, 146, 86, 48]),
    (0.18751294910907745, 0.04281837120652199, [55, 74, 17, 162, 15, 52, 162]),
])
def test_qlinear_softmax_float_log(case):
    xs, ys, row = np.float32(case[0]), np.float32(case[1]), np.array([case[2]], np.uint8)
    want = run_op("QLinearSoftmax", [row, xs, np.uint8(0), ys, np.uint8(0)], np.uint8, attrs={"axis": -1, "opset": 13},
                  domain="com.microsoft", consts=(1, 2, 3, 4))
    assert_same(fo.qlinear_softmax(row, xs, np.uint8(0), ys, np.uint8(0)), want)


def test_qlinear_softmax_double_division_row():
    """The row where the float (e / sum) * ys rounds to 253.5 (-> 254) and ORT gives 253: ys =
    floorf(1 / float32(1/255)) = 254, and ORT divides in double (e * ys / sum = 253.49999664)."""
    row = np.array([[100, 0, 65, 153, 109, 59, 87, 115, 224, 171]], np.uint8)
    xs, ys = np.float32(0.11962616), np.float32(1 / 255)
    want = run_op("QLinearSoftmax", [row, xs, np.uint8(154), ys, np.uint8(0)], np.uint8,
                  attrs={"axis": -1, "opset": 13}, domain="com.microsoft", consts=(1, 2, 3, 4))
    assert want[0, 8] == 253
    assert_same(fo.qlinear_softmax(row, xs, np.uint8(154), ys, np.uint8(0)), want)


# (dtype, D, x_scale, y_scale, y_zero_point, rows): the reproducer's parameters, both types, short rows
# (a large share of ties: few terms) and rows longer than the 16- and 32-wide blocks of MLAS's vector
# kernels (which sum in lanes; ORT 1.32 sums in order)
SOFTMAX_SWEEPS = [(np.uint8, 10, 0.11962616, 1 / 255, 0, 400_000), (np.int8, 10, 0.11962616, 1 / 256, -128, 200_000),
                  (np.uint8, 3, 0.3, 1 / 200, 3, 200_000), (np.int8, 5, 0.05, 1 / 256, 0, 100_000),
                  (np.uint8, 40, 0.05, 1 / 256, 0, 100_000), (np.int8, 33, 0.02, 1 / 100, 1, 50_000)]


def test_qlinear_softmax_random_rows():
    """1,050,000 uniformly random rows against ORT, in chunks of 50,000 rows (before the double division
    about 1 row in 10^5 differed)."""
    rng = np.random.default_rng(14)
    total = 0
    for dtype, d, xs, ys, yz, rows in SOFTMAX_SWEEPS:
        info = np.iinfo(dtype)
        xs, ys, yz = np.float32(xs), np.float32(ys), dtype(yz)
        for start in range(0, rows, 50_000):
            x = rng.integers(info.min, info.max + 1, (min(50_000, rows - start), d)).astype(dtype)
            want = run_op("QLinearSoftmax", [x, xs, dtype(0), ys, yz], dtype, attrs={"axis": -1, "opset": 13},
                          domain="com.microsoft", consts=(1, 2, 3, 4))
            assert_same(fo.qlinear_softmax(x, xs, dtype(0), ys, yz), want)
            total += len(x)
    assert total >= 1_000_000


@pytest.mark.parametrize("dtype", QDTYPES)
def test_qlinear_softmax_opset12(dtype):
    rng = np.random.default_rng(13)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, (2, 3, 4)).astype(dtype)
    for axis in (0, 1, 2):
        xs, ys = random_scale(rng, 0.01, 0.5), np.float32(1 / 256)
        xz, yz = dtype(0), dtype(info.min)
        want = run_op("QLinearSoftmax", [x, xs, xz, ys, yz], dtype, attrs={"axis": axis, "opset": 12},
                      domain="com.microsoft", consts=(1, 2, 3, 4))
        assert_same(fo.qlinear_softmax(x, xs, xz, ys, yz, axis=axis, opset=12), want)


# ---- pooling ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (1, 4, 7), (2, 16, 9, 9), (1, 2, 3, 4, 5)])
def test_qlinear_global_average_pool(dtype, channels_last, shape):
    rng = np.random.default_rng(14)
    info = np.iinfo(dtype)
    for trial in range(6):
        x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
        if channels_last:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        xs, ys = random_scale(rng), random_scale(rng)
        xz, yz = [dtype(z) for z in rng.integers(info.min, info.max + 1, 2)]
        want = run_op("QLinearGlobalAveragePool", [x, xs, xz, ys, yz], dtype,
                      attrs={"channels_last": int(channels_last)}, domain="com.microsoft")
        assert_same(fo.qlinear_global_average_pool(x, xs, xz, ys, yz, channels_last=channels_last), want)


@pytest.mark.parametrize("dtype", QDTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("geometry", [
    dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 0]),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=1),
    dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[2, 2], auto_pad="SAME_UPPER", strides=[2, 2]),
    dict(kernel_shape=[3, 3], auto_pad="SAME_LOWER"),
    dict(kernel_shape=[7, 8]),                      # the whole image: ORT's global pool path
    dict(kernel_shape=[3]), dict(kernel_shape=[2, 2, 2], strides=[1, 2, 1], pads=[0, 1, 0, 1, 0, 1]),
])
def test_qlinear_average_pool(dtype, channels_last, geometry):
    rng = np.random.default_rng(15)
    info = np.iinfo(dtype)
    nsp = len(geometry["kernel_shape"])
    shape = {1: (2, 3, 9), 2: (2, 5, 7, 8), 3: (1, 3, 4, 5, 6)}[nsp]
    for trial in range(4):
        x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
        if channels_last:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        xs, ys = random_scale(rng), random_scale(rng)
        xz, yz = [dtype(z) for z in rng.integers(info.min, info.max + 1, 2)]
        attrs = dict(geometry, channels_last=int(channels_last))
        want = run_op("QLinearAveragePool", [x, xs, xz, ys, yz], dtype, attrs=attrs, domain="com.microsoft")
        kw = {k: v for k, v in geometry.items()}
        got = fo.qlinear_average_pool(x, xs, xz, ys, yz, channels_last=channels_last, **kw)
        assert_same(got, want)


# ---- float transcendental kernels --------------------------------------------------------------------------

def _float_inputs(rng, n=200003):
    return np.concatenate([rng.uniform(-25, 25, n), rng.normal(0, 2, n // 2), rng.uniform(-1e-3, 1e-3, 1001),
                           [0.0, -0.0, 9.0, -9.0, 18.0, -18.0, 100.0, -100.0, np.inf, -np.inf, np.nan, 1e-40]]).astype(np.float32)


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
def test_sigmoid_tanh_float(op):
    rng = np.random.default_rng(16)
    x = _float_inputs(rng)
    fn = fo.sigmoid_float if op == "Sigmoid" else fo.tanh_float
    for n in (x.size, 13, 8, 1):
        xi = x[-n:]
        want = run_op(op, [xi], np.float32)
        assert_same(on_isas(lambda isa: fn(xi, isa=isa)), want)


# ---- argument checks ---------------------------------------------------------------------------------------

def test_bad_arguments():
    x8 = np.zeros(4, np.uint8)
    with pytest.raises(ValueError, match="float32"):
        fo.quantize_linear(np.zeros(3), 0.1, np.uint8(0))
    with pytest.raises(ValueError, match="scale"):
        fo.quantize_linear(np.zeros(3, np.float32), 0.0, np.uint8(0))
    with pytest.raises(ValueError, match="axis"):
        fo.quantize_linear(np.zeros((2, 3), np.float32), np.ones(3, np.float32), axis=0)
    with pytest.raises(ValueError, match="same dtype"):
        fo.qlinear_add(x8, 0.1, 0, x8.astype(np.int8), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="broadcast"):
        fo.qlinear_add(x8, 0.1, 0, np.zeros(3, np.uint8), 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="range"):
        fo.qlinear_mul(x8, 0.1, 300, x8, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="isa"):
        fo.sigmoid_float(np.zeros(3, np.float32), isa="sse")
    with pytest.raises(ValueError, match="out of computation range"):
        fo.qlinear_global_average_pool(np.zeros((1, 1, 4, 4), np.uint8), 1.0, 0, 1e-6, 0)
    with pytest.raises(ValueError, match="rank"):
        fo.qlinear_average_pool(np.zeros((2, 2), np.uint8), 0.1, 0, 0.1, 0, kernel_shape=[1])


# ---- float GEMM / MatMul / Conv (MLAS SGEMM order) -------------------------------------------------------

GEMM_SHAPES = [(64, 576, 10), (1, 300, 50), (5, 1000, 3), (64, 128, 64), (3, 4000, 130), (130, 257, 1), (2, 33, 17),
               (1, 7, 1), (64, 2048, 256)]


@pytest.mark.parametrize("shape", GEMM_SHAPES)
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_float(shape, trans_b):
    """Prepacked (B an initializer) and run-time B, 1 and 2 threads, with and without bias, alpha/beta."""
    M, K, N = shape
    rng = np.random.default_rng(17)
    a = rng.normal(0, 1, (M, K)).astype(np.float32)
    b = rng.normal(0, 1, (N, K) if trans_b else (K, N)).astype(np.float32)
    c = rng.normal(0, 1, (N,)).astype(np.float32)
    for consts, packed in (((1,), True), ((), False)):
        for threads in (1, 2):
            for alpha, beta, bias in ((1.0, 1.0, c), (0.5, 1.0, c), (1.0, 0.0, None), (1.0, 2.0, c), (1.0, 1.0, c[:1])):
                inputs = [a, b] if bias is None else [a, b, bias]
                want = run_op("Gemm", inputs, np.float32, attrs=dict(transB=int(trans_b), alpha=alpha, beta=beta),
                              consts=consts, threads=threads)
                got = on_isas(lambda isa: fo.gemm_float(a, b, bias, alpha=alpha, beta=beta, trans_b=trans_b,
                                                        packed_b=packed, threads=threads, isa=isa))
                assert_same(got, want)


def test_gemm_float_order_matters():
    """The emulation must be able to fail: packed and run-time B give different bits, and so do
    1 and 2 threads for a run-time B with a narrow N."""
    rng = np.random.default_rng(18)
    a = rng.normal(0, 1, (3, 4000)).astype(np.float32)
    b = rng.normal(0, 1, (4000, 130)).astype(np.float32)
    assert not bits_equal(fo.gemm_float(a, b, packed_b=True), fo.gemm_float(a, b, packed_b=False))
    assert not bits_equal(fo.gemm_float(a, b, packed_b=False, threads=1), fo.gemm_float(a, b, packed_b=False, threads=2))
    assert_same(fo.gemm_float(a, b, packed_b=False, threads=2), run_op("Gemm", [a, b], np.float32, threads=2))


@pytest.mark.parametrize("shapes", [((64, 300), (300, 10)), ((2, 5, 40), (40, 7)), ((1, 129), (129, 33)),
                                    ((3, 4, 50), (3, 50, 6))])
def test_matmul_float(shapes):
    rng = np.random.default_rng(19)
    a = rng.normal(0, 1, shapes[0]).astype(np.float32)
    b = rng.normal(0, 1, shapes[1]).astype(np.float32)
    variants = [((), False)] + ([((1,), True)] if b.ndim == 2 else [])
    for consts, packed in variants:
        for threads in (1, 2):
            want = run_op("MatMul", [a, b], np.float32, consts=consts, threads=threads)
            assert_same(on_isas(lambda isa: fo.matmul_float(a, b, packed_b=packed, threads=threads, isa=isa)), want)


CONV_CASES = [
    ((1, 16, 8, 8), (32, 16, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((2, 16, 8, 8), (32, 16, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((1, 64, 14, 14), (64, 64, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((2, 32, 9, 9), (32, 1, 3, 3), dict(pads=[1, 1, 1, 1], group=32)),            # depthwise: the M = 1 kernel
    ((1, 8, 10, 10), (16, 8, 1, 1), dict()),                                       # pointwise: GEMM on the input
    ((2, 8, 10, 10), (16, 8, 1, 1), dict()),
    ((1, 8, 10, 10), (16, 8, 1, 1), dict(strides=[2, 2])),
    ((1, 3, 28, 28), (8, 3, 5, 5), dict(strides=[2, 2], pads=[2, 2, 2, 2])),
    ((1, 1, 28, 28), (8, 1, 5, 5), dict()),
    ((1, 4, 6, 6), (200, 4, 3, 3), dict()),                                        # filters > pixels
    ((1, 1, 6, 6), (3, 1, 2, 6), dict()),                                          # kernel spans the width
    ((2, 6, 12), (4, 3, 3), dict(group=2, pads=[1, 0])),                           # 1-D, grouped
    ((1, 4, 5, 6, 7), (3, 4, 2, 3, 2), dict(pads=[1, 0, 1, 0, 1, 0])),             # 3-D
    ((1, 8, 11, 11), (8, 8, 3, 3), dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    ((1, 256, 7, 7), (10, 256, 3, 3), dict(pads=[1, 1, 1, 1])),                    # 1 vs 2 threads differ
    ((2, 8, 9, 9), (8, 8, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_float(case):
    xs, ws, kw = case
    rng = np.random.default_rng(20)
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.3, ws).astype(np.float32)
    b = rng.normal(0, 1, ws[0]).astype(np.float32)
    for threads in (1, 2):
        for bias in (b, None):
            inputs = [x, w] if bias is None else [x, w, bias]
            want = run_op("Conv", inputs, np.float32, attrs=kw, consts=(1, 2), threads=threads)
            assert_same(on_isas(lambda isa: fo.conv_float(x, w, bias, threads=threads, isa=isa, **kw)), want)


# ---- BatchNormalization, Softmax, pooling, activations (float) -------------------------------------------

@pytest.mark.parametrize("shape", [(2, 16, 7, 7), (3, 5), (1, 8, 33), (2, 3, 4, 5, 6)])
def test_batch_norm_float(shape):
    rng = np.random.default_rng(21)
    x = rng.normal(0, 3, shape).astype(np.float32)
    c = shape[1]
    s, b, m = [rng.normal(0, 1, c).astype(np.float32) for _ in range(3)]
    v = rng.uniform(0.01, 3, c).astype(np.float32)
    for eps in (1e-5, 1e-3):
        want = run_op("BatchNormalization", [x, s, b, m, v], np.float32, attrs=dict(epsilon=eps), consts=(1, 2, 3, 4),
                      opset=15)
        assert_same(on_isas(lambda isa: fo.batch_norm_float(x, s, b, m, v, epsilon=eps, isa=isa)), want)


@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((3, 1000), 1), ((2, 3, 17), 1), ((5, 7), 0), ((2, 25), -1),
                                        ((1, 8), -1), ((1, 3), -1), ((7, 24), 1), ((2, 49), 1), ((64, 10), 1)])
def test_softmax_float(shape, axis):
    rng = np.random.default_rng(22)
    for scale in (1.0, 5.0, 40.0):
        x = rng.normal(0, scale, shape).astype(np.float32)
        want = run_op("Softmax", [x], np.float32, attrs=dict(axis=axis))
        assert_same(on_isas(lambda isa: fo.softmax_float(x, axis=axis, isa=isa)), want)
    x = rng.normal(0, 5, (2, 3, 4)).astype(np.float32)
    want = run_op("Softmax", [x], np.float32, attrs=dict(axis=1), opset=11)
    assert_same(fo.softmax_float(x, axis=1, opset=11), want)


POOL_CASES = [
    ((2, 3, 9, 9), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    ((2, 3, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((2, 3, 10, 11), dict(kernel_shape=[2, 3], strides=[2, 1])),
    ((1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[3, 3])),                 # generic kernel (stride 3)
    ((1, 2, 12), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),            # 1-D: generic
    ((1, 2, 5, 6, 7), dict(kernel_shape=[2, 3, 2], pads=[1, 1, 0, 1, 1, 0])),  # 3-D vector kernel
    ((1, 2, 9, 9), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ((1, 2, 10, 10), dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),  # windows past the input
    ((1, 2, 8, 11), dict(kernel_shape=[3, 3], strides=[3, 2], pads=[1, 0, 1, 1], ceil_mode=1)),
    ((1, 3, 7, 7), dict(kernel_shape=[7, 7])),                                 # global kernel
    ((1, 2, 40, 40), dict(kernel_shape=[33, 2])),                              # kernel > 32: generic
    ((1, 2, 9, 9), dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2])),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_float(case):
    shape, kw = case
    rng = np.random.default_rng(23)
    x = rng.normal(0, 1, shape).astype(np.float32)
    for cip in (0, 1):
        want = run_op("AveragePool", [x], np.float32, attrs=dict(kw, count_include_pad=cip))
        assert_same(on_isas(lambda isa: fo.average_pool_float(x, count_include_pad=bool(cip), isa=isa, **kw)), want)
    assert_same(on_isas(lambda isa: fo.max_pool(x, isa=isa, **kw)), run_op("MaxPool", [x], np.float32, attrs=kw, opset=12))


def test_max_pool_float_nan_and_signed_zero():
    """MAXPS steps (vector kernel) and std::max steps (tail columns) treat NaN and -0 differently."""
    x = np.zeros((1, 1, 6, 7), np.float32)
    x[0, 0, ::2, ::3] = -0.0
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 4, 6] = np.nan
    x[0, 0, 3, 5] = -0.0
    for kw in (dict(kernel_shape=[2, 2]), dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), dict(kernel_shape=[6, 7]),
               dict(kernel_shape=[2, 2], strides=[3, 3])):
        assert_same(on_isas(lambda isa: fo.max_pool(x, isa=isa, **kw)), run_op("MaxPool", [x], np.float32, attrs=kw,
                                                                                opset=12))


@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 5, 9, 11), (2, 4, 13), (1, 2, 3, 4, 5), (64, 8, 1, 1)])
def test_global_pool_float(shape):
    rng = np.random.default_rng(24)
    x = rng.normal(0, 1, shape).astype(np.float32)
    assert_same(fo.global_average_pool_float(x), run_op("GlobalAveragePool", [x], np.float32))
    assert_same(fo.global_max_pool_float(x), run_op("GlobalMaxPool", [x], np.float32))


@pytest.mark.parametrize("dtype", QDTYPES)
def test_max_pool_int8(dtype):
    rng = np.random.default_rng(25)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, (2, 3, 9, 9)).astype(dtype)
    for kw in (dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2]),
               dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)):
        assert_same(fo.max_pool(x, **kw), run_op("MaxPool", [x], dtype, attrs=kw, opset=12))


def test_max_pool_float_dilated():
    rng = np.random.default_rng(26)
    x = rng.normal(0, 1, (2, 3, 9, 9)).astype(np.float32)
    kw = dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])
    assert_same(fo.max_pool(x, **kw), run_op("MaxPool", [x], np.float32, attrs=kw, opset=12))


def test_float_activations_and_binary():
    rng = np.random.default_rng(27)
    x = np.concatenate([rng.normal(0, 2, 1001), [-0.0, 0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 1.0, -1.0]])
    x = x.astype(np.float32)
    assert_same(on_isas(lambda isa: fo.relu_float(x, isa=isa)), run_op("Relu", [x], np.float32))
    for lo, hi in ((-1.0, 1.0), (0.0, 6.0), (-0.5, 0.25)):
        want = run_op("Clip", [x, np.float32(lo), np.float32(hi)], np.float32)
        assert_same(on_isas(lambda isa: fo.clip_float(x, lo, hi, isa=isa)), want)
    for alpha in (0.01, 0.2, 1.5):
        want = run_op("LeakyRelu", [x], np.float32, attrs=dict(alpha=alpha))
        assert_same(on_isas(lambda isa: fo.leaky_relu_float(x, alpha=alpha, isa=isa)), want)
    a = rng.normal(0, 3, (2, 3, 4, 5)).astype(np.float32)
    b = rng.normal(0, 3, (1, 3, 1, 1)).astype(np.float32)
    for op in ("Add", "Sub", "Mul", "Div"):
        assert_same(fo.binary_float(op, a, b), run_op(op, [a, b], np.float32))
        assert_same(fo.binary_float(op, b, a), run_op(op, [b, a], np.float32))


# ---- Resize --------------------------------------------------------------------------------------------------

RESIZE_COORDS = ["half_pixel", "asymmetric", "pytorch_half_pixel", "tf_half_pixel_for_nn", "align_corners",
                 "half_pixel_symmetric"]


def _resize_data(rng, dtype, shape):
    if dtype == np.float32:
        return (rng.standard_normal(shape) * 10).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _ort_resize(x, scales=None, sizes=None, roi=None, opset=13, **attrs):
    """Resize with roi / scales / sizes as initializers (as exported models have them)."""
    if opset == 10:
        return run_op("Resize", [x, np.asarray(scales, np.float32)], x.dtype, attrs=attrs, consts=(1,), opset=10)
    ins = [x, np.asarray(roi if roi is not None else [], np.float32),
           np.asarray(scales if scales is not None else [], np.float32),
           None if sizes is None else np.asarray(sizes, np.int64)]
    return run_op("Resize", ins, x.dtype, attrs=attrs, consts=(1, 2, 3), opset=opset)


def _check_resize(x, scales=None, sizes=None, roi=None, **attrs):
    opset = 19 if attrs.get("coordinate_transformation_mode") == "half_pixel_symmetric" else 13
    want = _ort_resize(x, scales, sizes, roi, opset=opset, **attrs)
    kw = dict(attrs)
    if "exclude_outside" in kw:
        kw["exclude_outside"] = bool(kw["exclude_outside"])
    assert_same(fo.resize(x, scales=scales, sizes=sizes, roi=roi, **kw), want)


RESIZE_NEAREST_CASES = [((2, 3, 5, 7), [1, 1, 2.0, 1.5]), ((1, 2, 9, 8), [1, 1, 0.5, 0.7]), ((3, 7), [2.5, 0.4]),
                        ((11,), [1.7]), ((2, 3, 4, 5, 6), [1, 1.5, 0.5, 2, 1.3]), ((2, 3, 4, 4), [1, 1, 2, 2])]


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8])
@pytest.mark.parametrize("coord", RESIZE_COORDS)
def test_resize_nearest(dtype, coord):
    rng = np.random.default_rng(40)
    for nearest in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
        for shape, scales in RESIZE_NEAREST_CASES:
            _check_resize(_resize_data(rng, dtype, shape), scales, mode="nearest",
                          coordinate_transformation_mode=coord, nearest_mode=nearest)
    _check_resize(_resize_data(rng, dtype, (2, 3, 5, 7)), sizes=[2, 3, 9, 4], mode="nearest",
                  coordinate_transformation_mode=coord)


# NCHW and 2-D (UpsampleBilinear), NHWC (scales [1, h, w, 1]: integer weights on uint8/int8), 3-D and 5-D
# (trilinear), up- and down-sampling with fractional scales.
RESIZE_LINEAR_CASES = [((2, 3, 5, 7), [1, 1, 2.0, 1.5]), ((1, 2, 9, 8), [1, 1, 0.6, 1.7]), ((3, 7), [2.5, 0.4]),
                       ((2, 5, 6, 3), [1, 1.7, 0.6, 1]), ((2, 4, 4, 8), [1, 2, 2, 1]), ((3, 4, 5), [1.5, 2, 0.7]),
                       ((1, 2, 3, 4, 5), [1, 1, 2, 1.5, 0.8]), ((1, 1, 4, 4), [1, 1, 3.3, 2.9])]


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8])
@pytest.mark.parametrize("coord", RESIZE_COORDS)
def test_resize_linear(dtype, coord):
    rng = np.random.default_rng(41)
    for shape, scales in RESIZE_LINEAR_CASES:
        _check_resize(_resize_data(rng, dtype, shape), scales, mode="linear", coordinate_transformation_mode=coord)
    _check_resize(_resize_data(rng, dtype, (2, 3, 5, 7)), sizes=[2, 3, 9, 4], mode="linear",
                  coordinate_transformation_mode=coord)
    # extreme values: the truncating cast at the ends of the range
    if dtype != np.float32:
        info = np.iinfo(dtype)
        x = rng.choice(np.array([info.min, info.min + 1, info.max - 1, info.max], dtype), (2, 3, 6, 5))
        _check_resize(x, [1, 1, 1.7, 2.3], mode="linear", coordinate_transformation_mode=coord)
        _check_resize(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), [1, 1.7, 2.3, 1], mode="linear",
                      coordinate_transformation_mode=coord)


@pytest.mark.parametrize("coord", RESIZE_COORDS)
def test_resize_cubic(coord):
    rng = np.random.default_rng(42)
    for shape, scales in [((2, 3, 5, 7), [1, 1, 2.0, 1.5]), ((1, 2, 9, 8), [1, 1, 0.6, 0.7]), ((3, 7), [2.5, 0.4])]:
        for exclude in (0, 1):
            for a in (-0.75, -0.5):
                _check_resize(_resize_data(rng, np.float32, shape), scales, mode="cubic",
                              coordinate_transformation_mode=coord, exclude_outside=exclude, cubic_coeff_a=a)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int8])
def test_resize_tf_crop_and_resize(dtype):
    """Region of interest with points outside the input, extrapolation values outside the data range."""
    rng = np.random.default_rng(43)
    modes = ["nearest", "linear"] + (["cubic"] if dtype == np.float32 else [])
    cases = [((2, 3, 5, 7), [1, 1, 2.0, 1.5], [0, 0, -0.5, -0.3, 1, 1, 1.5, 1.2]),
             ((2, 5, 6, 3), [1, 1.7, 0.6, 1], [0, -0.2, 0.1, 0, 1, 1.1, 0.9, 1]),
             ((3, 7), [2.5, 0.4], [0.1, 0.5, 1.3, 0.8])]
    for mode in modes:
        for shape, scales, roi in cases:
            if mode == "cubic" and scales[1] != 1 and len(shape) == 4:
                continue
            for ev in (7.25, 300.0, -1.0, -200.0):
                _check_resize(_resize_data(rng, dtype, shape), scales, roi=roi, mode=mode,
                              coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=ev)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_resize_opset10(dtype):
    rng = np.random.default_rng(44)
    x = _resize_data(rng, dtype, (2, 3, 5, 7))
    for scales in ([1, 1, 2, 1.5], [1, 1, 0.5, 0.7], [1, 1, 2, 2]):
        for mode in ("nearest", "linear"):
            want = _ort_resize(x, scales, opset=10, mode=mode)
            got = fo.resize(x, scales=scales, mode=mode, coordinate_transformation_mode="asymmetric",
                            nearest_mode="simple")
            assert_same(got, want)


def test_resize_bad_arguments():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="exactly one"):
        fo.resize(x)
    with pytest.raises(ValueError, match="4 values"):
        fo.resize(x, scales=[2, 2])
    with pytest.raises(ValueError, match="unknown Resize attribute"):
        fo.resize(x, scales=[1, 1, 2, 2], mode="bilinear")
    with pytest.raises(ValueError, match="linear mode"):
        fo.resize(x, scales=[2, 1, 2, 2], mode="linear")
    with pytest.raises(ValueError, match="cubic mode is float32"):
        fo.resize(x.astype(np.uint8), scales=[1, 1, 2, 2], mode="cubic")
    with pytest.raises(ValueError, match="greater than 0"):
        fo.resize(x, scales=[1, 1, 0, 2])
    with pytest.raises(ValueError, match="float32, uint8 or int8"):
        fo.resize(x.astype(np.float64), scales=[1, 1, 2, 2])


# ---- the QDQ fusion facts recorded in docs/runtimes-onnxruntime-ops.md ------------------------------------

def _qdq_model(op, qtype, nin=1, x_shape=(1, 4, 8, 8), weight=None, wtype=np.int8, consts=(), attrs=None,
               same_params=False, out_zp=None):
    """x -> Q -> DQ (per input) [+ DQ(weight)] -> op -> Q -> DQ."""
    inits, nodes, graph_inputs, ins = [], [], [], []

    def qparams(name, scale, zp, dtype):
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), name + "_s"))
        inits.append(numpy_helper.from_array(np.array(zp, dtype), name + "_z"))

    zp_in = 128 if qtype == np.uint8 else 0
    for i in range(nin):
        graph_inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(x_shape)))
        qparams(f"q{i}", 0.05, zp_in, qtype)
        nodes += [helper.make_node("QuantizeLinear", [f"x{i}", f"q{i}_s", f"q{i}_z"], [f"xq{i}"]),
                  helper.make_node("DequantizeLinear", [f"xq{i}", f"q{i}_s", f"q{i}_z"], [f"xd{i}"])]
        ins.append(f"xd{i}")
    if weight is not None:
        inits.append(numpy_helper.from_array(np.ones(weight, wtype), "w"))
        qparams("w", 0.01, 0, wtype)
        nodes.append(helper.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["wd"]))
        ins.append("wd")
    for j, c in enumerate(consts):
        inits.append(numpy_helper.from_array(c, f"c{j}"))
        ins.append(f"c{j}")
    nodes.append(helper.make_node(op, ins, ["y"], **(attrs or {})))
    qparams("o", 0.05 if same_params else 0.07, zp_in if out_zp is None else out_zp, qtype)
    nodes += [helper.make_node("QuantizeLinear", ["y", "o_s", "o_z"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "o_s", "o_z"], ["out"])]
    graph = helper.make_graph(nodes, "g", graph_inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _optimized_nodes(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "opt.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = path
        so.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(path).graph


def test_qdq_fusion_table():
    """What ORT_ENABLE_EXTENDED makes of DQ -> op -> Q (the table of the doc), incl. the x86 S8 -> U8
    rewrite of int8 activations."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the recorded facts are ORT's x86 graph rules")
    cases = [
        (dict(op="Conv", qtype=np.uint8, weight=(6, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1])), "QLinearConv"),
        (dict(op="MatMul", qtype=np.uint8, weight=(8, 5), x_shape=(3, 8)), "QLinearMatMul"),
        (dict(op="Gemm", qtype=np.uint8, weight=(5, 8), x_shape=(3, 8), attrs=dict(transB=1)), "QGemm"),
        (dict(op="Add", qtype=np.uint8, nin=2), "QLinearAdd"),
        (dict(op="Mul", qtype=np.uint8, nin=2), "QLinearMul"),
        (dict(op="Concat", qtype=np.uint8, nin=2, attrs=dict(axis=1)), "QLinearConcat"),
        (dict(op="AveragePool", qtype=np.uint8, attrs=dict(kernel_shape=[2, 2])), "QLinearAveragePool"),
        (dict(op="GlobalAveragePool", qtype=np.uint8), "QLinearGlobalAveragePool"),
        (dict(op="LeakyRelu", qtype=np.uint8), "QLinearLeakyRelu"),
        (dict(op="Sigmoid", qtype=np.uint8), "QLinearSigmoid"),
        (dict(op="Softmax", qtype=np.uint8, x_shape=(3, 10)), "QLinearSoftmax"),
        (dict(op="Tanh", qtype=np.uint8), "Tanh"),                                   # stays float
        (dict(op="Sub", qtype=np.uint8, nin=2), "Sub"),                              # stays float
        (dict(op="MaxPool", qtype=np.uint8, attrs=dict(kernel_shape=[2, 2]), same_params=True), "MaxPool"),
        (dict(op="Transpose", qtype=np.uint8, attrs=dict(perm=[0, 2, 3, 1]), same_params=True), "Transpose"),
        (dict(op="Resize", qtype=np.uint8, attrs=dict(mode="nearest"), same_params=True,
              consts=(np.zeros(0, np.float32), np.array([1, 1, 2, 2], np.float32))), "Resize"),
        (dict(op="Relu", qtype=np.uint8, out_zp=0), None),                           # removed: Q clamps already
    ]
    for kw, expect in cases:
        graph = _optimized_nodes(_qdq_model(**kw))
        kinds = [n.op_type for n in graph.node]
        core = [k for k in kinds if k not in ("QuantizeLinear", "DequantizeLinear")]
        assert core == ([expect] if expect else []), (kw["op"], kinds)
        fused_integer = expect is not None and expect != kw["op"]
        moved = expect == kw["op"] and kw.get("same_params")
        if fused_integer or moved:   # the op consumes the quantized tensor: no DQ before it
            assert kinds.count("DequantizeLinear") == 1, (kw["op"], kinds)
    # int8 activations become uint8 with zero point + 128 on x86; weights stay int8
    graph = _optimized_nodes(_qdq_model("Conv", np.int8, weight=(6, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1])))
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv = [n for n in graph.node if n.op_type == "QLinearConv"][0]
    x_zp, w, y_zp = inits[conv.input[2]], inits[conv.input[3]], inits[conv.input[7]]
    assert x_zp.dtype == np.uint8 and int(x_zp) == 128 and y_zp.dtype == np.uint8 and int(y_zp) == 128
    assert w.dtype == np.int8


def test_fused_conv_relu_clip():
    """Conv + Relu / Clip in float becomes com.microsoft FusedConv at ORT_ENABLE_EXTENDED (also when a
    QDQ Conv cannot be fused): the activation after the bias equals relu_float / clip_float of conv_float."""
    if _AVX512:
        pytest.skip("runs the optimized session in-process (AVX2 host only)")
    rng = np.random.default_rng(45)
    x = rng.normal(0, 1, (2, 16, 9, 9)).astype(np.float32)
    w = rng.normal(0, 0.3, (8, 16, 3, 3)).astype(np.float32)
    b = rng.normal(0, 1, 8).astype(np.float32)
    for act, bounds in (("Relu", []), ("Clip", [np.float32(-0.5), np.float32(0.7)])):
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
        inits += [numpy_helper.from_array(np.array(v), f"e{i}") for i, v in enumerate(bounds)]
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node(act, ["c"] + [f"e{i}" for i in range(len(bounds))], ["y"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        with tempfile.TemporaryDirectory() as d:
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            so.intra_op_num_threads = 1
            so.optimized_model_filepath = os.path.join(d, "opt.onnx")
            want = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
                None, {"x": x})[0]
            assert [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node] == ["FusedConv"]
        conv = fo.conv_float(x, w, b, pads=[1, 1, 1, 1])
        got = fo.relu_float(conv) if act == "Relu" else fo.clip_float(conv, *bounds)
        assert_same(got, want)
