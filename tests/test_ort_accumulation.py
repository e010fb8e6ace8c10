"""ONNX Runtime's integer accumulation, bit for bit: fixedpoint's gemm / conv2d with the accumulation
`ort_accumulation` names, against

(a) the real onnxruntime 1.32 on an AVX2 CPU profile (natively on a host without VNNI; on a VNNI host
    the whole group reruns under `qemu-x86_64 -cpu Haswell`, else it is skipped with the reason),
(b) an independent numpy reference of MLAS's int16 pair saturation (any host),
(c) numpy int64 for the VNNI profile and the exact routes (any host).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fixedpoint import kernels as K
from fixedpoint.kernels import Accumulation, Requantizer, conv2d, gemm, ort_accumulation
from fixedpoint.kernels.requantize import fp32_scale
from kernel_paths import on_every_path, restore_settings  # noqa: F401 (autouse fixture: settings restored)

HOST = K.host_ort_profile()
UNDER_QEMU = os.environ.get("FIXEDPOINT_ORT_UNDER_QEMU") == "1"
QEMU = shutil.which("qemu-x86_64")


# ---- independent references (never call the code under test) --------------------------------------
def wrap32(v):
    return ((np.asarray(v, np.int64) + 2**31) % 2**32 - 2**31).astype(np.int64)


def ref_pair_sat(a, b):
    """sum over pairs (4q, 4q+1), (4q+2, 4q+3) of clip(a0*b0 + a1*b1, int16); K zero-padded to 4."""
    m, k = a.shape
    kp = -(-k // 4) * 4
    ap = np.zeros((m, kp), np.int64)
    ap[:, :k] = a
    bp = np.zeros((kp, b.shape[1]), np.int64)
    bp[:k] = b
    s = np.zeros((m, b.shape[1]), np.int64)
    for p in range(0, kp, 2):
        s += np.clip(ap[:, p:p + 1] * bp[p] + ap[:, p + 1:p + 2] * bp[p + 1], -32768, 32767)
    return s


def ref_gemm(a, b, za, zb, sat):
    """(A - za)(B - zb) with the raw product exact or pair-saturated, corrections exact."""
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    zb = np.broadcast_to(np.asarray(zb, np.int64), (b.shape[1],))
    if not sat:
        return wrap32((a64 - za) @ (b64 - zb[None, :]))
    k = a.shape[1]
    raw = ref_pair_sat(a64, b64)
    return wrap32(raw - zb[None, :] * a64.sum(1)[:, None] - za * b64.sum(0)[None, :] + k * za * zb[None, :])


def ref_cols(x, kh, kw, stride, dil, pads, zp, order):
    """im2col of one image's channels (C, H, W) -> (pixels, K) in order 'hwc' or 'chw'."""
    c, h, w = x.shape
    pt, pl, pb, pr = pads
    xp = np.full((c, h + pt + pb, w + pl + pr), zp, np.int64)
    xp[:, pt:pt + h, pl:pl + w] = x
    oh = (h + pt + pb - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pl + pr - dil[1] * (kw - 1) - 1) // stride[1] + 1
    cols = np.zeros((kh, kw, c, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[i, j] = xp[:, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                            j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
    if order == "hwc":
        return cols.reshape(kh * kw * c, oh * ow).T, (oh, ow)
    return cols.transpose(2, 0, 1, 3, 4).reshape(c * kh * kw, oh * ow).T, (oh, ow)


def ref_conv(x, w, xzp, wzp, groups=1, stride=(1, 1), dil=(1, 1), pads=(0, 0, 0, 0), sat=False, order="hwc"):
    """int64 (N, O, oh, ow) of (x - xzp)(w - wzp), the raw products pair-saturated in `order` if sat."""
    n_, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    wzp = np.broadcast_to(np.asarray(wzp, np.int64), (o,))
    out = []
    for n in range(n_):
        per = []
        for g in range(groups):
            cols, (oh, ow) = ref_cols(x[n, g * cg:(g + 1) * cg].astype(np.int64), kh, kw, stride, dil, pads, xzp, order)
            wg = w[g * og:(g + 1) * og].astype(np.int64)
            bmat = wg.transpose(2, 3, 1, 0).reshape(-1, og) if order == "hwc" else wg.reshape(og, -1).T
            zb = wzp[g * og:(g + 1) * og]
            if sat and w.dtype == np.uint8:  # the weights are vpmaddubsw's unsigned operand
                k = bmat.shape[0]
                raw = ref_pair_sat(bmat.T, cols.T).T
                acc = raw - zb[None, :] * cols.sum(1)[:, None] - xzp * bmat.sum(0)[None, :] + k * xzp * zb[None, :]
            else:
                acc = ref_gemm(cols, bmat, xzp, zb, sat)
            per.append(acc.T.reshape(og, oh, ow))
        out.append(np.concatenate(per))
    return wrap32(np.stack(out))


def ref_requant(acc, bias, scale, zp, dtype, axis=1, clamp=None):
    """ORT's MlasRequantizeOutput, written out independently: RNE(clamp(f32(acc+bias)*scale)) + zp."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    a = wrap32(acc + (0 if bias is None else np.asarray(bias, np.int64).reshape(shape))).astype(np.int32)
    info = np.iinfo(dtype)
    lo, hi = (info.min, info.max) if clamp is None else clamp
    y = a.astype(np.float32) * np.asarray(scale, np.float32).reshape(shape if np.ndim(scale) else ())
    y = np.clip(y, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(y).astype(np.int32) + zp).astype(dtype)


def rnd(rng, dtype, shape, hi=None):
    info = np.iinfo(dtype)
    return rng.integers(info.min, (info.max if hi is None else hi) + 1, shape).astype(dtype)


# ---- (b) the emulation against the numpy reference, any host ----------------------------------------
@pytest.fixture(params=["auto", "portable"])
def kernel_path(request, monkeypatch):
    if request.param == "portable":
        monkeypatch.setenv("FIXEDPOINT_FORCE_PORTABLE", "1")
    return request.param


@pytest.mark.parametrize("m,k,n", [(1, 64, 8), (5, 37, 19), (13, 130, 33), (70, 300, 40), (3, 1, 5), (2, 6, 17)])
@pytest.mark.parametrize("small", [False, True])
def test_gemm_int16_pairs_matches_numpy(kernel_path, m, k, n, small):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rnd(rng, np.uint8, (m, k), hi=127 if small else None)
    b = rnd(rng, np.int8, (k, n))
    za, zb = int(rng.integers(0, 256)), rng.integers(-128, 128, n).astype(np.int32)
    bias = rng.integers(-10**6, 10**6, n).astype(np.int32)
    want = wrap32(ref_gemm(a, b, za, zb, sat=True) + bias)
    for bb in (b, K.pack_weights(b)):
        got = gemm(a, bb, a_zero_point=za, b_zero_point=zb, bias=bias, accumulation="int16_pairs")
        assert np.array_equal(got, want)
    if small:  # u8 <= 127: no pair can saturate, the result is the exact one
        assert np.array_equal(want, wrap32(ref_gemm(a, b, za, zb, sat=False) + bias))
    else:      # full range: saturation happens, so the test can tell the two apart
        assert not np.array_equal(want, wrap32(ref_gemm(a, b, za, zb, sat=False) + bias)) or m * k * n < 500


def test_gemm_int16_pairs_fused_requantizer(kernel_path):
    rng = np.random.default_rng(3)
    a, b = rnd(rng, np.uint8, (9, 75)), rnd(rng, np.int8, (75, 12))
    scale = rng.uniform(1e-4, 1e-2, 12).astype(np.float32)
    rq = Requantizer.fp32(scale, zero_point=7, dtype=np.uint8)
    got = gemm(a, b, a_zero_point=3, b_zero_point=0, accumulation=Accumulation("int16_pairs"), requantizer=rq)
    assert np.array_equal(got, ref_requant(ref_gemm(a, b, 3, 0, True), None, scale, 7, np.uint8, axis=1))


CONV_CASES = [  # C, O, k, groups, stride, dilation, pad, H, W
    (8, 6, 3, 1, 1, 1, 1, 7, 6), (3, 5, 3, 1, 1, 1, 1, 7, 6), (5, 4, 3, 1, 2, 1, 0, 9, 8), (16, 8, 1, 1, 1, 1, 0, 5, 5),
    (8, 8, 3, 2, 1, 2, 2, 9, 9), (6, 12, 3, 6, 1, 1, 1, 6, 7), (7, 3, 1, 1, 2, 1, 0, 6, 6)]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtypes,order", [((np.uint8, np.int8), "hwc"), ((np.int8, np.uint8), "chw"),
                                          ((np.uint8, np.int8), "chw"), ((np.int8, np.uint8), "hwc")])
def test_conv_int16_pairs_matches_numpy(kernel_path, case, dtypes, order):
    c, o, k, groups, s, d, p, h, w_ = case
    rng = np.random.default_rng(c * 100 + o + k)
    x, w = rnd(rng, dtypes[0], (2, c, h, w_)), rnd(rng, dtypes[1], (o, c // groups, k, k))
    xzp = int(rng.integers(np.iinfo(dtypes[0]).min, np.iinfo(dtypes[0]).max + 1))
    wzp = rng.integers(np.iinfo(dtypes[1]).min, np.iinfo(dtypes[1]).max + 1, o).astype(np.int32)
    got = conv2d(x, w, x_zero_point=xzp, w_zero_point=wzp, groups=groups, stride=s, dilation=d, padding=p,
                 accumulation=f"int16_pairs:{order}")
    want = ref_conv(x, w, xzp, wzp, groups, (s, s), (d, d), (p,) * 4, sat=True, order=order)
    assert np.array_equal(got, want)


# The GEMM convolution's code paths (csrc/kernels/conv_gemm.cpp): the image interleaved by 4 channels (K
# order hwc with whole channel quads, any stride), the planar contiguous grid (stride 1 otherwise) and
# the gathered one (other strides); several row blocks (O > 120), column tiles and chunks of images,
# two K blocks (K > 576), odd K, groups, dilation, asymmetric padding, non-square kernels.
ROUTE_CASES = [  # N, C, O, (kh, kw), groups, stride, dilation, pads (top, left, bottom, right), H, W
    (3, 8, 6, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 9, 7),      # interleaved, stride 1
    (2, 8, 10, (3, 3), 1, (2, 2), (1, 1), (1, 1, 1, 1), 9, 8),     # interleaved, stride 2
    (2, 12, 9, (3, 2), 3, (1, 2), (2, 1), (0, 1, 2, 3), 8, 9),     # interleaved groups of 4 channels
    (2, 5, 7, (3, 3), 1, (1, 1), (1, 2), (2, 1, 0, 1), 7, 11),     # planar contiguous (hwc, C = 5), odd K
    (2, 3, 4, (5, 5), 1, (2, 1), (1, 1), (2, 2, 2, 2), 10, 9),     # planar gathered, K = 75
    (1, 80, 8, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 6, 6),     # K = 720: two K blocks
    (1, 4, 130, (1, 1), 1, (1, 1), (1, 1), (0, 0, 0, 0), 5, 5),    # O = 130: two row blocks
    (1, 16, 24, (3, 3), 2, (1, 1), (1, 1), (1, 1, 1, 1), 30, 31),  # several column tiles per image
    (37, 8, 16, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 8, 8),    # small images: chunks, each GEMM threaded
    (40, 8, 16, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 16, 16),  # chunks of images on the threads
    (9, 16, 32, (1, 1), 1, (1, 1), (1, 1), (0, 0, 0, 0), 4, 4),    # 1x1: an image is one run of pixels
    # the direct form (interleaved, unit stride along rows, out_w a multiple of 4):
    (3, 8, 13, (3, 3), 1, (2, 1), (1, 1), (1, 1, 1, 1), 9, 12),    # 4-pixel blocks, 60 pixels: a partial panel
    (2, 16, 10, (3, 3), 2, (1, 1), (2, 2), (2, 2, 2, 2), 12, 16),  # 8-pixel blocks, groups, dilation
    (1, 96, 8, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 8, 8),     # K = 864 in one pass
    (1, 32, 16, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), 24, 24),  # one image, its panels on the threads
    (4, 8, 16, (3, 3), 8, (2, 2), (1, 1), (1, 1, 1, 1), 9, 9),     # depthwise x2, stride 2 (exact: direct kernel)
]


def _route_call(case, x, w, xzp, wzp, order, rq=None, bias=None):
    n, c, o, (kh, kw), groups, stride, dil, pads, h, w_ = case
    return conv2d(x, w, x_zero_point=xzp, w_zero_point=wzp, groups=groups, stride=stride, dilation=dil,
                  padding=pads, bias=bias, requantizer=rq, accumulation=f"int16_pairs:{order}" if order else None)


@pytest.mark.parametrize("case", ROUTE_CASES)
@pytest.mark.parametrize("order", ["hwc", "chw"])
@pytest.mark.parametrize("dtypes", [(np.uint8, np.int8), (np.int8, np.uint8)])
def test_conv_int16_pairs_route_geometries(case, order, dtypes):
    """Every path (AVX2 vpmaddubsw, portable) and 1 and 2 threads give the numpy pair reference's bits, int32
    and requantized, with weight zero points zero and per channel, and the packed weights reused."""
    n, c, o, (kh, kw), groups, stride, dil, pads, h, w_ = case
    rng = np.random.default_rng(n * 1000 + c * 10 + o)
    x, w = rnd(rng, dtypes[0], (n, c, h, w_)), rnd(rng, dtypes[1], (o, c // groups, kh, kw))
    xzp = int(rng.integers(np.iinfo(dtypes[0]).min, np.iinfo(dtypes[0]).max + 1))
    wzps = [0 if dtypes[1] == np.int8 else 128,
            rng.integers(np.iinfo(dtypes[1]).min, np.iinfo(dtypes[1]).max + 1, o).astype(np.int32)]
    packed = K.pack_weights(w, groups=groups)
    for wzp in wzps:
        want = ref_conv(x, w, xzp, wzp, groups, stride, dil, pads, sat=True, order=order)
        if isinstance(wzp, int) and dtypes[0] == np.uint8:  # full-range images: some pairs saturate
            assert not np.array_equal(want, ref_conv(x, w, xzp, wzp, groups, stride, dil, pads))
        got = on_every_path(lambda: _route_call(case, x, packed, xzp, wzp, order), ("avx2", "portable"))
        assert np.array_equal(got, want)
    scale = rng.uniform(1e-4, 1e-2, o).astype(np.float32)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    rq = Requantizer.fp32(scale, zero_point=3, dtype=dtypes[0])
    got = on_every_path(lambda: _route_call(case, x, packed, xzp, wzp, order, rq, bias), ("avx2", "portable"))
    assert np.array_equal(got, ref_requant(want, bias, scale, 3, dtypes[0]))


@pytest.mark.parametrize("case", [ROUTE_CASES[i] for i in (0, 4, 10, 11, 12)])
def test_conv_int16_pairs_route_requantizers(case):
    """The stores of every output form: int32, fp32 into uint8 with an activation clamp, into int8 and
    int16 (the direct form requantizes in registers), and another requantizer mode (a separate call)."""
    n, c, o, (kh, kw), groups, stride, dil, pads, h, w_ = case
    rng = np.random.default_rng(o * 31 + c)
    x, w = rnd(rng, np.uint8, (n, c, h, w_)), rnd(rng, np.int8, (o, c // groups, kh, kw))
    packed = K.pack_weights(w, groups=groups)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    scale = rng.uniform(1e-4, 1e-2, o).astype(np.float32)
    want = ref_conv(x, w, 11, 0, groups, stride, dil, pads, sat=True, order="hwc")
    run = lambda rq: on_every_path(lambda: _route_call(case, x, packed, 11, 0, "hwc", rq, bias), ("avx2", "portable"))
    assert np.array_equal(run(None), wrap32(want + bias[None, :, None, None]))
    for dtype, zp, clamp in [(np.uint8, 3, (10, 200)), (np.int8, -5, None), (np.int16, 7, None)]:
        rq = Requantizer.fp32(scale, zero_point=zp, dtype=dtype, clamp=clamp)
        assert np.array_equal(run(rq), ref_requant(want, bias, scale, zp, dtype, clamp=clamp))
    rq = Requantizer.gemmlowp(scale.astype(np.float64), zero_point=-2, dtype=np.int8)
    assert np.array_equal(run(rq), rq(wrap32(want + bias[None, :, None, None]).astype(np.int32)))


@pytest.mark.parametrize("case", ROUTE_CASES)
@pytest.mark.parametrize("xdt,small", [(np.uint8, False), (np.uint8, True), (np.int8, False)])
def test_conv_weight_zero_point_route_geometries(case, xdt, small):
    """The exact route with weight zero points: int16 pairs for full-range images (from an image of int16
    channel pairs where the direct form applies), quads (interleaved where whole channel quads) for
    images <= 127, on every path and 1 and 2 threads."""
    n, c, o, (kh, kw), groups, stride, dil, pads, h, w_ = case
    rng = np.random.default_rng(n * 100 + c + o)
    x = rnd(rng, xdt, (n, c, h, w_), hi=127 if small else None)
    xzp = int(rng.integers(np.iinfo(xdt).min, 128 if small else np.iinfo(xdt).max + 1))
    for w, wzp in [(rnd(rng, np.uint8, (o, c // groups, kh, kw)), 129),
                   (rnd(rng, np.int8, (o, c // groups, kh, kw)), rng.integers(-128, 128, o).astype(np.int32))]:
        packed = K.pack_weights(w, groups=groups)
        got = on_every_path(lambda: _route_call(case, x, packed, xzp, wzp, None))
        assert np.array_equal(got, ref_conv(x, w, xzp, wzp, groups, stride, dil, pads))


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("xdt,wdt", [(np.uint8, np.uint8), (np.int8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8)])
def test_conv_weight_zero_point_exact(kernel_path, case, xdt, wdt):
    c, o, k, groups, s, d, p, h, w_ = case
    rng = np.random.default_rng(c + o * 7 + k)
    x, w = rnd(rng, xdt, (2, c, h, w_)), rnd(rng, wdt, (o, c // groups, k, k))
    xzp = int(rng.integers(np.iinfo(xdt).min, np.iinfo(xdt).max + 1))
    for wzp in (int(rng.integers(np.iinfo(wdt).min, np.iinfo(wdt).max + 1)),
                rng.integers(np.iinfo(wdt).min, np.iinfo(wdt).max + 1, o).astype(np.int32)):
        want = ref_conv(x, w, xzp, wzp, groups, (s, s), (d, d), (p,) * 4)
        for ww in (w, K.pack_weights(w, groups=groups)):
            got = conv2d(x, ww, x_zero_point=xzp, w_zero_point=wzp, groups=groups, stride=s, dilation=d, padding=p)
            assert np.array_equal(got, want)
    scale = rng.uniform(1e-4, 1e-2, o).astype(np.float32)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    got = conv2d(x, w, x_zero_point=xzp, w_zero_point=wzp, groups=groups, stride=s, dilation=d, padding=p, bias=bias,
                 requantizer=Requantizer.fp32(scale, zero_point=5, dtype=np.uint8))
    assert np.array_equal(got, ref_requant(want, bias, scale, 5, np.uint8))


def test_conv_route_usual_call_equals_the_general_route():
    """A packed layer's usual call (int geometry, int or int32-array zero points: the one-pass checks of
    conv.py) gives the general route's bits, and bad zero points still raise ValueError."""
    rng = np.random.default_rng(21)
    x = rnd(rng, np.uint8, (3, 8, 8, 8))
    for w, acc, wzps in [(rnd(rng, np.int8, (16, 8, 3, 3)), "int16_pairs:hwc", [0, rng.integers(-9, 9, 16).astype(np.int32)]),
                         (rnd(rng, np.uint8, (16, 8, 3, 3)), None, [128, np.full(1, 130, np.int32)])]:
        packed = K.pack_weights(w)
        bias = rng.integers(-3000, 3000, 16).astype(np.int32)
        scale = rng.uniform(1e-3, 1e-2, 16).astype(np.float32)
        rq = Requantizer.fp32(scale, zero_point=4, dtype=np.uint8)
        for wzp in wzps:
            fast = conv2d(x, packed, x_zero_point=7, w_zero_point=wzp, padding=1, bias=bias, requantizer=rq, accumulation=acc)
            general = conv2d(x, w, x_zero_point=7, w_zero_point=wzp, padding=(1, 1), stride=(1, 1), bias=bias,
                             requantizer=rq, accumulation=acc)
            assert np.array_equal(fast, general)
            want = ref_conv(x, w, 7, wzp, pads=(1,) * 4, sat=acc is not None)
            assert np.array_equal(fast, ref_requant(want, bias, scale, 4, np.uint8))
    packed = K.pack_weights(rnd(rng, np.int8, (16, 8, 3, 3)))
    with pytest.raises(ValueError, match="w_zero_point"):
        conv2d(x, packed, w_zero_point=200, padding=1, accumulation="int16_pairs:hwc")
    with pytest.raises(ValueError, match="w_zero_point"):
        conv2d(x, packed, w_zero_point=np.full(16, 300, np.int32), padding=1, accumulation="int16_pairs:hwc")
    with pytest.raises(ValueError, match="exactly one uint8"):
        conv2d(x, K.pack_weights(rnd(rng, np.uint8, (16, 8, 3, 3))), padding=1, accumulation="int16_pairs:hwc")


@pytest.mark.parametrize("m,k,n", [(1, 16, 3), (7, 45, 20)])
def test_gemm_uint8_b_exact(kernel_path, m, k, n):
    rng = np.random.default_rng(k)
    for adt in (np.uint8, np.int8):
        a, b = rnd(rng, adt, (m, k)), rnd(rng, np.uint8, (k, n))
        zb = rng.integers(0, 256, n).astype(np.int32)
        for bb in (b, K.pack_weights(b)):
            assert np.array_equal(gemm(a, bb, a_zero_point=2, b_zero_point=zb), ref_gemm(a, b, 2, zb, False))
            assert np.array_equal(gemm(a, bb, b_zero_point=131, overflow="raise"), ref_gemm(a, b, 0, 131, False))


# ---- (c) the VNNI profile is exact, any host -------------------------------------------------------
@pytest.mark.parametrize("op", ["MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "QLinearConv"])
def test_vnni_profile_is_exact(op):
    acc = ort_accumulation(op, "vnni", activation_dtype=np.uint8, weight_dtype=np.int8, groups=1, in_channels=8,
                           out_channels=4)
    assert acc.kind == "exact"
    rng = np.random.default_rng(1)
    if op == "QLinearConv":
        x, w = rnd(rng, np.uint8, (1, 8, 6, 6)), rnd(rng, np.int8, (4, 8, 3, 3))
        assert np.array_equal(conv2d(x, w, x_zero_point=9, padding=1, accumulation=acc), ref_conv(x, w, 9, 0, pads=(1,) * 4))
    else:
        a, b = rnd(rng, np.uint8, (6, 70)), rnd(rng, np.int8, (70, 9))
        assert np.array_equal(gemm(a, b, a_zero_point=9, b_zero_point=-3, accumulation=acc), ref_gemm(a, b, 9, -3, False))


# ---- the rules and the API ----------------------------------------------------------------------------
def test_ort_accumulation_rules():
    u8, s8 = np.uint8, np.int8
    for isa in ("avx2", "avx512bw"):
        for op in ("MatMulInteger", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
            assert ort_accumulation(op, isa, activation_dtype=u8, weight_dtype=s8).kind == "int16_pairs"
            assert ort_accumulation(op, isa, activation_dtype=u8, weight_dtype=u8).kind == "exact"
            if op != "DynamicQuantizeMatMul":
                assert ort_accumulation(op, isa, activation_dtype=s8, weight_dtype=s8).kind == "exact"
        ci = ort_accumulation("ConvInteger", isa, activation_dtype=s8, weight_dtype=u8)
        assert (ci.kind, ci.k_order, ci.unsigned_operand) == ("int16_pairs", "chw", "weight")
        assert ort_accumulation("ConvInteger", isa, activation_dtype=u8, weight_dtype=s8).kind == "exact"
        qc = ort_accumulation("QLinearConv", isa, activation_dtype=u8, weight_dtype=s8, groups=1, in_channels=8,
                              out_channels=8)
        assert (qc.kind, qc.k_order) == ("int16_pairs", "hwc")
        dw = dict(activation_dtype=u8, weight_dtype=s8, groups=6, in_channels=6)
        assert ort_accumulation("QLinearConv", isa, out_channels=6, weight_zero_point=[3] * 6, **dw).kind == "exact"
        assert ort_accumulation("QLinearConv", isa, out_channels=6, weight_zero_point=[0, 1, 0, 0, 0, 0], **dw).saturating
        assert ort_accumulation("QLinearConv", isa, out_channels=12, **dw).saturating
    # x64quantprecision: constant int8 weights of the matched ops become uint8 (exact)
    assert ort_accumulation("QLinearConv", "avx2-precise", activation_dtype=u8, weight_dtype=s8).kind == "exact"
    assert ort_accumulation("MatMulInteger", "avx2-precise", activation_dtype=u8, weight_dtype=s8,
                            weight_is_constant=False).saturating
    assert ort_accumulation("QLinearMatMul", "avx2-precise", activation_dtype=u8, weight_dtype=s8,
                            since_version=21).saturating
    assert ort_accumulation("QLinearConv", "avx2-precise", activation_dtype=u8, weight_dtype=s8,
                            domain="com.microsoft").saturating
    with pytest.raises(ValueError, match="no int8 x uint8 kernel"):
        ort_accumulation("QLinearConv", "avx2-precise", activation_dtype=s8, weight_dtype=s8)
    with pytest.raises(ValueError, match="no QLinearConv kernel"):
        ort_accumulation("QLinearConv", "avx2", activation_dtype=s8, weight_dtype=u8)
    with pytest.raises(ValueError, match="isa must be one of"):
        ort_accumulation("QLinearConv", "sse", activation_dtype=u8, weight_dtype=s8)
    with pytest.raises(ValueError, match="op_type must be one of"):
        ort_accumulation("Conv", "avx2", activation_dtype=u8, weight_dtype=s8)
    assert "qgemm_kernel_avx2.cpp" in qc.source


def test_cpu_features_and_profile():
    f = K.cpu_features()
    assert set(f) == {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512vbmi", "avx_vnni"}
    assert all(isinstance(v, bool) for v in f.values())
    assert K.host_ort_profile({"avx2": True}) == "avx2"
    assert K.host_ort_profile({"avx2": True, "avx_vnni": True}) == "vnni"
    assert K.host_ort_profile({"avx2": True, "avx512f": True, "avx512bw": True, "avx512vl": True}) == "avx512bw"
    assert K.host_ort_profile({"avx2": True, "avx512f": True, "avx512bw": True, "avx512vl": True,
                               "avx512vnni": True}) == "vnni"
    flags = []
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read().split("flags", 2)[1].split("\n", 1)[0].split()
    if flags:
        assert f["avx2"] == ("avx2" in flags) and f["avx512vnni"] == ("avx512_vnni" in flags)


def test_bad_arguments():
    rng = np.random.default_rng(0)
    a8, b8 = rnd(rng, np.int8, (3, 8)), rnd(rng, np.int8, (8, 4))
    with pytest.raises(ValueError, match="uint8"):
        gemm(a8, b8, accumulation="int16_pairs")
    with pytest.raises(ValueError, match="int8 b"):
        gemm(a8.view(np.uint8), b8.view(np.uint8), accumulation="int16_pairs")
    with pytest.raises(ValueError, match="overflow must be 'wrap'"):
        gemm(a8.view(np.uint8), b8, accumulation="int16_pairs", overflow="raise")
    with pytest.raises(ValueError, match="accumulation must be"):
        gemm(a8.view(np.uint8), b8, accumulation="int32_pairs")
    x, w = rnd(rng, np.uint8, (1, 4, 5, 5)), rnd(rng, np.int8, (2, 4, 3, 3))
    with pytest.raises(ValueError, match="K order"):
        conv2d(x, w, accumulation="int16_pairs")
    with pytest.raises(ValueError, match="exactly one uint8"):
        conv2d(x, w.view(np.uint8), accumulation="int16_pairs:hwc")
    with pytest.raises(ValueError, match="w_zero_point"):
        conv2d(x, w, w_zero_point=200)
    with pytest.raises(ValueError, match="w_zero_point"):
        conv2d(x, w, w_zero_point=[1, 2, 3])


# ---- (a) against the real onnxruntime on an AVX2 profile ---------------------------------------------
def _ort_skip_reason():
    if HOST in ("avx2", "avx512bw"):
        return None
    if HOST == "vnni":
        return ("this host has VNNI: the ORT comparisons run under qemu-x86_64 -cpu Haswell in "
                "test_ort_cases_under_qemu_haswell" + ("" if QEMU else " (qemu-x86_64 is not on PATH: skipped there)"))
    return "this host has no AVX2 (MLAS's SSE kernels are not emulated)"


needs_ort_avx2 = pytest.mark.skipif(_ort_skip_reason() is not None, reason=_ort_skip_reason() or "")
ORT_ISA = HOST if HOST in ("avx2", "avx512bw") else "avx2"


def _session(op, inputs, out_dtype, attrs=None, domain="", precise=False, opset=21):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto as TP, helper as h, numpy_helper
    tp = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8, np.dtype(np.int32): TP.INT32,
          np.dtype(np.float32): TP.FLOAT}
    names, graph_inputs, inits, feed = [], [], [], {}
    for name, arr, const in inputs:
        arr = np.asarray(arr)
        names.append(name)
        if const:
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(h.make_tensor_value_info(name, tp[arr.dtype], list(arr.shape)))
            feed[name] = arr
    node = h.make_node(op, names, ["y"], domain=domain, **(attrs or {}))
    graph = h.make_graph([node], "g", graph_inputs, [h.make_tensor_value_info("y", tp[np.dtype(out_dtype)], None)],
                         initializer=inits)
    opsets = [h.make_opsetid("", opset)] + ([h.make_opsetid(domain, 1)] if domain else [])
    model = h.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if precise:
        so.add_session_config_entry("session.x64quantprecision", "1")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feed)[0]


def _isa(precise):
    return ORT_ISA + ("-precise" if precise else "")


@needs_ort_avx2
@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8)])
@pytest.mark.parametrize("m,k,n", [(5, 37, 19), (1, 64, 8), (16, 130, 33)])
@pytest.mark.parametrize("const", [True, False])
@pytest.mark.parametrize("precise", [False, True])
@pytest.mark.parametrize("small", [False, True])
def test_ort_matmulinteger(adt, bdt, m, k, n, const, precise, small):
    rng = np.random.default_rng(m + k + n + 7 * const + 13 * precise)
    a = rnd(rng, adt, (m, k), hi=127 if small else None)
    b = rnd(rng, bdt, (k, n))
    za = np.array(3 if adt == np.uint8 else -2, adt)
    zb = np.array(-5 if bdt == np.int8 else 130, bdt)
    y = _session("MatMulInteger", [("a", a, False), ("b", b, const), ("za", za, True), ("zb", zb, True)], np.int32,
                 precise=precise, opset=10)
    acc = ort_accumulation("MatMulInteger", _isa(precise), activation_dtype=adt, weight_dtype=bdt,
                           weight_is_constant=const, since_version=10)
    got = gemm(a, b, a_zero_point=int(za), b_zero_point=int(zb), accumulation=acc)
    assert np.array_equal(got, y)


ORT_CONV_CASES = CONV_CASES + [(6, 6, 3, 6, 1, 1, 1, 6, 7), (4, 4, 3, 1, 1, 1, 1, 6, 6), (12, 6, 3, 3, 1, 1, 1, 6, 6)]


@needs_ort_avx2
@pytest.mark.parametrize("xdt,wdt", [(np.uint8, np.uint8), (np.uint8, np.int8), (np.int8, np.int8), (np.int8, np.uint8)])
@pytest.mark.parametrize("case", ORT_CONV_CASES)
def test_ort_convinteger(xdt, wdt, case):
    c, o, k, groups, s, d, p, h, w_ = case
    rng = np.random.default_rng(c * 31 + o + k)
    x, w = rnd(rng, xdt, (2, c, h, w_)), rnd(rng, wdt, (o, c // groups, k, k))
    xzp, wzp = (5 if xdt == np.uint8 else -3), (7 if wdt == np.int8 else 129)
    y = _session("ConvInteger", [("x", x, False), ("w", w, True), ("xz", np.array(xzp, xdt), True),
                                 ("wz", np.array(wzp, wdt), True)], np.int32,
                 attrs=dict(pads=[p] * 4, group=groups, strides=[s, s], dilations=[d, d]), opset=10)
    acc = ort_accumulation("ConvInteger", ORT_ISA, activation_dtype=xdt, weight_dtype=wdt, groups=groups,
                           in_channels=c, out_channels=o)
    got = conv2d(x, w, x_zero_point=xzp, w_zero_point=wzp, groups=groups, stride=s, dilation=d, padding=p,
                 accumulation=acc)
    assert np.array_equal(got, y)


@needs_ort_avx2
@pytest.mark.parametrize("xdt,wdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
@pytest.mark.parametrize("case", ORT_CONV_CASES)
@pytest.mark.parametrize("per_channel,wz", [(False, "zero"), (False, "nz"), (True, "zero"), (True, "nz")])
@pytest.mark.parametrize("domain", ["", "com.microsoft"])
@pytest.mark.parametrize("precise", [False, True])
def test_ort_qlinearconv(xdt, wdt, case, per_channel, wz, domain, precise):
    c, o, k, groups, s, d, p, h, w_ = case
    no_kernel = precise and xdt == np.int8 and domain == ""  # the converted weights meet no int8 x uint8 kernel
    rng = np.random.default_rng(c * 7 + o * 3 + k + per_channel + (wz == "nz") * 5)
    x, w = rnd(rng, xdt, (2, c, h, w_)), rnd(rng, wdt, (o, c // groups, k, k))
    xzp, yzp = (7, 9) if xdt == np.uint8 else (-3, -4)
    base = 0 if wdt == np.int8 else 128
    wzp = (np.zeros(o if per_channel else ()) + base + (rng.integers(-5, 5, o if per_channel else ()) if wz == "nz" else 0))
    wzp = wzp.astype(wdt)
    xs, ys = np.float32(0.02), np.float32(0.5)
    ws = (rng.uniform(0.001, 0.01, o) if per_channel else np.array(0.005)).astype(np.float32)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    attrs = dict(pads=[p] * 4, group=groups, strides=[s, s], dilations=[d, d])
    xin = x
    if domain:
        attrs["channels_last"] = 1
        xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    run = lambda: _session("QLinearConv", [("x", xin, False), ("xs", xs, True), ("xz", np.array(xzp, xdt), True),
                                           ("w", w, True), ("ws", ws, True), ("wz", wzp, True), ("ys", ys, True),
                                           ("yz", np.array(yzp, xdt), True), ("b", bias, True)], xdt, attrs=attrs,
                                          domain=domain, precise=precise, opset=10)
    kw = dict(activation_dtype=xdt, weight_dtype=wdt, weight_zero_point=wzp, groups=groups, in_channels=c,
              out_channels=o, domain=domain)
    if no_kernel and np.abs(w.astype(int)).max() > 64:
        with pytest.raises(Exception, match="NOT_IMPLEMENTED|kernel"):
            run()
        with pytest.raises(ValueError, match="no int8 x uint8 kernel"):
            ort_accumulation("QLinearConv", _isa(precise), **kw)
        return
    y = run()
    if domain:
        y = y.transpose(0, 3, 1, 2)
    acc = ort_accumulation("QLinearConv", _isa(precise), **kw)
    rq = Requantizer.fp32(fp32_scale(xs, ws, ys), zero_point=yzp, dtype=xdt)
    got = conv2d(x, w, x_zero_point=xzp, w_zero_point=wzp.astype(np.int32), groups=groups, stride=s, dilation=d,
                 padding=p, bias=bias, requantizer=rq, accumulation=acc)
    assert np.array_equal(got, y)


@needs_ort_avx2
@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
@pytest.mark.parametrize("m,k,n", [(5, 37, 19), (1, 64, 8), (7, 130, 33)])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("opset,precise", [(21, False), (10, True), (21, True)])
def test_ort_qlinearmatmul(adt, bdt, m, k, n, per_column, opset, precise):
    rng = np.random.default_rng(m * 3 + k + n + per_column)
    a, b = rnd(rng, adt, (m, k)), rnd(rng, bdt, (k, n))
    za = np.array(3 if adt == np.uint8 else -2, adt)
    zb = (rng.integers(-4, 4, n if per_column else ()) + (0 if bdt == np.int8 else 128)).astype(bdt)
    sa, sy = np.float32(0.03), np.float32(0.7)
    sb = (rng.uniform(0.002, 0.01, n) if per_column else np.array(0.004)).astype(np.float32)
    zy = np.array(5 if adt == np.uint8 else -3, adt)
    run = lambda: _session("QLinearMatMul", [("a", a, False), ("sa", sa, True), ("za", za, True), ("b", b, True),  # noqa: E731
                                             ("sb", sb, True), ("zb", zb, True), ("sy", sy, True), ("zy", zy, True)],
                           adt, precise=precise, opset=opset)
    accumulation = lambda: ort_accumulation("QLinearMatMul", _isa(precise), activation_dtype=adt,  # noqa: E731
                                            weight_dtype=bdt, since_version=21 if opset >= 21 else 10)
    if precise and adt == np.int8 and opset == 10:   # after the weight conversion ORT 1.32 has no kernel
        with pytest.raises(Exception, match="NOT_IMPLEMENTED|kernel"):
            run()
        with pytest.raises(ValueError, match="no int8 x uint8 kernel"):
            accumulation()
        return
    y, acc = run(), accumulation()
    rq = Requantizer.fp32(fp32_scale(sa, sb, sy), zero_point=int(zy), dtype=adt)
    got = gemm(a, b, a_zero_point=int(za), b_zero_point=zb.astype(np.int32), requantizer=rq, accumulation=acc)
    assert np.array_equal(got, y)


@needs_ort_avx2
@pytest.mark.parametrize("op", ["QGemm", "MatMulIntegerToFloat"])
@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
@pytest.mark.parametrize("precise", [False, True])
def test_ort_float_output_ops(op, adt, bdt, precise):
    """QGemm / MatMulIntegerToFloat with unit scales and float output: y = float(accumulator) (exact below 2^24)."""
    rng = np.random.default_rng(11)
    m, k, n = 6, 70, 20
    a, b = rnd(rng, adt, (m, k)), rnd(rng, bdt, (k, n))
    za, zb = np.array(2, adt), np.array(-3 if bdt == np.int8 else 126, bdt)
    one = np.float32(1)
    if op == "QGemm":
        inputs = [("a", a, False), ("sa", one, True), ("za", za, True), ("b", b, True), ("sb", one, True), ("zb", zb, True)]
    else:
        inputs = [("a", a, False), ("b", b, True), ("sa", one, True), ("sb", one, True), ("za", za, True), ("zb", zb, True)]
    if precise and adt == np.int8:   # after the weight conversion ORT 1.32 has no kernel
        with pytest.raises(Exception, match="NOT_IMPLEMENTED|kernel"):
            _session(op, inputs, np.float32, domain="com.microsoft", precise=precise)
        with pytest.raises(ValueError, match="no int8 x uint8 kernel"):
            ort_accumulation(op, _isa(precise), activation_dtype=adt, weight_dtype=bdt, domain="com.microsoft")
        return
    y = _session(op, inputs, np.float32, domain="com.microsoft", precise=precise)
    acc = ort_accumulation(op, _isa(precise), activation_dtype=adt, weight_dtype=bdt, domain="com.microsoft")
    got = gemm(a, b, a_zero_point=int(za), b_zero_point=int(zb), accumulation=acc)
    assert np.abs(got).max() < 2**24 and np.array_equal(got.astype(np.float32), y)


@pytest.mark.skipif(UNDER_QEMU or HOST != "vnni" or QEMU is None,
                    reason="runs only on a VNNI host with qemu-x86_64 on PATH (elsewhere the ORT tests run natively "
                           "or are skipped with their reason)")
def test_ort_cases_under_qemu_haswell():
    """On a VNNI host: the ORT comparisons rerun with ORT's (and our) AVX2 kernels under qemu's Haswell CPU."""
    env = dict(os.environ, FIXEDPOINT_ORT_UNDER_QEMU="1")
    r = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        __file__, "-k", "test_ort_ and not qemu"], env=env, capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout
