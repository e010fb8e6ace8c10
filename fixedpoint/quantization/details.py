"""`quantization_details(net)` (spec B.5): what was quantized, with which types."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class QuantizationDetails:
    """`numerictypes[(layer, "Weights" | "Bias" | "Activations")]` is the numerictype of that
    tensor (a tuple of per-channel numerictypes for per-channel weights and their int32 bias), so a
    layer's integer arithmetic can be rebuilt by hand with docs/quantized-semantics.md."""

    is_quantized: bool
    target_library: str
    quantized_layer_names: list[str]
    quantized_learnables: pd.DataFrame
    numerictypes: dict = field(default_factory=dict)


def _per_channel_types(signed, word_length, fraction_lengths):
    from ..types import numerictype
    types = tuple(numerictype(signed, word_length, int(f)) for f in fraction_lengths)
    return types[0] if len(set(types)) == 1 else types


def quantization_details(net) -> QuantizationDetails:
    """Details of a `QuantizedNetwork`; a float network reports `is_quantized=False`."""
    from ..types import numerictype
    from .qnetwork import QuantizedNetwork

    if not isinstance(net, QuantizedNetwork):
        return QuantizationDetails(False, "", [], pd.DataFrame(columns=["Layer", "Parameter", "Value"]))
    float_bias = net.target.bias_dtype == "float32"
    rows, types = [], {}
    for name in net.quantized_layer_names:
        ql = net.qlayers[name]
        types[(name, "Activations")] = numerictype(1, 8, ql.output_fraction_length)
        if not hasattr(ql, "weights"):
            continue
        rows.append((name, "Weights", ql.weights))
        types[(name, "Weights")] = _per_channel_types(1, 8, ql.weight_fraction_lengths)
        if float_bias:
            value = np.ldexp(ql.bias.astype(np.float64),
                             -ql.bias_fraction_lengths.astype(np.int32)).astype(np.float32)
            types[(name, "Bias")] = numerictype(data_type="single")
        else:
            value = ql.bias
            types[(name, "Bias")] = _per_channel_types(1, 32, ql.bias_fraction_lengths)
        rows.append((name, "Bias", value))
    return QuantizationDetails(True, net.target.target_library, net.quantized_layer_names,
                               pd.DataFrame(rows, columns=["Layer", "Parameter", "Value"]), types)
