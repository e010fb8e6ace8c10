"""The quantization workflow: dlquantizer -> calibrate -> quantize -> validate, and the
`QuantizedNetwork` that computes exactly as the int8 target does."""
from .details import QuantizationDetails, quantization_details
from .dlquantizer import dlquantizer
from .qnetwork import QuantizedNetwork, load_quantized_network
from .qparams import QuantParams
from .targets import TARGETS, TargetProfile
from .validate import ValidationResult
