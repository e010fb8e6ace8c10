"""ONNX Runtime's float operators as MLAS / Eigen compute them on x86-64 (AVX2 + FMA3 builds of ORT
1.32), float32 operations in the kernels' own orders: SGEMM, convolution, softmax, average and global
average pooling, logistic, tanh, batch normalization, linear Resize; and the float layers that round
once per element."""
from __future__ import annotations

import numpy as np

from .primitives import (
    F32, _pool_pads, data_movement, explicit_pads, float32_literal, fma32, window_output_hw, wrap32)


def _batch_norm_float(layer):
    """ORT's BatchNormalization (batch_norm.h, Eigen, no FMA): s = (1 / sqrt(var + eps)) · scale,
    t = bias − mean · s, y = x · s + t, in float32."""
    p = layer.learnables
    s = (F32(1.0) / np.sqrt(np.asarray(p["TrainedVariance"], F32) + F32(layer.epsilon))) * np.asarray(p["Scale"], F32)
    t = np.asarray(p["Offset"], F32) - np.asarray(p["TrainedMean"], F32) * s

    def run(x):
        x = np.asarray(x, F32)
        shp = (1, -1) + (1,) * (x.ndim - 2)
        return x * s.reshape(shp) + t.reshape(shp)
    return run


# MLAS's rational approximations (logistic.cpp MlasLogisticConstants, tanh.cpp MlasTanhConstants of
# ORT 1.32, the coefficients Eigen used), evaluated as LogisticKernelFma3 / TanhKernelFma3 do
_LOGISTIC = [float32_literal(t) for t in (
    "4.37031012579801e-11", "1.15627324459942e-07", "6.08574864600143e-05", "8.51377133304701e-03",
    "2.48287947061529e-01", "6.10247389755681e-13", "5.76102136993427e-09", "6.29106785017040e-06",
    "1.70198817374094e-03", "1.16817656904453e-01", "9.93151921023180e-01")]
_TANH = [float32_literal(t) for t in (
    "-2.76076847742355e-16", "2.00018790482477e-13", "-8.60467152213735e-11", "5.12229709037114e-08",
    "1.48572235717979e-05", "6.37261928875436e-04", "4.89352455891786e-03", "1.19825839466702e-06",
    "1.18534705686654e-04", "2.26843463243900e-03", "4.89352518554385e-03")]


def _clamp_ps(x, lo, hi):
    """vmaxps(lo, x) then vminps(hi, ·): the second operand wins when one is NaN."""
    x = np.asarray(x, F32)
    x = np.where(F32(lo) > x, F32(lo), x)
    return np.where(F32(hi) < x, F32(hi), x)


def mlas_logistic(x) -> np.ndarray:
    """MlasComputeLogisticF32KernelFma3: x clamped to [−18, 18], p = x · P(x²), q = Q(x²) by FMA
    Horner steps, max(0, p / q + 0.5) (no upper clamp)."""
    a9, a7, a5, a3, a1, b10, b8, b6, b4, b2, b0 = _LOGISTIC
    v = _clamp_ps(x, -18.0, 18.0)
    x2 = v * v
    p = fma32(x2, a9, a7)
    for c in (a5, a3, a1):
        p = fma32(x2, p, c)
    q = fma32(x2, b10, b8)
    for c in (b6, b4, b2, b0):
        q = fma32(x2, q, c)
    r = (v * p) / q + F32(0.5)
    return np.where(F32(0) > r, F32(0), r)


def mlas_tanh(x) -> np.ndarray:
    """MlasComputeTanhF32KernelFma3: x clamped to [−9, 9], p = x · P(x²), q = Q(x²) by FMA Horner
    steps, p / q."""
    a13, a11, a9, a7, a5, a3, a1, b6, b4, b2, b0 = _TANH
    v = _clamp_ps(x, -9.0, 9.0)
    x2 = v * v
    p = fma32(x2, a13, a11)
    for c in (a9, a7, a5, a3, a1):
        p = fma32(x2, p, c)
    q = fma32(x2, b6, b4)
    for c in (b2, b0):
        q = fma32(x2, q, c)
    return (v * p) / q


# float operators that round once per element (or not at all), written here on float32 arrays
def _float_function(layer, what: str, *, packed_b: bool = True, bias=None, opset: int = 13):
    """f(*float32 arrays) computing the float layer as the runtime `what` does, or None. ORT:
    `packed_b` — a fully connected layer's weights are an initializer ORT prepacks (else a run-time B,
    e.g. a DequantizeLinear output); `bias` replaces the layer's float bias; `opset` is Softmax's."""
    t = layer.type_name
    if what == "onnxruntime":
        ort = _ort_float_kernel(layer, packed_b, bias, opset)
        if ort is not None:
            return ort
    if t == "ReLU":
        return lambda x: np.maximum(np.asarray(x, F32), F32(0))
    if t == "ClippedReLU":
        c = F32(layer.ceiling)
        return lambda x: np.minimum(np.maximum(np.asarray(x, F32), F32(0)), c)
    if t == "LeakyReLU":
        a = F32(layer.scale)
        return lambda x: np.where(np.asarray(x, F32) >= 0, np.asarray(x, F32), a * np.asarray(x, F32))
    if t == "Addition":
        return lambda *xs: _fold(np.add, xs)
    if t == "Subtraction":
        return lambda a, b: np.asarray(a, F32) - np.asarray(b, F32)
    if t == "Multiplication":
        return lambda *xs: _fold(np.multiply, xs)
    if t == "Concatenation":
        return lambda *xs: np.concatenate([np.asarray(v, F32) for v in xs], axis=layer.axis)
    if t == "BatchNormalization":
        return _batch_norm_float(layer)
    if t in ("MaxPooling2D", "GlobalMaxPooling2D"):
        return lambda x: _max_pool_float(layer, np.asarray(x, F32))
    if t == "GlobalAveragePooling2D" and what == "onnxruntime":
        return _global_average_pool_mlas
    if t == "Sigmoid" and what == "onnxruntime":
        return mlas_logistic
    if t == "Tanh" and what == "onnxruntime":
        return mlas_tanh
    return data_movement(layer)


