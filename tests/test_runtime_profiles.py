"""The profile tables users read: docs/runtimes-recipes.md is the generator's output for the profile
data as it is (a recipe changed without regenerating the page fails here), and the command line prints
every profile."""
import subprocess
import sys
from pathlib import Path

import pytest

from fixedpoint.runtime import RUNTIMES
from fixedpoint.runtime.__main__ import recipes_page

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_recipes_page_is_the_generated_one():
    page = (DOCS / "runtimes-recipes.md").read_text()
    assert page == recipes_page(), "regenerate: python -m fixedpoint.runtime --recipes > docs/runtimes-recipes.md"
    # every concrete profile has its section (the host alias "onnxruntime" is none of them)
    assert [line[5:-1] for line in page.splitlines() if line.startswith("### `")] == list(RUNTIMES)


def run_module(tmp_path, *args):
    """`python -m fixedpoint.runtime ARGS` on the package this process imported (installed or built in
    place), not a source tree that happens to be the working directory."""
    import os

    import fixedpoint
    package_parent = os.path.dirname(os.path.dirname(fixedpoint.__file__))
    return subprocess.run([sys.executable, "-m", "fixedpoint.runtime", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=package_parent), timeout=300)


def test_command_line_lists_profiles_and_prints_recipes(tmp_path):
    run = lambda *a: run_module(tmp_path, *a).stdout  # noqa: E731
    listing = run()
    for name in ["onnxruntime", *RUNTIMES]:
        assert f"| {name} |" in listing
    one = run("litert-reference")
    assert one.startswith("### `litert-reference`") and "reference_integer_ops::ConvPerChannel" in one


def test_unknown_profile_is_named(tmp_path):
    out = run_module(tmp_path, "onnxruntime-arm")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown runtime 'onnxruntime-arm'")
    assert "Traceback" not in out.stderr


def test_a_cpu_without_avx2_gets_an_error_not_another_cpus_numbers(monkeypatch):
    import numpy as np
    import pytest

    import fixedpoint as fp
    from fixedpoint import kernels
    from fixedpoint.runtime import RuntimeNotSupportedError, get_runtime

    monkeypatch.setattr(kernels, "host_ort_profile", lambda features=None: None)   # an ARM / SSE-only host
    with pytest.raises(RuntimeNotSupportedError, match="without AVX2.*name a profile explicitly"):
        get_runtime("onnxruntime")
    assert fp.runtimes().iloc[0]["Description"].startswith("not available here")
    qnet = fp.import_onnx(str(fp.examples.model_file("digits_cnn_qdq.onnx")))
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(RuntimeNotSupportedError, match="without AVX2"):
        qnet.predict(x)                                   # the imported model's default is "onnxruntime"
    assert qnet.predict(x, runtime="onnxruntime-vnni").shape == (1, 10)   # a named profile still runs


@pytest.mark.parametrize("features, profile", [
    ({"avx2": True}, "onnxruntime-avx2"),
    ({"avx2": True, "avx512f": True, "avx512bw": True, "avx512vl": True}, "onnxruntime-avx512"),
    ({"avx2": True, "avx512f": True, "avx512bw": True, "avx512vl": True, "avx512vnni": True}, "onnxruntime-vnni"),
    ({"avx2": True, "avx_vnni": True}, "onnxruntime-avxvnni"),
    ({"avx2": True, "avx_vnni": True, "avx512f": True, "avx512bw": True, "avx512vl": True, "avx512vnni": True},
     "onnxruntime-vnni"),
])
def test_host_mapping(monkeypatch, features, profile):
    """What a CPU's features make of "onnxruntime": the accumulation (VNNI or not) and the NCHWc block
    (AVX-512F or not) each change ORT's numbers, so each combination has its profile."""
    from fixedpoint import kernels
    from fixedpoint.runtime import get_runtime, host_runtime
    monkeypatch.setattr(kernels, "cpu_features", lambda: dict(features))
    real = kernels.host_ort_profile
    monkeypatch.setattr(kernels, "host_ort_profile", lambda f=None: real(features if f is None else f))
    assert host_runtime() == profile and get_runtime("onnxruntime").name == profile
    recipe = get_runtime(profile).ops["Convolution2D"]
    assert recipe["accumulation"] == ("vnni" if "vnni" in profile else "avx2")
    assert recipe["float-layout"] == ("nchwc16" if features.get("avx512f") else "nchwc8")
