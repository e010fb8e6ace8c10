"""ONNX Runtime on an AVX2 CPU without VNNI: MLAS's u8·s8 kernels multiply byte pairs with vpmaddubsw,
which saturates each int16 sum of two adjacent products (docs/runtimes.md)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-avx2", family="onnxruntime", isa="avx2",
    description=f"ONNX Runtime {common.ORT_VERSION} CPU provider on an AVX2 CPU without VNNI: u8·s8 "
                f"products summed in int16 pairs that saturate (vpmaddubsw), float32 requantization",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("optimized", "avx2", "nchwc8"),
)
