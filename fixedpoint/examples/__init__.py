"""Bundled example networks and data: two small digit classifiers and their data split.

They let every part of the quantization workflow run out of the box (``fixedpoint demo``, the docs,
the tests) with no download. The files are package data written by ``examples/train_digits.py``
(which documents the training and how to rebuild them); loading never executes code.

* `digits_cnn()`: conv-BN-ReLU blocks, max pooling, global average pooling, fully connected,
  softmax (float validation accuracy 98.01 %, 1233 of 1258).
* `digits_mobilenet()`: a stem convolution, depthwise-separable blocks with ReLU6 and a residual
  addition, global average pooling, fully connected, softmax (97.38 %, 1225 of 1258).
* `digits_data()`: scikit-learn's 8x8 handwritten digits, pixel values scaled to [0, 1], NCHW
  float32 `(N, 1, 8, 8)`, int64 labels 0..9, split (stratified, seeded) into 539 calibration images
  (also the training set) and 1258 validation images.
* `model_file(name)`: the path of a bundled quantized model as the runtimes' own tools write them:
  ``digits_{cnn,mobilenet}_qdq.onnx`` (ONNX Runtime's `quantize_static`, QDQ, uint8 activations,
  int8 weights per channel; examples/make_onnx_models.py) and ``digits_{cnn,mobilenet}_int8.tflite`` /
  ``_float_io.tflite`` (the TFLite converter, full-integer; examples/make_tflite_models.py).
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from ..nn.io import load_network
from ..nn.network import Network

__all__ = ["digits_cnn", "digits_mobilenet", "digits_data", "model_file", "MODEL_FILES"]

MODEL_FILES = ("digits_cnn_qdq.onnx", "digits_mobilenet_qdq.onnx", "digits_cnn_int8.tflite",
               "digits_cnn_float_io.tflite", "digits_mobilenet_int8.tflite", "digits_mobilenet_float_io.tflite")


def _data_file(name: str):
    return resources.files(__name__).joinpath("data", name)


def _load(name: str) -> Network:
    with resources.as_file(_data_file(name)) as path:
        return load_network(path)


def digits_cnn() -> Network:
    """The small digits CNN (batch normalizations unfolded, as trained); a new object per call."""
    return _load("digits_cnn.npz")


def digits_mobilenet() -> Network:
    """The MobileNet-style digits network (depthwise-separable blocks, ReLU6, a residual addition)."""
    return _load("digits_mobilenet.npz")


def digits_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_cal, y_cal), (x_val, y_val)``: images NCHW float32 in [0, 1], labels int64."""
    with resources.as_file(_data_file("digits.npz")) as path, \
            np.load(path, allow_pickle=False) as contents:
        x_cal, y_cal, x_val, y_val = (contents[key] for key in ("x_cal", "y_cal", "x_val", "y_val"))
    return (x_cal, y_cal), (x_val, y_val)


def model_file(name: str) -> str:
    """The path of the bundled model file `name` (one of `MODEL_FILES`), to give to
    `fp.import_onnx` / `fp.import_tflite` or to the runtimes themselves."""
    if name not in MODEL_FILES:
        raise ValueError(f"no bundled model {name!r}; bundled: {', '.join(MODEL_FILES)}")
    return str(_data_file(name))
