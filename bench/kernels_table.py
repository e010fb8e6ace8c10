"""Markdown table of GOPS (2*M*N*K / median time) for the issue's shapes at 1 and 2 threads: the exact
kernels of fixedpoint.kernels next to ONNX Runtime (MatMulInteger u8u8/u8s8/s8s8, ConvInteger,
QLinearConv incl. depthwise), numpy int32 and float32 matmul, and the instruction ceiling, all
measured in the same run.

    python bench/kernels_table.py [--repeats 15] [--rounds 1] [--only gemm|conv]

OPENBLAS_NUM_THREADS is set to 1 before numpy is imported (unless already set): numpy's BLAS threads
keep spinning after a float matmul row and would otherwise stall the 2-thread rows that follow.
"""
import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from ceiling import ceiling  # noqa: E402

from fixedpoint import kernels  # noqa: E402

GEMM_SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (3136, 576, 64)]  # (M, K, N)
CONV = dict(x=(1, 64, 56, 56), w=(64, 64, 3, 3))
DEPTHWISE = dict(x=(1, 64, 56, 56), w=(64, 1, 3, 3))


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---- ONNX Runtime baselines (None when onnxruntime is missing) -------------------------------------
def ort_session(nodes, inputs, outputs, initializers, threads):
    try:
        import onnx
        import onnxruntime as ort
        from onnx import helper
    except ImportError:
        return None
    graph = helper.make_graph(nodes, "bench", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def tensor_type(dtype):
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def ort_matmul_integer(a, b, threads):
    """MatMulInteger with A fed at run time and B a constant (as in a quantized model)."""
    try:
        from onnx import helper, numpy_helper
    except ImportError:
        return None
    node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    sess = ort_session([node], [helper.make_tensor_value_info("A", tensor_type(a.dtype), a.shape)],
                       [helper.make_tensor_value_info("Y", tensor_type(np.int32), None)],
                       [numpy_helper.from_array(b, "B")], threads)
    return lambda: sess.run(None, {"A": a})


def ort_conv(x, w, threads, *, group=1, qlinear=False):
    """ConvInteger (int32 out) or QLinearConv (uint8 out), pad 1, weights constant."""
    try:
        from onnx import helper, numpy_helper
    except ImportError:
        return None
    kh, kw = w.shape[2:]
    attrs = dict(group=group, pads=[kh // 2, kw // 2, kh // 2, kw // 2], kernel_shape=[kh, kw])
    inits = [numpy_helper.from_array(w, "W")]
    if qlinear:
        scalars = dict(xs=np.float32(0.02), xz=np.uint8(128), ws=np.float32(0.01), wz=np.int8(0),
                       ys=np.float32(0.5), yz=np.uint8(128))
        inits += [numpy_helper.from_array(np.array(v), k) for k, v in scalars.items()]
        node = helper.make_node("QLinearConv", ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz"], ["Y"], **attrs)
        out_type = np.uint8
    else:
        node = helper.make_node("ConvInteger", ["X", "W"], ["Y"], **attrs)
        out_type = np.int32
    sess = ort_session([node], [helper.make_tensor_value_info("X", tensor_type(x.dtype), x.shape)],
                       [helper.make_tensor_value_info("Y", tensor_type(out_type), None)], inits, threads)
    return lambda: sess.run(None, {"X": x})


# ---- the table --------------------------------------------------------------------------------------
def on_path(path, fn):
    """fn run with the kernels restricted to `path` (e.g. "avx2" on a VNNI CPU), then back to auto."""
    def run():
        kernels.set_kernel_path(path)
        try:
            return fn()
        finally:
            kernels.set_kernel_path("auto")
    return run


def gemm_cases(m, k, n, rng):
    """The timed callables of one GEMM shape, each taking the thread count (None: not available)."""
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    a7 = np.abs(a.astype(np.int16)).clip(0, 127).astype(np.int8)  # non-negative activations (ReLU)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    au, bu = rng.integers(0, 256, (m, k)).astype(np.uint8), rng.integers(0, 256, (k, n)).astype(np.uint8)
    packed = kernels.pack_weights(b)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    ai, bi = a.astype(np.int32), b.astype(np.int32)
    cases = {
        "fixedpoint s8s8 (exact)": lambda t: lambda: kernels.gemm(a, packed),
        "fixedpoint s8s8, A>=0 (exact, quads)": lambda t: lambda: kernels.gemm(a7, packed),
        "fixedpoint u8s8 (exact)": lambda t: lambda: kernels.gemm(au, packed),
        "fixedpoint s8s8, AVX2 path (exact)": lambda t: on_path("avx2", lambda: kernels.gemm(a, packed)),
        "fixedpoint s8s8, A>=0, AVX2 path (exact, vpmaddubsw)": lambda t: on_path("avx2", lambda: kernels.gemm(a7, packed)),
        "ORT MatMulInteger u8u8 (exact)": lambda t: ort_matmul_integer(au, bu, t),
        "ORT MatMulInteger u8s8 (inexact)": lambda t: ort_matmul_integer(au, b, t),
        "ORT MatMulInteger s8s8": lambda t: ort_matmul_integer(a, b, t),
        "numpy float32 matmul": lambda t: lambda: af @ bf,
    }
    if m * n * k <= 512**3:  # numpy int32 matmul is not BLAS: minutes at 1024^3
        cases["numpy int32 matmul"] = lambda t: lambda: ai @ bi
    return cases


def gemm_rows(rng):
    return [(f"GEMM M={m} K={k} N={n}", 2 * m * n * k, gemm_cases(m, k, n, rng)) for m, k, n in GEMM_SHAPES]


def conv_rows(rng):
    x = rng.integers(-128, 128, CONV["x"]).astype(np.int8)
    x7 = np.abs(x.astype(np.int16)).clip(0, 127).astype(np.int8)
    xu = rng.integers(0, 256, CONV["x"]).astype(np.uint8)
    w = rng.integers(-128, 128, CONV["w"]).astype(np.int8)
    wu = rng.integers(0, 256, CONV["w"]).astype(np.uint8)
    pw = kernels.pack_weights(w)
    # The requantization ORT's QLinearConv rows perform (same scales and zero points as ort_conv), fused.
    rq = kernels.Requantizer.fp32(kernels.fp32_scale(0.02, 0.01, 0.5), zero_point=128, dtype=np.uint8)
    n, c, h, wd = CONV["x"]
    ops = 2 * CONV["w"][0] * h * wd * c * 9
    conv = ("conv 1x64x56x56, 64 3x3, pad 1", ops, {
        "fixedpoint conv2d s8 (exact)": lambda t: lambda: kernels.conv2d(x, pw, padding=1),
        "fixedpoint conv2d s8, x>=0 (exact)": lambda t: lambda: kernels.conv2d(x7, pw, padding=1),
        "fixedpoint conv2d u8, zero point 128 (exact)": lambda t: lambda: kernels.conv2d(xu, pw, padding=1, x_zero_point=128),
        "fixedpoint conv2d u8 -> u8, fp32 requant (fused; ORT's inputs, scales, zero points)": lambda t: lambda: kernels.conv2d(
            xu, pw, padding=1, x_zero_point=128, requantizer=rq),
        "fixedpoint conv2d s8, AVX2 path (exact, vpmaddwd)": lambda t: on_path("avx2", lambda: kernels.conv2d(x, pw, padding=1)),
        "fixedpoint conv2d s8, x>=0, AVX2 path (exact, vpmaddubsw)": lambda t: on_path(
            "avx2", lambda: kernels.conv2d(x7, pw, padding=1)),
        "ORT ConvInteger u8u8": lambda t: ort_conv(xu, wu, t),
        "ORT QLinearConv u8s8 (inexact)": lambda t: ort_conv(xu, w, t, qlinear=True),
    })
    wdw = rng.integers(-128, 128, DEPTHWISE["w"]).astype(np.int8)
    pdw = kernels.pack_weights(wdw, groups=c)
    # The requantization ORT's QLinearConv row performs (same scales and zero points), fused.
    rq_dw = kernels.Requantizer.fp32(kernels.fp32_scale(0.02, 0.01, 0.5), zero_point=128, dtype=np.uint8)
    dw = ("depthwise 3x3 1x64x56x56, pad 1", 2 * c * h * wd * 9, {
        "fixedpoint conv2d depthwise (exact, int32 out)": lambda t: lambda: kernels.conv2d(xu, pdw, padding=1, groups=c,
                                                                                         x_zero_point=128),
        "fixedpoint conv2d depthwise, fp32 requant to u8 (fused)": lambda t: lambda: kernels.conv2d(
            xu, pdw, padding=1, groups=c, x_zero_point=128, requantizer=rq_dw),
        "fixedpoint conv2d depthwise, AVX2 path (exact, int32 out)": lambda t: on_path(
            "avx2", lambda: kernels.conv2d(xu, pdw, padding=1, groups=c, x_zero_point=128)),
        "ORT QLinearConv depthwise": lambda t: ort_conv(xu, wdw, t, group=c, qlinear=True),
    })
    return [conv, dw]


def gops(ops, make, threads, repeats):
    """GOPS of one case at `threads` threads (None: not available)."""
    kernels.set_num_threads(threads)
    fn = make(threads)
    result = None if fn is None else ops / median_time(fn, repeats) / 1e9
    # Free an ONNX Runtime session (and its thread pool) before the next case is timed.
    fn = None
    gc.collect()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=1,
                        help="time the whole table this many times and report each case's median round: on a shared "
                             "machine a busy moment then disturbs one round of a case, not all of it")
    parser.add_argument("--only", choices=("gemm", "conv"), help="only the GEMM or only the convolution rows")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    threads_saved = kernels.get_num_threads()
    print(f"| case | 1 thread GOPS | 2 threads GOPS |\n|---|---:|---:|")
    for seq, name in (("vpmaddwd", "ceiling: vpmaddwd+vpaddd (exact)"), ("vpmaddubsw", "ceiling: vpmaddubsw+vpmaddwd+vpaddd"),
                      ("vpdpbusd", "ceiling: vpdpbusd zmm (AVX-512 VNNI, exact; 0 = CPU lacks it)")):
        print(f"| {name} | {ceiling(seq, 1):.0f} | {ceiling(seq, 2):.0f} |")
    rows = (gemm_rows(rng) if args.only != "conv" else []) + (conv_rows(rng) if args.only != "gemm" else [])
    # Round after round over the whole table, so that the rounds of one case lie minutes apart.
    results = {(title, name, t): [] for title, _, cases in rows for name in cases for t in (1, 2)}
    for _ in range(args.rounds):
        for title, ops, cases in rows:
            for name, make in cases.items():
                for threads in (1, 2):
                    results[title, name, threads].append(gops(ops, make, threads, args.repeats))
    for title, _, cases in rows:
        print(f"| **{title}** | | |")
        for name in cases:
            cells = [statistics.median(results[title, name, t]) if None not in results[title, name, t] else None for t in (1, 2)]
            print("| " + name + " | " + " | ".join("n/a" if c is None else f"{c:.1f}" for c in cells) + " |", flush=True)
    kernels.set_num_threads(threads_saved)


if __name__ == "__main__":
    main()
