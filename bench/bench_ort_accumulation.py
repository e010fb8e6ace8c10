"""ONNX Runtime's AVX2 int16-pair accumulation as fixedpoint emulates it, against ORT itself on the same
data in the same process, 1 thread: MatMulInteger u8s8 (int32 out), QLinearConv u8s8 (3x3, 64 -> 64
channels, 56 x 56, per-channel, fused requantization) at batch 1 and 64, and the convolutions of the
bundled digits models (8x8 and 4x4 images: 1->8, 8->16, 16->32 3x3, 1x1 pointwise, depthwise, which
ORT runs exactly; U8U8 as under session.x64quantprecision; ConvInteger s8u8) at batch 1 and 64.
Prints medians of several rounds (ours and ORT alternate, so a slow stretch of a shared host hits
both) and the ratio ours / ORT (target: <= 2; parity is the same instruction). Also checks that both
give the same bits (on an AVX2 host without VNNI).

    python bench/bench_ort_accumulation.py [--rounds 5] [--repeats 7] [--only SUBSTRING] [--clock cpu|wall]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from fixedpoint import kernels as K  # noqa: E402
from fixedpoint.kernels.requantize import fp32_scale  # noqa: E402


def session(op, inputs, out_dtype, attrs=None, precise=False, opset=13):
    import onnx  # noqa: F401
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
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if precise:
        so.add_session_config_entry("session.x64quantprecision", "1")
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: s.run(None, feed)[0]


def sample_time(fn, repeats, clock):
    """Median over `repeats` samples of the time per call; each sample runs fn enough times to last ~2 ms."""
    fn()
    t = clock()
    fn()
    once = clock() - t
    inner = max(1, min(1000, int(2e-3 / max(once, 1e-7))))
    times = []
    for _ in range(repeats):
        t = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t) / inner)
    return statistics.median(times)


def qlinearconv_case(rng, batch, c, o, k, hw, groups=1, stride=1, pad=1, xdt=np.uint8, wdt=np.int8, precise=False):
    """QLinearConv (ONNX domain, opset 10 semantics), per-channel weight scales, bias, fused requantizer."""
    x = rng.integers(0, 256, (batch, c, hw, hw)).astype(np.uint8)
    wz = 0 if wdt == np.int8 else 128
    w = rng.integers(-128 + wz, 128 + wz, (o, c // groups, k, k)).astype(wdt)
    ws = rng.uniform(0.001, 0.01, o).astype(np.float32)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    wzp = np.full(o, wz, wdt)
    ort_fn = session("QLinearConv", [("x", x, False), ("xs", np.float32(0.02), True), ("xz", np.uint8(7), True),
                                     ("w", w, True), ("ws", ws, True), ("wz", wzp, True),
                                     ("ys", np.float32(0.5), True), ("yz", np.uint8(9), True), ("b", bias, True)],
                     np.uint8, attrs=dict(pads=[pad] * 4, strides=[stride] * 2, group=groups), precise=precise)
    acc = K.ort_accumulation("QLinearConv", "avx2-precise" if precise else "avx2", activation_dtype=xdt,
                             weight_dtype=wdt, weight_zero_point=wzp, groups=groups, in_channels=c, out_channels=o)
    rq = K.Requantizer.fp32(fp32_scale(0.02, ws, 0.5), zero_point=9, dtype=np.uint8)
    pw = K.pack_weights(w, groups=groups)
    wzp_arg = wz  # an int, as a layer passes it
    ours = lambda: K.conv2d(x, pw, x_zero_point=7, w_zero_point=wzp_arg, padding=pad, stride=stride, groups=groups,
                            bias=bias, requantizer=rq, accumulation=acc)
    ops = 2 * batch * o * (c // groups) * k * k * ((hw + 2 * pad - k) // stride + 1) ** 2
    return ours, ort_fn, ops, acc.kind


def convinteger_case(rng, batch, c, o, k, hw, pad=1):
    """ConvInteger int8 x uint8 w (the weights are vpmaddubsw's unsigned operand, K order (c, kh, kw))."""
    x = rng.integers(-128, 128, (batch, c, hw, hw)).astype(np.int8)
    w = rng.integers(0, 256, (o, c, k, k)).astype(np.uint8)
    ort_fn = session("ConvInteger", [("x", x, False), ("w", w, True), ("xz", np.int8(-3), True),
                                     ("wz", np.uint8(129), True)], np.int32, attrs=dict(pads=[pad] * 4), opset=10)
    acc = K.ort_accumulation("ConvInteger", "avx2", activation_dtype=np.int8, weight_dtype=np.uint8, in_channels=c,
                             out_channels=o)
    pw = K.pack_weights(w)
    ours = lambda: K.conv2d(x, pw, x_zero_point=-3, w_zero_point=129, padding=pad, accumulation=acc)
    return ours, ort_fn, 2 * batch * o * c * k * k * hw * hw, acc.kind


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: the calling thread's CPU time (both run on it with 1 thread; robust on a shared host, "
                         "where wall time also counts the time other processes hold the core); wall: elapsed time")
    args = ap.parse_args()
    K.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = {}

    def add(name, make):
        if args.only in name:
            cases[name] = make()

    # MatMulInteger u8s8, K = 576 (a 3x3x64 conv's GEMM) and 1024^3
    for m, k, n in [(3136, 576, 64), (1024, 1024, 1024)]:
        def make(m=m, k=k, n=n):
            a = rng.integers(0, 256, (m, k)).astype(np.uint8)
            b = rng.integers(-128, 128, (k, n)).astype(np.int8)
            ort_fn = session("MatMulInteger", [("a", a, False), ("b", b, True), ("za", np.uint8(3), True),
                                               ("zb", np.int8(0), True)], np.int32)
            acc = K.ort_accumulation("MatMulInteger", "avx2", activation_dtype=np.uint8, weight_dtype=np.int8)
            pb = K.pack_weights(b)
            return (lambda: K.gemm(a, pb, a_zero_point=3, accumulation=acc)), ort_fn, 2 * m * k * n, acc.kind
        add(f"MatMulInteger u8s8 {m}x{k}x{n}", make)
    for batch in (1, 64):
        add(f"QLinearConv u8s8 3x3 64->64 56x56 N={batch}", lambda batch=batch: qlinearconv_case(rng, batch, 64, 64, 3, 56))
    # The digits models' convolutions (fixedpoint.examples: digits_cnn, digits_mobilenet)
    digits = [("3x3 1->8 8x8", dict(c=1, o=8, k=3, hw=8)), ("3x3 8->16 8x8", dict(c=8, o=16, k=3, hw=8)),
              ("3x3 16->32 4x4", dict(c=16, o=32, k=3, hw=4)), ("3x3 1->16 8x8", dict(c=1, o=16, k=3, hw=8)),
              ("1x1 16->16 8x8", dict(c=16, o=16, k=1, hw=8, pad=0)), ("1x1 16->32 4x4", dict(c=16, o=32, k=1, hw=4, pad=0)),
              ("depthwise 3x3 16 8x8", dict(c=16, o=16, k=3, hw=8, groups=16)),
              ("depthwise 3x3 16 8x8 stride 2", dict(c=16, o=16, k=3, hw=8, groups=16, stride=2))]
    for batch in (1, 64):
        for name, kw in digits:
            add(f"QLinearConv u8s8 {name} N={batch}", lambda kw=kw, batch=batch: qlinearconv_case(rng, batch, **kw))
        add(f"QLinearConv u8u8 (precise) 3x3 8->16 8x8 N={batch}",
            lambda batch=batch: qlinearconv_case(rng, batch, 8, 16, 3, 8, wdt=np.uint8, precise=True))
        add(f"QLinearConv u8u8 (precise) depthwise 3x3 16 8x8 N={batch}",
            lambda batch=batch: qlinearconv_case(rng, batch, 16, 16, 3, 8, groups=16, wdt=np.uint8, precise=True))
    add("ConvInteger s8u8 3x3 32->32 28x28 N=8", lambda: convinteger_case(rng, 8, 32, 32, 3, 28))

    native = K.host_ort_profile() in ("avx2", "avx512bw")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    print(f"host profile: {K.host_ort_profile()}; 1 thread; {args.clock} time; {args.rounds} rounds x {args.repeats} "
          f"samples (medians); load average {os.getloadavg()[0]:.1f}")
    print("| case | route | ours ms | ORT ms | ours / ORT | ours GOPS | same bits |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (ours, theirs, ops, kind) in cases.items():
        same = np.array_equal(ours(), theirs()) if native else "n/a (VNNI host)"
        t_ours, t_ort = [], []
        for _ in range(args.rounds):  # alternate, so a slow stretch of the shared host hits both
            t_ours.append(sample_time(ours, args.repeats, clock))
            t_ort.append(sample_time(theirs, args.repeats, clock))
        mo, mt = statistics.median(t_ours), statistics.median(t_ort)
        print(f"| {name} | {kind} | {mo * 1e3:.3f} | {mt * 1e3:.3f} | {mo / mt:.2f} | {ops / mo * 1e-9:.0f} | {same} |",
              flush=True)


if __name__ == "__main__":
    main()
