"""The affine reference's MLAS float kernels (fixedpoint/quantization/reference_affine/mlas_float.py)
against the installed onnxruntime itself, as float32 bit patterns: one-node float models (Conv, Gemm
with a prepacked and with a run-time B, Softmax, AveragePool, linear Resize), ORT_DISABLE_ALL (no NCHWc
rewrite), one intra-op thread. These are the kernels ORT runs where it leaves a QDQ group or a float
layer in float; the layer-by-layer tests compare them only through a QuantizeLinear, which hides most
one-ulp differences, so their summation orders are checked here directly. Each case also shows that a
plain float32 formula (numpy's matmul / exp / sums) differs from ORT somewhere, so the order matters.
Also ORT's com.microsoft QLinearAdd / QLinearMul with broadcasting (the operand swap) and
DynamicQuantizeLinear, which the float-port and constant-operand layers use."""
from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from fixedpoint.quantization.reference_affine import mlas_float as mf  # noqa: E402

h, TP, nh = onnx.helper, onnx.TensorProto, onnx.numpy_helper


@pytest.fixture(scope="module", autouse=True)
def fma3_host():
    from fixedpoint.kernels import cpu_features     # CPU detection only: which MLAS kernels ORT runs here
    features = cpu_features()
    if not (features["avx2"] and features["fma"]) or features["avx512f"]:
        pytest.skip("MLAS runs other SGEMM kernels on this CPU than the AVX2/FMA3 ones the reference follows")


def _run(node, inputs: dict, initializers=(), opset=13, threads=1):
    """One node on ORT (ORT_DISABLE_ALL, `threads` intra-op threads); `inputs` name -> float32 array."""
    graph = h.make_graph([node], "g", [h.make_tensor_value_info(k, TP.FLOAT, list(v.shape)) for k, v in inputs.items()],
                         [h.make_tensor_value_info("y", TP.FLOAT, None)],
                         [nh.from_array(v, k) for k, v in initializers])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def _bits_equal(a, b):
    return a.shape == b.shape and np.array_equal(np.asarray(a, np.float32).view(np.uint32),
                                                 np.asarray(b, np.float32).view(np.uint32))


