"""Quantized layer kinds, one module per float layer type (as `nn/layers`), in two registries.

`QUANTIZED_KINDS[type_name]` runs power-of-two layers (MATLAB's targets) with the target's rounding;
`AFFINE_KINDS[type_name]` runs affine layers (scales and zero points) as a runtime profile says.
Importing this package registers every kind.
"""
from . import (addition, average_pooling2d, batch_normalization, clipped_relu, concatenation,  # noqa: F401
               convolution2d, data_movement, fully_connected, global_average_pooling2d, hard_swish, leaky_relu,
               max_pooling2d, multiplication, ort_graph, pad, relu, sigmoid, softmax, subtraction, tanh)
from .base import (AFFINE_KINDS, QUANTIZED_KINDS, AffineKind, AffineLayer, BuildOptions, QuantizedKind,  # noqa: F401
                   QuantizedLayer, quantize_scaled, register_affine_kind, register_kind, runtime_float_function)
from .learnable import FLOAT_EXACT_MAX_PRODUCTS, FLOAT_EXACT_MAX_TERMS, exact_float_sums  # noqa: F401
