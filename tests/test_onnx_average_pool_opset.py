"""ONNX Runtime runs a float AveragePool of opset 19 on its own loop (pool.cc AveragePool2DTask: the
window's cells in row-major order), before it on MLAS's pooling kernels (column sums first): the
float results differ in the last bit, which moves quantized values. The importer records the opset
and the emulation follows it, for a float AveragePool outside any QDQ group and one between
DequantizeLinear and QuantizeLinear; against onnxruntime, bit for bit."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fixedpoint as fp  # noqa: E402
from fixedpoint.quantization.reference import predict_reference  # noqa: E402

helper, numpy_helper, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto
X = np.random.default_rng(0).normal(0, 3, (16, 3, 10, 10)).astype(np.float32)


def model(opset, include_pad, ceil_mode, qdq_pool):
    """x -> AveragePool (3 channels: never NCHWc) -> Q -> DQ -> QDQ Conv -> y; with `qdq_pool` the pool
    sits between a DQ and a Q of its own. Outputs: the pool's float output and y."""
    rng = np.random.default_rng(1)
    const = {"w": rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8), "ws": np.float32(0.01),
             "wz": np.int8(0), "s": np.float32(0.05), "z": np.uint8(128), "ys": np.float32(0.2), "yz": np.uint8(120)}
    pool = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=include_pad,
                ceil_mode=ceil_mode)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])] if qdq_pool else []
    nodes += [helper.make_node("AveragePool", ["xd" if qdq_pool else "x"], ["avg"], **pool),
              helper.make_node("QuantizeLinear", ["avg", "s", "z"], ["aq"]),
              helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["ad"]),
              helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
              helper.make_node("Conv", ["ad", "wd"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
              helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    side = 6 if ceil_mode else 5
    outputs = [helper.make_tensor_value_info("y", TP.FLOAT, ["n", 4, side, side])]
    if not qdq_pool:
        outputs.insert(0, helper.make_tensor_value_info("avg", TP.FLOAT, ["n", 3, side, side]))
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TP.FLOAT, ["n", 3, 10, 10])],
                              outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in const.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def ort_outputs(m, disable):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if disable:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, {"x": X})


@pytest.mark.parametrize("opset", [13, 18, 19, 21])
@pytest.mark.parametrize("include_pad, ceil_mode", [(0, 0), (1, 0), (0, 1)])
def test_float_average_pool_follows_the_opset(opset, include_pad, ceil_mode):
    m = model(opset, include_pad, ceil_mode, qdq_pool=False)
    qnet = fp.import_onnx(m)
    for runtime, disable in (("onnxruntime-avx2", False), ("onnxruntime-reference", True)):
        expected = ort_outputs(m, disable)
        got = qnet.predict(X, runtime=runtime)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected)), (runtime, opset)
        ref = predict_reference(qnet, X, runtime=runtime)
        assert all(np.array_equal(r, e) for r, e in zip(ref, expected)), (runtime, opset)
    # the other opset's kernel gives other float bits here: the check can fail
    other = fp.import_onnx(model(18 if opset >= 19 else 19, include_pad, ceil_mode, qdq_pool=False))
    assert not np.array_equal(other.predict(X, runtime="onnxruntime-avx2")[0], expected[0])


@pytest.mark.parametrize("opset", [18, 19])
def test_average_pool_between_dq_and_q_follows_the_opset(opset):
    m = model(opset, 0, 0, qdq_pool=True)
    qnet = fp.import_onnx(m)
    expected = ort_outputs(m, disable=True)[0]     # as written: DQ -> float AveragePool -> Q
    assert np.array_equal(qnet.predict(X, runtime="onnxruntime-reference"), expected)
    assert np.array_equal(predict_reference(qnet, X, runtime="onnxruntime-reference"), expected)
    other = fp.import_onnx(model(37 - opset, 0, 0, qdq_pool=True))
    assert not np.array_equal(other.predict(X, runtime="onnxruntime-reference"), expected)