CONVS = [  # (N, C, H, W), (M, C/G, kh, kw), stride, pads, dilation, groups
    ((2, 8, 8, 8), (16, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),      # ExpandThenGemmSegmented, several images
    ((1, 64, 8, 8), (64, 64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),    # one image: MlasConvTryMultithread, K blocks
    ((1, 3, 9, 9), (200, 3, 3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1),     # more filters than outputs: ExpandThenGemm
    ((2, 16, 6, 6), (32, 16, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 1x1 stride 1: GemmDirect
    ((1, 1, 7, 7), (5, 1, 3, 7), (1, 1), (0, 0, 0, 0), (1, 1), 1),       # a one-channel kernel spanning the width
    ((2, 12, 7, 7), (12, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 12),    # depthwise
    ((1, 8, 9, 9), (12, 4, 3, 3), (2, 1), (2, 0, 0, 2), (2, 1), 2),      # grouped, dilated, asymmetric pads
]


@pytest.mark.parametrize("case", CONVS, ids=range(len(CONVS)))
def test_mlas_conv_equals_onnxruntime(case):
    xs, ws, stride, pads, dilation, groups = case
    rng = np.random.default_rng(sum(ws))
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.3, ws).astype(np.float32)
    b = rng.normal(0, 0.5, ws[0]).astype(np.float32)
    node = h.make_node("Conv", ["x", "w", "b"], ["y"], strides=list(stride), pads=[pads[0], pads[1], pads[2], pads[3]],
                       dilations=list(dilation), group=groups)
    want = _run(node, {"x": x}, [("w", w), ("b", b)])
    got = mf.mlas_conv(x, w, b, stride, pads, dilation, groups)
    assert _bits_equal(got, want)


@pytest.mark.parametrize("m, k, n", [(1, 64, 10), (4, 64, 10), (8, 300, 20), (3, 20, 1), (16, 600, 33)])
@pytest.mark.parametrize("packed", [True, False], ids=["initializer-B", "runtime-B"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_mlas_gemm_equals_onnxruntime(m, k, n, packed, bias):
    rng = np.random.default_rng(m * 1000 + k + n)
    x = rng.normal(0, 1, (m, k)).astype(np.float32)
    w = rng.normal(0, 0.3, (n, k)).astype(np.float32)
    c = rng.normal(0, 0.5, n).astype(np.float32)
    names = ["x", "w"] + (["c"] if bias else [])
    node = h.make_node("Gemm", names, ["y"], transB=1)
    inputs = {"x": x} if packed else {"x": x, "w": w}
    inits = ([("w", w)] if packed else []) + ([("c", c)] if bias else [])
    want = _run(node, inputs, inits)
    got = mf.mlas_gemm(x, w, c if bias else None, packed_b=packed)
    assert _bits_equal(got, want)


def test_plain_float32_sums_differ_from_mlas():
    """numpy's float32 matmul and sums are not MLAS's order: on these shapes they differ from ORT (so the
    equalities above are not luck)."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (8, 600)).astype(np.float32)
    w = rng.normal(0, 0.3, (33, 600)).astype(np.float32)
    want = _run(h.make_node("Gemm", ["x", "w"], ["y"], transB=1), {"x": x}, [("w", w)])
    assert not _bits_equal(x @ w.T, want)
    assert not _bits_equal((x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32), want)
    rows = rng.normal(0, 3, (500, 37)).astype(np.float32)
    want = _run(h.make_node("Softmax", ["x"], ["y"], axis=-1), {"x": rows})
    e = np.exp(rows - rows.max(1, keepdims=True))
    assert not _bits_equal(e / e.sum(1, keepdims=True), want)
    assert _bits_equal(mf.mlas_softmax(rows, -1), want)


@pytest.mark.parametrize("shape, axis, opset", [((300, 1), -1, 13), ((200, 7), -1, 13), ((64, 10), 1, 13),
                                                ((50, 37), -1, 13), ((4, 3, 5, 6), 1, 13), ((4, 3, 5, 6), 1, 11)])
def test_mlas_softmax_equals_onnxruntime(shape, axis, opset):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = rng.normal(0, 4, shape).astype(np.float32)
    x.reshape(-1)[:3] = (-100.0, 90.0, 0.0)
    want = _run(h.make_node("Softmax", ["x"], ["y"], axis=axis), {"x": x}, opset=opset)
    assert _bits_equal(mf.mlas_softmax(x, axis, opset), want)


POOLS = [  # kernel, stride, pads, count_include_pad, ceil_mode, (H, W)
    ((2, 2), (1, 1), (1, 1, 0, 0), False, False, (9, 9)),
    ((3, 3), (1, 1), (1, 1, 1, 1), True, False, (8, 8)),
    ((3, 3), (2, 2), (0, 0, 0, 0), False, True, (9, 9)),
    ((3, 3), (2, 2), (1, 1, 1, 1), True, True, (8, 8)),
    ((2, 3), (3, 3), (0, 1, 0, 1), False, False, (10, 11)),   # stride 3: the generic kernel
    ((8, 8), (1, 1), (0, 0, 0, 0), False, False, (8, 8)),     # the whole image: the global kernel
    ((3, 3), (2, 2), (0, 2, 1, 0), True, True, (9, 8)),       # ORT's loop bounds the height by the bottom pad
    ((3, 2), (2, 2), (1, 0, 2, 1), False, True, (8, 9)),
    ((2, 2), (2, 2), (1, 1, 1, 1), True, False, (7, 7)),
]


@pytest.mark.parametrize("opset", [13, 19])
@pytest.mark.parametrize("case", POOLS, ids=range(len(POOLS)))
def test_mlas_average_pool_equals_onnxruntime(case, opset):
    """MlasPool's kernels up to opset 18, ORT's own loop from AveragePool-19 on (they differ: 277 of 810
    outputs of case 0)."""
    kernel, stride, pads, include, ceil, hw = case
    x = np.random.default_rng(kernel[0] * 10 + stride[0]).normal(0, 1, (2, 5) + hw).astype(np.float32)
    node = h.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(kernel), strides=list(stride), pads=list(pads),
                       count_include_pad=int(include), ceil_mode=int(ceil))
    want = _run(node, {"x": x}, opset=opset)
    assert _bits_equal(mf.mlas_average_pool(x, kernel, stride, pads, include, ceil, opset), want)
    if case is POOLS[0]:
        other = mf.mlas_average_pool(x, kernel, stride, pads, include, ceil, 32 - opset)
        assert not _bits_equal(other, want)


@pytest.mark.parametrize("mode", ["asymmetric", "half_pixel", "align_corners", "pytorch_half_pixel"])
@pytest.mark.parametrize("scales", [(2.0, 2.0), (3.0, 1.5), (0.5, 0.75)])
def test_linear_resize_equals_onnxruntime(mode, scales):
    x = np.random.default_rng(3).normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
    node = h.make_node("Resize", ["x", "", "s"], ["y"], mode="linear", coordinate_transformation_mode=mode)
    want = _run(node, {"x": x}, [("s", np.array((1, 1) + scales, np.float32))])
    assert _bits_equal(mf.ort_resize_linear(x, scales, mode), want)


@pytest.mark.parametrize("threads", [2, 4])
def test_mlas_thread_splits_equal_onnxruntime(threads):
    """With several intra-op threads MLAS splits a run-time-B GEMM (MlasGemmBatch's M / N ranges) and a
    single image's convolution (MlasConvTryMultithread's segments); the splits change the sums."""
    differs = 0
    for m, k, n in [(8, 300, 20), (16, 600, 33), (64, 256, 40), (1, 600, 300)]:
        rng = np.random.default_rng(m + k + n)
        x = rng.normal(0, 1, (m, k)).astype(np.float32)
        w = rng.normal(0, 0.3, (n, k)).astype(np.float32)
        want = _run(h.make_node("Gemm", ["x", "w"], ["y"], transB=1), {"x": x, "w": w}, threads=threads)
        assert _bits_equal(mf.mlas_gemm(x, w, None, packed_b=False, threads=threads), want), (m, k, n)
        differs += not _bits_equal(mf.mlas_gemm(x, w, None, packed_b=False, threads=1), want)
    xs, ws, stride, pads, dilation, groups = CONVS[1]
    rng = np.random.default_rng(sum(ws))
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.3, ws).astype(np.float32)
    b = rng.normal(0, 0.5, ws[0]).astype(np.float32)
    node = h.make_node("Conv", ["x", "w", "b"], ["y"], strides=list(stride), pads=list(pads), group=groups)
    want = _run(node, {"x": x}, [("w", w), ("b", b)], threads=threads)
    assert _bits_equal(mf.mlas_conv(x, w, b, stride, pads, dilation, groups, threads=threads), want)
    differs += not _bits_equal(mf.mlas_conv(x, w, b, stride, pads, dilation, groups, threads=1), want)
    assert differs >= 2


# --- ORT's integer element-wise kernels and DynamicQuantizeLinear -------------------------------------------
BROADCASTS = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1, 3, 1, 1)), ((3, 1, 1), (2, 3, 4, 5)),
              ((1,), (2, 3, 4, 5)), ((2, 3, 4, 5), ()), ((), (2, 3, 4, 5)), ((2, 3, 4, 1), (2, 3, 4, 5)),
              ((2, 1, 4, 5), (2, 3, 1, 5)), ((5,), (2, 3, 4, 5)), ((2, 3, 1, 1), (1, 1, 4, 5))]


def _qlinear_binary(op, a, b, pa, pb, pc):
    names = ["a", "as", "az", "b", "bs", "bz", "cs", "cz"]
    node = h.make_node(op, names, ["y"], domain="com.microsoft")
    dtype = a.dtype
    t = TP.UINT8 if dtype == np.uint8 else TP.INT8
    inits = [nh.from_array(np.array(p.scale[0], np.float32), s) for p, s in ((pa, "as"), (pb, "bs"), (pc, "cs"))]
    inits += [nh.from_array(np.array(p.zero_point[0], dtype), z) for p, z in ((pa, "az"), (pb, "bz"), (pc, "cz"))]
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("a", t, list(a.shape)),
                                       h.make_tensor_value_info("b", t, list(b.shape))],
                         [h.make_tensor_value_info("y", t, None)], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"a": a, "b": b})[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_add_mul_broadcasting_equal_onnxruntime(op, dtype):
    """com.microsoft QLinearAdd / QLinearMul with numpy broadcasting in either direction (ORT swaps the
    operands when input 0 is a span's scalar, which moves QLinearAdd's fused rounding)."""
    from fixedpoint.quantization.reference_affine import onnxruntime_ops as ops
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    P = ops.QuantParams
    z = (lambda v: v) if dtype == np.uint8 else (lambda v: v - 128)
    pa, pb, pc = P(dtype, np.float32(0.0371), z(131)), P(dtype, np.float32(0.0213), z(97)), P(dtype, np.float32(0.0419), z(120))
    function = ops.ort_qlinear_add_values if op == "QLinearAdd" else ops.ort_qlinear_mul_values
    for sa, sb in BROADCASTS:
        a = rng.integers(info.min, info.max + 1, sa).astype(dtype)
        b = rng.integers(info.min, info.max + 1, sb).astype(dtype)
        want = _qlinear_binary(op, a, b, pa, pb, pc)
        assert np.array_equal(function(a, pa, b, pb, pc), want.astype(np.int64)), (sa, sb)
    # every pair of values, input 0 the scalar of each span; with these scales (found by a search) ORT's
    # operand swap changes a QLinearAdd output
    pa, pb, pc = (P(dtype, np.float32(s), z(v)) for s, v in ((0.09357217, 100), (0.0817695, 219), (0.0012711115, 141)))
    a = np.arange(info.min, info.max + 1).astype(dtype).reshape(-1, 1)
    b = np.tile(np.arange(info.min, info.max + 1).astype(dtype), (256, 1))
    want = _qlinear_binary(op, a, b, pa, pb, pc).astype(np.int64)
    assert ops.ort_input0_is_scalar(a.shape, b.shape)
    assert np.array_equal(function(a, pa, b, pb, pc), want)
    if op == "QLinearAdd" and dtype == np.uint8:
        unswapped = function(np.broadcast_to(a, b.shape), pa, b, pb, pc)   # input 0 full: no swap
        assert not np.array_equal(unswapped, want)


def test_dynamic_quantize_linear_equals_onnxruntime():
    from fixedpoint.quantization.reference_affine import onnxruntime_ops as ops
    rng = np.random.default_rng(8)
    node = h.make_node("DynamicQuantizeLinear", ["x"], ["y", "ys", "yz"])
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", TP.FLOAT, None)],
                         [h.make_tensor_value_info("y", TP.UINT8, None), h.make_tensor_value_info("ys", TP.FLOAT, None),
                          h.make_tensor_value_info("yz", TP.UINT8, None)])
    session = ort.InferenceSession(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    cases = [rng.normal(0, 3, (6, 64)), rng.uniform(0.5, 2, (3, 10)), -rng.uniform(0.5, 2, (3, 10)), np.zeros((2, 5)),
             rng.uniform(-0.3, 1.3, (7, 1, 8, 8)), np.array([1e-30, -1e-30, 3.0])]
    for x in cases:
        x = np.asarray(x, np.float32)
        y, ys, yz = session.run(None, {"x": x})
        q, params = ops.ort_dynamic_quantize_linear(x)
        assert np.float32(params.scale[0]).view(np.uint32) == np.float32(ys).view(np.uint32)
        assert int(params.zero_point[0]) == int(yz) and np.array_equal(q, y.astype(np.int64))


# --- MLAS's NCHWc kernels (ORT_ENABLE_ALL: the NchwcTransformer rewrites these float nodes) ------------------
def _run_optimized(node, inputs: dict, initializers=()):
    """One node on ORT with its default optimizations (the NCHWc rewrite), one thread."""
    graph = h.make_graph([node], "g", [h.make_tensor_value_info(k, TP.FLOAT, list(v.shape)) for k, v in inputs.items()],
                         [h.make_tensor_value_info("y", TP.FLOAT, None)], [nh.from_array(v, k) for k, v in initializers])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, inputs)[0]


NCHWC_CONVS = [  # (N, C, H, W), (M, C/G, kh, kw), stride, pads, dilation, groups: MLAS's algorithm
    ((2, 16, 7, 7), (16, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),      # Nchwc: blocks of 8 channels
    ((2, 3, 8, 8), (8, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),         # Nchw: one call per channel
    ((2, 16, 6, 6), (24, 16, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),      # Pointwise
    ((1, 136, 4, 4), (8, 136, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),     # Pointwise, 128 channels per call
    ((1, 12, 7, 7), (12, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 12),      # Depthwise
    ((1, 16, 7, 7), (16, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),       # grouped Nchwc
    ((2, 12, 7, 7), (8, 12, 3, 3), (2, 2), (2, 0, 0, 2), (1, 1), 1),       # 12 channels padded to 16
    ((1, 40, 9, 9), (16, 40, 5, 3), (2, 1), (1, 2, 1, 0), (2, 1), 1),      # dilated, strided, asymmetric
]


@pytest.mark.parametrize("case", NCHWC_CONVS, ids=range(len(NCHWC_CONVS)))
def test_mlas_nchwc_conv_equals_onnxruntime(case):
    """Block 8 (this AVX2 host's MlasNchwcGetBlockSize); MlasConv's NCHW order differs on most cases."""
    xs, ws, stride, pads, dilation, groups = case
    rng = np.random.default_rng(sum(ws) + xs[1])
    x = rng.normal(0, 1, xs).astype(np.float32)
    w = rng.normal(0, 0.3, ws).astype(np.float32)
    b = rng.normal(0, 0.5, ws[0]).astype(np.float32)
    node = h.make_node("Conv", ["x", "w", "b"], ["y"], strides=list(stride), pads=list(pads), dilations=list(dilation),
                       group=groups)
    want = _run_optimized(node, {"x": x}, [("w", w), ("b", b)])
    assert _bits_equal(mf.mlas_nchwc_conv(x, w, b, stride, pads, dilation, groups, 8), want)


@pytest.mark.parametrize("kernel, stride, pads, include, ceil, hw", [
    ((3, 3), (1, 1), (1, 1, 1, 1), False, False, (7, 7)), ((3, 3), (1, 1), (1, 1, 1, 1), True, False, (7, 7)),
    ((3, 3), (2, 2), (0, 0, 0, 0), False, True, (8, 8)), ((2, 3), (2, 1), (1, 0, 0, 1), False, False, (9, 8))])
def test_mlas_nchwc_pools_equal_onnxruntime(kernel, stride, pads, include, ceil, hw):
    x = np.random.default_rng(3).normal(0, 1, (2, 16) + hw).astype(np.float32)
    node = h.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(kernel), strides=list(stride), pads=list(pads),
                       count_include_pad=int(include), ceil_mode=int(ceil))
    want = _run_optimized(node, {"x": x})
    assert _bits_equal(mf.mlas_nchwc_average_pool(x, kernel, stride, pads, include, ceil), want)
    assert not _bits_equal(mf.mlas_average_pool(x, kernel, stride, pads, include, ceil), want)
    if kernel == (3, 3) and not include and not ceil:
        g = np.random.default_rng(4).normal(0, 1, (3, 16, 9, 9)).astype(np.float32)
        want = _run_optimized(h.make_node("GlobalAveragePool", ["x"], ["y"]), {"x": g})
        assert _bits_equal(mf.mlas_nchwc_global_average_pool(g), want)
        assert not _bits_equal(mf._global_average_pool_mlas(g), want)
