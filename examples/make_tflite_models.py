"""Make the .tflite models of the bundled networks (package data) and of the every-op test network
(tests/data/): full-integer int8, as the TFLite converter writes them.

Run from the repository root with the TensorFlow venv (TensorFlow is never a dependency of the
library or its tests; only this script needs it):

    /work/tfvenv/bin/python examples/make_tflite_models.py

(the venv imports this checkout's fixedpoint to read the bundled networks, so it needs numpy,
pandas and the built extensions of this Python version: `/work/tfvenv/bin/pip install pandas`).

It writes, for each model M of

* ``digits_cnn``: `fp.examples.digits_cnn()` (batch norm folded with `fp.prepare_network`) rebuilt
  in Keras from its weights: conv+ReLU blocks, max pooling, global average pooling (MEAN), dense,
  softmax;
* ``digits_mobilenet``: `fp.examples.digits_mobilenet()` likewise: depthwise-separable blocks with
  ReLU6, a residual ADD, an explicit PAD before the stride-2 depthwise convolution (PyTorch's
  symmetric padding is not TFLite's SAME), MEAN, dense, softmax;
* ``ops``: a small random-weight network (seeded) whose purpose is to make the converter emit every
  operator the importer handles: ADD, SUB, MUL, CONCATENATION, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN,
  PAD, RESHAPE before FULLY_CONNECTED (the NHWC flatten order), SOFTMAX, LOGISTIC, TANH,
  LEAKY_RELU, HARD_SWISH, RELU, RELU6, depthwise with a channel multiplier, a strided conv;

two files: ``M_int8.tflite`` (int8 input and output: what a microcontroller deployment uses) and
``M_float_io.tflite`` (float32 input and output: QUANTIZE and DEQUANTIZE at the ends), the digits
models' in ``fixedpoint/examples/data/`` (`fp.examples.model_file`), the ``ops`` model's in
``tests/data/``. The representative dataset is the bundled calibration images (`fp.examples.digits_data()`,
NHWC). The Keras float models are checked against our float networks before converting.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # the fixedpoint of this checkout (pure-Python parts suffice here)

import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

OUT_DIRS = {"digits_cnn": ROOT / "fixedpoint" / "examples" / "data",
            "digits_mobilenet": ROOT / "fixedpoint" / "examples" / "data",
            "ops": ROOT / "tests" / "data"}
SEED = 20251


def load_fixedpoint_networks():
    """Our prepared (batch norm folded) float networks and the data, read from the package files
    without importing the compiled extensions (this venv need not have them built)."""
    import fixedpoint as fp
    cnn = fp.prepare_network(fp.examples.digits_cnn())
    mobilenet = fp.prepare_network(fp.examples.digits_mobilenet())
    return fp, cnn, mobilenet, fp.examples.digits_data()


def conv_kernel(layer):
    """OIHW -> Keras HWIO."""
    return layer.weights.transpose(2, 3, 1, 0)


def depthwise_kernel(layer):
    """(C*m, 1, kh, kw) -> Keras (kh, kw, C, m)."""
    w = layer.weights
    c = layer.groups
    return w.reshape(c, w.shape[0] // c, *w.shape[2:]).transpose(2, 3, 0, 1)


def padding_of(layer):
    """Keras padding for our explicit symmetric padding: 'same' where TFLite's SAME pads the same
    (stride 1, odd kernel), else an explicit ZeroPadding2D before a 'valid' layer."""
    pads = tuple(layer.padding)
    kh, kw = layer.weights.shape[2:]
    if pads == (0, 0, 0, 0):
        return "valid", None
    if layer.stride == (1, 1) and pads == (kh // 2, kw // 2, kh // 2, kw // 2):
        return "same", None
    return "valid", ((pads[0], pads[2]), (pads[1], pads[3]))


def keras_conv(layer, x, activation=None):
    padding, explicit = padding_of(layer)
    if explicit is not None:
        x = keras.layers.ZeroPadding2D(explicit, name=f"{layer.name}_pad")(x)
    if layer.groups == 1:
        conv = keras.layers.Conv2D(layer.num_filters, layer.filter_size, strides=layer.stride,
                                   padding=padding, activation=activation, name=layer.name)
        out = conv(x)
        conv.set_weights([conv_kernel(layer), layer.bias])
    else:
        assert layer.is_depthwise
        conv = keras.layers.DepthwiseConv2D(layer.filter_size, strides=layer.stride, padding=padding,
                                            depth_multiplier=layer.num_filters // layer.groups,
                                            activation=activation, name=layer.name)
        out = conv(x)
        conv.set_weights([depthwise_kernel(layer), layer.bias])
    return out


def keras_dense(layer, x, activation=None):
    dense = keras.layers.Dense(layer.output_size, activation=activation, name=layer.name)
    out = dense(x)
    dense.set_weights([layer.weights.T, layer.bias])
    return out


def keras_from_network(net):
    """A Keras model computing `net` (conv / depthwise / ReLU / ReLU6 / max pool / addition / global
    average pooling / fully connected / softmax), NHWC."""
    values = {}
    inputs = None
    activations = {"ReLU": "relu", "ClippedReLU": "relu6"}
    for layer in net.layers:
        sources = net.layer_inputs(layer.name)
        kind = layer.type_name
        if kind == "ImageInput":
            c, h, w = layer.input_size
            inputs = keras.Input((h, w, c), name="input")
            values[layer.name] = inputs
        elif kind == "Convolution2D":
            values[layer.name] = keras_conv(layer, values[sources[0]])
        elif kind in activations:
            assert kind == "ReLU" or layer.ceiling == 6.0
            values[layer.name] = keras.layers.Activation(activations[kind], name=layer.name)(
                values[sources[0]])
        elif kind == "MaxPooling2D":
            assert tuple(layer.padding) == (0, 0, 0, 0)
            values[layer.name] = keras.layers.MaxPooling2D(layer.pool_size, layer.stride,
                                                           name=layer.name)(values[sources[0]])
        elif kind == "Addition":
            values[layer.name] = keras.layers.Add(name=layer.name)([values[s] for s in sources])
        elif kind == "GlobalAveragePooling2D":
            values[layer.name] = keras.layers.GlobalAveragePooling2D(name=layer.name)(values[sources[0]])
        elif kind == "FullyConnected":
            values[layer.name] = keras_dense(layer, values[sources[0]])
        elif kind == "Softmax":
            values[layer.name] = keras.layers.Softmax(name=layer.name)(values[sources[0]])
        else:
            raise ValueError(f"no Keras form of {kind} layers here")
    return keras.Model(inputs, [values[n] for n in net.output_names])


def ops_model():
    """The random-weight network exercising every importer op (see the module docstring)."""
    keras.utils.set_random_seed(SEED)
    L = keras.layers
    x = keras.Input((8, 8, 1), name="input")
    a = L.Conv2D(8, 3, padding="same", activation="relu6", name="conv_a")(x)        # CONV_2D+RELU6
    b = L.Conv2D(8, 3, padding="same", name="conv_b")(x)
    b = L.LeakyReLU(negative_slope=0.2, name="leaky")(b)                                # LEAKY_RELU
    s = L.Add(name="add")([a, b])                                                       # ADD
    d = L.Subtract(name="sub")([a, b])                                                  # SUB
    m = L.Multiply(name="mul")([s, d])                                                  # MUL
    h = L.Conv2D(8, 1, name="conv_h")(m)
    h = L.Activation("hard_swish", name="hswish")(h)                                    # HARD_SWISH
    t = L.Activation("tanh", name="tanh")(L.Conv2D(4, 1, name="conv_t")(s))             # TANH
    g = L.Activation("sigmoid", name="sigmoid")(L.Conv2D(4, 1, name="conv_g")(d))       # LOGISTIC
    c = L.Concatenate(name="concat")([h, t, g])                                         # CONCATENATION
    c = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(c)                                # PAD
    p = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, name="dw")(c)               # DEPTHWISE (m=2)
    p = L.MaxPooling2D(1, name="mp1")(p)                                                # MAX_POOL_2D
    q = L.AveragePooling2D(2, strides=1, padding="same", name="avgpool")(c)             # AVERAGE_POOL_2D
    q = L.Conv2D(6, 3, strides=2, name="conv_q")(q)
    r = L.Concatenate(name="concat2")([p, q])
    mean = L.GlobalAveragePooling2D(keepdims=True, name="mean")(r)                      # MEAN
    mean = L.ReLU(max_value=6.0, name="relu6")(L.Flatten(name="flat_mean")(mean))      # RELU6
    f = L.ReLU(name="relu")(L.Flatten(name="flatten")(r))                               # RESHAPE, RELU
    f = L.Dense(12, activation="relu", name="fc1")(f)                                   # FULLY_CONNECTED
    f = L.Concatenate(name="concat3")([f, mean])
    logits = L.Dense(10, name="fc2")(f)
    out = L.Softmax(name="softmax")(logits)                                             # SOFTMAX
    return keras.Model(x, out)


def convert(model, calibration_nhwc, integer_io: bool) -> bytes:
    def representative():
        for k in range(len(calibration_nhwc)):
            yield [calibration_nhwc[k:k + 1]]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if integer_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def operators(content: bytes) -> list[str]:
    interpreter = tf.lite.Interpreter(model_content=content)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def accuracy(content: bytes, images_nhwc, labels) -> float:
    """Top-1 accuracy of the converted model run by TensorFlow's interpreter (a sanity check)."""
    interpreter = tf.lite.Interpreter(model_content=content)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], images_nhwc.shape)
    interpreter.allocate_tensors()
    x = images_nhwc
    if detail["dtype"] == np.int8:
        scale, zero_point = detail["quantization"]
        x = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return float(np.mean(out.argmax(axis=1) == labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="one folder for every model (default: "
                        "the digits models in the package data, the ops model in tests/data)")
    args = parser.parse_args(argv)
    fp, cnn, mobilenet, ((x_cal, _), (x_val, y_val)) = load_fixedpoint_networks()
    cal = np.ascontiguousarray(x_cal.transpose(0, 2, 3, 1))
    val = np.ascontiguousarray(x_val.transpose(0, 2, 3, 1))
    models = {"digits_cnn": (keras_from_network(cnn), cnn),
              "digits_mobilenet": (keras_from_network(mobilenet), mobilenet),
              "ops": (ops_model(), None)}
    for name, (model, net) in models.items():
        out = args.out or OUT_DIRS[name]
        out.mkdir(parents=True, exist_ok=True)
        if net is not None:   # the Keras rebuild computes what our float network computes
            ours = net.predict(x_val[:256])
            theirs = model.predict(val[:256], batch_size=1, verbose=0)
            error = float(np.abs(ours - theirs).max())
            assert error < 1e-4, f"{name}: Keras rebuild differs from the network by {error}"
            print(f"{name}: Keras rebuild matches the float network (max |diff| {error:.2e})")
        for integer_io, suffix in ((True, "int8"), (False, "float_io")):
            content = convert(model, cal, integer_io)
            path = out / f"{name}_{suffix}.tflite"
            path.write_bytes(content)
            print(f"wrote {path.relative_to(ROOT)} ({len(content)} bytes, accuracy "
                  f"{accuracy(content, val, y_val):.4f}): {' '.join(operators(content))}")


if __name__ == "__main__":
    main()
