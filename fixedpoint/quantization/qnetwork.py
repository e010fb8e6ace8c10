"""`QuantizedNetwork`: the prepared float graph executed on integers.

Each layer either runs its integer semantics (`layers/`, one module per layer type, via the compiled
kernels) or, when the target does not quantize it or it was skipped, its float `forward`. Tensors
cross between the two in the consumer: a float layer dequantizes (exact), a quantized layer quantizes
a float input with the parameters of that tensor (docs/quantized-semantics.md, "Float layers and
the boundaries").

Two schemes share this class. Power-of-two networks (MATLAB's int8 targets) compute one way, with
their target's rounding. Affine networks (scales and zero points: ONNX Runtime and LiteRT models and
environments) compute as a named runtime profile says (`predict(x, runtime=...)`, `fp.runtimes()`):
each affine layer is bound once per profile to the function computing it as that runtime does.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .. import kernels
from ..nn.io import (NetworkFileError, network_from_bundle, network_to_bundle, read_npz_bundle,
                     write_npz_bundle)
from ..progress import ProgressBar
from .layers import AffineLayer, QuantizedLayer, runtime_float_function
from .qparams import QuantParams
from .targets import TargetProfile, get_target

FORMAT = "fixedpoint.quantized_network"
VERSION = 2


class QTensor(NamedTuple):
    """An integer activation in flight: stored integers and their quantization parameters."""

    q: np.ndarray
    params: QuantParams

    @property
    def f(self) -> int | None:
        """The fraction length of a power-of-two tensor (None for an affine one)."""
        return self.params.fraction_length


def dequantize(tensor: QTensor) -> np.ndarray:
    """float32((q − zero point) · scale): exact for power-of-two int8 tensors, and what ONNX
    DequantizeLinear and TFLite DEQUANTIZE compute for affine ones."""
    return tensor.params.dequantize(tensor.q)


def as_fi(tensor: QTensor):
    """An integer activation as an `fi` of its numerictype (slope-bias for affine parameters)."""
    from ..fi import fi
    return fi._from_stored(tensor.q.astype(np.int64), tensor.params.numerictype())


class QuantizedNetwork:
    """A network that computes as the integer target does; it behaves like a `Network` for inference
    (`predict`, `minibatch_predict`, `summary`, `layers`, `connections`, `learnables`).

    `network` is the prepared float network (batch norm folded), `qlayers` the quantized layers by
    name (`QuantizedLayer` for power-of-two targets, `AffineLayer` for runtimes with scales and zero
    points), `activation_params` the `QuantParams` of every tensor that may enter a quantized layer
    from a float one (for power-of-two networks given as `activation_fraction_lengths`), `target` the
    execution environment's profile.

    Affine networks also take `input_params` ({input layer: QuantParams} for inputs given as
    integers, as a full-integer .tflite model takes them; other inputs are float and quantized where
    read) and `integer_outputs` (outputs returned as the runtime returns them: the integers of a
    quantized output instead of their dequantized values).
    """

    def __init__(self, network, qlayers: dict, activation_fraction_lengths: dict[str, int] | None,
                 target: TargetProfile, options: dict | None = None, *,
                 activation_params: dict[str, QuantParams] | None = None,
                 input_params: dict[str, QuantParams] | None = None, integer_outputs: bool = False):
        self.network = network
        self.qlayers = dict(qlayers)
        self.activation_fraction_lengths = {k: int(v) for k, v in (activation_fraction_lengths or {}).items()}
        params = {k: QuantParams.pow2(f) for k, f in self.activation_fraction_lengths.items()}
        params.update(activation_params or {})
        self.activation_params = params
        self.input_params = dict(input_params or {})
        self.integer_outputs = bool(integer_outputs)
        self.target = target
        self.options = dict(options or {})
        schemes = {ql.scheme for ql in self.qlayers.values()}
        if len(schemes) > 1:
            raise ValueError("a quantized network holds either power-of-two or affine layers, not both")
        self.scheme = schemes.pop() if schemes else ("affine" if target.runtime_family else "pow2")
        if self.scheme == "affine" and not target.runtime_family:
            raise ValueError(f"affine layers need a runtime environment (ONNXRuntime, LiteRT), not "
                             f"{target.name}")
        unknown = sorted(set(self.input_params) - set(network.input_names))
        if unknown:
            raise ValueError(f"input_params names {unknown}, which are not input layers "
                             f"{network.input_names}")
        # {(layer, kind): TensorStatistics} of the calibration it came from (not saved to files)
        self.calibration_statistics = None
        self._fusion_plans: dict[tuple, dict] = {}   # requested outputs -> `_fusions`
        self._bound: dict[str, dict] = {}            # runtime name -> {layer: bound function}
        self._affine_plans: dict[tuple, AffinePlan] = {}   # (runtime, outputs) -> `_affine_plan`

    @property
    def default_runtime(self) -> str | None:
        """The runtime `predict` emulates when none is named (None: a power-of-two target)."""
        return self.target.default_runtime if self.scheme == "affine" else None

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
                if ql is not None and ql.scheme == "affine" and key in ("Weights", "Bias") and \
                        getattr(ql, "weight_params", None) is not None and ql.input_params[0] is not None:
                    value = ql.weight_params.dequantize(ql.weights) if key == "Weights" else (
                        ql.bias * (np.float64(ql.input_params[0].scale[0]) * ql.weight_params.scale)
                    ).astype(np.float32)
                elif ql is not None and key == "Weights":
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
        table["Output type"] = [type_text(self.qlayers[n].output_params) if n in self.qlayers
                                and self.qlayers[n].output_params is not None else "single" for n in table["Name"]]
        if print_table:
            print(table.to_string(index=False))
            runtime = f", runs as {self.default_runtime!r} by default" if self.default_runtime else ""
            print(f"Quantized network for {self.target.name} (target library "
                  f"{self.target.target_library!r}{runtime}): {len(self.qlayers)} of {len(table)} "
                  f"layers quantized")
        return table

    def __repr__(self) -> str:
        return (f"QuantizedNetwork({len(self.network.layer_names)} layers, {len(self.qlayers)} "
                f"quantized, environment={self.target.name!r})")

    # --- execution -------------------------------------------------------------------------------
    def _runtime(self, runtime):
        """The profile to emulate: `runtime` (or the default) for affine networks; None for
        power-of-two networks, which take no `runtime`."""
        from ..runtime import get_runtime
        if self.scheme == "pow2":
            if runtime is not None:
                raise ValueError(
                    f"runtime={runtime!r}: this network was quantized for the {self.target.name} "
                    f"environment (power-of-two scaling), which computes one way; runtimes apply to "
                    f"ONNXRuntime / LiteRT networks (imported, or quantized for those environments)")
            return None
        profile = get_runtime(self.default_runtime if runtime is None else runtime)
        if profile.family != self.target.runtime_family:
            raise ValueError(f"runtime {profile.name!r} emulates {profile.family} models; this network "
                             f"is a {self.target.runtime_family} network (fp.runtimes() lists the "
                             f"{self.target.runtime_family} profiles)")
        return profile

    def _functions(self, profile) -> dict:
        """{layer name: function of its integer inputs} for an affine network under `profile`, each
        layer bound once per profile (packing and requantizer derivation happen there)."""
        functions = self._bound.get(profile.name)
        if functions is None or any(functions.get(n, (None,))[0] is not ql for n, ql in self.qlayers.items()):
            functions = {name: (ql, ql.kind.bind(ql, profile)) for name, ql in self.qlayers.items()}
            for layer in self.network.layers:   # float layers on the runtime's own float kernels
                hint = self.options.get("runtime_float_hints", {}).get(layer.name)
                function = None if layer.name in functions else runtime_float_function(layer, profile, hint)
                if function is not None:
                    functions[layer.name] = (None, function)
            self._bound[profile.name] = functions
        return functions

    def _quantize_input(self, value: np.ndarray, params: QuantParams, profile=None) -> np.ndarray:
        """A float value entering a quantized layer: the target's rounding for power-of-two
        networks, the runtime's QuantizeLinear / QUANTIZE for affine ones."""
        if profile is None:
            return kernels.quantize(value, fraction_length=params.fraction_length,
                                    rounding=self.target.rounding, overflow="Saturate", dtype=np.int8)
        from ..runtime.boundary import quantize
        return quantize(profile, value, params)

    def _fusions(self, requested: tuple) -> dict:
        """For these requested outputs: {convolution or fully connected layer: (its quantized
        layer, its requantizer clamped as the quantized ReLU / clipped ReLU that alone reads its
        output and has no other input)} and {that activation: (its quantized layer, None)}: it
        passes its input on. The clamp of the int8 output is exactly that activation (same fraction
        length), so both outputs keep their bits. Built from the quantized layers of the time: a
        replaced one is noticed and the plan rebuilt. Power-of-two networks only."""
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
        """The network's `compute` for these outputs (power-of-two): `_step` with the activation
        fusions."""
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
        """One layer on quantized data (power-of-two); `requantizer` replaces a convolution's or
        fully connected layer's own (see `_fusions`)."""
        ql = self.qlayers.get(layer.name)
        if ql is None:
            return layer.forward(*[dequantize(a) if type(a) is QTensor else a for a in args])
        if len(args) == 1:   # the common case, without the generality below
            a = args[0]
            stored = a.q if type(a) is QTensor else self._quantize_input(a, ql.input_params[0])
            out = ql.kind.run(ql, stored) if requantizer is None else \
                ql.kind.run(ql, stored, requantizer)
            return QTensor(out, ql.output_params)
        stored = [a.q if type(a) is QTensor else self._quantize_input(a, p)
                  for a, p in zip(args, ql.input_params)]
        return QTensor(ql(*stored), ql.output_params)

    def _affine_plan(self, profile, requested: tuple) -> "AffinePlan":
        """The execution plan of an affine network under `profile` for these outputs, built once
        (see `AffinePlan`) and rebuilt when a quantized layer or the network was replaced."""
        key = (profile.name, requested)
        plan = self._affine_plans.get(key)
        if plan is None or not plan.current(self):
            plan = self._affine_plans[key] = AffinePlan(self, profile, requested)
        return plan

    @staticmethod
    def _dequantize(tensor: QTensor, profile=None) -> np.ndarray:
        """An integer tensor leaving the quantized part: float32((q − zp) · scale), or as the
        runtime profile's `dequantize` recipe says (affine networks)."""
        if profile is None:
            return dequantize(tensor)
        from ..runtime.boundary import dequantize as runtime_dequantize
        return runtime_dequantize(profile, tensor.q, tensor.params)

    def _integer_input(self, name, value) -> np.ndarray:
        params = self.input_params[name]
        value = np.asarray(value)
        if value.dtype != params.dtype:
            raise ValueError(f"input {name!r} takes {params.dtype} integers (quantized with scale "
                             f"{float(params.scale[0])!r}, zero point {int(params.zero_point[0])}), "
                             f"got dtype {value.dtype}")
        return value

    def run(self, inputs: dict[str, np.ndarray], outputs: Sequence[str] | None = None,
            runtime=None) -> dict:
        """{name: QTensor or float32 array} for the requested layers (default: the outputs)."""
        profile = self._runtime(runtime)
        if profile is None:
            return self.network.run(inputs, outputs=outputs, compute=self._compute(outputs))
        requested = tuple(self.network.output_names if outputs is None else outputs)
        return self._affine_plan(profile, requested).run(inputs)

    def predict(self, *x: np.ndarray, outputs: str | Sequence[str] | None = None, runtime=None):
        """Quantized inference. Without `outputs`: the network outputs as float32 (dequantized), or
        as integers for a network with `integer_outputs`. With `outputs` (names): each quantized
        layer's integer output as an `fi`, float layers' float32 outputs; one value for a single
        name, else a list. `runtime` (affine networks): the profile to emulate (`fp.runtimes()`),
        default `default_runtime`."""
        profile = self._runtime(runtime)
        names = [outputs] if isinstance(outputs, str) else outputs
        inputs = self.network._input_dict(x)
        if profile is None:
            result = self.network.run(inputs, outputs=names, compute=self._compute(names))
        else:
            requested = tuple(self.network.output_names if names is None else names)
            result = self._affine_plan(profile, requested).run(inputs)
        if outputs is not None:
            convert = lambda v: as_fi(v) if isinstance(v, QTensor) else v  # noqa: E731
        elif self.integer_outputs:
            convert = lambda v: v.q if isinstance(v, QTensor) else v  # noqa: E731
        else:
            convert = lambda v: self._dequantize(v, profile) if isinstance(v, QTensor) else v  # noqa: E731
        values = [convert(v) for v in result.values()]
        single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
        return values[0] if single else values

    def minibatch_predict(self, data, batch_size: int = 128, progress: bool = True, runtime=None):
        """`predict` over the observations of `data` in batches; outputs concatenated."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        data = np.asarray(data)
        parts = []
        with ProgressBar(len(data), "predict", enabled=progress) as bar:
            for start in range(0, len(data), batch_size):
                batch = data[start:start + batch_size]
                result = self.predict(batch, runtime=runtime)
                parts.append(result if isinstance(result, list) else [result])
                bar.update(len(batch))
        merged = [np.concatenate(column, axis=0) for column in zip(*parts)]
        return merged[0] if len(merged) == 1 else merged

    # --- files -----------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write one `.npz` bundle: the prepared float network, every quantized layer's integer data
        (arrays under ``qlayer/<name>/<key>``, scalars and quantization parameters in the JSON), the
        activation parameters, the target's name and the quantization options. No pickle."""
        network_meta, arrays = network_to_bundle(self.network, prefix="network/")
        layers = {}
        for name, ql in self.qlayers.items():
            scalars, params = {}, {}
            for key, value in ql.data.items():
                if isinstance(value, np.ndarray):
                    arrays[f"qlayer/{name}/{key}"] = value
                elif isinstance(value, QuantParams):
                    params[key] = value.to_config()
                else:
                    scalars[key] = np.asarray(value).tolist()
            entry = {"scheme": ql.scheme, "scalars": scalars, "params": params}
            if ql.scheme == "pow2":
                entry.update(rounding=ql.rounding, input_fraction_lengths=ql.input_fraction_lengths,
                             output_fraction_length=ql.output_fraction_length)
            else:
                entry.update(input_params=[None if p is None else p.to_config() for p in ql.input_params],
                             output_params=None if ql.output_params is None else ql.output_params.to_config())
            layers[name] = entry
        meta = {"format": FORMAT, "version": VERSION, "target": self.target.name,
                "options": self.options, "network": network_meta, "qlayers": layers,
                "activation_fraction_lengths": self.activation_fraction_lengths,
                "activation_params": {k: p.to_config() for k, p in self.activation_params.items()
                                      if k not in self.activation_fraction_lengths},
                "input_params": {k: p.to_config() for k, p in self.input_params.items()},
                "integer_outputs": self.integer_outputs}
        write_npz_bundle(path, meta, arrays)


