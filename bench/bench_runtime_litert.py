"""Emulated LiteRT vs LiteRT itself: imported .tflite models at batch 64 on one thread.

    python bench/bench_runtime_litert.py [--rounds 30] [--batch 64] [--models digits_cnn_int8 ...]

For every bundled .tflite model (`fp.examples.model_file`: the digits CNN and MobileNet, int8 and
float I/O) and every LiteRT profile, times `QuantizedNetwork.predict` of the
imported network (`fp.import_tflite`, fixedpoint's kernels on 1 thread) and the real interpreter
(`ai_edge_litert.interpreter.Interpreter(model_content=..., experimental_op_resolver_type=...,
num_threads=1)`, resized to the batch; set_tensor + invoke + get_tensor) in the same process on the
same inputs, alternating one call of each per round; prints the medians and their ratio
(ours / LiteRT: below 1 is faster), the quartiles of the per-round ratios (the spread on a shared
host) and checks that the outputs are equal.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's fixedpoint (built in place)

import fixedpoint as fp  # noqa: E402

MODELS = [name[:-len(".tflite")] for name in fp.examples.MODEL_FILES if name.endswith(".tflite")]
PROFILES = {"litert": "AUTO", "litert-optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
            "litert-reference": "BUILTIN_REF"}


def model_input(qnet, batch: int, rng) -> np.ndarray:
    """The bundled validation digits as the model takes them (NHWC; quantized for int8 inputs)."""
    (_, _), (x_val, _) = fp.examples.digits_data()
    x = np.ascontiguousarray(x_val[:batch].transpose(0, 2, 3, 1))
    if qnet.input_params:
        p = next(iter(qnet.input_params.values()))
        x = np.clip(np.round(x / p.scale[0]) + p.zero_point[0], p.qmin, p.qmax).astype(p.dtype)
    return x


def interpreter(content: bytes, resolver: str, shape):
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_content=content, num_threads=1,
                            experimental_op_resolver_type=getattr(litert.OpResolverType, resolver))
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, shape)
    it.allocate_tensors()
    out = it.get_output_details()[0]["index"]

    def run(x):
        it.set_tensor(index, x)
        it.invoke()
        return it.get_tensor(out)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", nargs="*", default=None, help=f"bundled models without .tflite (default: {' '.join(MODELS)})")
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES))
    args = parser.parse_args(argv)
    fp.kernels.set_num_threads(1)
    names = args.models or MODELS
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, 1 thread, median of {args.rounds} rounds")
    print(f"{'model':28s} {'profile':18s} {'ours ms':>9s} {'LiteRT ms':>10s} {'ratio':>7s} {'q1-q3':>11s}  equal")
    for name in names:
        content = Path(fp.examples.model_file(f"{name}.tflite")).read_bytes()
        qnet = fp.import_tflite(content)
        x = model_input(qnet, args.batch, rng)
        for profile in args.profiles:
            theirs = interpreter(content, PROFILES[profile], x.shape)
            ours = lambda: qnet.predict(x, runtime=profile)  # noqa: E731
            equal = np.array_equal(ours(), theirs(x))          # also warms both up
            t_ours, t_theirs = [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                ours()
                t_ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                theirs(x)
                t_theirs.append(time.perf_counter() - start)
            a, b = statistics.median(t_ours) * 1e3, statistics.median(t_theirs) * 1e3
            q1, q3 = np.percentile(np.array(t_ours) / np.array(t_theirs), [25, 75])   # per-round ratios
            print(f"{name:28s} {profile:18s} {a:9.3f} {b:10.3f} {a / b:7.2f} {q1:5.2f}-{q3:5.2f}  {equal}")


if __name__ == "__main__":
    main()
