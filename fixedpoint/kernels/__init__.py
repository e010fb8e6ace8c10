"""The Python face of the compiled kernels (`fixedpoint._kernels`, `fixedpoint._requant`): exact
integer GEMM, convolution and requantization, and the float32 convolution for small images that the
float layers use (`conv_float`).

numpy arrays in and out; shapes and dtypes are checked here, the arithmetic runs in C++.
"""
from .requantize import (Requantizer, fp32_scale, multiply_by_quantized_multiplier, quantize_multiplier,
                         requantize_fp32, requantize_shift, rounding_divide_by_pot,
                         saturating_rounding_doubling_high_mul)
from .elementwise import add_shifted, avg_pool2d, global_avg_pool, max_pool2d, quantize
from .accumulation import Accumulation, cpu_features, host_ort_profile, ort_accumulation
from .gemm import AccumulatorOverflowError, PackedWeights, gemm, pack_weights
from .conv import conv2d
from .conv_float import conv2d_float, pack_float_conv
from .threads import get_kernel_path, get_num_threads, set_force_portable, set_kernel_path, set_num_threads
