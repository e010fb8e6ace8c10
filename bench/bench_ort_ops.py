"""Times fixedpoint.kernels.onnxruntime against onnxruntime's own single-op sessions on the same data,
in one process, at batch 64 on 1 thread (ORT: intra_op_num_threads=1, all optimizations disabled as in
the reference profile; the emulation is single-threaded). Rounds alternate between the two so that a
slow stretch of a shared machine costs both; the table reports medians and emulation / ORT.

    python bench/bench_ort_ops.py [--rounds 15] [--only conv]

The target of the project: an emulated network within 2x of ORT's time, so ratios <= 2.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # numpy's BLAS threads would spin on the cores timed here

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the checkout's fixedpoint
from fixedpoint.kernels import onnxruntime as fo  # noqa: E402

_TP = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
       np.dtype(np.int8): TensorProto.INT8}


def session(op, inputs, out_dtype, attrs=None, domain="", consts=(), opset=13):
    """A one-node session; inputs at indices in `consts` become initializers. Returns a callable."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        name = f"in{i}"
        names.append(name)
        if i in consts:
            inits.append(numpy_helper.from_array(a, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, _TP[a.dtype], list(a.shape)))
            feeds[name] = a
    node = helper.make_node(op, names, ["out"], domain=domain, **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info("out", _TP[np.dtype(out_dtype)], None)], inits)
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: s.run(None, feeds)


