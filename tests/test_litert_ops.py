"""fixedpoint.kernels.litert against the real LiteRT interpreter (ai-edge-litert), op by op and
resolver by resolver, on crafted one-op .tflite models (tests/tflite_builder.py).

Every comparison is np.array_equal on full-range random int8 data plus edge values. Scales are
drawn two ways: random (realistic) and powers of two, which make the real multiplier a power of two
so that every rounding step meets exact ties — the inputs on which the resolvers' roundings differ
(each family of tests asserts that such differences occur, so the checks can fail).
"""
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from tflite_builder import RESOLVERS, T, run_model, single_op_model, xnnpack_took  # noqa: E402

from fixedpoint.kernels import litert  # noqa: E402

ALL = tuple(RESOLVERS)
I8 = np.int8


def rand_i8(rng, shape, lo=-128, hi=127):
    """Full-range int8 with the extremes planted at the first and last positions."""
    x = rng.integers(lo, hi + 1, shape).astype(I8)
    flat = x.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = lo, hi
    return x


def nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


# ---- CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED -------------------------------------------------
def conv_scales(rng, channels, ties, per_channel, taps):
    """(input, weights, output) scales. Random: the output scale puts accumulators of `taps`
    full-range products mostly inside int8. Ties: powers of two with a real multiplier of 2^-2..2^-4
    (for the small operands of `conv_data`), so that every rounding step meets exact ties."""
    n = channels if per_channel else 1
    if ties:
        s_in = np.float32(2.0 ** -rng.integers(3, 7))
        s_w = (2.0 ** -rng.integers(5, 7, n)).astype(np.float32)
        s_out = np.float32(s_in * s_w[0] * 2.0 ** rng.integers(2, 5))
        return s_in, s_w, s_out
    target = 40.0 / (np.sqrt(taps) * 74.0 * 73.0)  # real multiplier giving outputs of std ~40
    s_in = np.float32(rng.uniform(0.005, 0.05))
    s_w = rng.uniform(0.001, 0.02, n).astype(np.float32)
    return s_in, s_w, np.float32(s_in * s_w.mean() / target * rng.uniform(0.7, 1.4))


def conv_data(rng, ties, x_shape, w_shape, channels, z_in):
    """Input, weights and bias: full range (extremes planted), or small operands around the zero
    point (|x - z_in|, |w| <= 3) whose accumulators tie under the `ties` scales."""
    if ties:
        x = np.clip(z_in + rng.integers(-3, 4, x_shape), -128, 127).astype(I8)
        return x, rng.integers(-3, 4, w_shape).astype(I8), rng.integers(-20, 21, channels).astype(np.int32)
    return (rand_i8(rng, x_shape), rand_i8(rng, w_shape, -127, 127),
            rng.integers(-5000, 5000, channels).astype(np.int32))


CONV_CASES = [
    # (N, H, W, C, O, kh, kw, stride, dilation, padding, activation)
    (2, 9, 9, 5, 6, 3, 3, 1, 1, "SAME", "NONE"),
    (1, 10, 7, 3, 11, 3, 2, 2, 1, "VALID", "RELU"),
    (2, 8, 8, 16, 8, 1, 1, 1, 1, "VALID", "RELU6"),
    (1, 12, 12, 4, 9, 3, 3, 1, 2, "SAME", "RELU_N1_TO_1"),
    (3, 7, 9, 8, 16, 5, 3, (2, 1), (1, 2), "SAME", "NONE"),
    (1, 1, 1, 24, 10, 1, 1, 1, 1, "VALID", "NONE"),
]


def conv_model(x_q, w, bias, s_in, z_in, s_w, s_out, z_out, out_shape, per_channel, op, qdim, **options):
    return single_op_model(
        op, [T(x_q.shape, I8, s_in, z_in), T(w.shape, I8, s_w, 0, data=w, quantized_dimension=qdim),
             T(bias.shape, np.int32, (s_in * s_w).astype(np.float32), 0, data=bias, quantized_dimension=0)],
        [T(out_shape, I8, s_out, z_out)], **options)


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d(case, per_channel, ties, resolver):
    n, h, w_, c, o, kh, kw, stride, dilation, padding, act = CONV_CASES[case]
    rng = np.random.default_rng(1000 + case * 4 + 2 * per_channel + ties)
    s_in, s_w, s_out = conv_scales(rng, o, ties, per_channel, kh * kw * c)
    z_in, z_out = int(rng.integers(-20, 20)), int(rng.integers(-10, 10))
    x, w, bias = conv_data(rng, ties, (n, h, w_, c), (o, kh, kw, c), o, z_in)
    layer = litert.Conv2D(w, bias, input_scale=s_in, input_zero_point=z_in, weight_scales=s_w, output_scale=s_out,
                          output_zero_point=z_out, stride=stride, padding=padding, dilation=dilation,
                          activation=act, resolver=resolver)
    ours = nhwc(layer(nchw(x)))
    sh, sw_ = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    model = conv_model(x, w, bias, s_in, z_in, s_w, s_out, z_out, ours.shape, per_channel, "CONV_2D", 0,
                       padding=padding, stride_h=sh, stride_w=sw_, dilation_h_factor=dh, dilation_w_factor=dw,
                       fused_activation_function=act)
    (theirs,) = run_model(model, [x], resolver)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


