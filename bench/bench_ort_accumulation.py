"""ONNX Runtime's AVX2 int16-pair accumulation as fixedpoint emulates it, against ORT itself on the same
data in the same process: MatMulInteger u8s8 (int32 out) and QLinearConv u8s8 (3x3, 64 -> 64 channels,
56 x 56, per-channel, fused requantization) at batch 1 and 64 on 1 thread. Prints medians of several
rounds and the ratio ours / ORT (target: <= 2, parity is the same instruction). Also checks that both
give the same bits (on an AVX2 host without VNNI).

    python bench/bench_ort_accumulation.py [--rounds 5] [--repeats 7]
"""
import argparse
import os
import statistics
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from kernels_table import median_time  # noqa: E402

from fixedpoint import kernels as K  # noqa: E402
from fixedpoint.kernels.requantize import fp32_scale  # noqa: E402


def session(op, inputs, out_dtype, attrs=None):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto as TP, helper as h, numpy_helper
    tp = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8, np.dtype(np.int32): TP.INT32,
          np.dtype(np.float32): TP.FLOAT}
    names, gi, inits, feed = [], [], [], {}
    for name, arr, const in inputs:
        names.append(name)
        if const:
            inits.append(numpy_helper.from_array(np.asarray(arr), name))
        else:
            gi.append(h.make_tensor_value_info(name, tp[arr.dtype], list(arr.shape)))
            feed[name] = arr
    g = h.make_graph([h.make_node(op, names, ["y"], **(attrs or {}))], "g", gi,
                     [h.make_tensor_value_info("y", tp[np.dtype(out_dtype)], None)], initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: s.run(None, feed)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    K.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = {}
    # MatMulInteger u8s8, K = 576 (a 3x3x64 conv's GEMM) and 1024^3
    for m, k, n in [(3136, 576, 64), (1024, 1024, 1024)]:
        a = rng.integers(0, 256, (m, k)).astype(np.uint8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        ort_fn = session("MatMulInteger", [("a", a, False), ("b", b, True), ("za", np.uint8(3), True),
                                           ("zb", np.int8(0), True)], np.int32)
        acc = K.ort_accumulation("MatMulInteger", "avx2", activation_dtype=np.uint8, weight_dtype=np.int8)
        pb = K.pack_weights(b)
        ours = lambda a=a, pb=pb, acc=acc: K.gemm(a, pb, a_zero_point=3, accumulation=acc)
        cases[f"MatMulInteger u8s8 {m}x{k}x{n}"] = (ours, ort_fn, 2 * m * k * n)
    # QLinearConv u8s8 per channel, batch 1 and 64
    for batch in (1, 64):
        x = rng.integers(0, 256, (batch, 64, 56, 56)).astype(np.uint8)
        w = rng.integers(-128, 128, (64, 64, 3, 3)).astype(np.int8)
        ws = rng.uniform(0.001, 0.01, 64).astype(np.float32)
        bias = rng.integers(-3000, 3000, 64).astype(np.int32)
        ort_fn = session("QLinearConv", [("x", x, False), ("xs", np.float32(0.02), True), ("xz", np.uint8(7), True),
                                         ("w", w, True), ("ws", ws, True), ("wz", np.zeros(64, np.int8), True),
                                         ("ys", np.float32(0.5), True), ("yz", np.uint8(9), True), ("b", bias, True)],
                         np.uint8, attrs=dict(pads=[1] * 4))
        acc = K.ort_accumulation("QLinearConv", "avx2", activation_dtype=np.uint8, weight_dtype=np.int8,
                                 in_channels=64, out_channels=64)
        rq = K.Requantizer.fp32(fp32_scale(0.02, ws, 0.5), zero_point=9, dtype=np.uint8)
        pw = K.pack_weights(w)
        ours = lambda x=x, pw=pw, acc=acc, rq=rq, bias=bias: K.conv2d(x, pw, x_zero_point=7, padding=1, bias=bias,
                                                                    requantizer=rq, accumulation=acc)
        cases[f"QLinearConv u8s8 3x3 64->64 56x56 N={batch}"] = (ours, ort_fn, 2 * batch * 56 * 56 * 64 * 576)
    native = K.host_ort_profile() in ("avx2", "avx512bw")
    print(f"host profile: {K.host_ort_profile()}; 1 thread; {args.rounds} rounds x {args.repeats} repeats (medians)")
    print("| case | ours ms | ORT ms | ours / ORT | ours GOPS | same bits |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (ours, theirs, ops) in cases.items():
        same = np.array_equal(ours(), theirs()) if native else "n/a (VNNI host)"
        t_ours, t_ort = [], []
        for _ in range(args.rounds):  # alternate, so a slow stretch of the shared host hits both
            t_ours.append(median_time(ours, args.repeats))
            t_ort.append(median_time(theirs, args.repeats))
        mo, mt = statistics.median(t_ours), statistics.median(t_ort)
        print(f"| {name} | {mo * 1e3:.2f} | {mt * 1e3:.2f} | {mo / mt:.2f} | {ops / mo * 1e-9:.0f} | {same} |")


if __name__ == "__main__":
    main()
