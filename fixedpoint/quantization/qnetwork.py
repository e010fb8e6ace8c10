"""`QuantizedNetwork`: the prepared float graph executed with int8 activations.

Each layer either runs its integer semantics (`layers/`, one module per layer type, via the compiled
kernels) or, when the target does not quantize it or it was skipped, its float `forward`. Tensors cross between the two in
the consumer: a float layer dequantizes (exact), a quantized layer quantizes a float input at the
producer's calibrated exponent (docs/quantized-semantics.md, "Float layers and the boundaries").
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .. import kernels
from ..nn.io import (NetworkFileError, network_from_bundle, network_to_bundle, read_npz_bundle,
                     write_npz_bundle)
from ..progress import ProgressBar
from .layers import QuantizedLayer
from .targets import TargetProfile, get_target

FORMAT = "fixedpoint.quantized_network"
VERSION = 1


class QTensor(NamedTuple):
    """An int8 activation in flight: stored integers and their fraction length."""

    q: np.ndarray
    f: int


def dequantize(q: np.ndarray, f: int) -> np.ndarray:
    """float32(q · 2^-f): exact for int8 stored integers."""
    return np.ldexp(q.astype(np.float32), np.int32(-f)).astype(np.float32, copy=False)


def as_fi(tensor: QTensor):
    """An int8 activation as an `fi` of numerictype (1, 8, f)."""
    from ..fi import fi
    from ..types import numerictype
    return fi._from_stored(tensor.q.astype(np.int64), numerictype(1, 8, tensor.f))


class QuantizedNetwork:
    """A network that computes as the int8 target does; it behaves like a `Network` for inference
    (`predict`, `minibatch_predict`, `summary`, `layers`, `connections`, `learnables`).

    `network` is the prepared float network (batch norm folded), `qlayers` the quantized layers by
    name, `activation_fraction_lengths` the calibrated output fraction length of every layer (used
    where a float value enters a quantized layer), `target` the execution environment's profile.
    """

    def __init__(self, network, qlayers: dict[str, QuantizedLayer],
                 activation_fraction_lengths: dict[str, int], target: TargetProfile,
                 options: dict | None = None):
        self.network = network
        self.qlayers = dict(qlayers)
        self.activation_fraction_lengths = {k: int(v) for k, v in activation_fraction_lengths.items()}
        self.target = target
        self.options = dict(options or {})
        # {(layer, kind): TensorStatistics} of the calibration it came from (not saved to files)
        self.calibration_statistics = None
        self._fusion_plans: dict[tuple, dict] = {}   # requested outputs -> `_fusions`

    # --- Network-like inspection -----------------------------------------------------------------
    @property
    def layers(self):
        return self.network.layers

    @property
    def input_names(self) -> list[str]:
        return self.network.input_names

    @property
    def output_names(self) -> list[str]:
        return self.network.output_names

    @property
    def connections(self) -> pd.DataFrame:
        return self.network.connections

    def layer(self, name: str):
        return self.network.layer(name)

    @property
    def quantized_layer_names(self) -> list[str]:
        return [name for name in self.network.layer_names if name in self.qlayers]

    @property
    def learnables(self) -> pd.DataFrame:
        """Learnables as float32 values; those of quantized layers are already on their grid."""
        rows = []
        for layer in self.network.layers:
            ql = self.qlayers.get(layer.name)
            for key, value in layer.learnables.items():
                if ql is not None and key == "Weights":
                    shape = (-1,) + (1,) * (ql.weights.ndim - 1)
                    value = np.ldexp(ql.weights.astype(np.float32),
                                     -ql.weight_fraction_lengths.reshape(shape).astype(np.int32))
                elif ql is not None and key == "Bias":
                    value = np.ldexp(ql.bias.astype(np.float64),
                                     -ql.bias_fraction_lengths.astype(np.int32)).astype(np.float32)
                rows.append((layer.name, key, value))
        return pd.DataFrame(rows, columns=["Layer", "Parameter", "Value"])

    def summary(self, print_table: bool = True) -> pd.DataFrame:
        """The float network's summary plus whether each layer runs quantized and its output type."""
        table = self.network.summary(print_table=False)
        table["Quantized"] = ["yes" if name in self.qlayers else "no" for name in table["Name"]]
        table["Output type"] = [f"s8,{self.qlayers[n].output_fraction_length}" if n in self.qlayers
                                else "single" for n in table["Name"]]
        if print_table:
            print(table.to_string(index=False))
            print(f"Quantized network for {self.target.name} (target library "
                  f"{self.target.target_library!r}): {len(self.qlayers)} of {len(table)} layers "
                  f"quantized")
        return table

    def __repr__(self) -> str:
        return (f"QuantizedNetwork({len(self.network.layer_names)} layers, {len(self.qlayers)} "
                f"quantized, environment={self.target.name!r})")

    # --- execution -------------------------------------------------------------------------------
    def _quantize_input(self, value: np.ndarray, fraction_length: int) -> np.ndarray:
        return kernels.quantize(value, fraction_length=fraction_length,
                                rounding=self.target.rounding, overflow="Saturate", dtype=np.int8)

    def _fusions(self, requested: tuple) -> dict:
        """For these requested outputs: {convolution or fully connected layer: (its quantized
        layer, its requantizer clamped as the quantized ReLU / clipped ReLU that alone reads its
        output and has no other input)} and {that activation: (its quantized layer, None)}: it
        passes its input on. The clamp of the int8 output is exactly that activation (same fraction
        length), so both outputs keep their bits. Built from the quantized layers of the time: a
        replaced one is noticed and the plan rebuilt."""
        fusions = self._fusion_plans.get(requested)
        if fusions is None:
            fusions, net = {}, self.network
            for name, ql in self.qlayers.items():
                readers = net.layer_consumers(name)
                if (ql.type_name not in ("Convolution2D", "FullyConnected") or name in requested
                        or len(readers) != 1 or net.layer_inputs(readers[0]) != [name]):
                    continue
                activation = self.qlayers.get(readers[0])
                if activation is None or activation.type_name not in ("ReLU", "ClippedReLU"):
                    continue
                hi = activation.clip_max if activation.type_name == "ClippedReLU" else 127
                fusions[name] = (ql, ql.requantizer.clamped(0, hi))
                fusions[readers[0]] = (activation, None)
            self._fusion_plans[requested] = fusions
        return fusions

    def _compute(self, outputs) -> Callable:
        """The network's `compute` for these outputs: `_step` with the activation fusions."""
        requested = tuple(self.network.output_names if outputs is None else outputs)
        fusions = self._fusions(requested)

        if any(self.qlayers.get(name) is not ql for name, (ql, _) in fusions.items()):
            del self._fusion_plans[requested]
            fusions = self._fusions(requested)

        def compute(layer, *args):
            fused = fusions.get(layer.name)
            if fused is None:
                return self._step(layer, *args)
            if fused[1] is None:   # an activation its producer computed
                return args[0]
            return self._step(layer, *args, requantizer=fused[1])
        return compute

    def _step(self, layer, *args, requantizer=None):
        """One layer on quantized data; `requantizer` replaces a convolution's or fully connected
        layer's own (see `_fusions`)."""
        ql = self.qlayers.get(layer.name)
        if ql is None:
            return layer.forward(*[dequantize(*a) if type(a) is QTensor else a for a in args])
        if len(args) == 1:   # the common case, without the generality below
            a = args[0]
            stored = a.q if type(a) is QTensor else self._quantize_input(a, ql.input_fraction_lengths[0])
            out = ql.kind.run(ql, stored) if requantizer is None else \
                ql.kind.run(ql, stored, requantizer)
            return QTensor(out, ql.output_fraction_length)
        stored = [a.q if type(a) is QTensor else self._quantize_input(a, f)
                  for a, f in zip(args, ql.input_fraction_lengths)]
        return QTensor(ql(*stored), ql.output_fraction_length)

    def run(self, inputs: dict[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict:
        """{name: QTensor or float32 array} for the requested layers (default: the outputs)."""
        return self.network.run(inputs, outputs=outputs, compute=self._compute(outputs))

    def predict(self, *x: np.ndarray, outputs: str | Sequence[str] | None = None):
        """Quantized inference. Without `outputs`: the network outputs as float32 (dequantized).
        With `outputs` (names): each quantized layer's int8 output as an `fi`, float layers' float32
        outputs; one value for a single name, else a list."""
        names = [outputs] if isinstance(outputs, str) else outputs
        result = self.network.run(self.network._input_dict(x), outputs=names,
                                  compute=self._compute(names))
        convert = (lambda v: dequantize(*v) if isinstance(v, QTensor) else v) if outputs is None \
            else (lambda v: as_fi(v) if isinstance(v, QTensor) else v)
        values = [convert(v) for v in result.values()]
        single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
        return values[0] if single else values

    def minibatch_predict(self, data, batch_size: int = 128, progress: bool = True) -> np.ndarray:
        """`predict` over the observations of `data` in batches; outputs concatenated."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        data = np.asarray(data)
        parts = []
        with ProgressBar(len(data), "predict", enabled=progress) as bar:
            for start in range(0, len(data), batch_size):
                batch = data[start:start + batch_size]
                result = self.predict(batch)
                parts.append(result if isinstance(result, list) else [result])
                bar.update(len(batch))
        merged = [np.concatenate(column, axis=0) for column in zip(*parts)]
        return merged[0] if len(merged) == 1 else merged

    # --- files -----------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write one `.npz` bundle: the prepared float network, every quantized layer's integer data
        (arrays under ``qlayer/<name>/<key>``, scalars in the JSON), the fraction lengths, the
        target's name and the quantization options. No pickle."""
        network_meta, arrays = network_to_bundle(self.network, prefix="network/")
        layers = {}
        for name, ql in self.qlayers.items():
            scalars = {}
            for key, value in ql.data.items():
                if isinstance(value, np.ndarray):
                    arrays[f"qlayer/{name}/{key}"] = value
                else:
                    scalars[key] = np.asarray(value).tolist()
            layers[name] = {"rounding": ql.rounding, "scalars": scalars,
                            "input_fraction_lengths": ql.input_fraction_lengths,
                            "output_fraction_length": ql.output_fraction_length}
        meta = {"format": FORMAT, "version": VERSION, "target": self.target.name,
                "options": self.options, "network": network_meta, "qlayers": layers,
                "activation_fraction_lengths": self.activation_fraction_lengths}
        write_npz_bundle(path, meta, arrays)


def load_quantized_network(path) -> QuantizedNetwork:
    """Read a network written by `QuantizedNetwork.save`; it computes identical bits."""
    meta, arrays = read_npz_bundle(path)
    if meta.get("format") != FORMAT or not isinstance(meta.get("version"), int) \
            or meta["version"] > VERSION:
        raise NetworkFileError(f"{path}: not a quantized network bundle (format "
                               f"{meta.get('format')!r}, version {meta.get('version')!r})")
    network_arrays = {k: v for k, v in arrays.items() if k.startswith("network/")}
    network = network_from_bundle(meta["network"], network_arrays, prefix="network/",
                                  source=str(path))
    layer_arrays: dict[str, dict] = {}
    for key, value in arrays.items():
        if key.startswith("qlayer/"):  # qlayer/<name>/<key>; names may contain '/', keys do not
            name, _, data_key = key[len("qlayer/"):].rpartition("/")
            layer_arrays.setdefault(name, {})[data_key] = value
    qlayers = {}
    for name, entry in meta["qlayers"].items():
        data = dict(entry["scalars"], **layer_arrays.get(name, {}))
        qlayers[name] = QuantizedLayer(network.layer(name), entry["rounding"],
                                       entry["input_fraction_lengths"],
                                       entry["output_fraction_length"], **data)
    return QuantizedNetwork(network, qlayers, meta["activation_fraction_lengths"],
                            get_target(meta["target"]), meta["options"])