def _ort_float_kernel(layer, packed_b: bool, bias, opset: int):
    """ORT's float kernels this module re-derives from MLAS (the section above), or None."""
    t = layer.type_name
    if t in ("Convolution2D", "FullyConnected"):
        w = np.asarray(layer.learnables["Weights"], F32)
        b = layer.learnables.get("Bias") if bias is None else bias
        b = None if b is None else np.asarray(b, F32).reshape(-1)
        if t == "FullyConnected":
            return lambda x: mlas_gemm(np.asarray(x, F32).reshape(np.shape(x)[0], -1), w, b, packed_b=packed_b)

        def conv(x):
            pads = explicit_pads(layer.padding, x.shape[2:], w.shape[2:], layer.stride, layer.dilation)
            return mlas_conv(x, w, b, layer.stride, pads, layer.dilation, layer.groups)
        return conv
    if t == "AveragePooling2D":
        return lambda x: mlas_average_pool(x, layer.pool_size, layer.stride, _pool_pads(layer, np.shape(x)),
                                           layer.count_include_pad, layer.ceil_mode, opset)
    if t == "Softmax":
        return lambda x: mlas_softmax(x, layer.axis, opset)
    if t == "Resize2D" and layer.mode == "linear":
        return lambda x: ort_resize_linear(np.asarray(x, F32), layer.scale, layer.coordinate_transformation_mode)
    return None


def _fold(op, xs):
    total = np.asarray(xs[0], F32)
    for v in xs[1:]:
        total = op(total, np.asarray(v, F32))
    return total


def _global_average_pool_mlas(x):
    """MLAS's global average pooling (pooling.cpp MlasPoolGlobalKernel): four float32 lanes take the
    elements i ≡ l (mod 4) of the first 4·⌊n/4⌋ in order, reduced (l0 + l2) + (l1 + l3)
    (MlasReduceAddFloat32x4), the tail added in order, then divided by float(n)."""
    x = np.asarray(x, F32)
    n_, c = x.shape[:2]
    flat = x.reshape(n_, c, -1)
    size = flat.shape[2]
    body = size // 4 * 4
    lanes = np.zeros((n_, c, 4), F32)
    for start in range(0, body, 4):
        lanes = lanes + flat[:, :, start:start + 4]
    total = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    for i in range(body, size):
        total = total + flat[:, :, i]
    return (total / F32(size)).reshape(n_, c, 1, 1)


def _max_pool_float(layer, x):
    """Float max pooling: the window's maximum over the taps inside the input."""
    if layer.type_name == "GlobalMaxPooling2D":
        return x.max(axis=(2, 3), keepdims=True)
    pads = _pool_pads(layer, x.shape)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = layer.pool_size, layer.stride
    oh, ow = window_output_hw(x.shape, layer.pool_size, layer.stride, pads, ceil_mode=layer.ceil_mode)
    top, left = pads[0], pads[1]
    height, width = max((oh - 1) * sh + kh, top + h), max((ow - 1) * sw + kw, left + w)
    padded = np.full((n, c, height, width), -np.inf, F32)
    padded[:, :, top:top + h, left:left + w] = x
    rows = (np.arange(oh) * sh)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols = (np.arange(ow) * sw)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    return padded[:, :, rows, cols].reshape(n, c, oh, ow, kh * kw).max(axis=-1)


# =================================================================================================
# MLAS single-precision kernels (x86-64, AVX2 + FMA3 builds of ONNX Runtime 1.32), in MLAS's orders
# =================================================================================================
SGEMM_STRIDEN = SGEMM_STRIDEK = 128        # mlasi.h MLAS_SGEMM_STRIDEN / MLAS_SGEMM_STRIDEK
SGEMM_PACKED_STRIDEK = 256                 # MLAS_SGEMM_PACKED_STRIDEK: K block of a prepacked B
SGEMM_THREAD_COMPLEXITY = 64 * 1024        # MLAS_SGEMM_THREAD_COMPLEXITY: multiplies per extra thread
SGEMM_THREAD_ALIGN = 16                    # MLAS_SGEMM_STRIDEN_THREAD_ALIGN
MLAS_MAXIMUM_THREADS = 16                  # MLAS_MAXIMUM_THREAD_COUNT


def sgemm_fma_block(a, b) -> np.ndarray:
    """One K block of the FMA3 SGEMM kernel (FgemmKernelFma3Common.h ComputeBlockFma3By2): per
    output an accumulator from +0, acc = fma(a_k, b_k, acc) for k in order; a (..., M, K),
    b (..., K, N) float32 -> (..., M, N). Vectorised over every output: one fma32 per K step."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    acc = np.zeros(np.broadcast_shapes(a.shape[:-1] + (1,), b.shape[:-2] + (1, b.shape[-1])), F32)
    for k in range(a.shape[-1]):
        acc = fma32(a[..., :, k:k + 1], b[..., k:k + 1, :], acc)
    return acc


def _sgemm_store(block, c, zero_mode: bool) -> np.ndarray:
    """The kernel's store with alpha = 1: acc (ZeroMode) or fma(acc, 1, C) = acc + C, one rounding."""
    return block if zero_mode else block + c


