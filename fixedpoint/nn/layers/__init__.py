"""The layer library: one module per layer type, all registered in `LAYER_REGISTRY`."""
from .base import LAYER_REGISTRY, Layer, make_layer, register_layer
from .addition import AdditionLayer
from .average_pooling2d import AveragePooling2DLayer
from .batch_normalization import BatchNormalizationLayer
from .clipped_relu import ClippedReLULayer
from .concatenation import ConcatenationLayer
from .convolution2d import Convolution2DLayer
from .cross_channel_normalization import CrossChannelNormalizationLayer
from .dropout import DropoutLayer
from .feature_input import FeatureInputLayer
from .flatten import FlattenLayer
from .fully_connected import FullyConnectedLayer
from .global_average_pooling2d import GlobalAveragePooling2DLayer
from .global_max_pooling2d import GlobalMaxPooling2DLayer
from .hard_swish import HardSwishLayer
from .identity import IdentityLayer
from .image_input import ImageInputLayer
from .input_normalization import InputLayer
from .leaky_relu import LeakyReLULayer
from .max_pooling2d import MaxPooling2DLayer
from .multiplication import MultiplicationLayer
from .pad import PadLayer
from .relu import ReLULayer
from .reshape import ReshapeLayer
from .resize import Resize2DLayer
from .sigmoid import SigmoidLayer
from .softmax import SoftmaxLayer
from .subtraction import SubtractionLayer
from .tanh import TanhLayer
from .tensor_input import TensorInputLayer
from .transpose import TransposeLayer

__all__ = [
    "LAYER_REGISTRY", "Layer", "InputLayer", "make_layer", "register_layer",
    "AdditionLayer", "AveragePooling2DLayer", "BatchNormalizationLayer", "ClippedReLULayer",
    "ConcatenationLayer", "Convolution2DLayer", "CrossChannelNormalizationLayer", "DropoutLayer",
    "FeatureInputLayer", "FlattenLayer", "FullyConnectedLayer", "GlobalAveragePooling2DLayer",
    "GlobalMaxPooling2DLayer", "HardSwishLayer", "IdentityLayer", "ImageInputLayer", "LeakyReLULayer",
    "MaxPooling2DLayer", "MultiplicationLayer", "PadLayer", "ReLULayer", "ReshapeLayer", "Resize2DLayer",
    "SigmoidLayer", "SoftmaxLayer", "SubtractionLayer", "TanhLayer", "TensorInputLayer", "TransposeLayer",
]
