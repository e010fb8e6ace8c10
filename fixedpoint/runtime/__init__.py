"""Emulated runtimes: one data module per profile, listed by `fp.runtimes()`, chosen by name.

    qnet.predict(x, runtime="onnxruntime-avx2")   # what ONNX Runtime computes on an AVX2-only CPU
    fp.runtimes()                                 # every profile, with what it stands for

"onnxruntime" names the ONNX Runtime profile of *this* machine's CPU (`host_runtime`); every other
name is a profile of its own (docs/runtimes.md).
"""
from __future__ import annotations

import platform

import pandas as pd

from . import (litert, litert_optimized, litert_reference, onnxruntime_avx2, onnxruntime_avx2_precise,
               onnxruntime_avx512, onnxruntime_avxvnni, onnxruntime_reference, onnxruntime_vnni)
from .profile import RuntimeNotSupportedError, RuntimeProfile

RUNTIMES: dict[str, RuntimeProfile] = {p.name: p for p in (
    onnxruntime_avx2.PROFILE, onnxruntime_avx2_precise.PROFILE, onnxruntime_vnni.PROFILE,
    onnxruntime_avxvnni.PROFILE, onnxruntime_avx512.PROFILE, onnxruntime_reference.PROFILE, litert.PROFILE, litert_optimized.PROFILE, litert_reference.PROFILE)}

HOST_ALIAS = "onnxruntime"


def host_ort_isa() -> str:
    """This CPU's MLAS kernel family, from `fixedpoint.kernels.host_ort_profile()` (the CPU features
    read once in csrc/cpu/features.hpp): "vnni", "avx512bw" or "avx2". A CPU without AVX2 (ARM, or an
    x86 with only SSE) runs MLAS kernels no profile emulates: a clear error, never another CPU's
    numbers."""
    from ..kernels import host_ort_profile
    isa = host_ort_profile()
    if isa is None:
        raise RuntimeNotSupportedError(
            f"ONNX Runtime's kernels on this CPU ({platform.machine() or 'unknown'} without AVX2) are not "
            f"emulated, so the profile {HOST_ALIAS!r} has no meaning here; name a profile explicitly, "
            f"e.g. runtime='onnxruntime-vnni' (exact int32 sums) or 'onnxruntime-avx2' (fp.runtimes() lists them)")
    return isa


def host_runtime() -> str:
    """The ONNX Runtime profile of this machine, by what changes ORT's numbers: exact u8·s8 sums
    (vpdpbusd: AVX-512 VNNI or AVX-VNNI) or int16 pairs that saturate (AVX2, and AVX-512BW without
    VNNI, whose Avx512Core kernels pair as the AVX2 ones do: docs/runtimes-onnxruntime-accumulation.md),
    and the NCHWc block of ORT's float layers (16 with AVX-512F, else 8):
    AVX-512 VNNI -> "onnxruntime-vnni", AVX-VNNI alone -> "onnxruntime-avxvnni", AVX-512 without VNNI
    -> "onnxruntime-avx512", AVX2 -> "onnxruntime-avx2"; without AVX2, `RuntimeNotSupportedError`
    (see `host_ort_isa`)."""
    from ..kernels import cpu_features
    isa, avx512 = host_ort_isa(), bool(cpu_features().get("avx512f"))
    if isa == "vnni":
        return (onnxruntime_vnni if avx512 else onnxruntime_avxvnni).PROFILE.name
    return (onnxruntime_avx512 if isa == "avx512bw" else onnxruntime_avx2).PROFILE.name


def get_runtime(name) -> RuntimeProfile:
    """The profile called `name` ("onnxruntime" resolves to this machine's ONNX Runtime profile)."""
    if isinstance(name, RuntimeProfile):
        return name
    if not isinstance(name, str):
        raise ValueError(f"runtime must be a profile name, got {name!r}")
    key = name.lower()
    if key == HOST_ALIAS:
        key = host_runtime()
    if key not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join([HOST_ALIAS, *RUNTIMES])} "
                         f"(fp.runtimes() describes them)")
    return RUNTIMES[key]


def runtimes() -> pd.DataFrame:
    """One row per runtime profile: name, family, CPU kernels, description, and the layer types it
    runs. The first row is the "onnxruntime" alias and the profile it means on this machine."""
    try:
        host = f"ONNX Runtime as it runs on this machine: the {host_runtime()!r} profile"
    except RuntimeNotSupportedError as e:
        host = f"not available here: {e}"
    rows = [(HOST_ALIAS, "onnxruntime", "this CPU", host, "")]
    for p in RUNTIMES.values():
        rows.append((p.name, p.family, p.isa or "any", p.description, ", ".join(sorted(p.ops))))
    return pd.DataFrame(rows, columns=["Runtime", "Family", "CPU", "Description", "Layers"])


def recipes(runtime=None) -> pd.DataFrame:
    """What each profile (or only `runtime`) computes, per layer type: the recipe's choices and the
    runtime source it follows; the first rows of a profile are its float → integer boundaries."""
    profiles = list(RUNTIMES.values()) if runtime is None else [get_runtime(runtime)]
    rows = []
    for p in profiles:
        for kind, recipe in [("(quantize)", p.quantize), ("(dequantize)", p.dequantize), *sorted(p.ops.items())]:
            choices = ", ".join(f"{k}={v}" for k, v in recipe.items() if k != "source")
            rows.append((p.name, kind, choices, recipe.get("source", "")))
    return pd.DataFrame(rows, columns=["Runtime", "Layer type", "Recipe", "Source"])


__all__ = ["RUNTIMES", "RuntimeProfile", "RuntimeNotSupportedError", "get_runtime", "host_ort_isa", "host_runtime",
           "recipes", "runtimes"]