def sgemm_m1_kernel(a, b, c, zero_mode: bool) -> np.ndarray:
    """SgemmKernelM1Avx.S (M = 1, B not transposed): per output column, K in groups of 4 (then 2,
    then 1) steps, t = ((a0·b0 + a1·b1) + a2·b2) + a3·b3 with separate multiplies and adds, then
    C = t + C (t + 0 for the first group when beta is 0: vandnps of the beta mask).
    a (..., K), b (..., K, N), c (..., N)."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    k_total = a.shape[-1]
    groups = [4] * (k_total // 4) + ([2] if k_total & 2 else []) + ([1] if k_total & 1 else [])
    out, k = np.asarray(c, F32), 0
    for g in groups:
        t = a[..., k:k + 1] * b[..., k, :]
        for j in range(1, g):
            t = t + a[..., k + j:k + j + 1] * b[..., k + j, :]
        out = t + (F32(0) if zero_mode else out)
        zero_mode, k = False, k + g
    return out


def sgemm_m1_transpose_b_kernel(a, bt, c, zero_mode: bool) -> np.ndarray:
    """SgemmKernelM1TransposeBAvx.S: a (..., K) times the rows of bt (..., N, K): 8 lane sums (lane l
    adds a_k·b_k for k ≡ l mod 8 in order, vmulps then vaddps from +0), reduced by the output's
    place in MLAS's row blocks — rows in blocks of 4: ((l0+l1)+l2)+l3 + ((l4+l5)+l6)+l7; then a
    block of 2: ((l0+l2)+(l4+l6)) + ((l1+l3)+(l5+l7)); the last odd row: ((l0+l1)+(l2+l3)) +
    ((l4+l5)+(l6+l7)) — then + C (+ 0 when beta is 0)."""
    a, bt = np.asarray(a, F32), np.asarray(bt, F32)
    k_total, n_total = a.shape[-1], bt.shape[-2]
    shape = np.broadcast_shapes(a.shape[:-1] + (1,), bt.shape[:-1])
    lanes = [np.zeros(shape, F32) for _ in range(8)]
    for k in range(k_total):
        lanes[k % 8] = lanes[k % 8] + a[..., k:k + 1] * bt[..., :, k]
    l0, l1, l2, l3, l4, l5, l6, l7 = lanes
    by4 = (((l0 + l1) + l2) + l3) + (((l4 + l5) + l6) + l7)
    by2 = ((l0 + l2) + (l4 + l6)) + ((l1 + l3) + (l5 + l7))
    by1 = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
    n = np.arange(n_total)
    blocked = n_total // 4 * 4
    reduced = np.where(n < blocked, by4, np.where((n_total & 2 != 0) & (n < blocked + 2), by2, by1))
    return reduced + (F32(0) if zero_mode else np.asarray(c, F32))


def sgemm_operation(a, b, c, beta: int, *, trans_b: bool, ldb: int, ldc: int) -> np.ndarray:
    """MlasSgemmOperation (sgemm.cpp) with TransA = NoTrans and alpha = 1 on stacked problems:
    a (..., M, K), b (..., K, N) = op(B), c (..., M, N) (read when beta is 1); returns the new C.
    `trans_b`, `ldb`, `ldc` only pick MLAS's special cases: M = 1 takes the M1 kernels, N = 1 with
    ldb = ldc = 1 the transposed-B M1 kernel on swapped operands; otherwise N slices and K blocks
    (StrideN / StrideK reshaped as MLAS does for small N or K), each block by the FMA3 kernel,
    the first with ZeroMode when beta is 0, the others accumulated."""
    if beta not in (0, 1):
        raise ValueError(f"beta must be 0 or 1, got {beta}")
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    m, k_total = a.shape[-2:]
    n = b.shape[-1]
    c = np.broadcast_to(np.asarray(c, F32), np.broadcast_shapes(a.shape[:-1] + (n,), b.shape[:-2] + (m, n)))
    if k_total == 0:
        return np.zeros_like(c) if beta == 0 else c.copy()
    if m == 1:
        if trans_b:
            row = sgemm_m1_transpose_b_kernel(a[..., 0, :], np.swapaxes(b, -1, -2), c[..., 0, :], beta == 0)
        else:
            row = sgemm_m1_kernel(a[..., 0, :], b, c[..., 0, :], beta == 0)
        return row[..., None, :]
    if n == 1 and ldb == 1 and ldc == 1:   # Transpose(A·B) = Transpose(B)·Transpose(A)
        return sgemm_m1_transpose_b_kernel(b[..., :, 0], a, c[..., :, 0], beta == 0)[..., :, None]
    stride_n, stride_k = SGEMM_STRIDEN, SGEMM_STRIDEK
    if n >= k_total:
        while stride_k // 2 >= k_total:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    out = np.array(c, F32)
    for n0 in range(0, n, stride_n):
        cols = slice(n0, min(n, n0 + stride_n))
        zero_mode = beta == 0
        for k0 in range(0, k_total, stride_k):
            ks = slice(k0, min(k_total, k0 + stride_k))
            out[..., cols] = _sgemm_store(sgemm_fma_block(a[..., ks], b[..., ks, cols]), out[..., cols], zero_mode)
            zero_mode = False
    return out


def _partition_work(thread_id: int, thread_count: int, total: int) -> tuple[int, int]:
    """MlasPartitionWork: (start, count) of `total` work items for one of `thread_count` threads."""
    per, extra = divmod(total, thread_count)
    if thread_id < extra:
        return (per + 1) * thread_id, per + 1
    return per * thread_id + extra, per


def sgemm_thread_ranges(m: int, n: int, k: int, threads: int) -> list:
    """MlasGemmBatch (one GEMM): the (m0, m1, n0, n1) sub-GEMM of each thread. Threads wanted:
    ⌊M·N·K / 64Ki⌋ + 1, at most the intra-op thread count; N split in 16-column units when N > M,
    else M split."""
    target = min(int(float(m) * n * k / SGEMM_THREAD_COMPLEXITY) + 1, max(1, int(threads)))
    blocked_n = -(-n // SGEMM_THREAD_ALIGN)
    if n > m:
        count_m, count_n = 1, min(target, blocked_n)
    else:
        count_m, count_n = min(target, m), 1
    ranges = []
    for tid in range(count_m * count_n):
        m0, cm = _partition_work(tid // count_n, count_m, m)
        b0, cb = _partition_work(tid % count_n, count_n, blocked_n)
        n0 = b0 * SGEMM_THREAD_ALIGN
        cn = min(n - n0, cb * SGEMM_THREAD_ALIGN)
        if cm > 0 and cn > 0:
            ranges.append((m0, m0 + cm, n0, n0 + cn))
    return ranges


def mlas_gemm(x, weights, bias=None, *, packed_b: bool, threads: int = 1) -> np.ndarray:
    """ONNX Gemm (transA = 0, transB = 1, alpha = beta = 1) on MLAS, as gemm.cc runs it: the bias
    broadcast into Y first (beta = 1; without a bias beta = 0), then MlasGemmBatch. `packed_b`: B is
    an initializer ORT prepacked (MlasSgemmPackedOperation: 256-wide K blocks for every output, thread
    count irrelevant); else B is computed at run time (a DequantizeLinear of the weights): the
    threads' MlasSgemmOperation calls, TransB, ldb = K. x (M, K), weights (N, K) float32."""
    x, w = np.asarray(x, F32), np.asarray(weights, F32)
    m, k_total = x.shape
    n = w.shape[0]
    b = w.T
    y = np.zeros((m, n), F32)
    beta = 0
    if bias is not None:
        y[...] = np.asarray(bias, F32).reshape(1, -1)
        beta = 1
    if packed_b:
        zero_mode = beta == 0
        for k0 in range(0, k_total, SGEMM_PACKED_STRIDEK):
            ks = slice(k0, k0 + SGEMM_PACKED_STRIDEK)
            y = _sgemm_store(sgemm_fma_block(x[:, ks], b[ks]), y, zero_mode)
            zero_mode = False
        return y
    for m0, m1, n0, n1 in sgemm_thread_ranges(m, n, k_total, threads):
        y[m0:m1, n0:n1] = sgemm_operation(x[m0:m1], b[:, n0:n1], y[m0:m1, n0:n1], beta, trans_b=True,
                                          ldb=k_total, ldc=n)
    return y


