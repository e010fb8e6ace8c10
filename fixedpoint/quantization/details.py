"""`quantization_details(net)` (spec B.5): what was quantized, with which types."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

PARAMETER_COLUMNS = ["Layer", "Tensor", "Type", "Scale", "Zero point", "Per channel"]


@dataclass
class QuantizationDetails:
    """`numerictypes[(layer, "Weights" | "Bias" | "Activations")]` is the numerictype of that
    tensor (a tuple of per-channel numerictypes for per-channel weights and their int32 bias), so a
    layer's integer arithmetic can be rebuilt by hand with docs/quantized-semantics.md (power-of-two
    targets) or docs/runtimes.md (runtimes with scales and zero points, whose types are slope-bias:
    slope = scale, bias = −scale·zero point). `parameters` lists every quantized tensor's scale(s) and
    zero point(s)."""

    is_quantized: bool
    target_library: str
    quantized_layer_names: list[str]
    quantized_learnables: pd.DataFrame
    numerictypes: dict = field(default_factory=dict)
    parameters: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PARAMETER_COLUMNS))


def _per_channel_types(signed, word_length, fraction_lengths):
    from ..types import numerictype
    types = tuple(numerictype(signed, word_length, int(f)) for f in fraction_lengths)
    return types[0] if len(set(types)) == 1 else types


def _parameter_row(layer, tensor, params):
    scale = params.scale if params.per_channel else float(params.scale[0])
    zero = params.zero_point if params.per_channel else int(params.zero_point[0])
    return (layer, tensor, params.dtype.name, scale, zero, params.per_channel)


def quantization_details(net) -> QuantizationDetails:
    """Details of a `QuantizedNetwork`; a float network reports `is_quantized=False`."""
    from .qnetwork import QuantizedNetwork

    if not isinstance(net, QuantizedNetwork):
        return QuantizationDetails(False, "", [], pd.DataFrame(columns=["Layer", "Parameter", "Value"]))
    rows, types, params = [], {}, []
    for name in net.quantized_layer_names:
        ql = net.qlayers[name]
        for k, p in enumerate(ql.input_params):
            if p is not None:   # None: a float input (quantized by the layer itself at run time)
                params.append(_parameter_row(name, "Input" if len(ql.input_params) == 1 else f"Input {k + 1}", p))
        if ql.scheme == "affine":
            _affine_details(ql, rows, types, params)
        else:
            _pow2_details(net, ql, rows, types, params)
    return QuantizationDetails(True, net.target.target_library, net.quantized_layer_names,
                               pd.DataFrame(rows, columns=["Layer", "Parameter", "Value"]), types,
                               pd.DataFrame(params, columns=PARAMETER_COLUMNS))


def _pow2_details(net, ql, rows, types, params):
    from ..types import numerictype
    from .qparams import QuantParams
    name = ql.name
    types[(name, "Activations")] = numerictype(1, 8, ql.output_fraction_length)
    params.append(_parameter_row(name, "Activations", ql.output_params))
    if not hasattr(ql, "weights"):
        return
    rows.append((name, "Weights", ql.weights))
    types[(name, "Weights")] = _per_channel_types(1, 8, ql.weight_fraction_lengths)
    f_w = ql.weight_fraction_lengths
    params.append(_parameter_row(name, "Weights", QuantParams.pow2(f_w if np.any(f_w != f_w[0]) else f_w[0],
                                                                  np.int8, axis=0)))
    if net.target.bias_dtype == "float32":
        value = np.ldexp(ql.bias.astype(np.float64),
                         -ql.bias_fraction_lengths.astype(np.int32)).astype(np.float32)
        types[(name, "Bias")] = numerictype(data_type="single")
    else:
        value = ql.bias
        types[(name, "Bias")] = _per_channel_types(1, 32, ql.bias_fraction_lengths)
    rows.append((name, "Bias", value))


def _affine_details(ql, rows, types, params):
    from ..types import numerictype
    name = ql.name
    if ql.output_params is not None:   # None: a float output
        types[(name, "Activations")] = ql.output_params.numerictype()
        params.append(_parameter_row(name, "Activations", ql.output_params))
    weights = getattr(ql, "weights", None)
    weight_params = getattr(ql, "weight_params", None)
    if weights is None or weight_params is None:
        return
    rows.append((name, "Weights", weights))
    types[(name, "Weights")] = weight_params.numerictype()
    params.append(_parameter_row(name, "Weights", weight_params))
    bias = getattr(ql, "bias", None)
    if bias is None or ql.input_params[0] is None:
        return
    rows.append((name, "Bias", bias))
    # the bias is added to the accumulator, whose real step is exactly s_x · s_w (not rounded)
    sx = Fraction(float(ql.input_params[0].scale[0]))
    slopes = [sx * Fraction(float(s)) for s in weight_params.scale]
    bias_types = tuple(numerictype(1, 32, slope=s) for s in slopes)
    types[(name, "Bias")] = bias_types[0] if not weight_params.per_channel else bias_types
