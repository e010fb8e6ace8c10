"""Times the NCHWc float kernels (fixedpoint.kernels.onnxruntime.*_nchwc) against onnxruntime's own sessions
with its default optimizations (the NchwcTransformer rewrites the node; ReorderInput / ReorderOutput
around it, as in a model), in one process, batch 64, 1 thread, rounds alternating, medians.

    python bench/bench_ort_nchwc.py [--rounds 11]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the checkout's fixedpoint
from fixedpoint.kernels import onnxruntime as fo  # noqa: E402


def session(node, x, initializers):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, n) for n, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: s.run(None, {"x": x})


def cases(rng):
    out = {}
    for c, m, hw, kernel, group in ((1, 8, 8, 3, 1), (16, 32, 16, 3, 1), (32, 64, 16, 1, 1), (32, 32, 16, 3, 32),
                                    (32, 64, 28, 3, 1)):
        x = rng.standard_normal((64, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((m, c // group, kernel, kernel)).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32)
        p = kernel // 2
        node = helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[p] * 4, group=group)
        out[f"Conv {kernel}x{kernel} {c}->{m} g{group} 64x{c}x{hw}x{hw}"] = (
            lambda x=x, w=w, b=b, p=p, group=group: fo.conv_float_nchwc(x, w, b, pads=[p] * 4, group=group),
            session(node, x, {"W": w, "B": b}))
    x = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    out["AveragePool 3x3 p1 64x32x16x16"] = (
        lambda: fo.average_pool_nchwc(x, kernel_shape=(3, 3), pads=(1, 1, 1, 1)),
        session(helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), x, {}))
    out["GlobalAveragePool 64x32x16x16"] = (
        lambda: fo.global_average_pool_nchwc(x),
        session(helper.make_node("GlobalAveragePool", ["x"], ["y"]), x, {}))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"| case | emulation µs | ORT µs | ratio |\n|---|---:|---:|---:|")
    for name, (ours, theirs) in cases(rng).items():
        ours(), theirs()
        a, b = [], []
        for _ in range(args.rounds):
            t = time.perf_counter(); ours(); a.append(time.perf_counter() - t)
            t = time.perf_counter(); theirs(); b.append(time.perf_counter() - t)
        ma, mb = statistics.median(a) * 1e6, statistics.median(b) * 1e6
        print(f"| {name} | {ma:.0f} | {mb:.0f} | {ma / mb:.2f} |")


if __name__ == "__main__":
    main()
