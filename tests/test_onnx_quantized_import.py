"""Quantized ONNX models (QDQ and QOperator, made here by onnxruntime's quantize_static from the bundled
digits networks) imported with `fp.import_onnx` and run as ONNX Runtime 1.32 runs them, bit for bit:

* the host profile ("onnxruntime") against ORT's default session on this machine;
* "onnxruntime-avx2-precise" against ORT with session.x64quantprecision = 1 (where ORT honours it:
  AVX2 CPUs without VNNI);
* "onnxruntime-reference" against ORT with ORT_DISABLE_ALL (any CPU);
* "onnxruntime-vnni" against ORT on a VNNI CPU, else against x64quantprecision = 1 (exact sums too) when
  both graphs fuse the same layers;
* "onnxruntime-avx2" against ORT on an AVX2 CPU: natively on a host without VNNI, under
  `qemu-x86_64 -cpu Haswell` on a VNNI host (skipped with the reason without qemu).

Inputs: the 1258 bundled validation images and 256 adversarial ones (uniform over [-0.3, 1.3], past the
calibrated [0, 1] so the input quantizer saturates, half of them on the input quantizer's exact
half-steps). Every comparison is `np.array_equal` of ORT's output (float32 after the final
DequantizeLinear) with ours.
"""
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
if importlib.util.find_spec("onnxruntime.quantization") is None:
    pytest.skip("onnxruntime.quantization is not installed", allow_module_level=True)


def _quantization():
    """onnxruntime.quantization, imported when a test first quantizes (kept lazy; the rtol 1e-6 failure
    once blamed on importing it at collection came from tests/test_onnx_import.py drawing its weights
    from a module-level RNG, now exact data of its own)."""
    return importlib.import_module("onnxruntime.quantization")

import fixedpoint as fp  # noqa: E402
from fixedpoint.onnx import OnnxImportError  # noqa: E402
from fixedpoint.quantization.qnetwork import QuantizedNetwork  # noqa: E402

try:
    from fixedpoint.kernels import host_ort_profile
    HOST = host_ort_profile()
except ImportError:   # before the MLAS accumulation kernels: the CPU test of the runtime package
    from fixedpoint import _kernels
    HOST = "vnni" if _kernels.cpu_has_vnni() else "avx2"
QEMU = shutil.which("qemu-x86_64")
UNDER_QEMU = os.environ.get("FIXEDPOINT_ORT_UNDER_QEMU") == "1"
AVX2_HOST = HOST in ("avx2", "avx512bw")

FORMATS = ("QDQ", "QOperator")
TYPES = {"U8S8": ("QUInt8", "QInt8"), "U8U8": ("QUInt8", "QUInt8"), "S8S8": ("QInt8", "QInt8")}


def _variants():
    """Every format x type x per-channel x reduce_range for the four networks: the prepared CNN and
    MobileNet-like DAG (batch norm folded) and both as trained (float batch norms between DQ and Q)."""
    return [(net, prepared, fmt, types, pc, rr)
            for net in ("cnn", "mobilenet") for prepared in (True, False) for fmt in FORMATS
            for types in TYPES for pc in (False, True) for rr in (False, True)]


VARIANTS = _variants()


def _label(v):
    net, prepared, fmt, types, pc, rr = v
    return f"{net}{'-prep' if prepared else ''}-{fmt}-{types}-{'pc' if pc else 'pt'}{'-rr' if rr else ''}"


@pytest.fixture(scope="module")
def data():
    (x_cal, _), (x_val, _) = fp.examples.digits_data()
    rng = np.random.default_rng(11)
    adversarial = rng.uniform(-0.3, 1.3, (256, 1, 8, 8)).astype(np.float32)
    return x_cal, x_val, adversarial


@pytest.fixture(scope="module")
def models(tmp_path_factory, data):
    """{variant: path}, quantized on first use."""
    directory = tmp_path_factory.mktemp("quantized_onnx")
    cache = {}
    x_cal = data[0]

    def get(variant):
        if variant not in cache:
            net, prepared, fmt, types, pc, rr = variant
            source = directory / f"{net}{'-prep' if prepared else ''}.onnx"
            if not source.exists():
                network = getattr(fp.examples, f"digits_{net}")()
                onnx.save(fp.export_onnx(fp.prepare_network(network) if prepared else network), str(source))
            feed = onnx.load(str(source)).graph.input[0].name

            quantization = _quantization()

            class Reader(quantization.CalibrationDataReader):
                def __init__(self):
                    self.batches = iter([{feed: x_cal[i:i + 64]} for i in range(0, 256, 64)])

                def get_next(self):
                    return next(self.batches, None)
            act, weight = TYPES[types]
            path = directory / f"{_label(variant)}.onnx"
            quantization.quantize_static(
                str(source), str(path), Reader(), quant_format=getattr(quantization.QuantFormat, fmt),
                activation_type=getattr(quantization.QuantType, act),
                weight_type=getattr(quantization.QuantType, weight), per_channel=pc, reduce_range=rr)
            cache[variant] = str(path)
        return cache[variant]
    return get