def _im2col_chw(x, kernel, stride, pads, dilation, groups):
    """(N, G, K, OH·OW) float32 patches of NCHW x, K in (c, kh, kw) order per group, padding +0
    (MlasConvIm2Col), and (OH, OW)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, left, bottom, right = pads
    padded = np.zeros((n, c, h + top + bottom, w + left + right), F32)
    padded[:, :, top:top + h, left:left + w] = x
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(oh) * sh)[None, None, :, None]
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(ow) * sw)[None, None, None, :]
    windows = padded[:, :, rows, cols]                          # N, C, kh, kw, OH, OW
    return windows.reshape(n, groups, (c // groups) * kh * kw, oh * ow), (oh, ow)


def _conv_segment(filt, cols, out, start: int, count: int):
    """MlasConvOperation on output columns [start, start + count): N slices × K blocks of the
    segment (StrideN / StrideK reshaped by the segment width), each block an im2col panel and one
    MlasSgemmOperation (beta 0 first, then 1)."""
    k_total, output_size = filt.shape[-1], out.shape[-1]
    stride_n, stride_k = SGEMM_STRIDEN, SGEMM_STRIDEK
    if count >= k_total:
        while stride_k // 2 >= k_total:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= count:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    for n0 in range(0, count, stride_n):
        cn = min(stride_n, count - n0)
        cs = slice(start + n0, start + n0 + cn)
        beta = 0
        for k0 in range(0, k_total, stride_k):
            ks = slice(k0, min(k_total, k0 + stride_k))
            out[..., cs] = sgemm_operation(filt[..., ks], cols[..., ks, cs], out[..., cs], beta, trans_b=False,
                                           ldb=cn, ldc=output_size)
            beta = 1


def mlas_conv(x, weights, bias, stride, pads, dilation, groups: int, *, threads: int = 1) -> np.ndarray:
    """ONNX Conv on float32 NCHW as conv.cc runs it on MLAS (convolve.cpp MlasConvPrepare /
    MlasConv, Beta = 0), the NCHW path (no NCHWc rewrite): per image and group a GEMM of the
    filters (M/G, K) with the im2col patches (K, OH·OW), K in (c, kh, kw) order, as the algorithm
    MLAS picks computes it — GemmDirect (1×1 stride 1 unpadded, or a one-channel kernel spanning
    the width / the height): the threaded MlasGemm; ExpandThenGemm (more filters than output
    pixels): full im2col and the threaded MlasGemm; ExpandThenGemmSegmented: MlasConvOperation over
    thread segments of the output (one segment per image and group when there are several) — then
    the bias added (MlasActivation). `threads` = ORT's intra-op thread count (it changes the
    splits of a single image with one group)."""
    x, w = np.asarray(x, F32), np.asarray(weights, F32)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    filters = m // groups
    k_total = cg * kh * kw
    cols, (oh, ow) = _im2col_chw(x, (kh, kw), stride, pads, dilation, groups)
    output_size = oh * ow
    filt = w.reshape(groups, filters, k_total)[None]             # 1, G, M/G, K
    out = np.zeros((n, groups, filters, output_size), F32)
    threads = max(1, int(threads))
    several = n > 1 or groups > 1
    direct = None
    if tuple(stride) == (1, 1) and not any(pads):
        if k_total == cg:
            direct = (False, output_size)                         # (TransB, ldb)
        elif tuple(dilation) == (1, 1) and cg == 1:
            if kw == wd:
                direct = (True, wd)
            elif kh == h and kw == 1:
                direct = (False, wd)
    if direct is not None or filters > output_size:
        trans_b, ldb = direct if direct is not None else (False, output_size)
        if direct is not None and several:                        # MlasConvGemmDirectThreaded
            out = sgemm_operation(filt, cols, out, 0, trans_b=trans_b, ldb=ldb, ldc=output_size)
        else:                                                     # the threaded MlasGemm per image, group
            for m0, m1, n0, n1 in sgemm_thread_ranges(filters, output_size, k_total, threads):
                out[..., m0:m1, n0:n1] = sgemm_operation(filt[..., m0:m1, :], cols[..., n0:n1], out[..., m0:m1, n0:n1],
                                                         0, trans_b=trans_b, ldb=ldb, ldc=output_size)
    elif several:                                                 # MlasConvExpandThenGemmSegmentedThreaded
        _conv_segment(filt, cols, out, 0, output_size)
    else:                                                         # MlasConvTryMultithread
        complexity = float(filters) * output_size * k_total
        target = int(complexity / SGEMM_THREAD_COMPLEXITY) + 1 \
            if complexity < SGEMM_THREAD_COMPLEXITY * MLAS_MAXIMUM_THREADS else MLAS_MAXIMUM_THREADS
        target = min(target, threads)
        stride_n = -(-output_size // target)
        if target > 1:
            stride_n = -(-stride_n // SGEMM_THREAD_ALIGN) * SGEMM_THREAD_ALIGN
        for start in range(0, output_size, stride_n):
            _conv_segment(filt, cols, out, start, min(stride_n, output_size - start))
    if bias is not None:
        out = out + np.asarray(bias, F32).reshape(1, groups, filters, 1)
    return out.reshape(n, m, oh, ow)


# MlasExpConstants (compute.cpp) as the FMA3 sum-exp kernel reads them
_EXP_LOWER_SUMEXP = float32_literal("-88.3762626647949")
_EXP_ROUNDING_BIAS = F32(12582912.0)                   # MLAS_ROUNDING_BIAS_MAGIC, 1.5 · 2^23
_EXP_LOG2_RECIPROCAL = float32_literal("1.44269504088896341")
_EXP_LOG2_HIGH = float32_literal("-6.93145752e-1")
_EXP_LOG2_LOW = float32_literal("-1.42860677e-6")
_EXP_POLY = [F32(float.fromhex(t)) for t in ("0x1.694000p-10", "0x1.125edcp-7", "0x1.555b5ap-5", "0x1.555450p-3",
                                            "0x1.fffff6p-2", "0x1.000000p+0")]
_EXP_MAXIMUM_EXPONENT = 0x3F800000


def mlas_sum_exp_values(v) -> np.ndarray:
    """exp(v) of v = x − max as MlasComputeSumExpF32KernelFma3 computes it: v clamped below at
    −88.376 (vmaxps), m = fma(v, 1/ln2, 1.5·2^23) − 1.5·2^23, r = fma(m, ln2_low, fma(m, ln2_high,
    v)), a degree-6 polynomial by FMA Horner steps (poly_56 twice), times 2^m built in the exponent
    field ((bits(biased) << 23) + 0x3F800000)."""
    v = np.asarray(v, F32)
    v = np.where(_EXP_LOWER_SUMEXP > v, _EXP_LOWER_SUMEXP, v)
    biased = fma32(v, _EXP_LOG2_RECIPROCAL, _EXP_ROUNDING_BIAS)
    m = biased - _EXP_ROUNDING_BIAS
    r = fma32(m, _EXP_LOG2_LOW, fma32(m, _EXP_LOG2_HIGH, v))
    p = np.full(r.shape, _EXP_POLY[0], F32)
    for coefficient in _EXP_POLY[1:] + [_EXP_POLY[-1]]:
        p = fma32(p, r, coefficient)
    bits = wrap32((biased.view(np.int32).astype(np.int64) << 23) + _EXP_MAXIMUM_EXPONENT).astype(np.int32)
    return p * bits.view(F32)


def mlas_softmax_rows(rows) -> np.ndarray:
    """MlasComputeSoftmax per row (compute.cpp, FMA3 kernels): max, e = exp(x − max) (above), the
    row sum in 8 lanes (lane l adds e_i for i ≡ l mod 8 in order; a partial last vector adds +0)
    reduced ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)), then each e times float(1 / sum)."""
    rows = np.asarray(rows, F32)
    e = mlas_sum_exp_values(rows - rows.max(axis=-1, keepdims=True))
    d = rows.shape[-1]
    padded = np.zeros(rows.shape[:-1] + (-(-d // 8) * 8,), F32)
    padded[..., :d] = e
    lanes = np.zeros(rows.shape[:-1] + (8,), F32)
    for start in range(0, padded.shape[-1], 8):
        lanes = lanes + padded[..., start:start + 8]
    l0, l1, l2, l3, l4, l5, l6, l7 = (lanes[..., j] for j in range(8))
    total = ((l4 + l5) + (l6 + l7)) + ((l0 + l1) + (l2 + l3))
    return e * (F32(1.0) / total)[..., None]


def mlas_softmax(x, axis: int, opset: int = 13) -> np.ndarray:
    """ONNX Softmax on float32 (softmax.cc): opset ≥ 13 along `axis`, older opsets over the
    dimensions from `axis` on flattened."""
    x = np.asarray(x, F32)
    ax = axis % x.ndim
    if opset < 13:
        return mlas_softmax_rows(x.reshape(int(np.prod(x.shape[:ax])), -1)).reshape(x.shape)
    return np.moveaxis(mlas_softmax_rows(np.moveaxis(x, ax, -1)), -1, ax)


def mlas_average_pool(x, pool, stride, pads, count_include_pad: bool, ceil_mode: bool, opset: int = 13) -> np.ndarray:
    """ONNX AveragePool on float32 NCHW as pool.cc / MlasPool (pooling.cpp) compute it: a kernel
    covering the unpadded image with stride 1 runs the global kernel; last stride ≤ 2 and kernels ≤
    32 the 2-D vector kernel (each output row's column sums over the window's input rows first, in
    row order, then KW of them left to right from a buffer whose padding holds +0, divided by the
    valid count (exclude pad) or kh·kw); anything else the generic kernel (valid cells in row-major
    order from 0, same divisors). ceil_mode with count_include_pad, and every AveragePool of opset 19
    on, is ORT's own loop (`_average_pool_task`)."""
    x = np.asarray(x, F32)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = pool, stride
    top, left, bottom, right = pads
    if opset >= 19 or (ceil_mode and count_include_pad):
        return _average_pool_task(x, pool, stride, pads, count_include_pad, ceil_mode)
    oh, ow = window_output_hw(x.shape, pool, stride, pads, ceil_mode=ceil_mode)
    if (kh, kw) == (h, w) and (sh, sw) == (1, 1) and not any(pads):
        return _global_average_pool_mlas(x)
    if sw <= 2 and kh <= 32 and kw <= 32 and 2048 - 3 - left - right >= w:
        return _average_pool_vector(x, (kh, kw), (sh, sw), pads, (oh, ow), count_include_pad)
    out = np.zeros((n, c, oh, ow), F32)
    for y in range(oh):
        h0, h1 = max(y * sh - top, 0), min(y * sh - top + kh, h)
        for xo in range(ow):
            w0, w1 = max(xo * sw - left, 0), min(xo * sw - left + kw, w)
            total = np.zeros((n, c), F32)
            for r in range(h0, h1):
                for q in range(w0, w1):
                    total = total + x[:, :, r, q]
            count = kh * kw if count_include_pad else (h1 - h0) * (w1 - w0)
            out[:, :, y, xo] = total / F32(count)
    return out