def cases(rng):
    u8 = lambda *shape: rng.integers(0, 256, shape).astype(np.uint8)  # noqa: E731
    f32 = lambda *shape, s=1.0: (rng.normal(0, s, shape)).astype(np.float32)  # noqa: E731
    sc, z = np.float32(0.05), np.uint8(128)
    ms = "com.microsoft"
    out = {}

    x = f32(64, 32, 32, 32, s=3.0)
    out["QuantizeLinear 64x32x32x32"] = (lambda: fo.quantize_linear(x, sc, z),
                                         session("QuantizeLinear", [x, sc, z], np.uint8, consts=(1, 2)))
    q = u8(64, 32, 32, 32)
    out["DequantizeLinear 64x32x32x32"] = (lambda: fo.dequantize_linear(q, sc, z),
                                           session("DequantizeLinear", [q, sc, z], np.float32, consts=(1, 2)))
    a, b, bc = u8(64, 64, 16, 16), u8(64, 64, 16, 16), u8(1, 64, 1, 1)
    p = (np.float32(0.04), np.uint8(120), np.float32(0.03), np.uint8(130), np.float32(0.05), np.uint8(128))
    out["QLinearAdd 64x64x16x16"] = (lambda: fo.qlinear_add(a, p[0], p[1], b, p[2], p[3], p[4], p[5]),
                                     session("QLinearAdd", [a, p[0], p[1], b, p[2], p[3], p[4], p[5]], np.uint8,
                                             domain=ms, consts=(1, 2, 4, 5, 6, 7)))
    out["QLinearAdd per-channel b"] = (lambda: fo.qlinear_add(a, p[0], p[1], bc, p[2], p[3], p[4], p[5]),
                                       session("QLinearAdd", [a, p[0], p[1], bc, p[2], p[3], p[4], p[5]], np.uint8,
                                               domain=ms, consts=(1, 2, 3, 4, 5, 6, 7)))
    out["QLinearMul 64x64x16x16"] = (lambda: fo.qlinear_mul(a, p[0], p[1], b, p[2], p[3], p[4], p[5]),
                                     session("QLinearMul", [a, p[0], p[1], b, p[2], p[3], p[4], p[5]], np.uint8,
                                             domain=ms, consts=(1, 2, 4, 5, 6, 7)))
    out["QLinearLeakyRelu 64x64x16x16"] = (lambda: fo.qlinear_leaky_relu(a, p[0], p[1], p[4], p[5], alpha=0.1),
                                           session("QLinearLeakyRelu", [a, p[0], p[1], p[4], p[5]], np.uint8,
                                                   attrs=dict(alpha=0.1), domain=ms, consts=(1, 2, 3, 4)))
    out["QLinearSigmoid 64x64x16x16"] = (lambda: fo.qlinear_sigmoid(a, p[0], p[1], np.float32(1 / 256), np.uint8(0)),
                                         session("QLinearSigmoid", [a, p[0], p[1], np.float32(1 / 256), np.uint8(0)],
                                                 np.uint8, domain=ms, consts=(1, 2, 3, 4)))
    c1, c2 = u8(64, 32, 16, 16), u8(64, 32, 16, 16)
    out["QLinearConcat 2x 64x32x16x16"] = (
        lambda: fo.qlinear_concat([(c1, p[0], p[1]), (c2, p[2], p[3])], p[4], p[5], axis=1),
        session("QLinearConcat", [p[4], p[5], c1, p[0], p[1], c2, p[2], p[3]], np.uint8, attrs=dict(axis=1),
                domain=ms, consts=(0, 1, 3, 4, 6, 7)))
    for shape in ((64, 10), (64, 1000)):
        s = u8(*shape)
        out[f"QLinearSoftmax {shape[0]}x{shape[1]}"] = (
            lambda s=s: fo.qlinear_softmax(s, p[0], p[1], np.float32(1 / 256), np.uint8(0)),
            session("QLinearSoftmax", [s, p[0], p[1], np.float32(1 / 256), np.uint8(0)], np.uint8,
                    attrs=dict(axis=-1, opset=13), domain=ms, consts=(1, 2, 3, 4)))
    pa = u8(64, 32, 16, 16)
    out["QLinearAveragePool 3x3 p1 64x32x16x16"] = (
        lambda: fo.qlinear_average_pool(pa, p[0], p[1], p[4], p[5], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        session("QLinearAveragePool", [pa, p[0], p[1], p[4], p[5]], np.uint8,
                attrs=dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), domain=ms, consts=(1, 2, 3, 4)))
    g = u8(64, 128, 8, 8)
    out["QLinearGlobalAveragePool 64x128x8x8"] = (
        lambda: fo.qlinear_global_average_pool(g, p[0], p[1], p[4], p[5]),
        session("QLinearGlobalAveragePool", [g, p[0], p[1], p[4], p[5]], np.uint8, domain=ms, consts=(1, 2, 3, 4)))

    xc = f32(64, 32, 16, 16)
    for name, w, kw in (("conv 3x3 32->32", f32(32, 32, 3, 3, s=0.1), dict(pads=[1, 1, 1, 1])),
                        ("conv 1x1 32->64", f32(64, 32, 1, 1, s=0.1), {}),
                        ("conv dw 3x3 32", f32(32, 1, 3, 3, s=0.1), dict(pads=[1, 1, 1, 1], group=32))):
        bias = f32(w.shape[0])
        out[f"Conv float {name} 64x32x16x16"] = (lambda w=w, kw=kw, bias=bias: fo.conv_float(xc, w, bias, **kw),
                                                 session("Conv", [xc, w, bias], np.float32, attrs=kw, consts=(1, 2)))
    for (M, K, N) in ((64, 512, 10), (64, 1024, 1024)):
        ga, gb, gc = f32(M, K), f32(N, K, s=0.05), f32(N)
        out[f"Gemm float {M}x{K}x{N} transB"] = (lambda ga=ga, gb=gb, gc=gc: fo.gemm_float(ga, gb, gc, trans_b=True),
                                                 session("Gemm", [ga, gb, gc], np.float32, attrs=dict(transB=1),
                                                         consts=(1, 2)))
    bx = f32(64, 64, 16, 16)
    bs, bb, bm = f32(64), f32(64), f32(64)
    bv = rng.uniform(0.1, 2, 64).astype(np.float32)
    out["BatchNormalization 64x64x16x16"] = (lambda: fo.batch_norm_float(bx, bs, bb, bm, bv),
                                             session("BatchNormalization", [bx, bs, bb, bm, bv], np.float32,
                                                     consts=(1, 2, 3, 4), opset=15))
    sx = f32(64, 1000, s=4.0)
    out["Softmax float 64x1000"] = (lambda: fo.softmax_float(sx), session("Softmax", [sx], np.float32))
    out["Sigmoid float 64x64x16x16"] = (lambda: fo.sigmoid_float(bx), session("Sigmoid", [bx], np.float32))
    out["Tanh float 64x64x16x16"] = (lambda: fo.tanh_float(bx), session("Tanh", [bx], np.float32))
    out["Relu float 64x64x16x16"] = (lambda: fo.relu_float(bx), session("Relu", [bx], np.float32))
    out["AveragePool float 3x3 p1 64x32x16x16"] = (
        lambda: fo.average_pool_float(xc, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        session("AveragePool", [xc], np.float32, attrs=dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])))
    out["MaxPool float 2x2 s2 64x32x16x16"] = (
        lambda: fo.max_pool(xc, kernel_shape=[2, 2], strides=[2, 2]),
        session("MaxPool", [xc], np.float32, attrs=dict(kernel_shape=[2, 2], strides=[2, 2]), opset=12))
    gx = f32(64, 128, 8, 8)
    out["GlobalAveragePool float 64x128x8x8"] = (lambda: fo.global_average_pool_float(gx),
                                                 session("GlobalAveragePool", [gx], np.float32))
    rq = u8(64, 32, 16, 16)
    empty = np.zeros(0, np.float32)
    for mode, extra in (("nearest", {}), ("linear", {})):
        out[f"Resize {mode} x2 uint8 64x32x16x16"] = (
            lambda mode=mode: fo.resize(rq, scales=[1, 1, 2, 2], mode=mode),
            session("Resize", [rq, empty, np.array([1, 1, 2, 2], np.float32)], np.uint8, attrs=dict(mode=mode),
                    consts=(1, 2)))
    return out


def timed(fn, inner):
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t) / inner


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="", help="substring of the case names to run")
    args = ap.parse_args()
    table = {k: v for k, v in cases(np.random.default_rng(0)).items() if args.only.lower() in k.lower()}
    print(f"onnxruntime {ort.__version__}; {args.rounds} rounds; medians in microseconds\n")
    print("| case | emulation | ORT | emulation / ORT |")
    print("|---|---:|---:|---:|")
    worst = 0.0
    for name, (emu, ref) in table.items():
        emu(), ref()   # warm up
        one = max(timed(ref, 1), timed(emu, 1), 1e-6)
        inner = max(1, int(0.02 / one))
        te, tr = [], []
        for _ in range(args.rounds):
            te.append(timed(emu, inner))
            tr.append(timed(ref, inner))
        me, mr = statistics.median(te), statistics.median(tr)
        worst = max(worst, me / mr)
        print(f"| {name} | {me * 1e6:.1f} | {mr * 1e6:.1f} | {me / mr:.2f} |")
    print(f"\nworst ratio {worst:.2f}")


if __name__ == "__main__":
    main()
