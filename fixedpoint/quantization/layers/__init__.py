"""Quantized layer kinds, one module per float layer type (as `nn/layers`), in one registry.

`QUANTIZED_KINDS[type_name]` is the kind that runs layers of that float type on integers; importing
this package registers every kind.
"""
from . import (addition, average_pooling2d, clipped_relu, concatenation, convolution2d, data_movement,
               fully_connected, global_average_pooling2d, leaky_relu, max_pooling2d, multiplication, relu)
from .base import QUANTIZED_KINDS, BuildOptions, QuantizedKind, QuantizedLayer, quantize_scaled, register_kind
from .learnable import FLOAT_EXACT_MAX_PRODUCTS, FLOAT_EXACT_MAX_TERMS, exact_float_sums
