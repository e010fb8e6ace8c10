"""ONNX Runtime on a CPU with AVX-VNNI but no AVX-512 (e.g. Intel's hybrid client cores): exact int32
sums (vpdpbusd on 256-bit registers), as the VNNI profile, but float layers ORT rewrites to NCHWc
run in blocks of 8 (no AVX-512F). Not run on such a CPU (docs/runtimes.md, Limits)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-avxvnni", family="onnxruntime", isa="avx-vnni",
    description=f"ONNX Runtime {common.ORT_VERSION} CPU provider on an AVX-VNNI CPU without AVX-512: exact "
                f"int32 accumulation (vpdpbusd), float32 requantization, NCHWc float layers in blocks of 8",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("optimized", "vnni", "nchwc8"),
)