class AffinePlan:
    """How an affine network runs under one runtime profile for one set of requested outputs,
    worked out once: the layers to run in order, each with the function computing it (the bound
    quantized layer, the runtime's float kernel or the layer's `forward`), the slots its inputs are
    read from, and what each input needs on the way in, known in advance because every tensor's
    kind is static (a quantized layer's output is integers with its `output_params`, float32 when
    those are None (a float port); a float layer's is float32; an input is float unless given as
    integers in `input_params`):

    * integers entering a quantized layer with the parameters it reads: passed as they are;
    * other integers entering a quantized layer: dequantized and quantized again (DQ → Q);
    * a float value entering a quantized layer: quantized as the profile's `quantize` recipe says;
    * integers entering a float layer or a quantized layer's float port: dequantized as the
      profile's `dequantize` recipe says.

    Values live in a list of slots as plain arrays (no per-layer wrapping, no comparison of
    parameters per call); a slot is released after its last reader unless it is requested. The
    requested values come back as `QTensor` (integers) or float32 arrays, as `Network.run` with
    `QuantizedNetwork._affine_step` gave them before.
    """

    def __init__(self, qnet: QuantizedNetwork, profile, requested: tuple):
        network = qnet.network
        network._check_names(requested, "outputs")
        self.network, self.qlayers = network, tuple(qnet.qlayers.items())
        functions = qnet._functions(profile)
        needed = network._ancestors(requested)
        order = [name for name in network.layer_names if name in needed]
        slot = {name: k for k, name in enumerate(order)}
        last_use = {}
        for name in order:
            for source in network._sources[name]:
                last_use[source] = name
        params: dict[str, QuantParams | None] = {}   # each value's integer parameters, None = float
        self.feeds, self.steps = [], []
        for name in order:
            layer, sources = network._layers[name], network._sources[name]
            ql, function = functions.get(name, (None, None))
            if not sources:   # an input layer: the caller's data
                if function is None and name in qnet.input_params:
                    function, params[name] = functools.partial(qnet._integer_input, name), qnet.input_params[name]
                else:
                    function, params[name] = function or layer.forward, None
                self.feeds.append((name, function, slot[name]))
                continue
            if ql is None:   # a float layer: its inputs as floats
                function = function or layer.forward
                converters = [None if params[s] is None else self._dequantizer(profile, params[s])
                              for s in sources]
                params[name] = None
            else:
                converters = [self._converter(profile, params[s], p) for s, p in zip(sources, ql.input_params)]
                params[name] = ql.output_params
            released = tuple(slot[s] for s in dict.fromkeys(sources)
                             if last_use[s] == name and s not in requested)
            if len(sources) == 1:
                self.steps.append((function, slot[sources[0]], converters[0], slot[name], released))
            else:
                self.steps.append((function, tuple(slot[s] for s in sources), tuple(converters),
                                   slot[name], released))
        self.size = len(order)
        self.input_names = network.input_names
        self.outputs = [(name, slot[name], params[name]) for name in requested]

    def current(self, qnet: QuantizedNetwork) -> bool:
        """Whether the network and its quantized layers are still those the plan was made from."""
        if qnet.network is not self.network or len(qnet.qlayers) != len(self.qlayers):
            return False
        qlayers = qnet.qlayers
        for name, ql in self.qlayers:
            if qlayers.get(name) is not ql:
                return False
        return True

    @staticmethod
    def _dequantizer(profile, params):
        """Integers leaving for a float layer: the profile's DEQUANTIZE / DequantizeLinear (the
        "float32" formula on ORT's compiled DequantizeLinear where it takes the parameters)."""
        from ..runtime.boundary import dequantize as runtime_dequantize
        if profile.dequantize.get("formula") == "float32":
            from .layers.ort_graph import dequantizer
            return dequantizer(params)
        return lambda q: runtime_dequantize(profile, q, params)

    @staticmethod
    def _converter(profile, have, want):
        """What a value with parameters `have` (None: float) needs to enter as `want` (None: a float
        port, which the layer quantizes itself, e.g. DynamicQuantizeLinear): nothing, DQ, DQ → Q,
        or Q."""
        from .layers.ort_graph import quantizer
        if want is None:
            return None if have is None else AffinePlan._dequantizer(profile, have)
        quantize = quantizer(profile, want)
        if have is None:
            return quantize
        if have == want:
            return None
        dequantize = AffinePlan._dequantizer(profile, have) if profile.dequantize.get("formula") == "float32" \
            else have.dequantize
        return lambda q: quantize(dequantize(q))

    def run(self, inputs: dict) -> dict:
        """{requested name: QTensor or float32 array} for `inputs` ({input layer: data})."""
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            from ..nn.network import NetworkError
            raise NetworkError(f"no data for input layers {missing}")
        values = [None] * self.size
        for name, function, k in self.feeds:
            values[k] = function(inputs[name])
        for function, source, converter, k, released in self.steps:
            if type(source) is int:
                x = values[source]
                values[k] = function(x if converter is None else converter(x))
            else:
                values[k] = function(*[values[s] if c is None else c(values[s])
                                       for s, c in zip(source, converter)])
            for s in released:
                values[s] = None
        return {name: values[k] if p is None else QTensor(values[k], p) for name, k, p in self.outputs}


