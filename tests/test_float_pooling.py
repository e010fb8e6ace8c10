"""The compiled float32 pooling and softmax (csrc/kernels/float_pool.hpp) against an independent NumPy
reference that performs the documented float32 operations in the documented order, so the results
must be equal bit for bit; and the convolution chains of float predict (fixedpoint/nn/fusion.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixedpoint as fp
from fixedpoint.kernels import set_num_threads
from fixedpoint.nn import functional as F


def pool_rows_then_columns(x, mode, kernel, stride, pads, ceil_mode, include_pad):
    """float32 pooling by whole-array steps: each window's taps of one kernel row combined left to
    right (padding skipped), those row results top to bottom, then (average) one division by the
    count. Written with shifted slices of a padded copy, not window loops."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    top, left, bottom, right = pads
    oh = F.output_size(h, kh, sh, top, bottom, 1, ceil_mode)
    ow = F.output_size(w, kw, sw, left, right, 1, ceil_mode)
    big_h, big_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    fill = -np.inf if mode == "max" else 0.0
    padded = np.full((n, c, max(big_h, h + top), max(big_w, w + left)), fill, np.float32)
    padded[:, :, top:top + h, left:left + w] = x
    inside = np.zeros(padded.shape[2:], bool)
    inside[top:top + h, left:left + w] = True
    combine = np.fmax if mode == "max" else np.add
    rows = np.full((n, c, padded.shape[2], ow), fill, np.float32)
    for k in range(kw):
        taps = padded[:, :, :, k:k + sw * (ow - 1) + 1:sw]
        rows = combine(rows, taps)
    total = np.full((n, c, oh, ow), fill, np.float32)
    for r in range(kh):
        total = combine(total, rows[:, :, r:r + sh * (oh - 1) + 1:sh])
    if mode == "max":
        nan = np.isnan(padded)   # NaN anywhere in a window wins (np.fmax above skipped it)
        if nan.any():
            hit = np.zeros((n, c, padded.shape[2], ow), bool)
            for k in range(kw):
                hit |= nan[:, :, :, k:k + sw * (ow - 1) + 1:sw]
            window_hit = np.zeros((n, c, oh, ow), bool)
            for r in range(kh):
                window_hit |= hit[:, :, r:r + sh * (oh - 1) + 1:sh]
            total[window_hit] = np.nan
        return total
    counted = np.zeros(padded.shape[2:], np.float32)
    if include_pad:
        counted[:h + top + bottom, :w + left + right] = 1
    else:
        counted[inside] = 1
    count_rows = sum(counted[:, k:k + sw * (ow - 1) + 1:sw] for k in range(kw))
    counts = sum(count_rows[r:r + sh * (oh - 1) + 1:sh] for r in range(kh))
    return total / counts


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.tuples(*[st.integers(0, 3)] * 4), st.booleans(), st.booleans(), st.integers(1, 20),
       st.integers(1, 20), st.integers(1, 11), st.integers(0, 2 ** 32 - 1))
def test_pooling_equals_rows_then_columns_bit_for_bit(kh, kw, sh, sw, pads, ceil_mode, include_pad,
                                                      h, w, planes, seed):
    """Wide rows (separable passes) and narrow ones (8 planes at a time, plus a tail) alike."""
    pads = tuple(min(p, k - 1) for p, k in zip(pads, (kh, kw, kh, kw)))
    if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
        return
    x = np.random.default_rng(seed).normal(size=(1, planes, h, w)).astype(np.float32)
    for mode in ("max", "average"):
        got = F.pool2d(x, mode, (kh, kw), (sh, sw), pads, ceil_mode, include_pad)
        want = pool_rows_then_columns(x, mode, (kh, kw), (sh, sw), pads, ceil_mode, include_pad)
        assert got.tobytes() == want.tobytes(), mode


@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (2, 9, 4, 4), (1, 1, 1, 1), (2, 17, 13, 11)])
def test_global_pooling_bit_for_bit(shape):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    h, w = shape[2:]
    for layer, mode in ((fp.GlobalAveragePooling2DLayer("g"), "average"),
                        (fp.GlobalMaxPooling2DLayer("g"), "max")):
        want = pool_rows_then_columns(x, mode, (h, w), (1, 1), (0, 0, 0, 0), False, False)
        assert layer.forward(x).tobytes() == want.tobytes()


@pytest.mark.parametrize("width", [6, 20])   # narrow (planes in lanes) and wide (separable) rows
def test_pooling_propagates_nan_and_keeps_infinities(width):
    x = np.arange(2 * 16 * 6 * width, dtype=np.float32).reshape(2, 16, 6, width)
    x[0, 3, 1, 1] = np.nan
    x[1, 5, 4, 4] = np.inf
    x[1, 6] = -np.inf
    y = F.pool2d(x, "max", (2, 2), (2, 2), (0, 0, 0, 0))
    assert np.isnan(y[0, 3, 0, 0]) and np.isnan(y).sum() == 1
    assert y[1, 5, 2, 2] == np.inf
    assert (y[1, 6] == -np.inf).all()
    avg = F.pool2d(x, "average", (2, 2), (2, 2), (0, 0, 0, 0))
    assert np.isnan(avg[0, 3, 0, 0]) and avg[1, 5, 2, 2] == np.inf and (avg[1, 6] == -np.inf).all()
    assert np.isnan(avg).sum() == 1