DW_CASES = [
    # (N, H, W, C, m, kh, kw, stride, dilation, padding, activation)
    (2, 9, 9, 10, 1, 3, 3, 1, 1, "SAME", "NONE"),    # 8 NEON channels + 2 scalar (optimized)
    (1, 10, 8, 3, 2, 3, 3, 2, 1, "VALID", "RELU"),
    (2, 8, 8, 16, 1, 3, 3, 1, 1, "SAME", "RELU6"),
    (1, 11, 9, 5, 3, 5, 3, (1, 2), (2, 1), "SAME", "RELU_N1_TO_1"),
    (3, 6, 6, 7, 1, 1, 1, 1, 1, "VALID", "NONE"),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", range(len(DW_CASES)))
def test_depthwise_conv2d(case, per_channel, ties, resolver):
    n, h, w_, c, m, kh, kw, stride, dilation, padding, act = DW_CASES[case]
    rng = np.random.default_rng(2000 + case * 4 + 2 * per_channel + ties)
    s_in, s_w, s_out = conv_scales(rng, c * m, ties, per_channel, kh * kw)
    z_in, z_out = int(rng.integers(-20, 20)), int(rng.integers(-10, 10))
    x, w, bias = conv_data(rng, ties, (n, h, w_, c), (1, kh, kw, c * m), c * m, z_in)
    layer = litert.Conv2D(w, bias, input_scale=s_in, input_zero_point=z_in, weight_scales=s_w, output_scale=s_out,
                          output_zero_point=z_out, stride=stride, padding=padding, dilation=dilation,
                          activation=act, resolver=resolver, depthwise=True, depth_multiplier=m)
    ours = nhwc(layer(nchw(x)))
    sh, sw_ = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    model = conv_model(x, w, bias, s_in, z_in, s_w, s_out, z_out, ours.shape, per_channel, "DEPTHWISE_CONV_2D", 3,
                       padding=padding, stride_h=sh, stride_w=sw_, dilation_h_factor=dh, dilation_w_factor=dw,
                       depth_multiplier=m, fused_activation_function=act)
    (theirs,) = run_model(model, [x], resolver)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


FC_CASES = [(64, 40, 12, "NONE"), (1, 33, 9, "RELU"), (7, 8, 4, "RELU6"), (16, 100, 3, "RELU_N1_TO_1")]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("case", range(len(FC_CASES)))
def test_fully_connected(case, per_channel, ties, resolver):
    b, k, units, act = FC_CASES[case]
    rng = np.random.default_rng(3000 + case * 4 + 2 * per_channel + ties)
    s_in, s_w, s_out = conv_scales(rng, units, ties, per_channel, k)
    z_in, z_out = int(rng.integers(-20, 20)), int(rng.integers(-10, 10))
    x, w, bias = conv_data(rng, ties, (b, k), (units, k), units, z_in)
    ours = litert.fully_connected(x, w, bias, input_scale=s_in, input_zero_point=z_in, weight_scales=s_w,
                                  output_scale=s_out, output_zero_point=z_out, activation=act, resolver=resolver)
    model = conv_model(x, w, bias, s_in, z_in, s_w, s_out, z_out, ours.shape, per_channel, "FULLY_CONNECTED", 0,
                       fused_activation_function=act)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("activation,s_out", [("RELU6", 4.0), ("RELU_N1_TO_1", 2.0), ("RELU", 0.5)])
@pytest.mark.parametrize("z_out", [-3, 0, 1, 4])
def test_fused_activation_bounds(activation, s_out, z_out, resolver):
    """Output scales that put 6/s or 1/s on a .5 tie: TFLite rounds the bound half away from zero
    and adds the zero point, XNNPACK rounds (bound/s + zp) to even."""
    rng = np.random.default_rng(40 + z_out)
    s_in, s_w = np.float32(0.5), np.array([0.25], np.float32)
    x = rng.integers(-128, 128, (32, 6)).astype(I8)
    w = rng.integers(-4, 5, (5, 6)).astype(I8)
    bias = np.zeros(5, np.int32)
    ours = litert.fully_connected(x, w, bias, input_scale=s_in, input_zero_point=0, weight_scales=s_w,
                                  output_scale=s_out, output_zero_point=z_out, activation=activation, resolver=resolver)
    model = conv_model(x, w, bias, s_in, 0, s_w, np.float32(s_out), z_out, ours.shape, False, "FULLY_CONNECTED", 0,
                       fused_activation_function=activation)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs)


def test_activation_bound_rounding_differs():
    """The two bound derivations disagree on ties (the reason activation_range takes a resolver)."""
    assert litert.activation_range("RELU6", 4.0, 1, resolver="reference") == (1, 3)
    assert litert.activation_range("RELU6", 4.0, 1, resolver="xnnpack") == (1, 2)
    assert litert.activation_range("RELU_N1_TO_1", 2.0, 0, resolver="reference") == (-1, 1)
    assert litert.activation_range("RELU_N1_TO_1", 2.0, 0, resolver="xnnpack") == (0, 0)


def test_optimized_depthwise_channel_split():
    """The optimized depthwise kernel rounds half up on channels [0, 8 floor(C/8)) (NEON loop) and
    half away from zero on the rest (scalar loop); with C = 10 both kinds occur."""
    rq = litert.conv_requantizer("depthwise_conv2d", input_scale=1.0, weight_scales=[0.25], output_scale=1.0,
                                 output_zero_point=0, channels=10, resolver="optimized")
    assert [(lo, hi, p.mode) for lo, hi, p in rq.parts] == [(0, 8, "ruy_double_halfup"), (8, 10, "gemmlowp_double")]
    acc = np.full((1, 10), -6, np.int32)   # -6 * 0.25 = -1.5: half up -> -1, half away -> -2
    assert rq(acc).tolist() == [[-1] * 8 + [-2] * 2]


