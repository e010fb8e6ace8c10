"""Imported quantized ONNX models: emulated `predict` against ONNX Runtime's own time on the same model.

    python bench/bench_runtime_onnx.py [--rounds 15] [--batch 64] [--models cnn,mobilenet]

The bundled QDQ models (`fp.examples.model_file("digits_{cnn,mobilenet}_qdq.onnx")`) and, for each
bundled digits network (prepared and as trained), the models onnxruntime's quantize_static makes of
it (QDQ and QOperator, U8S8 per channel), all run at batch 64 on one thread in this process:
ORT's InferenceSession.run (intra_op_num_threads=1) and `QuantizedNetwork.predict(x, runtime=...)`,
per profile against the session it emulates: the host profile ("onnxruntime") against default
optimizations, "onnxruntime-avx2-precise" against session.x64quantprecision=1, "onnxruntime-reference"
against ORT_DISABLE_ALL, and "onnxruntime-vnni" (emulated on any host) against this host's default
session (the real VNNI kernels are not on this machine; ORT's time here stands for it). Timed round-robin (one call of each per round, so a slow stretch of
the shared host costs every case a round), medians over rounds; ratio = emulated / ORT (target <= 2);
the spread: the quartiles of the per-round ratios (each round's two calls run back to back).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fixedpoint as fp  # noqa: E402
from fixedpoint.kernels import set_num_threads  # noqa: E402


def quantized_models(directory, names):
    """{label: path} of the QDQ and QOperator U8S8 per-channel models of each bundled network."""
    import logging

    import onnx
    logging.getLogger().setLevel(logging.ERROR)   # quantize_static's pre-processing hints
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    (x_cal, _), _ = fp.examples.digits_data()
    paths = {f"{name} bundled QDQ": fp.examples.model_file(f"digits_{name}_qdq.onnx") for name in names}
    for name in names:
        for prepared in (False, True):
            net = getattr(fp.examples, f"digits_{name}")()
            net = fp.prepare_network(net) if prepared else net
            model = fp.export_onnx(net)
            source = os.path.join(directory, f"{name}{'_prepared' if prepared else ''}.onnx")
            onnx.save(model, source)
            feed = model.graph.input[0].name

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.batches = iter([{feed: x_cal[i:i + 64]} for i in range(0, 256, 64)])

                def get_next(self):
                    return next(self.batches, None)
            for fmt in ("QDQ", "QOperator"):
                label = f"{name}{' prepared' if prepared else ''} {fmt}"
                path = os.path.join(directory, label.replace(" ", "_") + ".onnx")
                quantize_static(source, path, Reader(), quant_format=getattr(QuantFormat, fmt),
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                per_channel=True)
                paths[label] = path
    return paths


# profile -> the ORT session configuration it is timed against
SESSIONS = {"onnxruntime": "default", "onnxruntime-vnni": "default", "onnxruntime-avx2-precise": "precise",
            "onnxruntime-reference": "disable"}


def session(path, config="default"):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if config == "disable":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    elif config == "precise":
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", default="cnn,mobilenet")
    parser.add_argument("--profiles", default=",".join(SESSIONS), help="comma-separated, of " + ", ".join(SESSIONS))
    args = parser.parse_args(argv)
    set_num_threads(1)
    (_, _), (x_val, _) = fp.examples.digits_data()
    x = np.ascontiguousarray(x_val[:args.batch])
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for label, path in quantized_models(directory, args.models.split(",")).items():
            qnet = fp.import_onnx(path)
            feed = session(path).get_inputs()[0].name
            cases = []
            for profile in args.profiles.split(","):
                ort_session = session(path, SESSIONS[profile])
                cases.append((label, profile, lambda s=ort_session: s.run(None, {feed: x}),
                              lambda p=profile: qnet.predict(x, runtime=p)))
            times = {id(c): ([], []) for c in cases}
            for _ in range(2):   # warm-up: packing, binding, ORT's first-run allocations
                for case in cases:
                    case[2](), case[3]()
            for _ in range(args.rounds):
                for case in cases:
                    for k, fn in enumerate(case[2:]):
                        start = time.perf_counter()
                        fn()
                        times[id(case)][k].append(time.perf_counter() - start)
            for case in cases:
                ort_t, emu_t = (float(np.median(t)) for t in times[id(case)])
                paired = np.array(times[id(case)][1]) / np.array(times[id(case)][0])   # per round
                q1, q3 = np.percentile(paired, [25, 75])
                rows.append((case[0], case[1], ort_t * 1e3, emu_t * 1e3, emu_t / ort_t, q1, q3))
    print(f"| model | profile | ORT ms | emulated ms | ratio | round ratios q1-q3 |  (batch {args.batch}, "
          f"1 thread, medians of {args.rounds} rounds)")
    print("|---|---|---:|---:|---:|---:|")
    for label, profile, ort_ms, emu_ms, ratio, q1, q3 in rows:
        print(f"| {label} | {profile} | {ort_ms:.3f} | {emu_ms:.3f} | {ratio:.2f} | {q1:.2f}-{q3:.2f} |")
    return rows


if __name__ == "__main__":
    main()
