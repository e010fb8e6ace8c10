"""`dlquantizer`: the quantization workflow object (spec B.1-B.6).

    q = dlquantizer(net, execution_environment="FPGA")
    q.calibrate(x_cal)                      # ranges + log2 histograms, streamed over batches
    qnet = q.quantize("MinMax")             # a QuantizedNetwork computing as the int8 target
    q.validate((x_val, y_val))              # float vs quantized metric and learnable memory

Calibration and quantization work on the prepared network (batch norm folded); every table names the
original layers each prepared layer stands for.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from .calibration import Calibrator
from .exponent import DEFAULT_HISTOGRAM_THRESHOLD, EXPONENT_SCHEMES, choose_fraction_length
from .layers import QUANTIZED_KINDS, BuildOptions, QuantizedLayer
from .qnetwork import QuantizedNetwork
from .targets import get_target


class dlquantizer:
    """Quantization workflow for one network and one execution environment
    ("MATLAB", "GPU" (default), "FPGA"; "CPU" calibrates and validates but cannot quantize)."""

    def __init__(self, net, execution_environment: str = "GPU"):
        from ..nn.prepare import prepare_network

        self.target = get_target(execution_environment)
        if self.target.runtime_family:
            raise ValueError(f"execution_environment {self.target.name!r}: quantizing for a runtime with "
                             f"scales and zero points is not available yet; choose MATLAB, GPU or FPGA")
        self.execution_environment = self.target.name
        self.network = net
        unsupported = [(layer.name, layer.type_name) for layer in net.layers
                       if not self.target.is_supported(layer.type_name)]
        if unsupported:
            name, type_name = unsupported[0]
            raise ValueError(
                f"layer {name!r} of type {type_name} is not supported by the "
                f"{self.execution_environment} execution environment (unsupported: "
                f"{', '.join(f'{n} ({t})' for n, t in unsupported)}); supported layer types: "
                f"{', '.join(sorted(self.target.supported_types))}. Replace the layer or choose "
                f"the MATLAB environment")
        self.prepared_network = prepare_network(net)
        self.calibrator: Calibrator | None = None
        self.quantized_network: QuantizedNetwork | None = None  # the latest result of quantize

    def __repr__(self) -> str:
        state = "calibrated" if self.calibrator else "not calibrated"
        return f"dlquantizer(execution_environment={self.execution_environment!r}, {state})"

    # --- B.2 -------------------------------------------------------------------------------------
    def calibrate(self, data, batch_size: int = 32, progress: bool = True) -> pd.DataFrame:
        """Run the prepared float network on `data` (array, (x, y) pair, or iterable of batches) and
        record every tensor's range; returns the calibration table (one row per entity)."""
        calibrator = Calibrator(self.prepared_network, getattr(self.prepared_network, "origin", None))
        calibrator.run(data, batch_size=batch_size, progress=progress)
        self.calibrator = calibrator
        return calibrator.table()

    @property
    def calibration_statistics(self):
        """{(layer, "Weights" | "Bias" | "Activations"): TensorStatistics} after calibrate."""
        return None if self.calibrator is None else self.calibrator.statistics

    # --- B.3 / B.4 -------------------------------------------------------------------------------
    def _skip_set(self, skip_layers: Iterable[str]) -> set[str]:
        """Prepared-layer names to keep in float; original names map to the layer holding them."""
        net = self.prepared_network
        holders = {}
        for name, originals in getattr(net, "origin", {}).items():
            for original in originals:
                holders.setdefault(original, name)
        for name in net.layer_names:
            holders[name] = name
        if isinstance(skip_layers, str):
            skip_layers = [skip_layers]
        unknown = [name for name in skip_layers if name not in holders]
        if unknown:
            raise ValueError(f"skip_layers: unknown layer names {unknown}; valid names: "
                             f"{', '.join(sorted(holders))}")
        return {holders[name] for name in skip_layers}

    def quantize(self, exponent_scheme: str = "MinMax", *, skip_layers: Iterable[str] = (),
                 per_channel: bool = False,
                 histogram_threshold: float = DEFAULT_HISTOGRAM_THRESHOLD) -> QuantizedNetwork:
        """Build the quantized network: power-of-two exponents from the calibration (MinMax, or
        Histogram — our documented approximation, see docs/quantization.md), int8 weights (per tensor
        or per output channel), int32/float32 bias per environment, int8 activations."""
        if not self.target.can_quantize:
            raise ValueError(
                f"quantize is not supported for the {self.execution_environment} execution "
                f"environment; use calibrate/validate to measure the network for code generation, "
                f"or choose MATLAB, GPU or FPGA")
        if exponent_scheme not in EXPONENT_SCHEMES:
            raise ValueError(f"exponent_scheme must be one of {', '.join(EXPONENT_SCHEMES)}, "
                             f"got {exponent_scheme!r}")
        if self.calibrator is None:
            raise ValueError("the network is not calibrated: call calibrate(data) first")
        skip = self._skip_set(skip_layers)
        net, target = self.prepared_network, self.target
        options = BuildOptions(target.rounding, exponent_scheme, histogram_threshold, per_channel)

        activation_f = {}
        for (name, kind), stats in self.calibrator.statistics.items():
            if kind == "Activations":
                activation_f[name] = choose_fraction_length(
                    exponent_scheme, stats.min_value, stats.max_value, stats.counts, stats.zeros,
                    histogram_threshold, target.word_length)

        qlayers: dict[str, QuantizedLayer] = {}
        for layer in net.layers:
            name, type_name = layer.name, layer.type_name
            if name in skip or name in net.input_names or type_name not in QUANTIZED_KINDS:
                continue
            sources = net.layer_inputs(name)
            if not (type_name in target.quantized_types or (
                    type_name in target.conditional_types and all(s in qlayers for s in sources))):
                continue
            f_in = [qlayers[s].output_fraction_length if s in qlayers else activation_f[s]
                    for s in sources]
            kind = QUANTIZED_KINDS[type_name]
            f_out = activation_f[name] if kind.own_exponent else f_in[0]
            data = kind.build(layer, f_in, f_out, options)
            qlayers[name] = QuantizedLayer(layer, target.rounding, f_in, f_out, **data)

        self.quantized_network = QuantizedNetwork(net, qlayers, activation_f, target, {
            "exponent_scheme": exponent_scheme, "per_channel": bool(per_channel),
            "histogram_threshold": float(histogram_threshold), "skip_layers": sorted(skip)})
        self.quantized_network.calibration_statistics = self.calibrator.statistics
        return self.quantized_network

    # --- B.6 -------------------------------------------------------------------------------------
    def validate(self, data, metric="top1", *, batch_size: int = 32, exponent_scheme: str = "MinMax",
                 **quantize_options):
        """Quantize (if needed: with these options) and compare float and quantized networks on
        `data` ((x, y) pair or iterable of pairs): metric values, samples, learnable memory."""
        from .validate import validate_networks

        if self.target.can_quantize:
            qnet = self.quantize(exponent_scheme, **quantize_options)
        else:
            qnet = None
        return validate_networks(self.prepared_network, qnet, data, metric, batch_size=batch_size)
