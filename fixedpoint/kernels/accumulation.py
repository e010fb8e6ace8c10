"""How an int8 runtime sums the products of a GEMM or convolution: exactly, or as ONNX Runtime's MLAS
does on x86-64 CPUs without VNNI (int16 pair saturation), and which one a given ORT op uses.

`Accumulation` is what `gemm(..., accumulation=...)` and `conv2d(..., accumulation=...)` take;
`ort_accumulation` answers, from what an ORT node knows, which accumulation ONNX Runtime 1.32's CPU
execution provider uses on a CPU profile; `cpu_features` reports this host's instruction sets once
(csrc/cpu/features.hpp). Measured facts, sources and tests: docs/runtimes-onnxruntime-accumulation.md.
"""
from dataclasses import dataclass

import numpy as np

from .. import _kernels

ACCUMULATION_KINDS = ("exact", "int16_pairs")  # C++ codes 0, 1 (kernels/gemm.hpp, Accum)
K_ORDERS = ("chw", "hwc")                      # C++ codes 0, 1 (kernels/conv_gemm.hpp, KOrder)
ORT_ISA_PROFILES = ("avx2", "avx512bw", "vnni", "avx2-precise", "avx512bw-precise")


def cpu_features():
    """{feature: bool} for this CPU: avx2, fma, avx512f, avx512bw, avx512vl, avx512vnni, avx512vbmi, avx_vnni."""
    return dict(_kernels.cpu_features())


def host_ort_profile(features=None):
    """The ORT ISA profile of this host (or of `features`): "vnni" with AVX-512 VNNI (F/BW/VL) or
    AVX-VNNI, "avx512bw" with AVX-512 F/BW/VL/DQ-class cores without VNNI (MLAS's Avx512Core kernels:
    the same int16 pairs as AVX2), else "avx2" (None without AVX2: MLAS's SSE kernels are not emulated)."""
    f = cpu_features() if features is None else features
    if f.get("avx_vnni") or (f.get("avx512vnni") and f.get("avx512bw") and f.get("avx512vl")):
        return "vnni"
    if f.get("avx512f") and f.get("avx512bw") and f.get("avx512vl"):
        return "avx512bw"
    return "avx2" if f.get("avx2") else None


@dataclass(frozen=True)
class Accumulation:
    """How products reach the int32 accumulator.

    kind: "exact" (every product summed exactly, wrapping modulo 2^32) or "int16_pairs" (MLAS's
      vpmaddubsw kernels: the products of the unsigned and the signed bytes at K steps (4q, 4q+1) and
      (4q+2, 4q+3) are added in int16 with signed saturation, K zero-padded to a multiple of 4 at its
      end, then the pair sums added in int32; zero-point corrections and bias exactly afterwards).
    k_order: for convolutions with int16_pairs, the K order the pairs follow: "chw" = (c, kh, kw) per
      group (ConvInteger's NCHW im2col), "hwc" = (kh, kw, c) per group (QLinearConv's NHWC im2col and
      ConvSym); None for GEMMs (K in its natural order) and for exact accumulation.
    unsigned_operand: which operand is the unsigned byte of vpmaddubsw ("activation" or "weight"); it
      follows from the dtypes (exactly one operand is uint8) and is recorded for reports.
    routine, source: the MLAS routine that computes the accumulator and the ORT/MLAS source it follows.
    """
    kind: str = "exact"
    k_order: str = None
    unsigned_operand: str = None
    routine: str = ""
    source: str = ""

    def __post_init__(self):
        if self.kind not in ACCUMULATION_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ACCUMULATION_KINDS)}; got {self.kind!r}")
        if self.k_order is not None and self.k_order not in K_ORDERS:
            raise ValueError(f"k_order must be None or one of {', '.join(K_ORDERS)}; got {self.k_order!r}")

    @property
    def saturating(self):
        return self.kind == "int16_pairs"


EXACT = Accumulation("exact")