def _average_pool_vector(x, pool, stride, pads, out_hw, count_include_pad):
    """MlasPool2DVectorKernel<MLAS_AVERAGE_POOLING> (see mlas_average_pool)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (oh, ow) = pool, stride, out_hw
    top, left, _, right = pads
    width = left + w + right + 3 + kw + (ow - 1) * sw          # buffer positions read, +0 beyond the input
    out = np.zeros((n, c, oh, ow), F32)
    p = np.arange(ow) * sw                                      # buffer position of each output's window
    for y in range(oh):
        start = y * sh - top
        end = min(start + kh, h)
        start = 0 if start < 0 or start >= h else start
        rows = end - start
        buffer = np.zeros((n, c, width), F32)
        column = x[:, :, start, :]
        for r in range(start + 1, end):
            column = column + x[:, :, r, :]
        buffer[:, :, left:left + w] = column
        total = buffer[:, :, p]
        for t in range(1, kw):
            total = total + buffer[:, :, p + t]
        if count_include_pad:
            divisor = F32(kh * kw)
        else:
            delta = (np.minimum(p + kw, left + w) - np.maximum(p, left)).astype(F32)
            divisor = np.maximum(delta * F32(rows), F32(1.0))
        out[:, :, y, :] = total / divisor
    return out


def _average_pool_task(x, pool, stride, pads, count_include_pad: bool, ceil_mode: bool):
    """ORT's own average-pooling loop (pool.cc / pool_functors.h AveragePool2DTask: AveragePool-19, and
    ceil_mode with count_include_pad before it): the valid cells summed in row-major order from 0,
    divided by the valid count, or with count_include_pad by the window's cells inside the padded
    input (hend = min(hstart + kh, H + bottom), wend = min(wstart + kw, W + right); measured against
    onnxruntime 1.32 with asymmetric pads, tests/test_quant_reference_affine_mlas.py)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = pool, stride
    top, left, bottom, right = pads
    oh, ow = window_output_hw(x.shape, pool, stride, pads, ceil_mode=ceil_mode)
    out = np.zeros((n, c, oh, ow), F32)
    for y in range(oh):
        hs = y * sh - top
        he = min(hs + kh, h + bottom)
        for xo in range(ow):
            ws = xo * sw - left
            we = min(ws + kw, w + right)
            total, cells = np.zeros((n, c), F32), 0
            for r in range(max(hs, 0), min(he, h)):
                for q in range(max(ws, 0), min(we, w)):
                    total = total + x[:, :, r, q]
                    cells += 1
            count = (he - hs) * (we - ws) if count_include_pad else cells
            out[:, :, y, xo] = total / F32(count) if count else total
    return out