# ---- ADD / SUB / MUL --------------------------------------------------------------------------------
BINARY_SHAPES = [
    ((2, 5, 7, 19), (2, 5, 7, 19)),      # 1330 elements: NEON blocks + a 2-element scalar tail
    ((1, 4, 4, 16), (1, 4, 4, 16)),      # multiple of 16: NEON only
    ((3, 7), (3, 7)),                    # 21: one block + tail of 5
    ((2, 6, 5, 21), (1, 1, 1, 21)),      # per-channel vector (second input broadcasts fast)
    ((1, 1, 1, 13), (2, 3, 4, 13)),      # first input broadcasts fast
    ((2, 6, 5, 11), (1, 1, 1, 1)),       # scalar: y4 == 1 (AddScalarBroadcast, 8 at a time)
    ((2, 6, 5, 11), (2, 6, 5, 1)),       # inner broadcast of a column
    ((2, 1, 5, 3), (1, 4, 1, 3)),        # both broadcast: generic (reference code)
    ((5,), (4, 1)),                      # ranks differ, generic
]


def binary_scales(rng, op, ties):
    if op == "mul":
        if ties:
            s1, s2 = np.float32(2.0 ** -rng.integers(3, 6)), np.float32(2.0 ** -rng.integers(3, 6))
            return s1, s2, np.float32(s1 * s2 * 2.0 ** rng.integers(4, 7))
        s1, s2 = np.float32(rng.uniform(0.01, 0.1)), np.float32(rng.uniform(0.01, 0.1))
        return s1, s2, np.float32(s1 * s2 * rng.uniform(40, 120))
    if ties:
        return (np.float32(2.0 ** -rng.integers(4, 7)), np.float32(2.0 ** -rng.integers(4, 7)),
                np.float32(2.0 ** -rng.integers(3, 6)))
    return tuple(np.float32(rng.uniform(0.01, 0.2)) for _ in range(3))


def binary_model(op, a, b, q, out_shape, act):
    (s1, z1), (s2, z2), (so, zo) = q
    return single_op_model(op.upper(), [T(a.shape, I8, s1, z1), T(b.shape, I8, s2, z2)],
                           [T(out_shape, I8, so, zo)], fused_activation_function=act)


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("case", range(len(BINARY_SHAPES)))
def test_binary(case, op, ties, resolver):
    sa, sb = BINARY_SHAPES[case]
    rng = np.random.default_rng(5000 + 7 * case + 2 * ["add", "sub", "mul"].index(op) + ties)
    s1, s2, so = binary_scales(rng, op, ties)
    z1, z2, zo = (int(v) for v in rng.integers(-40, 40, 3))
    act = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][case % 4]
    a, b = rand_i8(rng, sa), rand_i8(rng, sb)
    fn = getattr(litert, op)
    ours = fn(a, b, a_scale=s1, a_zero_point=z1, b_scale=s2, b_zero_point=z2, output_scale=so, output_zero_point=zo,
              activation=act, resolver=resolver)
    model = binary_model(op, a, b, ((s1, z1), (s2, z2), (so, zo)), ours.shape, act)
    (theirs,) = run_model(model, [a, b], resolver)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


