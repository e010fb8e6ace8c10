"""ONNX Runtime on a CPU with AVX-512 VNNI: MLAS multiplies u8·s8 with vpdpbusd, whose int32 sums are
exact, so every integer accumulation is exact. Float layers ORT rewrites to NCHWc run in blocks of 16
(AVX-512F); an AVX-VNNI CPU without AVX-512 has its own profile (onnxruntime_avxvnni.py)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-vnni", family="onnxruntime", isa="avx512-vnni",
    description=f"ONNX Runtime {common.ORT_VERSION} CPU provider on an AVX-512 VNNI CPU: "
                f"exact int32 accumulation (vpdpbusd), float32 requantization, NCHWc float layers in "
                f"blocks of 16 (AVX-512F)",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("optimized", "vnni", "nchwc16"),
)
