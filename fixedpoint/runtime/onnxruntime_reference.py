"""ONNX Runtime with every graph optimization disabled: the QDQ graph run literally, each operator
in float32 between DequantizeLinear and QuantizeLinear (the semantics the QDQ format defines)."""
from . import onnxruntime_common as common
from .profile import RuntimeProfile

PROFILE = RuntimeProfile(
    name="onnxruntime-reference", family="onnxruntime", isa=None,
    description=f"ONNX Runtime {common.ORT_VERSION} with graph optimizations disabled "
                f"(ORT_DISABLE_ALL): the QDQ graph as written, operators in float32",
    quantize=common.QUANTIZE,
    ops=common.graph_ops("as-written", "host"),  # QOperator nodes: the host CPU's MLAS kernels
    options={"graph_optimization_level": "ORT_DISABLE_ALL"},
)
