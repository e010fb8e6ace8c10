"""Time the LiteRT op emulations (fixedpoint.kernels.litert) against the LiteRT interpreter itself,
on the same data, in one process, one thread each, batch 64:

    python bench/bench_litert_ops.py [--repeats 15] [--only conv,add] [--resolver optimized]

For each op and resolver it prints the median time of LiteRT's invoke() (a one-op model; the
input copied in with set_tensor, as a network's intermediate tensor would already be in place,
is timed separately and left out), the median time of the emulation, and their ratio
(emulation / LiteRT; the target is <= 2). Prepared objects (Conv2D, FullyConnected) are built once,
as a network holds them. Emulations take their usual layouts (NCHW for convolutions and pooling,
TFLite order for the rest), so no transposes are timed.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)  # the checkout's fixedpoint (built in place)
from tflite_builder import T, make_interpreter, single_op_model  # noqa: E402

from fixedpoint import kernels  # noqa: E402
from fixedpoint.kernels import litert  # noqa: E402

I8 = np.int8
B = 64


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interpreter_call(model, inputs, resolver):
    interp = make_interpreter(model, resolver, num_threads=1)
    details = interp.get_input_details()
    for d, x in zip(details, inputs):
        interp.set_tensor(d["index"], x)
    return interp.invoke


def cases(rng):
    """name -> (model bytes, interpreter inputs (NHWC), emulation(resolver) -> callable)."""
    out = {}

    def nchw(x):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    # CONV_2D 3x3, 16 -> 32 channels, 32x32, per-channel weights.
    x = rng.integers(-128, 128, (B, 32, 32, 16)).astype(I8)
    w = rng.integers(-127, 128, (32, 3, 3, 16)).astype(I8)
    ws = rng.uniform(0.002, 0.01, 32).astype(np.float32)
    bias = rng.integers(-2000, 2000, 32).astype(np.int32)
    q = dict(input_scale=0.05, input_zero_point=-3, weight_scales=ws, output_scale=0.3, output_zero_point=2)
    model = single_op_model("CONV_2D", [T(x.shape, I8, 0.05, -3), T(w.shape, I8, ws, 0, data=w),
                                        T((32,), np.int32, ws * np.float32(0.05), 0, data=bias)],
                            [T((B, 32, 32, 32), I8, 0.3, 2)], padding="SAME", stride_h=1, stride_w=1,
                            fused_activation_function="RELU")
    xc = nchw(x)

    def conv(resolver, w=w, bias=bias, xc=xc):
        layer = litert.Conv2D(w, bias, padding="SAME", activation="RELU", resolver=resolver, **q)
        return lambda: layer(xc)
    out["conv2d"] = (model, [x], conv)

    # DEPTHWISE_CONV_2D 3x3 on 32 channels, 32x32.
    x = rng.integers(-128, 128, (B, 32, 32, 32)).astype(I8)
    w = rng.integers(-127, 128, (1, 3, 3, 32)).astype(I8)
    model = single_op_model("DEPTHWISE_CONV_2D", [T(x.shape, I8, 0.05, -3), T(w.shape, I8, ws, 0, data=w,
                                                                               quantized_dimension=3),
                                                  T((32,), np.int32, ws * np.float32(0.05), 0, data=bias)],
                            [T((B, 32, 32, 32), I8, 0.3, 2)], padding="SAME", stride_h=1, stride_w=1,
                            depth_multiplier=1)
    xd = nchw(x)

    def dwconv(resolver, w=w, bias=bias, xd=xd):
        layer = litert.Conv2D(w, bias, padding="SAME", resolver=resolver, depthwise=True, **q)
        return lambda: layer(xd)
    out["depthwise_conv2d"] = (model, [x], dwconv)

    # FULLY_CONNECTED 1024 -> 256.
    x = rng.integers(-128, 128, (B, 1024)).astype(I8)
    w = rng.integers(-127, 128, (256, 1024)).astype(I8)
    fb = rng.integers(-2000, 2000, 256).astype(np.int32)
    model = single_op_model("FULLY_CONNECTED", [T(x.shape, I8, 0.05, -3), T(w.shape, I8, [0.004], 0, data=w),
                                                T((256,), np.int32, [0.05 * 0.004], 0, data=fb)],
                            [T((B, 256), I8, 0.5, 1)])

    def fc(resolver, w=w, fb=fb, x=x):
        layer = litert.FullyConnected(w, fb, input_scale=0.05, input_zero_point=-3, weight_scales=[0.004],
                                      output_scale=0.5, output_zero_point=1, resolver=resolver)
        return lambda: layer(x)
    out["fully_connected"] = (model, [x], fc)

    # Element-wise on a (64, 32, 32, 32) activation.
    S = (B, 32, 32, 32)
    a = rng.integers(-128, 128, S).astype(I8)
    b = rng.integers(-128, 128, S).astype(I8)
    bq = dict(a_scale=0.05, a_zero_point=-3, b_scale=0.07, b_zero_point=2, output_scale=0.1, output_zero_point=1)
    for op in ("add", "mul"):
        so = 0.1 if op == "add" else 0.05 * 0.07 * 60
        model = single_op_model(op.upper(), [T(S, I8, 0.05, -3), T(S, I8, 0.07, 2)], [T(S, I8, so, 1)])
        kw = dict(bq, output_scale=so)
        out[op] = (model, [a, b], lambda r, op=op, kw=kw: (lambda: getattr(litert, op)(a, b, resolver=r, **kw)))
    uq = dict(input_scale=0.05, input_zero_point=-3)
    for op, so, zo, extra in (("logistic", 1 / 256, -128, {}), ("hard_swish", 0.03, -80, {}),
                              ("leaky_relu", 0.04, -20, {"alpha": 0.1}), ("relu6", 6 / 255, -128, {})):
        model = single_op_model(op.upper(), [T(S, I8, 0.05, -3)], [T(S, I8, so, zo)], **extra)
        out[op] = (model, [a], lambda r, op=op, so=so, zo=zo, extra=extra: (
            lambda: getattr(litert, op)(a, output_scale=so, output_zero_point=zo, resolver=r, **uq, **extra)))
    model = single_op_model("QUANTIZE", [T(S, I8, 0.05, -3)], [T(S, I8, 0.07, 5)])
    out["requantize"] = (model, [a], lambda r: (lambda: litert.quantize(a, input_scale=0.05, input_zero_point=-3,
                                                                        output_scale=0.07, output_zero_point=5,
                                                                        resolver=r)))
    f = rng.uniform(-8, 8, S).astype(np.float32)
    model = single_op_model("QUANTIZE", [T(S, np.float32)], [T(S, I8, 0.05, -3)])
    out["quantize"] = (model, [f], lambda r: (lambda: litert.quantize(f, output_scale=0.05, output_zero_point=-3,
                                                                      resolver=r)))
    model = single_op_model("DEQUANTIZE", [T(S, I8, 0.05, -3)], [T(S, np.float32)])
    out["dequantize"] = (model, [a], lambda r: (lambda: litert.dequantize(a, scale=0.05, zero_point=-3,
                                                                          resolver=r)))
    # Pooling 3x3 stride 2 and the global mean.
    ac = nchw(a)
    for op in ("max", "average"):
        model = single_op_model(f"{op.upper()}_POOL_2D", [T(S, I8, 0.05, -3)], [T((B, 16, 16, 32), I8, 0.05, -3)],
                                padding="SAME", stride_h=2, stride_w=2, filter_height=3, filter_width=3)
        fn = litert.max_pool2d if op == "max" else litert.average_pool2d
        out[f"{op}_pool2d"] = (model, [a], lambda r, fn=fn: (lambda: fn(ac, filter_size=3, stride=2, padding="SAME",
                                                                        output_scale=0.05, output_zero_point=-3,
                                                                        resolver=r)))
    model = single_op_model("MEAN", [T(S, I8, 0.05, -3), T((2,), np.int32, data=np.array([1, 2], np.int32))],
                            [T((B, 1, 1, 32), I8, 0.02, 1)], keep_dims=True)
    out["mean"] = (model, [a], lambda r: (lambda: litert.mean(a, (1, 2), keep_dims=True, input_scale=0.05,
                                                              input_zero_point=-3, output_scale=0.02,
                                                              output_zero_point=1, resolver=r)))
    # SOFTMAX over 1000 classes.
    x = rng.integers(-128, 128, (B, 1000)).astype(I8)
    model = single_op_model("SOFTMAX", [T(x.shape, I8, 0.1, 0)], [T(x.shape, I8, 1 / 256, -128)], beta=1.0)
    out["softmax"] = (model, [x], lambda r, x=x: (lambda: litert.softmax(x, input_scale=0.1, resolver=r)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--only", default="", help="comma-separated op names")
    ap.add_argument("--resolver", default="", help="comma-separated resolvers (default: all three)")
    args = ap.parse_args()
    kernels.set_num_threads(1)
    only = {s for s in args.only.split(",") if s}
    resolvers = [s for s in args.resolver.split(",") if s] or list(litert.RESOLVERS)
    rows = []
    for name, (model, inputs, emulate) in cases(np.random.default_rng(0)).items():
        if only and name not in only:
            continue
        for resolver in resolvers:
            t_rt = median_time(interpreter_call(model, inputs, resolver), args.repeats)
            t_em = median_time(emulate(resolver), args.repeats)
            rows.append((name, resolver, t_rt, t_em, t_em / t_rt))
            print(f"| {name:17s} | {resolver:9s} | {t_rt * 1e3:9.3f} | {t_em * 1e3:9.3f} | {t_em / t_rt:5.2f} |",
                  flush=True)
    worst = max(rows, key=lambda r: r[4])
    print(f"worst ratio {worst[4]:.2f} ({worst[0]}, {worst[1]}); ops over 2x: "
          f"{[(r[0], r[1]) for r in rows if r[4] > 2] or 'none'}")


if __name__ == "__main__":
    print("| op                | resolver  | LiteRT ms | emul. ms  | ratio |")
    print("|-------------------|-----------|-----------|-----------|-------|")
    main()