ALL_I8 = np.arange(-128, 128, dtype=I8)
# Scale sets for the exhaustive tests: realistic; powers of two (ties); a tiny output scale (the NEON
# add's 16-bit narrowing wraps, the input roundings show); MUL with real multiplier 2 (int16 saturation).
EXHAUSTIVE_SCALES = {
    "add": [(0.05, -3, 0.08, 5, 0.1, 2), (2 ** -4, 7, 2 ** -6, -9, 2 ** -3, 1), (1.0, 0, 0.7, 3, 2 ** -14, 4),
            (0.3, 10, 0.0003, -100, 0.00031, 0)],
    "sub": [(0.05, -3, 0.08, 5, 0.1, 2), (2 ** -4, 7, 2 ** -6, -9, 2 ** -3, 1), (1.0, 0, 0.7, 3, 2 ** -14, 4)],
    "mul": [(0.05, -3, 0.08, 5, 0.004, 2), (2 ** -4, 7, 2 ** -5, -9, 2 ** -5, 1), (1.0, 0, 1.0, 3, 0.5, 100),
            (0.02, 0, 0.03, 0, 0.02 * 0.03 * 300, -50)],
}


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("layout", ["elementwise", "scalar_broadcast"])
@pytest.mark.parametrize("op,params", [(op, p) for op, ps in EXHAUSTIVE_SCALES.items() for p in ps])
def test_binary_all_pairs(op, params, layout, resolver):
    """All 65536 (a, b) int8 pairs, through the elementwise loop (one run of 65536 + a 7-element
    tail) or the scalar-broadcast loop (each row of a against one b)."""
    s1, z1, s2, z2, so, zo = params
    if layout == "elementwise":
        a = np.concatenate([np.repeat(ALL_I8, 256), ALL_I8[:7]])
        b = np.concatenate([np.tile(ALL_I8, 256), ALL_I8[-7:]])
    else:
        a = np.tile(ALL_I8, (256, 1))
        b = ALL_I8.reshape(256, 1)
    kw = dict(a_scale=s1, a_zero_point=z1, b_scale=s2, b_zero_point=z2, output_scale=so, output_zero_point=zo)
    ours = getattr(litert, op)(a, b, resolver=resolver, **kw)
    model = binary_model(op, a, b, ((np.float32(s1), z1), (np.float32(s2), z2), (np.float32(so), zo)), ours.shape,
                         "NONE")
    (theirs,) = run_model(model, [a, b], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


# ---- one-input ops ------------------------------------------------------------------------------------
def all_values(dtype, tail=5):
    """Every value of dtype (256, a multiple of the NEON blocks) then `tail` more (scalar tail)."""
    info = np.iinfo(dtype)
    v = np.arange(info.min, info.max + 1, dtype=dtype)
    return np.concatenate([v, v[37:37 + tail]])


UNARY_CASES = [
    # (op, model op, input (scale, zp), output (scale, zp), options)
    ("relu", "RELU", (0.05, -10), (0.05, -10), {}),
    ("relu", "RELU", (0.05, 3), (0.031, -128), {}),
    ("relu6", "RELU6", (0.04, -5), (6 / 255, -128), {}),
    ("relu6", "RELU6", (2 ** -4, 0), (2 ** -5, -100), {}),
    ("relu_n1_to_1", "RELU_N1_TO_1", (0.02, 1), (1 / 127.5, 0), {}),
    ("leaky_relu", "LEAKY_RELU", (0.05, -10), (0.04, -20), {"alpha": 0.1}),
    ("leaky_relu", "LEAKY_RELU", (2 ** -4, 5), (2 ** -4, 5), {"alpha": 0.25}),
    ("leaky_relu", "LEAKY_RELU", (0.05, 0), (0.05, 0), {"alpha": 0.001}),   # XNNPACK declines: |neg| < 2^-8
    ("hard_swish", "HARD_SWISH", (0.05, -10), (0.03, -80), {}),
    ("hard_swish", "HARD_SWISH", (0.2, 30), (0.11, -100), {}),
    ("hard_swish", "HARD_SWISH", (0.01, 0), (0.004, -128), {}),
    ("logistic", "LOGISTIC", (0.05, -10), (1 / 256, -128), {}),
    ("logistic", "LOGISTIC", (0.1, 20), (1 / 256, -128), {}),
    ("tanh", "TANH", (0.05, -10), (1 / 128, 0), {}),
    ("tanh", "TANH", (0.02, 7), (1 / 128, 0), {}),
    # Scales where TFLite's table (roundf, half away) and XNNPACK's (RNE after + zp) differ:
    ("logistic", "LOGISTIC", (0.02983490191400051, -47), (1 / 256, -128), {}),
    ("logistic", "LOGISTIC", (0.115488201379776, 69), (1 / 256, -128), {}),
    ("tanh", "TANH", (0.1, 0), (0.4, 0), {}),     # tanh = +-1 -> +-2.5: 3 (TFLite) vs 2 (XNNPACK)
    ("tanh", "TANH", (0.1, 0), (0.4, 1), {}),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("case", range(len(UNARY_CASES)))
def test_unary_all_values(case, resolver):
    op, model_op, (si, zi), (so, zo), opts = UNARY_CASES[case]
    x = all_values(np.int8).reshape(1, -1)
    ours = getattr(litert, op)(x, input_scale=si, input_zero_point=zi, output_scale=so, output_zero_point=zo,
                               resolver=resolver, **opts)
    model = single_op_model(model_op, [T(x.shape, I8, si, zi)], [T(x.shape, I8, so, zo)], **opts)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


REQUANTIZE_CASES = [
    # (input dtype, (scale, zp), output dtype, (scale, zp))
    (np.int8, (0.05, -3), np.int8, (0.07, 5)),
    (np.int8, (2 ** -4, 4), np.int8, (2 ** -2, -7)),        # ties for every value
    (np.int8, (0.05, -3), np.uint8, (0.05, 125)),
    (np.int8, (0.1, 0), np.uint8, (0.1, 128)),               # the xor 0x80 shortcut
    (np.uint8, (0.1, 128), np.int8, (0.1, 0)),
    (np.uint8, (2 ** -3, 100), np.int8, (2 ** -1, 3)),
    (np.int8, (1.0, 0), np.int8, (0.003, 0)),                # XNNPACK declines: ratio > 128
    (np.uint8, (0.05, 131), np.uint8, (0.07, 120)),
    (np.uint8, (2 ** -4, 0), np.uint8, (2 ** -3, 255)),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("case", range(len(REQUANTIZE_CASES)))
def test_requantize_all_values(case, resolver):
    di, (si, zi), do, (so, zo) = REQUANTIZE_CASES[case]
    x = all_values(di, tail=11).reshape(1, -1)
    ours = litert.quantize(x, input_scale=si, input_zero_point=zi, output_scale=so, output_zero_point=zo, dtype=do,
                           resolver=resolver)
    model = single_op_model("QUANTIZE", [T(x.shape, di, si, zi)], [T(x.shape, do, so, zo)])
    (theirs,) = run_model(model, [x], resolver)
    assert ours.dtype == theirs.dtype
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


def float_inputs(rng, scale, zp, n=4093):
    """Float32 values around the quantization grid: exact .5 ties, neighbours of ties, random values
    over and beyond the range, signed zeros, infinities and huge values."""
    k = np.arange(-140, 140)
    ties = ((k + 0.5) * np.float64(scale)).astype(np.float32)
    near = np.concatenate([np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    rand = rng.uniform(-300 * scale, 300 * scale, n).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 1e30, -1e30, 3e9 * scale, -3e9 * scale], np.float32)
    x = np.concatenate([ties, near, rand, special]).astype(np.float32)
    return rng.permutation(x)


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("dtype,scale,zp", [(np.int8, 0.05, -3), (np.int8, 2 ** -4, 0), (np.uint8, 0.03, 128),
                                            (np.int8, 0.0123, 77), (np.uint8, 1 / 3, 0)])
def test_quantize_float(dtype, scale, zp, resolver):
    rng = np.random.default_rng(int(scale * 1e4) + zp)
    x = float_inputs(rng, np.float32(scale), zp).reshape(1, -1)
    ours = litert.quantize(x, output_scale=scale, output_zero_point=zp, dtype=dtype, resolver=resolver)
    model = single_op_model("QUANTIZE", [T(x.shape, np.float32)], [T(x.shape, dtype, scale, zp)])
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("dtype,scale,zp", [(np.int8, 0.05, -3), (np.int8, 0.1234567, 100), (np.uint8, 0.03, 128),
                                            (np.uint8, 7.77e-5, 3)])
def test_dequantize(dtype, scale, zp, resolver):
    x = all_values(dtype, tail=7).reshape(1, -1)
    ours = litert.dequantize(x, scale=scale, zero_point=zp, resolver=resolver)
    model = single_op_model("DEQUANTIZE", [T(x.shape, dtype, scale, zp)], [T(x.shape, np.float32)])
    (theirs,) = run_model(model, [x], resolver)
    assert ours.dtype == np.float32
    assert np.array_equal(ours.view(np.int32), theirs.view(np.int32)), f"{np.sum(ours != theirs)} differ"


# ---- SOFTMAX, MEAN ----------------------------------------------------------------------------------------
SOFTMAX_CASES = [((4, 10), 0.1, 1.0), ((2, 3, 37), 0.05, 1.0), ((5, 1000), 0.02, 1.0), ((3, 16), 0.25, 0.5),
                 ((2, 64), 0.0625, 2.0), ((6, 7), 0.5, 1.0)]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("case", range(len(SOFTMAX_CASES)))
def test_softmax(case, resolver):
    shape, s_in, beta = SOFTMAX_CASES[case]
    rng = np.random.default_rng(6000 + case)
    z_in = int(rng.integers(-20, 20))
    x = rand_i8(rng, shape)
    x[0, ..., :3] = 5  # ties for the row maximum
    ours = litert.softmax(x, beta=beta, input_scale=s_in, resolver=resolver)
    model = single_op_model("SOFTMAX", [T(shape, I8, s_in, z_in)], [T(shape, I8, 1 / 256, -128)], beta=beta)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"



@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("s_in,beta,depth", [(0.05, 1.0, 8), (0.0625, 2.0, 16), (0.25, 0.5, 5)])
def test_softmax_rows_where_resolvers_differ(s_in, beta, depth, resolver):
    """The fixed-point and float-table softmaxes agree on all but ~1 row in 10^4; rows where they
    disagree (picked from 2 * 10^5 candidates clustered near the row maximum) go to the runtime."""
    rng = np.random.default_rng(int(depth * 100 + beta * 10))
    x = rng.integers(-128, 128, (200000, depth)).astype(I8)
    x[:, :depth // 2] = (x[:, :depth // 2] // 8 + 100).astype(I8)
    ref = litert.softmax(x, beta=beta, input_scale=s_in, resolver="reference")
    opt = litert.softmax(x, beta=beta, input_scale=s_in, resolver="optimized")
    rows = np.nonzero((ref != opt).any(axis=1))[0]
    assert len(rows) >= 5
    x = np.ascontiguousarray(x[rows])
    ours = litert.softmax(x, beta=beta, input_scale=s_in, resolver=resolver)
    model = single_op_model("SOFTMAX", [T(x.shape, I8, s_in, 0)], [T(x.shape, I8, 1 / 256, -128)], beta=beta)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"

MEAN_CASES = [
    # (shape, axes, keep_dims, (s_in, z_in), (s_out, z_out))
    ((2, 7, 5, 37), (1, 2), True, (0.05, -3), (0.02, 4)),        # optimized: 32 NEON channels + 5 scalar
    ((1, 8, 8, 16), (1, 2), True, (2 ** -4, 0), (2 ** -4, 0)),   # power-of-two scales: ties
    ((3, 4, 6, 10), (2, 1), True, (0.1, 17), (0.03, -60)),
    ((2, 5, 5, 24), (1, 2), False, (0.05, -3), (0.02, 4)),       # no keep_dims: reference code
    ((2, 6, 9), (1,), True, (0.07, 9), (0.05, -2)),
    ((4, 3, 5, 6), (3,), False, (0.04, -50), (0.05, 30)),
    ((1, 1, 1, 40), (1, 2), True, (0.05, -3), (0.02, 4)),
    ((2, 4, 3, 5), (1, 3), True, (0.05, -3), (0.02, 4)),          # axes not in one block
    ((3, 6, 7, 9), (0, 1, 2), False, (0.05, 10), (0.01, -4)),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("case", range(len(MEAN_CASES)))
def test_mean(case, resolver):
    shape, axes, keep, (si, zi), (so, zo) = MEAN_CASES[case]
    rng = np.random.default_rng(7000 + case)
    x = rand_i8(rng, shape)
    ours = litert.mean(x, axes, keep_dims=keep, input_scale=si, input_zero_point=zi, output_scale=so,
                       output_zero_point=zo, resolver=resolver)
    axes_t = T((len(axes),), np.int32, data=np.array(axes, np.int32))
    model = single_op_model("MEAN", [T(shape, I8, si, zi), axes_t], [T(ours.shape, I8, so, zo)], keep_dims=keep)
    (theirs,) = run_model(model, [x], resolver)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


# ---- pooling, concatenation, pad, reshape -------------------------------------------------------------------
POOL_CASES = [
    # (N, H, W, C, filter, stride, padding, activation, (s, z))
    (2, 9, 9, 5, (3, 3), (2, 2), "SAME", "NONE", (0.05, -3)),
    (1, 8, 8, 16, (2, 2), (2, 2), "VALID", "RELU", (0.05, -3)),
    (2, 7, 10, 3, (3, 2), (1, 3), "SAME", "RELU6", (4.0, 1)),          # 6/s on a tie: bounds differ
    (1, 6, 6, 8, (6, 6), (1, 1), "VALID", "RELU_N1_TO_1", (2.0, 0)),
    (3, 5, 4, 6, (4, 3), (2, 1), "SAME", "NONE", (0.1, 100)),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("op", ["max", "average"])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pool2d(case, op, resolver):
    n, h, w, c, (fh, fw), (sh, sw), padding, act, (s, z) = POOL_CASES[case]
    rng = np.random.default_rng(8000 + case)
    x = rand_i8(rng, (n, h, w, c))
    fn = litert.max_pool2d if op == "max" else litert.average_pool2d
    ours = nhwc(fn(nchw(x), filter_size=(fh, fw), stride=(sh, sw), padding=padding, activation=act, output_scale=s,
                   output_zero_point=z, resolver=resolver))
    model = single_op_model(f"{op.upper()}_POOL_2D", [T(x.shape, I8, s, z)], [T(ours.shape, I8, s, z)],
                            padding=padding, stride_h=sh, stride_w=sw, filter_height=fh, filter_width=fw,
                            fused_activation_function=act)
    (theirs,) = run_model(model, [x], resolver)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("axis", [0, 1, 3, -1])
def test_concatenation(axis, resolver):
    rng = np.random.default_rng(9000 + axis)
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5)]
    shapes = [tuple(d * (k + 1) if i == axis % 4 else d for i, d in enumerate(sh)) for k, sh in enumerate(shapes)]
    xs = [rand_i8(rng, sh) for sh in shapes]
    ours = litert.concatenation(xs, axis, scales=[0.05] * 3, zero_points=[-3] * 3, output_scale=0.05,
                                output_zero_point=-3, resolver=resolver)
    model = single_op_model("CONCATENATION", [T(sh, I8, 0.05, -3) for sh in shapes], [T(ours.shape, I8, 0.05, -3)],
                            axis=axis)
    (theirs,) = run_model(model, xs, resolver)
    assert np.array_equal(ours, theirs)


def test_concatenation_rescaling_rejected():
    """LiteRT rejects int8 CONCATENATION whose inputs need rescaling: the builtin kernels in Prepare,
    and the default resolver because XNNPACK claims the node and then fails to prepare it."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401

    xs = [np.zeros((1, 2, 2, 3), I8)] * 2
    model = single_op_model("CONCATENATION", [T((1, 2, 2, 3), I8, 0.05, -3), T((1, 2, 2, 3), I8, 0.07, 2)],
                            [T((1, 2, 2, 6), I8, 0.1, 1)], axis=3)
    for resolver in ALL:
        with pytest.raises(Exception):
            run_model(model, xs, resolver)
        with pytest.raises(ValueError, match="rescaling"):
            litert.concatenation(xs, 3, scales=[0.05, 0.07], zero_points=[-3, 2], output_scale=0.1,
                                 output_zero_point=1, resolver=resolver)


@pytest.mark.parametrize("resolver", ALL)
def test_pad_and_reshape(resolver):
    rng = np.random.default_rng(10)
    x = rand_i8(rng, (2, 5, 6, 3))
    paddings = np.array([[0, 0], [1, 2], [2, 1], [0, 0]], np.int32)
    ours = litert.pad(x, paddings, output_zero_point=-7, resolver=resolver)
    model = single_op_model("PAD", [T(x.shape, I8, 0.05, -7), T((4, 2), np.int32, data=paddings)],
                            [T(ours.shape, I8, 0.05, -7)])
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs)
    new_shape = [2, 15, 6]
    ours = litert.reshape(x, new_shape, resolver=resolver)
    model = single_op_model("RESHAPE", [T(x.shape, I8, 0.05, -7), T((3,), np.int32, data=np.array(new_shape))],
                            [T(ours.shape, I8, 0.05, -7)], new_shape=new_shape)
    (theirs,) = run_model(model, [x], resolver)
    assert np.array_equal(ours, theirs)


# ---- which ops XNNPACK takes in the default resolver ------------------------------------------------------
def delegation_cases():
    """(op name, model bytes, keywords of litert.xnnpack_takes) for every op, with parameters on
    both sides of the delegate's checks."""
    S = (1, 8, 8, 16)
    a = lambda shape=S, s=0.05, z=-3, dt=I8: T(shape, dt, s, z)  # noqa: E731
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (4, 3, 3, 16)).astype(I8)
    ws = np.full(4, 0.01, np.float32)
    bias = T((4,), np.int32, ws * 0.05, 0, data=np.zeros(4, np.int32))
    cases = [
        ("conv2d", single_op_model("CONV_2D", [a(), T(w.shape, I8, ws, 0, data=w), bias], [a((1, 6, 6, 4), 0.1, 0)],
                                   padding="VALID", stride_h=1, stride_w=1), {}),
        ("depthwise_conv2d", single_op_model(
            "DEPTHWISE_CONV_2D", [a(), T((1, 3, 3, 16), I8, np.full(16, 0.01, np.float32), 0,
                                         data=rng.integers(-127, 128, (1, 3, 3, 16)).astype(I8), quantized_dimension=3),
                                  T((16,), np.int32, np.full(16, 5e-4, np.float32), 0, data=np.zeros(16, np.int32))],
            [a((1, 6, 6, 16), 0.1, 0)], padding="VALID", stride_h=1, stride_w=1, depth_multiplier=1), {}),
        ("fully_connected", single_op_model("FULLY_CONNECTED", [a((2, 16)), T((4, 16), I8, [0.01], 0,
                                                                               data=w[:, 0, 0, :]), bias],
                                            [a((2, 4), 0.1, 0)]), {}),
        ("concatenation", single_op_model("CONCATENATION", [a(), a()], [a((1, 8, 8, 32))], axis=3), {}),
        ("mean", single_op_model("MEAN", [a(), T((2,), np.int32, data=np.array([1, 2], np.int32))],
                                 [a((1, 1, 1, 16), 0.02, 1)], keep_dims=True), {}),
        ("reshape", single_op_model("RESHAPE", [a(), T((2,), np.int32, data=np.array([1, 1024], np.int32))],
                                    [a((1, 1024))], new_shape=[1, 1024]), {}),
        ("pad", single_op_model("PAD", [a(), T((4, 2), np.int32, data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]]))],
                                [a((1, 10, 10, 16))]), {}),
        ("softmax", single_op_model("SOFTMAX", [a()], [a(S, 1 / 256, -128)], beta=1.0), {}),
        ("logistic", single_op_model("LOGISTIC", [a()], [a(S, 1 / 256, -128)]), {}),
        ("tanh", single_op_model("TANH", [a()], [a(S, 1 / 128, 0)]), {}),
        ("hard_swish", single_op_model("HARD_SWISH", [a()], [a(S, 0.03, -80)]), {}),
        ("dequantize", single_op_model("DEQUANTIZE", [a()], [T(S, np.float32)]), {}),
        ("quantize", single_op_model("QUANTIZE", [T(S, np.float32)], [a()]), dict(float_input=True)),
    ]
    for op in ("relu", "relu6", "relu_n1_to_1"):
        cases.append((op, single_op_model(op.upper(), [a()], [a()]), {}))
    for s_out in (0.03, 1e-4):
        for op in ("add", "sub", "mul"):
            so = s_out * (0.05 if op == "mul" else 1) * (1e-3 if op == "mul" and s_out < 0.01 else 1)
            cases.append((op, single_op_model(op.upper(), [a(), a(S, 0.07, 2)], [a(S, so, 1)]),
                          dict(input_scale=0.05, b_scale=0.07, output_scale=so)))
    for alpha in (0.1, 0.001):
        cases.append(("leaky_relu", single_op_model("LEAKY_RELU", [a()], [a(S, 0.04, -20)], alpha=alpha),
                      dict(input_scale=0.05, output_scale=0.04, alpha=alpha)))
    for s_out, dt in ((0.07, I8), (1e-4, I8), (0.07, np.uint8)):
        cases.append(("quantize", single_op_model("QUANTIZE", [a()], [T(S, dt, s_out, 5)]),
                      dict(input_scale=0.05, output_scale=s_out, output_dtype=dt)))
    for (fh, fw), (sh, sw) in (((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 2), (3, 3)), ((1, 1), (2, 2)),
                               ((3, 2), (1, 3))):
        oh, ow = -(-8 // sh), -(-8 // sw)
        for op in ("max", "average"):
            cases.append((f"{op}_pool2d", single_op_model(f"{op.upper()}_POOL_2D", [a()], [a((1, oh, ow, 16))],
                                                           padding="SAME", stride_h=sh, stride_w=sw, filter_height=fh,
                                                           filter_width=fw),
                          dict(filter_size=(fh, fw), stride=(sh, sw))))
    return cases


def test_xnnpack_delegation():
    """Which int8 ops the default resolver gives to XNNPACK: the interpreter's execution plan (a
    DELEGATE node producing the output) against litert.xnnpack_takes, op by op."""
    seen = {True: set(), False: set()}
    for op, model, kw in delegation_cases():
        took = xnnpack_took(model)
        assert took == litert.xnnpack_takes(op, **kw), (op, kw, took)
        seen[took].add(op)
    # The profile facts this grounds: XNNPACK takes these, and declines these (int8).
    assert {"conv2d", "depthwise_conv2d", "fully_connected", "add", "sub", "mul", "concatenation", "max_pool2d",
            "mean", "reshape", "pad", "logistic", "tanh", "leaky_relu", "quantize", "dequantize"} <= seen[True]
    assert {"average_pool2d", "softmax", "relu", "relu6", "relu_n1_to_1", "hard_swish"} <= seen[False]
    assert {"add", "sub", "mul", "leaky_relu", "quantize", "max_pool2d"} <= seen[False]  # declined by scales/strides


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("threads", [2, 3])
def test_mean_threads(threads, resolver):
    """The optimized 4-D H,W mean splits the channels among the interpreter's threads (each range
    with its own NEON blocks of 16); the emulation takes the thread count."""
    rng = np.random.default_rng(70 + threads)
    shape = (2, 5, 6, 37)
    x = rand_i8(rng, shape)
    kw = dict(keep_dims=True, input_scale=2 ** -4, input_zero_point=3, output_scale=2 ** -5, output_zero_point=-1)
    ours = litert.mean(x, (1, 2), resolver=resolver, num_threads=threads, **kw)
    axes_t = T((2,), np.int32, data=np.array([1, 2], np.int32))
    model = single_op_model("MEAN", [T(shape, I8, 2 ** -4, 3), axes_t], [T(ours.shape, I8, 2 ** -5, -1)], keep_dims=True)
    (theirs,) = run_model(model, [x], resolver, num_threads=threads)
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


UINT8_UNARY_CASES = [
    ("relu", "RELU", (0.05, 120), (0.05, 120), {}),
    ("relu6", "RELU6", (0.04, 128), (6 / 255, 0), {}),
    ("leaky_relu", "LEAKY_RELU", (0.05, 130), (0.04, 110), {"alpha": 0.1}),
    ("hard_swish", "HARD_SWISH", (0.05, 118), (0.03, 48), {}),
    ("logistic", "LOGISTIC", (0.05, 118), (1 / 256, 0), {}),
    ("tanh", "TANH", (0.05, 128), (1 / 128, 128), {}),
]


@pytest.mark.parametrize("resolver", ALL)
@pytest.mark.parametrize("case", range(len(UINT8_UNARY_CASES)))
def test_unary_uint8_all_values(case, resolver):
    op, model_op, (si, zi), (so, zo), opts = UINT8_UNARY_CASES[case]
    x = all_values(np.uint8).reshape(1, -1)
    ours = getattr(litert, op)(x, input_scale=si, input_zero_point=zi, output_scale=so, output_zero_point=zo,
                               resolver=resolver, **opts)
    model = single_op_model(model_op, [T(x.shape, np.uint8, si, zi)], [T(x.shape, np.uint8, so, zo)], **opts)
    (theirs,) = run_model(model, [x], resolver)
    assert ours.dtype == np.uint8
    assert np.array_equal(ours, theirs), f"{np.sum(ours != theirs)} of {ours.size} differ"


# ---- the AVX2 and portable instantiations agree -------------------------------------------------------------
def test_portable_and_avx2_paths_agree():
    """Every vectorised loop is compiled twice (AVX2 and portable) from one source; both give the
    same bits (the runtime comparisons above run the default path)."""
    from fixedpoint import kernels

    rng = np.random.default_rng(99)
    a, b = rand_i8(rng, (3, 7, 9, 37)), rand_i8(rng, (3, 7, 9, 37))
    f = float_inputs(rng, np.float32(0.05), -3)
    bq = dict(a_scale=0.05, a_zero_point=-3, b_scale=0.07, b_zero_point=2, output_scale=0.1, output_zero_point=1)

    def run_all():
        out = []
        for r in ALL:
            for op in ("add", "sub", "mul"):
                out.append(getattr(litert, op)(a, b, resolver=r, **bq))
                out.append(getattr(litert, op)(a, b[:, :1, :, :], resolver=r, **bq))
                out.append(getattr(litert, op)(a, b[:1, :1, :1, :1], resolver=r, **bq))
            out.append(litert.leaky_relu(a, alpha=0.1, input_scale=0.05, input_zero_point=-3, output_scale=0.04,
                                         output_zero_point=-20, resolver=r))
            out.append(litert.quantize(a, input_scale=2 ** -4, input_zero_point=4, output_scale=2 ** -2,
                                       output_zero_point=-7, resolver=r))
            for dt in (np.int8, np.uint8):
                out.append(litert.quantize(f, output_scale=0.05, output_zero_point=3, dtype=dt, resolver=r))
            out.append(litert.dequantize(a, scale=0.1234567, zero_point=7, resolver=r).view(np.int32))
            out.append(litert.mean(a, (1, 2), keep_dims=True, input_scale=0.05, input_zero_point=-3, output_scale=0.02,
                                   output_zero_point=4, resolver=r))
            for fn in (litert.max_pool2d, litert.average_pool2d):
                out.append(fn(nchw(a), filter_size=3, stride=2, padding="SAME", activation="RELU6", output_scale=0.05,
                              output_zero_point=-3, resolver=r))
        return out

    default = run_all()
    saved = kernels.get_kernel_path()
    kernels.set_kernel_path("portable")
    try:
        portable = run_all()
    finally:
        kernels.set_kernel_path("auto" if saved in ("avx2", "vnni") else saved)
    assert len(default) == len(portable)
    for i, (x, y) in enumerate(zip(default, portable)):
        assert np.array_equal(x, y), i


def test_bad_arguments_raise_clear_errors():
    x = np.zeros((1, 4, 4, 3), I8)
    q = dict(a_scale=0.1, a_zero_point=0, b_scale=0.1, b_zero_point=0, output_scale=0.1, output_zero_point=0)
    with pytest.raises(ValueError, match="resolver"):
        litert.add(x, x, resolver="fast", **q)
    with pytest.raises(ValueError, match="broadcast"):
        litert.add(x, np.zeros((2, 3), I8), resolver="reference", **q)
    with pytest.raises(ValueError, match="dtype"):
        litert.add(x.astype(np.int16), x, resolver="reference", **q)
    with pytest.raises(ValueError, match="a_scale"):
        litert.add(x, x, resolver="reference", **{**q, "a_scale": 0.0})
    with pytest.raises(ValueError, match="output_zero_point"):
        litert.mul(x, x, resolver="xnnpack", **{**q, "output_zero_point": 200})
    with pytest.raises(ValueError, match="activation"):
        litert.add(x, x, resolver="reference", activation="TANH", **q)
    with pytest.raises(ValueError, match="1/256"):
        litert.softmax(x, input_scale=0.1, output_scale=0.01, resolver="reference")
    with pytest.raises(ValueError, match="LOGISTIC"):
        litert.logistic(x, input_scale=0.1, input_zero_point=0, output_scale=0.01, output_zero_point=0,
                        resolver="reference")
    with pytest.raises(ValueError, match="bias"):
        litert.conv2d(np.zeros((1, 3, 4, 4), I8), np.zeros((2, 3, 3, 3), I8), np.zeros(3, np.int32), input_scale=0.1,
                      input_zero_point=0, weight_scales=[0.01], output_scale=0.1, output_zero_point=0, resolver="optimized")
    with pytest.raises(ValueError, match="weight_scales"):
        litert.conv_requantizer("conv2d", input_scale=0.1, weight_scales=[0.1, 0.2], output_scale=0.1,
                                output_zero_point=0, channels=3, resolver="reference")
    with pytest.raises(ValueError, match="axis"):
        litert.mean(x, 7, keep_dims=True, input_scale=0.1, input_zero_point=0, output_scale=0.1,
                    output_zero_point=0, resolver="reference")
    with pytest.raises(ValueError, match="padding"):
        litert.max_pool2d(np.zeros((1, 3, 4, 4), I8), filter_size=2, stride=2, padding="FULL", output_scale=0.1,
                          output_zero_point=0, resolver="reference")
    with pytest.raises(ValueError, match="rejects"):
        litert.add(x, x, resolver="reference", **{**q, "output_scale": 1e-9})
