"""ONNX Runtime on a CPU with AVX-512 (F/BW/VL) but no VNNI: MLAS's Avx512Core u8·s8 kernels build the
same int16 pairs as the AVX2 ones (vpmaddubsw, saturating), on wider registers; float layers ORT
rewrites to NCHWc run in blocks of 16 (AVX-512F). Not run on such a CPU (docs/runtimes.md, Limits)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-avx512", family="onnxruntime", isa="avx512bw",
    description=f"ONNX Runtime {common.ORT_VERSION} CPU provider on an AVX-512 CPU without VNNI: u8·s8 "
                f"products summed in int16 pairs that saturate (as on AVX2), NCHWc float layers in blocks "
                f"of 16",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("optimized", "avx2", "nchwc16"),
)
