"""ONNX Runtime on an AVX2 CPU with the session option `session.x64quantprecision` = "1": ORT
converts int8 weights to uint8 first, so its u8·u8 kernels sum exactly (docs/runtimes.md)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-avx2-precise", family="onnxruntime", isa="avx2",
    description=f"ONNX Runtime {common.ORT_VERSION} on an AVX2 CPU with session.x64quantprecision=1: "
                f"int8 weights converted to uint8, exact int32 accumulation",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("optimized-precise", "avx2-precise", "nchwc8"),
    options={"session.x64quantprecision": "1"},
)
