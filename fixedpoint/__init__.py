"""fixedpoint: bit-exact fixed-point arithmetic (MATLAB `fi` semantics) and int8 network emulation.

The public API, and nothing else: each name is defined in the module that owns its concept.
"""
__version__ = "0.1.0"

# --- fi: types, arrays, arithmetic, casts ---
from .types import (ArithMode, OverflowAction, RoundingMethod, default_fimath, fimath, fimath_context,
                    numerictype)
from .fi import complex, concatenate, fi, isreal
from .cast import (cast, ceil, convergent, fix, floor, nearest, reinterpretcast, removefimath, round,
                   setfimath)
from .arith import abs, accumneg, accumpos, add, conj, cumsum, divide, mpy, prod, sub, sum
# --- fi: bit operations, ranges, logging, data-type override ---
from .bits import (bitand, bitandreduce, bitcmp, bitconcat, bitget, bitor, bitorreduce, bitreplicate,
                   bitrol, bitror, bitset, bitshift, bitsliceget, bitsll, bitsra, bitsrl, bitxor, bitxorreduce,
                   getlsb, getmsb)
from .ranges import eps, intmax, intmin, lowerbound, range, realmax, realmin, upperbound
from .fi_logging import (FiLoggingWarning, datatype_override, logging_mode, logreport, maxlog, minlog,
                         noverflows, nunderflows, resetlog)
# --- networks ---
from . import nn
from . import examples
from .nn.layers import (AdditionLayer, AveragePooling2DLayer, BatchNormalizationLayer,
                        ClippedReLULayer, ConcatenationLayer, Convolution2DLayer,
                        CrossChannelNormalizationLayer, DropoutLayer, FeatureInputLayer,
                        FlattenLayer, FullyConnectedLayer, GlobalAveragePooling2DLayer,
                        GlobalMaxPooling2DLayer, IdentityLayer, ImageInputLayer, LeakyReLULayer,
                        MaxPooling2DLayer, MultiplicationLayer, ReLULayer, ReshapeLayer,
                        SigmoidLayer, SoftmaxLayer, TanhLayer, TransposeLayer)
from .nn.network import Network, NetworkError
from .nn.prepare import prepare_network
from .nn.io import load_network, save_network
from .onnx import export_onnx, import_onnx
from .tflite import TfliteImportError, import_tflite
# --- quantization workflow ---
from .quantization import (QuantizationDetails, QuantizedNetwork, QuantParams, ValidationResult, dlquantizer,
                           load_quantized_network, quantization_details)
from .runtime import RuntimeNotSupportedError, get_runtime, runtimes
from .analysis import compare_runtimes, quantization_error, quantization_report
