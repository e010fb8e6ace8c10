"""Speed of quantized inference: `QuantizedNetwork.predict` against the float `Network.predict` of the
same network (target: at most 3x slower) and against the fi-only reference path (target: at least
20x faster), on the bundled digits CNN and MobileNet-style models (batches of 1 and 64) and on
SqueezeNet (the onnx package's light model with seeded random weights, calibrated on random data).
Float and int8 predict alternate within each round (minimum of the rounds); the fi-only reference
runs once on one image and is compared per image.

    python -m pytest bench/bench_quant_predict.py --benchmark-only     # pytest-benchmark cases
    python bench/bench_quant_predict.py                                 # ratio table (markdown)
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
import pytest

import fixedpoint as fp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_float_predict import (light_squeezenet,  # noqa: E402  (the same seeded SqueezeNet)
                                 min_seconds_interleaved)

DIGITS_BATCHES = (1, 64)
SQUEEZENET_BATCH = 4


def quantized(net, x_cal, environment="MATLAB"):
    q = fp.dlquantizer(net, environment)
    q.calibrate(x_cal, batch_size=8, progress=False)
    return q.prepared_network, q.quantize()


def reference_predict():
    """The fi-only execution path, when present."""
    try:
        from fixedpoint.quantization.reference import predict_reference
    except ImportError:
        return None
    return predict_reference


def cases():
    """(name, float network, quantized network, batch) for each case."""
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    for name, net in (("digits CNN", fp.examples.digits_cnn()),
                      ("digits MobileNet", fp.examples.digits_mobilenet())):
        float_net, qnet = quantized(net, x_cal[:256])
        for batch in DIGITS_BATCHES:
            yield name, float_net, qnet, np.ascontiguousarray(x_val[:batch])
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (SQUEEZENET_BATCH + 4, 3, 224, 224)).astype(np.float32)
    float_sq, q_sq = quantized(light_squeezenet(), x[:4])
    yield "SqueezeNet", float_sq, q_sq, x[4:]


# ---- pytest-benchmark ----------------------------------------------------------------------------


CASE_IDS = [f"{name}-{batch}" for name in ("digits CNN", "digits MobileNet")
            for batch in DIGITS_BATCHES] + [f"SqueezeNet-{SQUEEZENET_BATCH}"]


@pytest.fixture(scope="module", params=CASE_IDS)
def case(request):
    for name, float_net, qnet, x in cases():
        if f"{name}-{len(x)}" == request.param:
            return float_net, qnet, x


def test_float_predict(benchmark, case):
    float_net, _, x = case
    benchmark(float_net.predict, x)


def test_quantized_predict(benchmark, case):
    _, qnet, x = case
    benchmark(qnet.predict, x)


def test_reference_predict(benchmark, case):
    predict_reference = reference_predict()
    if predict_reference is None:
        pytest.skip("fixedpoint.quantization.reference is not available")
    _, qnet, x = case
    benchmark.pedantic(predict_reference, args=(qnet, x[:1]), rounds=1, iterations=1)


# ---- ratio table -----------------------------------------------------------------------------------


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    predict_reference = reference_predict()
    rows = []
    for name, float_net, qnet, x in cases():
        repeat = 30 if name != "SqueezeNet" else 5
        t_float, t_quant = min_seconds_interleaved(
            [lambda: float_net.predict(x), lambda: qnet.predict(x)], repeat)
        per_image = t_quant / len(x)
        if predict_reference is not None:
            t_ref = median_seconds(lambda: predict_reference(qnet, x[:1]), 1)
            speedup = f"{t_ref / per_image:.0f}x"
        else:
            speedup = "n/a"
        rows.append((name, len(x), f"{t_float * 1e3:.3f}", f"{t_quant * 1e3:.3f}",
                     f"{t_quant / t_float:.2f}", speedup))
    print("| network | batch | float predict (ms) | int8 predict (ms) | int8 / float | "
          "fi reference / int8 (per image) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
