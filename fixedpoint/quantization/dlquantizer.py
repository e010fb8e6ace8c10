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
    """Quantization workflow for one network and one execution environment: "MATLAB", "GPU"
    (default), "FPGA" (power-of-two scaling); "ONNXRuntime", "LiteRT" (scales and zero points as
    that runtime's own quantizer chooses them; the network computes as the runtime does, see
    docs/quantization.md); "CPU" calibrates and validates but cannot quantize."""

    def __init__(self, net, execution_environment: str = "GPU"):
        from ..nn.prepare import prepare_network

        self.target = get_target(execution_environment)
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
                f"{'the ONNXRuntime' if self.target.runtime_family else 'the MATLAB'} environment")
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
                 per_channel: bool | None = None,
                 histogram_threshold: float = DEFAULT_HISTOGRAM_THRESHOLD,
                 activation_dtype: str | None = None, reduce_range: bool = False) -> QuantizedNetwork:
        """Build the quantized network.

        MATLAB / GPU / FPGA: power-of-two exponents from the calibration (MinMax, or Histogram — our
        documented approximation, see docs/quantization.md), int8 weights (per tensor by default, or
        per output channel), int32/float32 bias per environment, int8 activations.

        ONNXRuntime / LiteRT: scales and zero points from the calibrated ranges as the runtime's own
        quantizer computes them ("MinMax" only), symmetric int8 weights per output channel (default)
        or per tensor, int32 bias at s_x·s_w; `activation_dtype` "uint8" (ONNXRuntime's default) or
        "int8" (LiteRT: int8 only); `reduce_range` (ONNXRuntime): 7-bit weights in [-64, 64], as
        quantize_static's reduce_range, which keeps AVX2 CPUs' int16 pair sums from saturating."""
        if self.target.runtime_family:
            return self._quantize_affine(exponent_scheme, skip_layers, per_channel, activation_dtype,
                                         reduce_range)
        if activation_dtype is not None or reduce_range:
            raise ValueError(f"activation_dtype and reduce_range apply to the ONNXRuntime and LiteRT "
                             f"environments; {self.execution_environment} uses int8 activations and "
                             f"8-bit weights")
        per_channel = bool(per_channel)
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

    def _quantize_affine(self, exponent_scheme, skip_layers, per_channel, activation_dtype,
                         reduce_range) -> QuantizedNetwork:
        """ONNXRuntime / LiteRT: `affine.build_affine_network` with the environment's rules, checked
        by binding every layer to the default runtime profile (an unsupported combination fails
        here, naming the layer, not at predict); ONNXRuntime networks also carry the operator ORT
        runs for each layer, read from their own QDQ export (`with_ort_records`)."""
        from .affine import build_affine_network
        target = self.target
        if exponent_scheme != "MinMax":
            raise ValueError(
                f"exponent_scheme {exponent_scheme!r}: the {target.name} environment chooses scales "
                f"and zero points from the calibrated [min, max] as its runtime's quantizer does "
                f"(\"MinMax\"); \"Histogram\" chooses power-of-two exponents for MATLAB, GPU and FPGA")
        if activation_dtype is not None and activation_dtype not in target.activation_dtypes:
            raise ValueError(f"activation_dtype must be one of {', '.join(target.activation_dtypes)} for "
                             f"the {target.name} environment, got {activation_dtype!r}")
        if reduce_range not in (True, False):
            raise ValueError(f"reduce_range must be True or False, got {reduce_range!r}")
        if reduce_range and target.quantizer != "onnxruntime":
            raise ValueError(f"reduce_range is an option of onnxruntime.quantization (ONNXRuntime "
                             f"environment); the {target.name} converter quantizes weights to [-127, 127]")
        if per_channel is None:
            per_channel = True
        elif per_channel not in (True, False):
            raise ValueError(f"per_channel must be True, False or None, got {per_channel!r}")
        if self.calibrator is None:
            raise ValueError("the network is not calibrated: call calibrate(data) first")
        skip = self._skip_set(skip_layers)
        if skip and not target.float_fallback:
            raise ValueError(f"skip_layers {sorted(skip)}: the {target.name} environment makes "
                             f"full-integer models (LiteRT's float kernels are not emulated); quantize "
                             f"every layer, or choose ONNXRuntime")
        options = {"exponent_scheme": "MinMax", "per_channel": bool(per_channel),
                   "activation_dtype": activation_dtype or target.activation_dtypes[0],
                   "reduce_range": bool(reduce_range), "skip_layers": sorted(skip)}
        qnet = build_affine_network(self.prepared_network, self.calibrator.statistics, target,
                                    skip=skip, per_channel=per_channel,
                                    activation_dtype=activation_dtype, options=options)
        if target.runtime_family == "onnxruntime":
            from ..onnx.export_qdq import with_ort_records
            qnet = with_ort_records(qnet)
        from ..runtime import get_runtime
        qnet._functions(get_runtime(qnet.default_runtime))   # every layer binds (clear errors now)
        qnet.calibration_statistics = self.calibrator.statistics
        qnet.float_network = self.prepared_network
        self.quantized_network = qnet
        return qnet

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