def _resize_coordinate(out_index, scale: np.float32, out_len: int, in_len: int, mode: str) -> np.ndarray:
    """GetOriginalCoordinateFromResizedCoordinate (upsamplebase.h) in float32."""
    xr, s = np.asarray(out_index, F32), F32(scale)
    if mode == "asymmetric":
        return xr / s
    if mode == "half_pixel":
        return (xr + F32(0.5)) / s - F32(0.5)
    if mode == "pytorch_half_pixel":
        return (xr + F32(0.5)) / s - F32(0.5) if out_len > 1 else np.zeros_like(xr)
    if mode == "tf_half_pixel_for_nn":
        return (xr + F32(0.5)) / s
    if mode == "align_corners":
        return np.zeros_like(xr) if out_len == 1 else (xr * F32(in_len - 1)) / F32(out_len - 1)
    raise ValueError(f"coordinate_transformation_mode {mode!r} is not re-derived")


def _bilinear_axis(in_len: int, out_len: int, scale, mode: str):
    """SetupUpsampleBilinear / SetupUpsampleBilinearInteger for one axis: (i1, i2, d1, d2, d1_10, d2_10):
    v = clamp(coordinate, 0, L − 1) (the identity when the scale is 1), i1 = min(int(v), L − 1),
    i2 = min(i1 + 1, L − 1), d = |v − i| in float and |int(v · 1024) − i · 1024| in 10-bit integers;
    0.5 (512) each when i1 = i2."""
    index = np.arange(out_len)
    v = index.astype(F32) if F32(scale) == F32(1) else _resize_coordinate(index, scale, out_len, in_len, mode)
    v = np.maximum(F32(0), np.minimum(v, F32(in_len - 1)))
    i1 = np.minimum(v.astype(np.int64), in_len - 1)
    i2 = np.minimum(i1 + 1, in_len - 1)
    d1, d2 = np.abs(v - i1.astype(F32)), np.abs(v - i2.astype(F32))
    v10 = (v * F32(1024)).astype(np.int64)
    d1_10, d2_10 = np.abs(v10 - i1 * 1024), np.abs(v10 - i2 * 1024)
    same = i1 == i2
    return (i1, i2, np.where(same, F32(0.5), d1).astype(F32), np.where(same, F32(0.5), d2).astype(F32),
            np.where(same, 512, d1_10), np.where(same, 512, d2_10))