def type_text(params: QuantParams) -> str:
    """The summary's name of an integer type: "s8,5" (power of two, as MATLAB prints it), else the
    parameters' description ("uint8, scale=0.02, zero point=3")."""
    if params.is_pow2:
        return f"{'s' if params.dtype.kind == 'i' else 'u'}{params.dtype.itemsize * 8},{params.fraction_length}"
    return params.describe()


def load_quantized_network(path) -> QuantizedNetwork:
    """Read a network written by `QuantizedNetwork.save`; it computes identical bits."""
    meta, arrays = read_npz_bundle(path)
    if meta.get("format") != FORMAT or not isinstance(meta.get("version"), int) \
            or meta["version"] > VERSION:
        raise NetworkFileError(f"{path}: not a quantized network bundle (format "
                               f"{meta.get('format')!r}, version {meta.get('version')!r})")
    try:
        return _from_bundle(meta, arrays, str(path))
    except (KeyError, TypeError, AttributeError) as error:
        raise NetworkFileError(f"{path}: malformed quantized network bundle ({type(error).__name__}: "
                               f"{error})") from None


def _from_bundle(meta: dict, arrays: dict, source: str) -> QuantizedNetwork:
    network_arrays = {k: v for k, v in arrays.items() if k.startswith("network/")}
    network = network_from_bundle(meta["network"], network_arrays, prefix="network/", source=source)
    layer_arrays: dict[str, dict] = {}
    for key, value in arrays.items():
        if key.startswith("qlayer/"):  # qlayer/<name>/<key>; names may contain '/', keys do not
            name, _, data_key = key[len("qlayer/"):].rpartition("/")
            layer_arrays.setdefault(name, {})[data_key] = value
    qlayers = {}
    for name, entry in meta["qlayers"].items():
        data = dict(entry["scalars"], **layer_arrays.get(name, {}))
        data.update({k: QuantParams.from_config(c) for k, c in entry.get("params", {}).items()})
        if entry.get("scheme", "pow2") == "pow2":
            qlayers[name] = QuantizedLayer(network.layer(name), entry["rounding"],
                                           entry["input_fraction_lengths"],
                                           entry["output_fraction_length"], **data)
        else:
            config = lambda c: None if c is None else QuantParams.from_config(c)  # noqa: E731 (None: float)
            qlayers[name] = AffineLayer(network.layer(name), [config(c) for c in entry["input_params"]],
                                        config(entry["output_params"]), **data)
    return QuantizedNetwork(
        network, qlayers, meta["activation_fraction_lengths"], get_target(meta["target"]), meta["options"],
        activation_params={k: QuantParams.from_config(c) for k, c in meta.get("activation_params", {}).items()},
        input_params={k: QuantParams.from_config(c) for k, c in meta.get("input_params", {}).items()},
        integer_outputs=bool(meta.get("integer_outputs", False)))