def _session(path, precise=False, disable=False):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if precise:
        options.add_session_config_entry("session.x64quantprecision", "1")
    if disable:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _inputs(qnet, data):
    """Validation images, then the adversarial ones (half moved onto the input quantizer's half-steps)."""
    _, x_val, adversarial = data
    first = next(iter(qnet.qlayers.values()))
    scale, zero = float(first.input_params[0].scale[0]), int(first.input_params[0].zero_point[0])
    ties = adversarial.copy()
    steps = np.round(ties[:128] / scale) - zero
    ties[:128] = ((steps + zero + 0.5) * scale).astype(np.float32)
    return np.concatenate([x_val, ties]), len(x_val)


def _compare(qnet, session, x, runtime):
    feed = session.get_inputs()[0].name
    expected = session.run(None, {feed: x})[0]
    got = qnet.predict(x, runtime=runtime)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    return (got != expected).reshape(len(x), -1).any(axis=1)


def _report(bad, n_val, what):
    assert not bad.any(), (f"{what}: {int(bad[:n_val].sum())} of {n_val} validation images and "
                           f"{int(bad[n_val:].sum())} of {len(bad) - n_val} adversarial inputs differ")


def _graphs_agree(qnet):
    return all(getattr(ql, "ort_op", None) == getattr(ql, "ort_op_precise", getattr(ql, "ort_op", None))
               for ql in qnet.qlayers.values())


@pytest.mark.parametrize("variant", VARIANTS, ids=_label)
def test_profiles_equal_onnxruntime(variant, models, data):
    path = models(variant)
    qnet = fp.import_onnx(path)
    assert isinstance(qnet, QuantizedNetwork) and qnet.default_runtime == "onnxruntime"
    x, n_val = _inputs(qnet, data)
    if UNDER_QEMU:   # the AVX2 profile against ORT on qemu's Haswell CPU
        _report(_compare(qnet, _session(path), x, "onnxruntime-avx2"), n_val, "avx2 (qemu Haswell)")
        return
    # the host profile, by its alias (on an AVX2 host: the saturating AVX2 profile)
    _report(_compare(qnet, _session(path), x, "onnxruntime"), n_val, f"host profile ({HOST})")
    _report(_compare(qnet, _session(path, disable=True), x, "onnxruntime-reference"), n_val,
            "reference vs ORT_DISABLE_ALL")
    if AVX2_HOST:
        try:
            precise = _session(path, precise=True)
        except Exception as error:   # ORT has no kernel for some S8S8 QOperator nodes after the conversion
            assert "QOperator-S8S8" in _label(variant), error
            return
        _report(_compare(qnet, precise, x, "onnxruntime-avx2-precise"), n_val, "avx2-precise")
        if _graphs_agree(qnet):
            _report(_compare(qnet, precise, x, "onnxruntime-vnni"), n_val,
                    "vnni vs x64quantprecision (exact sums)")


@pytest.mark.skipif(UNDER_QEMU or HOST != "vnni" or QEMU is None,
                    reason="only on a VNNI host with qemu-x86_64 on PATH (an AVX2 host compares the AVX2 "
                           "profile natively)")
def test_avx2_profile_under_qemu_haswell():
    """On a VNNI host: the AVX2 profile against ORT's AVX2 kernels under qemu's Haswell CPU, on the
    variants whose pairs saturate (prepared networks, U8S8 and S8S8 per channel; qemu is slow)."""
    env = dict(os.environ, FIXEDPOINT_ORT_UNDER_QEMU="1")
    r = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, "-m", "pytest", "-q", "-x", "-p",
                        "no:cacheprovider", __file__, "-k",
                        "test_profiles_equal_onnxruntime and prep and pc and not rr and (U8S8 or S8S8)"],
                       env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.parametrize("variant", [("cnn", True, "QDQ", "U8S8", True, False),
                                     ("mobilenet", True, "QOperator", "U8S8", False, False),
                                     ("mobilenet", False, "QDQ", "S8S8", True, False),
                                     ("cnn", True, "QDQ", "U8S8", True, True)], ids=_label)
def test_saturation_is_visible(variant, models, data):
    """The AVX2 and VNNI profiles differ on these models (so the comparisons above can fail), except with
    reduce_range, whose 7-bit weights keep every pair sum within int16 (2 * 255 * 64 < 32768)."""
    qnet = fp.import_onnx(models(variant))
    x, _ = _inputs(qnet, data)
    differ = (qnet.predict(x, runtime="onnxruntime-avx2") != qnet.predict(x, runtime="onnxruntime-vnni")).any(1)
    assert differ.any() != variant[5], int(differ.sum())