def test_pooling_does_not_depend_on_thread_count():
    x = np.random.default_rng(2).normal(size=(16, 24, 12, 12)).astype(np.float32)
    results = []
    for threads in (1, 2):
        set_num_threads(threads)
        try:
            results.append([F.pool2d(x, m, (3, 3), (2, 2), (1, 1, 1, 1), True, True).tobytes()
                            for m in ("max", "average")])
        finally:
            set_num_threads(2)
    assert results[0] == results[1]


def test_softmax_against_float64():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 30, size=(7, 12, 3)).astype(np.float32)
    x[0, :, 0] += 5000.0     # overflows exp without subtracting the maximum
    for axis in (1, 2, -1):
        y = fp.SoftmaxLayer("s", axis=axis).forward(x)
        x64 = x.astype(np.float64)
        e = np.exp(x64 - x64.max(axis=axis, keepdims=True))
        np.testing.assert_allclose(y, e / e.sum(axis=axis, keepdims=True), rtol=2e-6, atol=1e-30)
    assert fp.SoftmaxLayer("s").forward(np.array([[1e30, 0.0]], np.float32)).tolist() == [[1.0, 0.0]]
    y = fp.SoftmaxLayer("s").forward(np.array([[np.nan, 0.0], [1.0, 1.0]], np.float32))
    assert np.isnan(y[0]).all() and y[1].tolist() == [0.5, 0.5]


# --- convolution chains of float predict -----------------------------------------------------------
def chain_net(rng):
    layers = [fp.ImageInputLayer("input", (3, 6, 6)),
              fp.Convolution2DLayer("conv", rng.normal(size=(8, 3, 3, 3)), rng.normal(size=8), padding=1),
              fp.BatchNormalizationLayer("bn", scale=rng.uniform(0.5, 2, 8), offset=rng.normal(size=8),
                                         mean=rng.normal(size=8), variance=rng.uniform(0.5, 2, 8)),
              fp.ReLULayer("relu")]
    return fp.Network(layers, [(a.name, b.name) for a, b in zip(layers, layers[1:])])


def test_batch_normalization_arrays_are_read_only():
    bn = chain_net(np.random.default_rng(4)).layer("bn")
    for key in ("Scale", "Offset", "TrainedMean", "TrainedVariance"):
        with pytest.raises(ValueError, match="read-only"):
            bn.learnables[key][0] = 1.0


def test_chain_sees_replaced_arrays_and_new_shapes():
    """Each replacement after a predict must show in the next one, equal to the layers one by one."""
    rng = np.random.default_rng(5)
    net = chain_net(rng)
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)

    def check():
        fused = net.predict(x)
        net.fuse_activations = False
        try:
            assert net.predict(x).tobytes() == fused.tobytes()
        finally:
            net.fuse_activations = True
        return fused

    first = check()
    bn, conv = net.layer("bn"), net.layer("conv")
    bn.learnables["TrainedMean"] = bn.learnables["TrainedMean"] + 1
    second = check()
    assert not np.array_equal(first, second)
    conv.learnables["Weights"] = np.ascontiguousarray(conv.weights[::-1])   # writeable
    third = check()
    assert not np.array_equal(second, third)
    conv.learnables["Bias"][...] = 5.0      # the bias stays writeable; edits show too
    assert not np.array_equal(third, check())
    x = rng.normal(size=(1, 3, 6, 6)).astype(np.float32)
    check()


def test_chain_errors_name_the_convolution():
    rng = np.random.default_rng(6)
    layers = [fp.ImageInputLayer("input", (3, None, None)),
              fp.Convolution2DLayer("conv7", rng.normal(size=(4, 3, 5, 5))), fp.ReLULayer("r")]
    net = fp.Network(layers, [("input", "conv7"), ("conv7", "r")])
    assert net.predict(np.zeros((1, 3, 5, 5), np.float32)).shape == (1, 4, 1, 1)
    with pytest.raises(ValueError, match="convolution 'conv7' on input"):
        net.predict(np.zeros((1, 3, 4, 4), np.float32))


def test_concurrent_predicts_with_different_shapes_agree():
    """Chains rebind per input shape; threads alternating shapes must each get their own answer."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(7)
    layers = [fp.ImageInputLayer("input", (3, None, None)),
              fp.Convolution2DLayer("conv", rng.normal(size=(8, 3, 3, 3)), padding="same"),
              fp.ReLULayer("relu")]
    net = fp.Network(layers, [("input", "conv"), ("conv", "relu")])
    inputs = [rng.normal(size=(1 + k % 3, 3, 5 + k % 4, 6 + k % 5)).astype(np.float32)
              for k in range(12)]
    want = [net.predict(x).tobytes() for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(20):
            got = list(pool.map(lambda x: net.predict(x).tobytes(), inputs))
            assert got == want