def ort_resize_linear(x, scales, mode: str, *, integer_nhwc: bool = False) -> np.ndarray:
    """ONNX Resize, linear, of an NCHW tensor over H and W (upsample.cc). Float (and integers read
    by the NCHW kernel, UpsampleBilinear): y = T((dx2·dy2)·X11 + (dx1·dy2)·X21 + (dx2·dy1)·X12 +
    (dx1·dy1)·X22) — products and sums in float32, left to right, truncated to an integer type.
    `integer_nhwc` (NhwcUpsampleBilinearInteger, uint8 / int8 in NHWC): the same with 10-bit integer
    weights, an exact int32 sum divided by 2^20 toward zero. Output size int64(float32(s)·float32(L))."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    sh, sw = (F32(s) for s in scales)
    oh, ow = int(sh * F32(h)), int(sw * F32(w))
    y1, y2, dy1, dy2, dy1i, dy2i = _bilinear_axis(h, oh, sh, mode)
    x1, x2, dx1, dx2, dx1i, dx2i = _bilinear_axis(w, ow, sw, mode)
    corners = [x[:, :, ry[:, None], rx[None, :]] for ry, rx in ((y1, x1), (y1, x2), (y2, x1), (y2, x2))]
    if integer_nhwc:
        weights = [dx2i[None, :] * dy2i[:, None], dx1i[None, :] * dy2i[:, None], dx2i[None, :] * dy1i[:, None],
                   dx1i[None, :] * dy1i[:, None]]
        total = sum(wgt * v.astype(np.int64) for wgt, v in zip(weights, corners))
        return (np.sign(total) * (np.abs(total) >> 20)).astype(x.dtype)
    weights = [dx2[None, :] * dy2[:, None], dx1[None, :] * dy2[:, None], dx2[None, :] * dy1[:, None],
               dx1[None, :] * dy1[:, None]]
    total = weights[0] * corners[0].astype(F32)
    for wgt, v in zip(weights[1:], corners[1:]):
        total = total + wgt * v.astype(F32)
    if x.dtype == F32:
        return total
    return np.trunc(total).astype(np.int64).astype(x.dtype)


# =================================================================================================
# MLAS's NCHWc kernels (ORT_ENABLE_ALL's NchwcTransformer; mlas/lib/snchwc.cpp MlasNchwcConv /
# MlasNchwcPool, x86_64/SconvKernelCommon.h ProcessOutputCountN / ComputeBlock, SpoolKernelAvx.S), in
# the order docs/runtimes-onnxruntime-ops.md ("NCHWc Conv and pooling") states
# =================================================================================================
def _taps(x, kernel, stride, pads, dilation, fill=0.0):
    """For each tap (i, j) in (kh, kw) order: the input values under it for every output, (N, C, OH, OW),
    and the mask (OH, OW) of outputs for which the tap lies inside the input (padding taps are skipped)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, left, bottom, right = pads
    oh, ow = window_output_hw(x.shape, kernel, stride, pads, dilation)
    padded = np.full((n, c, h + top + bottom + kh * dh, w + left + right + kw * dw), fill, F32)
    padded[:, :, top:top + h, left:left + w] = x
    taps = []
    for i in range(kh):
        rows = np.arange(oh) * sh + i * dh
        row_ok = (rows >= top) & (rows < top + h)
        for j in range(kw):
            cols = np.arange(ow) * sw + j * dw
            col_ok = (cols >= left) & (cols < left + w)
            taps.append((padded[:, :, rows[:, None], cols[None, :]], row_ok[:, None] & col_ok[None, :]))
    return taps, (oh, ow)


def mlas_nchwc_conv(x, weights, bias, stride, pads, dilation, groups: int, block: int) -> np.ndarray:
    """A float Conv as MlasNchwcConv computes it with NCHWc block `block` (8: AVX2 + FMA3, 16: AVX-512F):
    per output and filter one accumulator per kernel call, from +0, acc = fma(x, w, acc) over the valid
    taps in (kh, kw) order and per tap the call's input channels in order. The calls: depthwise (one
    input and one output channel per group) one call; group 1 with fewer input channels than the block
    ("Nchw") one call per input channel; 1×1 unpadded ("Pointwise") one call per 128 input channels;
    otherwise ("Nchwc") one call per block of input channels of a group (channels past the count are the
    zero padding, which adds nothing). out = first call's acc, then acc + out per further call; then +
    bias. The thread split never cuts an output's sum (any thread count)."""
    x, w = np.asarray(x, F32), np.asarray(weights, F32)
    m, cg, kh, kw = w.shape
    taps, (oh, ow) = _taps(x, (kh, kw), stride, pads, dilation)
    n = x.shape[0]
    if cg == 1 and m == groups:                               # depthwise: one call
        acc = np.zeros((n, m, oh, ow), F32)
        for (i, j), (values, valid) in zip(((i, j) for i in range(kh) for j in range(kw)), taps):
            acc = np.where(valid, fma32(w[None, :, 0, i, j, None, None], values, acc), acc)
        out = acc
    else:
        mg = m // groups
        pointwise = (kh, kw) == (1, 1) and not any(pads)
        if groups == 1 and cg < block:
            calls = [[c] for c in range(cg)]
        else:
            size = 128 if pointwise and groups == 1 else block
            calls = [list(range(s, min(s + size, cg))) for s in range(0, cg, size)]
        out = np.zeros((n, m, oh, ow), F32)
        for g in range(groups):
            filters = w[g * mg:(g + 1) * mg]
            total = None
            for call in calls:
                acc = np.zeros((n, mg, oh, ow), F32)
                for t, (values, valid) in enumerate(taps):
                    i, j = divmod(t, kw)
                    for c in call:
                        product = fma32(values[:, g * cg + c, None], filters[None, :, c, i, j, None, None], acc)
                        acc = np.where(valid, product, acc)
                total = acc if total is None else acc + total
            out[:, g * mg:(g + 1) * mg] = total
    if bias is not None:
        out = out + np.asarray(bias, F32).reshape(1, -1, 1, 1)
    return out


def mlas_nchwc_average_pool(x, pool, stride, pads, count_include_pad: bool, ceil_mode: bool) -> np.ndarray:
    """MlasNchwcPool, average (SpoolKernelAvx.S): per channel the valid taps in (kh, kw) order summed from
    +0, divided by the number of valid taps (exclude pad) or kh·kw (include pad)."""
    x = np.asarray(x, F32)
    (kh, kw), (sh, sw) = pool, stride
    top, left, bottom, right = pads
    oh, ow = window_output_hw(x.shape, pool, stride, pads, ceil_mode=ceil_mode)
    h, w = x.shape[2:]
    pads = (top, left, max(bottom, (oh - 1) * sh + kh - h - top), max(right, (ow - 1) * sw + kw - w - left))
    taps, _ = _taps(x, pool, stride, pads, (1, 1))
    total = np.zeros(x.shape[:2] + (oh, ow), F32)
    count = np.zeros((oh, ow), np.int64)
    for values, valid in taps:
        total = np.where(valid, total + values[:, :, :oh, :ow], total)
        count += valid[:oh, :ow]
    divisor = F32(kh * kw) if count_include_pad else count.astype(F32)
    return total / divisor


def mlas_nchwc_global_average_pool(x) -> np.ndarray:
    """MlasNchwcPool, global average: the image's values in (h, w) order summed from +0, / (H·W)."""
    x = np.asarray(x, F32)
    n, c, h, w = x.shape
    total = np.zeros((n, c), F32)
    for r in range(h):
        for q in range(w):
            total = total + x[:, :, r, q]
    return (total / F32(h * w)).reshape(n, c, 1, 1)
