"""`Network`: a directed acyclic graph of named layers, the counterpart of MATLAB's dlnetwork.

The graph is validated once at construction and a topological order is computed once; `run` walks
that order, handing each layer the outputs of its sources and freeing every intermediate as soon as
no later layer (and no caller) needs it. The same walk serves float prediction and, through
`compute=`, any other execution of the layers (e.g. quantized emulation).
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ..progress import ProgressBar
from ..kernels.threads import path_code
from .fusion import FUSABLE_ACTIVATIONS, ConvolutionChain, fusable_norm
from .layers.base import Layer


def _forward(layer: Layer, *inputs: np.ndarray) -> np.ndarray:
    return layer.forward(*inputs)


_FUSED = "fused"   # plan marker of a layer whose convolution chain already computed it


class NetworkError(ValueError):
    """An invalid graph or an invalid request to a network (names the layers concerned)."""


class Network:
    """A network of named layers joined by `connections`, pairs ``(source, destination)`` (or a
    table with columns Source and Destination, like `Network.connections`).

    A destination names a layer and, for multi-input layers, its port (``"add1/in2"``);
    single-input layers have one port ``in`` that may be omitted. Every input port must be connected
    exactly once, names must be unique and the graph acyclic. `input_names` (default: the input
    layers, in the order given) fixes the order of `predict`'s arguments; `output_names` (default:
    the layers whose output nobody consumes) fixes what `predict` returns.

    `origin` maps each layer name to the names of the original layers it stands for: itself in a
    plain network; after `prepare_network`, e.g. a convolution with a folded batch normalization
    maps to both. Editing methods return new networks that share the (unchanged) layer objects.
    """

    # `run` lets a convolution compute the batch normalization and activation layers after it (see
    # `_plan`); False runs every layer by itself (same bits: the same float32 operations either way)
    fuse_activations = True

    def __init__(self, layers: Iterable[Layer], connections: Iterable[Sequence[str]], *,
                 input_names: Sequence[str] | None = None,
                 output_names: Sequence[str] | None = None):
        layers = list(layers)
        for layer in layers:
            if not isinstance(layer, Layer):
                raise NetworkError(f"layers must be Layer objects, got {type(layer).__name__}")
        names = [layer.name for layer in layers]
        duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
        if duplicates:
            raise NetworkError(f"duplicate layer names: {duplicates}")
        self._layers = {layer.name: layer for layer in layers}
        self._sources = self._connect(connections)
        self._order = self._topological_order(names)
        self._input_names = self._check_inputs(input_names)
        self._output_names = self._check_outputs(output_names)
        self._consumers = {name: [] for name in self._order}
        for name in self._order:
            for source in self._sources[name]:
                if name not in self._consumers[source]:
                    self._consumers[source].append(name)
        self.origin = {name: [name] for name in self._order}
        self._plans: dict[tuple, list] = {}

    # --- construction ----------------------------------------------------------------------------
    def _connect(self, connections) -> dict[str, list[str]]:
        sources = {name: [None] * len(layer.input_ports) for name, layer in self._layers.items()}
        known = list(self._layers)
        if isinstance(connections, pd.DataFrame):      # e.g. another network's `connections`
            connections = connections[["Source", "Destination"]].itertuples(index=False)
        for connection in connections:
            try:
                source, destination = connection
            except (TypeError, ValueError):
                raise NetworkError(f"a connection must be a (source, destination) pair, got "
                                   f"{connection!r}") from None
            source = self._layer_part(str(source), ("out",))
            if source not in self._layers:
                raise NetworkError(f"connection {source!r} -> {destination!r}: unknown source "
                                   f"layer {source!r}; layers are {known}")
            destination = str(destination)
            name = self._layer_part(destination, None)
            port = destination[len(name) + 1:] or None
            if name not in self._layers:
                raise NetworkError(f"connection {source!r} -> {destination!r}: unknown destination "
                                   f"layer {name!r}; layers are {known}")
            ports = self._layers[name].input_ports
            if not ports:
                raise NetworkError(f"connection {source!r} -> {destination!r}: {name!r} is an "
                                   f"input layer and takes no inputs")
            if port is None and len(ports) == 1:
                port = ports[0]
            if port not in ports:
                raise NetworkError(f"connection {source!r} -> {destination!r}: layer {name!r} has "
                                   f"input ports {ports}" + ("" if port else "; name one"))
            index = ports.index(port)
            if sources[name][index] is not None:
                raise NetworkError(f"input port {name}/{port} is connected twice (from "
                                   f"{sources[name][index]!r} and {source!r})")
            sources[name][index] = source
        dangling = [f"{name}/{port}" for name, layer in self._layers.items()
                    for port, source in zip(layer.input_ports, sources[name]) if source is None]
        if dangling:
            raise NetworkError(f"unconnected input ports: {dangling}")
        return sources

    def _layer_part(self, endpoint: str, ports) -> str:
        """The layer named by a connection end ``"layer"`` or ``"layer/port"``. Layer names may
        themselves contain ``/`` (as ONNX node names do): a whole-string match wins, otherwise the
        text before the last ``/`` names the layer (and, when `ports` is given, what follows must
        be one of them)."""
        if endpoint in self._layers:
            return endpoint
        name, _, port = endpoint.rpartition("/")
        if name in self._layers and (ports is None or port in ports):
            return name
        return endpoint if ports is not None else (name or endpoint)

    def _topological_order(self, names: list[str]) -> list[str]:
        """Kahn's algorithm, keeping the given order among layers that are ready together."""
        rank = {name: k for k, name in enumerate(names)}
        pending = {name: len(set(self._sources[name])) for name in names}
        consumers = {name: [] for name in names}
        for name in names:
            for source in set(self._sources[name]):
                consumers[source].append(name)
        ready = [rank[name] for name in names if pending[name] == 0]
        order = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(name)
            for consumer in consumers[name]:
                pending[consumer] -= 1
                if pending[consumer] == 0:
                    heapq.heappush(ready, rank[consumer])
        if len(order) < len(names):
            raise NetworkError(f"the graph has a cycle through layers "
                               f"{self._find_cycle(set(names) - set(order))}")
        return order

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        """One cycle among layers Kahn's algorithm could not order (each has a source in the set),
        in data-flow order, starting from the layer listed first."""
        start = next(iter(sorted(remaining)))
        path, seen = [start], {start: 0}
        while True:
            source = next(s for s in self._sources[path[-1]] if s in remaining)
            if source in seen:
                cycle = path[seen[source]:][::-1]
                rank = list(self._layers)
                first = min(range(len(cycle)), key=lambda k: rank.index(cycle[k]))
                return cycle[first:] + cycle[:first]
            seen[source] = len(path)
            path.append(source)

    def _check_inputs(self, input_names) -> list[str]:
        input_layers = [name for name in self._order if not self._layers[name].input_ports]
        if not input_layers:
            raise NetworkError("the network has no input layer")
        if input_names is None:
            return input_layers
        input_names = list(input_names)
        if sorted(input_names) != sorted(input_layers):
            raise NetworkError(f"input_names {input_names} must list each input layer once: "
                               f"{input_layers}")
        return input_names

    def _check_outputs(self, output_names) -> list[str]:
        if output_names is None:
            used = {source for sources in self._sources.values() for source in sources}
            return [name for name in self._order if name not in used]
        output_names = list(output_names)
        self._check_names(output_names, "output_names")
        return output_names

    def _check_names(self, names, what: str) -> None:
        unknown = [name for name in names if name not in self._layers]
        if unknown:
            raise NetworkError(f"{what}: unknown layer names {unknown}; layers are {self._order}")

    # --- inspection ------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers in topological (execution) order."""
        return [self._layers[name] for name in self._order]

    @property
    def layer_names(self) -> list[str]:
        return list(self._order)

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    def layer(self, name: str) -> Layer:
        self._check_names([name], "layer")
        return self._layers[name]

    def layer_inputs(self, name: str) -> list[str]:
        """Names of the layers feeding `name`, in port order."""
        self._check_names([name], "layer_inputs")
        return list(self._sources[name])

    def layer_consumers(self, name: str) -> list[str]:
        """Names of the layers reading the output of `name`, in execution order."""
        self._check_names([name], "layer_consumers")
        return list(self._consumers[name])

    def connection_list(self) -> list[tuple[str, str]]:
        """The connections as (source, destination) pairs; ports named only where needed."""
        pairs = []
        for name in self._order:
            ports = self._layers[name].input_ports
            for port, source in zip(ports, self._sources[name]):
                pairs.append((source, name if port == "in" else f"{name}/{port}"))
        return pairs

    @property
    def connections(self) -> pd.DataFrame:
        return pd.DataFrame(self.connection_list(), columns=["Source", "Destination"])

    @property
    def learnables(self) -> pd.DataFrame:
        rows = [(layer.name, key, value) for layer in self.layers
                for key, value in layer.learnables.items()]
        return pd.DataFrame(rows, columns=["Layer", "Parameter", "Value"])

    def shapes(self, batch_size: int | None = 1) -> dict[str, tuple]:
        """Output shape of every layer for a batch of this size (None: unknown sizes stay None)."""
        shapes = {}
        for layer in self.layers:
            if layer.name in self._input_names:
                shapes[layer.name] = layer.output_shape((batch_size,) + layer.input_shape[1:])
            else:
                sources = self._sources[layer.name]
                shapes[layer.name] = layer.output_shape(*[shapes[s] for s in sources])
        return shapes

    def summary(self, print_table: bool = True) -> pd.DataFrame:
        """A table of the layers: name, type, output shape (batch of 1), number of learnables."""
        shapes = self.shapes(1)
        table = pd.DataFrame(
            [(layer.name, layer.type_name,
              "×".join("?" if d is None else str(d) for d in shapes[layer.name]),
              int(sum(v.size for v in layer.learnables.values()))) for layer in self.layers],
            columns=["Name", "Type", "Output shape", "Learnables"])
        if print_table:
            print(table.to_string(index=False))
            print(f"{len(table)} layers, {table['Learnables'].sum()} learnables; "
                  f"inputs {self._input_names}, outputs {self._output_names}")
        return table

    def __repr__(self) -> str:
        return (f"Network({len(self._order)} layers, inputs={self._input_names}, "
                f"outputs={self._output_names})")

    # --- execution -------------------------------------------------------------------------------
    def run(self, inputs: dict[str, np.ndarray], *, outputs: Sequence[str] | None = None,
            compute: Callable | None = None,
            observe: Callable[[Layer, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
        """Execute the graph and return ``{name: output}`` for the requested `outputs`.

        `inputs` maps input layer names to data. `compute(layer, *inputs)` replaces
        `layer.forward` (the default); `observe(layer, output)` sees every computed output, which
        makes every layer run. Otherwise only the layers the requested outputs depend on run.
        An observer must use (or copy) an output when called, not keep it: a later element-wise layer
        may overwrite an unrequested output in place.
        """
        requested = tuple(self._output_names if outputs is None else outputs)
        missing = [name for name in self._input_names if name not in inputs]
        if missing:
            raise NetworkError(f"no data for input layers {missing}")
        values: dict[str, np.ndarray] = {}
        step = compute or _forward
        fuse = self.fuse_activations and compute is None and observe is None
        plan = self._plan(requested, observe is not None, fuse)
        path = path_code() if fuse else None   # read once per run, not per convolution
        for name, layer, sources, released, may_overwrite, chain in plan:
            if chain is not None:
                out = chain(values[sources[0]], path)
            elif not sources:
                out = step(layer, inputs[layer.name])
            elif may_overwrite and compute is None and self._owns(values, sources[0], inputs):
                out = layer.forward_into(values[sources[0]])
            elif len(sources) == 1:
                out = step(layer, values[sources[0]])
            else:
                out = step(layer, *[values[s] for s in sources])
            values[name] = out
            if observe:
                observe(layer, out)
            for source in released:
                del values[source]
        return {name: values[name] for name in requested}

    def _plan(self, requested: tuple, run_all: bool, fuse: bool = False) -> list[tuple]:
        """The execution plan for these outputs, computed once per request and cached: for each
        layer to run, the name its output is stored under, the layer, its sources, the values
        released after it, whether it may overwrite its input (an element-wise layer that is the
        last reader of a non-input, unrequested value), and its `ConvolutionChain` or None: with
        `fuse`, every convolution runs as a chain, which also computes a batch normalization and/or
        a ReLU / clipped ReLU / leaky ReLU that alone read its output (not requested); those have no
        entry of their own and the chain's output is stored under the last one's name."""
        key = (requested, run_all, fuse)
        if key not in self._plans:
            self._check_names(requested, "outputs")
            needed = set(self._order) if run_all else self._ancestors(requested)
            steps = [name for name in self._order if name in needed]
            last_use = {source: name for name in steps for source in self._sources[name]}
            plan = []
            for name in steps:
                layer, sources = self._layers[name], tuple(self._sources[name])
                released = [s for s in dict.fromkeys(sources)
                            if last_use[s] == name and s not in requested]
                may_overwrite = (layer.overwrites_input and len(sources) == 1
                                 and sources[0] in released
                                 and sources[0] not in self._input_names)
                plan.append([layer, sources, released, may_overwrite, None])
            if fuse:
                self._fuse_activations(plan, set(steps), requested)
            self._plans[key] = [
                (entry[4].tail if entry[4] is not None else entry[0].name, *entry)
                for entry in plan if entry[4] is not _FUSED]
        return self._plans[key]

    def _fuse_activations(self, plan: list, steps: set, requested: tuple) -> None:
        """Marks convolution [+ batch normalization] [+ activation] chains of `plan` (see
        `_plan`): each next layer must be the only reader of an unrequested output."""
        index = {entry[0].name: k for k, entry in enumerate(plan)}

        def only_reader(name):
            readers = [c for c in self._consumers[name] if c in steps]
            if name in requested or len(readers) != 1:
                return None
            entry = plan[index[readers[0]]]
            return entry if entry[1] == (name,) else None

        for entry in plan:
            layer = entry[0]
            if layer.type_name != "Convolution2D":
                continue
            norm, activation, tail = None, None, layer.name
            reader = only_reader(tail)
            if reader is not None and fusable_norm(layer, reader[0]):
                norm, tail = reader, reader[0].name
                reader = only_reader(tail)
            if reader is not None and reader[0].type_name in FUSABLE_ACTIVATIONS:
                activation = reader
            entry[4] = ConvolutionChain(
                layer, norm[0] if norm else None,
                FUSABLE_ACTIVATIONS[activation[0].type_name](activation[0]) if activation else None,
                (activation or norm or entry)[0].name)
            for fused in (norm, activation):
                if fused is not None:
                    fused[4] = _FUSED

    @staticmethod
    def _owns(values: dict, name: str, inputs: dict) -> bool:
        """Whether value `name` owns its memory exclusively: not a view, not the caller's data and
        not the very same array as another live value (identity-like layers pass arrays through)."""
        x = values[name]
        if type(x) is not np.ndarray or x.base is not None or not x.flags.writeable:
            return False
        for data in inputs.values():
            if x is data:
                return False
        shared = 0
        for value in values.values():
            shared += value is x
        return shared == 1

    def _ancestors(self, names) -> set[str]:
        found, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name not in found:
                found.add(name)
                stack.extend(self._sources[name])
        return found

    def _input_dict(self, data: Sequence) -> dict:
        if len(data) != len(self._input_names):
            raise NetworkError(f"the network has {len(self._input_names)} inputs "
                               f"{self._input_names}, got {len(data)} arrays")
        return dict(zip(self._input_names, data))

    def predict(self, *x: np.ndarray, outputs: str | Sequence[str] | None = None):
        """Float32 inference. One array per input layer (in `input_names` order).

        Returns one array when one output is asked (a single name, or a network with one output),
        otherwise a list in the order asked."""
        names = [outputs] if isinstance(outputs, str) else outputs
        result = self.run(self._input_dict(x), outputs=names)
        values = list(result.values())
        single = isinstance(outputs, str) or (outputs is None and len(values) == 1)
        return values[0] if single else values

    def minibatch_predict(self, data, batch_size: int = 128, progress: bool = True,
                          outputs: str | Sequence[str] | None = None):
        """`predict` over `data` (an array with observations first, or a sequence of such arrays,
        one per input) in batches of `batch_size`; results are concatenated along the batch axis."""
        arrays = [data] if isinstance(data, np.ndarray) else list(data)
        self._input_dict(arrays)
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        count = len(arrays[0])
        if any(len(a) != count for a in arrays):
            raise ValueError(f"all inputs need the same number of observations, got "
                             f"{[len(a) for a in arrays]}")
        parts = []
        with ProgressBar(count, "predict", enabled=progress) as bar:
            for start in range(0, count, batch_size):
                batch = [a[start:start + batch_size] for a in arrays]
                result = self.predict(*batch, outputs=outputs)
                parts.append(result if isinstance(result, list) else [result])
                bar.update(len(batch[0]))
        merged = [np.concatenate(column, axis=0) for column in zip(*parts)]
        single = isinstance(outputs, str) or (outputs is None and len(self._output_names) == 1)
        return merged[0] if single else merged

    # --- editing (each returns a new Network) ----------------------------------------------------
    def _rebuild(self, layers, sources, input_names, output_names, origin) -> "Network":
        connections = [(source, f"{layer.name}/{port}") for layer in layers
                       for port, source in zip(layer.input_ports, sources[layer.name])]
        network = Network(layers, connections, input_names=input_names, output_names=output_names)
        network.origin = {name: origin[name] for name in network._order}
        return network

    def copy(self) -> "Network":
        """An independent copy: layers and arrays are copied."""
        return self._rebuild([layer.copy() for layer in self.layers], self._sources,
                             self._input_names, self._output_names, self.origin)

    def replace_layer(self, name: str, new_layer: Layer) -> "Network":
        """Put `new_layer` in place of layer `name`, with the same connections."""
        old = self.layer(name)
        if len(new_layer.input_ports) != len(old.input_ports):
            raise NetworkError(f"replace_layer: {new_layer.name!r} has {len(new_layer.input_ports)}"
                               f" inputs but {name!r} has {len(old.input_ports)}")
        if new_layer.name != name and new_layer.name in self._layers:
            raise NetworkError(f"replace_layer: a layer named {new_layer.name!r} already exists")
        rename = {name: new_layer.name}
        layers = [new_layer if layer.name == name else layer for layer in self.layers]
        sources = {rename.get(n, n): [rename.get(s, s) for s in srcs]
                   for n, srcs in self._sources.items()}
        origin = {rename.get(n, n): list(o) for n, o in self.origin.items()}
        return self._rebuild(layers, sources, [rename.get(n, n) for n in self._input_names],
                             [rename.get(n, n) for n in self._output_names], origin)

    def remove_layer(self, name: str) -> "Network":
        """Remove a single-input layer, connecting its input to all its consumers."""
        layer = self.layer(name)
        if len(layer.input_ports) != 1:
            raise NetworkError(f"remove_layer: only single-input layers can be removed; {name!r} "
                               f"has {len(layer.input_ports)} inputs")
        source = self._sources[name][0]
        layers = [other for other in self.layers if other.name != name]
        sources = {n: [source if s == name else s for s in srcs]
                   for n, srcs in self._sources.items() if n != name}
        outputs = []
        for output in self._output_names:
            output = source if output == name else output
            if output not in outputs:
                outputs.append(output)
        return self._rebuild(layers, sources, self._input_names, outputs, self.origin)

    def insert_layer_after(self, name: str, new_layer: Layer) -> "Network":
        """Insert a single-input layer reading `name`; every former consumer of `name` (and the
        network output, if `name` was one) now reads `new_layer` instead."""
        self.layer(name)
        if len(new_layer.input_ports) != 1:
            raise NetworkError(f"insert_layer_after: {new_layer.name!r} must have one input")
        if new_layer.name in self._layers:
            raise NetworkError(f"insert_layer_after: a layer named {new_layer.name!r} already "
                               f"exists")
        layers = []
        for layer in self.layers:
            layers.append(layer)
            if layer.name == name:
                layers.append(new_layer)
        sources = {n: [new_layer.name if s == name else s for s in srcs]
                   for n, srcs in self._sources.items()}
        sources[new_layer.name] = [name]
        outputs = [new_layer.name if n == name else n for n in self._output_names]
        return self._rebuild(layers, sources, self._input_names, outputs,
                             {**self.origin, new_layer.name: []})