def as_accumulation(value, arg="accumulation"):
    """None/"exact" -> EXACT; "int16_pairs" or "int16_pairs:chw"/"int16_pairs:hwc"; an Accumulation."""
    if value is None:
        return EXACT
    if isinstance(value, Accumulation):
        return value
    if isinstance(value, str):
        kind, _, order = value.partition(":")
        if kind in ACCUMULATION_KINDS and (order == "" or (kind == "int16_pairs" and order in K_ORDERS)):
            return Accumulation(kind, order or None)
    raise ValueError(f"{arg} must be None, 'exact', 'int16_pairs', 'int16_pairs:chw', 'int16_pairs:hwc' or an "
                     f"Accumulation; got {value!r}")


_GEMM_OPS = ("MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
_CONV_OPS = ("ConvInteger", "QLinearConv")
# Ops whose constant int8 weights Avx2WeightS8ToU8Transformer (session.x64quantprecision = 1) turns
# into uint8 (weight xor 0x80, zero point + 128): (domain, the SinceVersion values it matches).
_PRECISE_OPS = {"MatMulInteger": ("", (10,)), "QLinearMatMul": ("", (10,)), "QLinearConv": ("", (10,)),
                "QGemm": ("com.microsoft", (1,)), "MatMulIntegerToFloat": ("com.microsoft", (1,)),
                "DynamicQuantizeMatMul": ("com.microsoft", (1,))}
_SRC_U8S8 = ("onnxruntime/core/mlas/lib/qgemm_kernel_avx2.cpp (MlasGemmU8S8DispatchAvx2: MlasGemmU8S8CopyPackAAvx2/"
             "CopyPackBAvx2, K packed in groups of 4), x86_64/QgemmU8S8KernelAvx2.S and QgemvU8S8KernelAvx2.S "
             "(vpmaddubsw then vpmaddwd with ones), QgemmU8X8KernelAvx512Common.h (Avx512Core: the same pairs)")


def _dtype_name(value, arg):
    try:
        dt = np.dtype(value)
    except TypeError:
        raise ValueError(f"{arg} must be uint8 or int8, got {value!r}") from None
    if dt not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise ValueError(f"{arg} must be uint8 or int8, got {dt}")
    return dt.name


def ort_accumulation(op_type, isa, *, activation_dtype, weight_dtype, weight_zero_point=0, groups=1,
                     in_channels=None, out_channels=None, weight_is_constant=True, domain="", since_version=None):
    """The accumulation ONNX Runtime 1.32 (CPU execution provider, MLAS, x86-64) uses for one op.

    op_type: MatMulInteger, QLinearMatMul, QGemm, MatMulIntegerToFloat, DynamicQuantizeMatMul,
      ConvInteger or QLinearConv (domain "" or "com.microsoft"; the NHWC com.microsoft QLinearConv is
      the same kernel).
    isa: the CPU profile: "avx2" (AVX2, no VNNI), "avx512bw" (AVX-512 F/BW/VL/DQ without VNNI: MLAS's
      Avx512Core kernels pair and saturate like AVX2), "vnni" (AVX-512 VNNI or AVX-VNNI: vpdpbusd,
      exact), or "avx2-precise" / "avx512bw-precise" (session option session.x64quantprecision = 1).
    activation_dtype, weight_dtype: uint8 or int8 (the op's A / X and B / W inputs).
    weight_zero_point: scalar or per-output-channel values (QLinearConv's depthwise test uses them).
    groups, in_channels, out_channels: convolution attributes (depthwise = one input and one output
      channel per group).
    weight_is_constant: the weight is an initializer (x64quantprecision converts only those).
    since_version: the node's operator SinceVersion (QLinearMatMul opset 21 is version 21, which
      x64quantprecision does not match); None means the op's first version.

    Returns an Accumulation. Raises ValueError for combinations ORT 1.32 cannot run (no kernel).

    Rules, from the sources and confirmed on the installed onnxruntime 1.32.0 (tests/test_ort_accumulation.py):
    * MLAS picks the QGEMM dispatch by signedness (qgemm.h MlasGemmQuantGetDispatch; platform.cpp): on
      x86-64 without AVX-VNNI-INT8, U8S8 -> MlasGemmU8S8DispatchAvx2 (vpmaddubsw: int16 pairs), U8U8 ->
      MlasGemmU8U8DispatchAvx2 (vpmaddwd on int16: exact), S8S8 and S8U8 -> MlasGemmQuantDispatchDefault
      (portable C++: exact). VNNI CPUs swap only the U8S8 kernel (MlasGemmU8S8KernelAvx512Vnni /
      AvxVnni: vpdpbusd, exact).
    * MatMulInteger / QLinearMatMul / QGemm / MatMulIntegerToFloat / DynamicQuantizeMatMul
      (matmul_integer.cc, quantize_linear_matmul.cc, contrib_ops/cpu/quantization/quant_gemm.cc,
      matmul_integer_to_float.cc, dynamic_quantize_matmul.cc): A = activation, B = weight, K natural.
    * ConvInteger (conv_integer.cc): NCHW im2col, A = the weights (M = output channels), B = the
      columns: its u8 x s8 is MLAS S8U8 (exact) and its s8 x u8 is U8S8 with the weight as the
      unsigned operand, K in (c, kh, kw) order per group.
    * QLinearConv (qlinearconv.cc): NHWC; depthwise (one input and one output channel per group, one
      weight zero point for all channels) runs MlasConvDepthwise (exact); otherwise per group the NHWC
      im2col (or ConvSym's indirection, the same (kh, kw, c) pairs) times the weights: U8S8 saturates,
      S8S8 and U8U8 are exact; int8 x uint8 has no kernel.
    * session.x64quantprecision (avx2_weight_s8_to_u8.cc, s8_to_u8.cc ConvertS8WeightToU8): constant
      int8 weights of the ops in _PRECISE_OPS become uint8 (U8U8: exact), unless every weight lies in
      [-64, 64] (then no pair can saturate: exact too). With int8 activations the converted QLinearConv
      / QGemm / MatMulIntegerToFloat have no kernel (session creation fails); MatMulInteger becomes
      S8U8 (exact).
    """
    ops = _GEMM_OPS + _CONV_OPS
    if op_type not in ops:
        raise ValueError(f"op_type must be one of {', '.join(ops)}; got {op_type!r}")
    if isa not in ORT_ISA_PROFILES:
        raise ValueError(f"isa must be one of {', '.join(ORT_ISA_PROFILES)}; got {isa!r}")
    if domain not in ("", "ai.onnx", "com.microsoft"):
        raise ValueError(f"domain must be '' (ai.onnx) or 'com.microsoft'; got {domain!r}")
    domain = "" if domain == "ai.onnx" else domain
    act = _dtype_name(activation_dtype, "activation_dtype")
    wt = _dtype_name(weight_dtype, "weight_dtype")
    if op_type == "DynamicQuantizeMatMul" and act != "uint8":
        raise ValueError("DynamicQuantizeMatMul quantizes its activation to uint8; activation_dtype must be uint8")
    if op_type in ("QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat") and act == "int8" and wt == "uint8":
        raise ValueError(f"ONNX Runtime 1.32 has no {op_type} kernel for int8 activations with uint8 weights")

    precise = isa.endswith("-precise")
    if precise and wt == "int8" and weight_is_constant and op_type in _PRECISE_OPS:
        want_domain, versions = _PRECISE_OPS[op_type]
        version = versions[0] if since_version is None else int(since_version)
        if domain == want_domain and version in versions:
            if act == "int8" and op_type != "MatMulInteger":
                raise ValueError(f"with session.x64quantprecision ORT turns the int8 weights of {op_type} into uint8, "
                                 f"and has no int8 x uint8 kernel for it (session creation fails) unless every "
                                 f"weight lies in [-64, 64]")
            return Accumulation("exact", routine="MlasGemmU8U8DispatchAvx2 (weights converted to uint8)"
                                if act == "uint8" else "MlasGemmQuantDispatchDefault (S8U8)",
                                source="onnxruntime/core/optimizer/qdq_transformer/avx2_weight_s8_to_u8.cc "
                                       "(Avx2WeightS8ToU8Transformer), qdq_transformer/s8_to_u8.cc (ConvertS8WeightToU8)")
    if isa == "vnni":
        return Accumulation("exact", routine="MlasGemmU8S8KernelAvx512Vnni / AvxVnni, ConvSym Avx512Vnni / AvxVnni "
                            "(vpdpbusd) or the exact U8U8 / default kernels",
                            source="onnxruntime/core/mlas/lib/platform.cpp (MLAS_PLATFORM: VNNI kernels replace the "
                                   "U8S8 ones)")

    if op_type in _GEMM_OPS:
        if act == "uint8" and wt == "int8":
            return Accumulation("int16_pairs", None, "activation", "MlasGemmU8S8KernelAvx2 / Avx512Core (QGEMM U8S8)",
                                _SRC_U8S8)
        return Accumulation("exact", routine="MlasGemmU8U8KernelAvx2" if wt == "uint8" else
                            "MlasGemmQuantDispatchDefault (S8S8 / S8U8, portable)",
                            source="onnxruntime/core/mlas/lib/qgemm.h (MlasGemmQuantGetDispatch), platform.cpp")
    if op_type == "ConvInteger":
        if act == "int8" and wt == "uint8":
            return Accumulation("int16_pairs", "chw", "weight",
                                "MlasGemmU8S8KernelAvx2 (A = uint8 weights, B = int8 NCHW im2col columns)",
                                "onnxruntime/core/providers/cpu/quantization/conv_integer.cc (ConvInteger::Compute: "
                                "Im2col NCHW, MlasGemm with A = W); " + _SRC_U8S8)
        return Accumulation("exact", routine="MlasGemmQuantDispatchDefault (S8U8: int8 weights x uint8 columns)"
                            if wt == "int8" else ("MlasGemmU8U8KernelAvx2" if act == "uint8" else
                                                  "MlasGemmQuantDispatchDefault (S8S8)"),
                            source="onnxruntime/core/providers/cpu/quantization/conv_integer.cc, mlas/lib/qgemm.h")
    # QLinearConv
    if act == "uint8" and wt == "int8":
        zp = np.asarray(weight_zero_point)
        uniform = zp.size == 0 or bool(np.all(zp == zp.reshape(-1)[0]))
        depthwise = (in_channels is not None and out_channels is not None and groups >= 1
                     and in_channels == groups and out_channels == groups)
        if depthwise and uniform:
            return Accumulation("exact", routine="MlasConvDepthwise / MlasConvSymDepthwise (int16/int32 arithmetic)",
                                source="onnxruntime/core/providers/cpu/quantization/qlinearconv.cc (is_depthwise_conv), "
                                       "mlas/lib/qdwconv.cpp, convsym.cpp")
        return Accumulation("int16_pairs", "hwc", "activation",
                            "MlasConvSym (ConvSymKernelAvx2 / Avx512Core) or MlasGemm U8S8 on the NHWC im2col",
                            "onnxruntime/core/providers/cpu/quantization/qlinearconv.cc (TryConvSymPrepack, "
                            "ReorderFilter OIHW->HWIO, Im2col NHWC, MlasGemm), mlas/lib/convsym.cpp; " + _SRC_U8S8)
    return Accumulation("exact", routine="MlasGemmU8U8KernelAvx2" if wt == "uint8" else
                        "MlasGemmQuantDispatchDefault (S8S8) / MlasConvDepthwise",
                        source="onnxruntime/core/providers/cpu/quantization/qlinearconv.cc, mlas/lib/qgemm.h")
