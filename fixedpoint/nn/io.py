"""Networks on disk: one `.npz` file holding a JSON description and plain numeric arrays.

A *bundle* is the general container: ``__meta__`` (a JSON string) plus named arrays, read back with
``allow_pickle=False`` so loading never executes code. A saved network is a bundle whose meta
describes the graph (layers with type name and config, connections, inputs, outputs, origin) and
whose arrays are named ``<layer>/<parameter>``. Other artefacts (e.g. quantized networks) reuse the
same container: `network_to_bundle` / `network_from_bundle` embed a network under an array-name
prefix.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..files import atomic_open

from .layers.base import LAYER_REGISTRY
from .network import Network, NetworkError

META_KEY = "__meta__"
FORMAT = "fixedpoint.network"
VERSION = 1


class NetworkFileError(ValueError):
    """A file that is not a valid bundle or network (names the file and what is wrong)."""


def write_npz_bundle(path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write `meta` (JSON-serialisable) and numeric `arrays` to one compressed `.npz` at `path`
    (exactly that path: no suffix is added)."""
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    for key, value in arrays.items():
        if np.asarray(value).dtype.kind not in "biufc":
            raise TypeError(f"array {key!r} must be numeric, got dtype {np.asarray(value).dtype}")
    text = json.dumps(meta, allow_nan=False)
    with atomic_open(path) as stream:
        np.savez_compressed(stream, **{META_KEY: np.array(text)}, **arrays)


def read_npz_bundle(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a bundle; never unpickles. Raises NetworkFileError if malformed."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        # the file opened here, so that it is closed however np.load fails on it
        with open(path, "rb") as stream:
            contents = np.load(stream, allow_pickle=False)
            if not isinstance(contents, np.lib.npyio.NpzFile):
                raise NetworkFileError(f"{path}: a single array, not a bundle (.npz with {META_KEY})")
            with contents:
                if META_KEY not in contents.files:
                    raise NetworkFileError(f"{path}: no {META_KEY} entry; not a fixedpoint bundle")
                arrays = {key: contents[key] for key in contents.files}
    except NetworkFileError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as error:
        raise NetworkFileError(f"{path}: not a readable .npz bundle ({error})") from error
    text = arrays.pop(META_KEY)
    try:
        meta = json.loads(str(text[()]))
    except (ValueError, TypeError) as error:
        raise NetworkFileError(f"{path}: {META_KEY} is not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise NetworkFileError(f"{path}: {META_KEY} must be a JSON object")
    return meta, arrays


def network_to_bundle(net: Network, prefix: str = "") -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON description of `net` and its arrays, named ``<prefix><layer>/<parameter>``."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "layers": [{"name": layer.name, "type": layer.type_name, "config": layer.config()}
                   for layer in net.layers],
        "connections": [list(pair) for pair in net.connection_list()],
        "input_names": net.input_names,
        "output_names": net.output_names,
        "origin": net.origin,
    }
    arrays = {f"{prefix}{layer.name}/{key}": value for layer in net.layers
              for key, value in layer.arrays().items()}
    return meta, arrays


def network_from_bundle(meta: dict, arrays: dict[str, np.ndarray], prefix: str = "",
                        source: str = "bundle") -> Network:
    """Inverse of `network_to_bundle`; `source` names the file in error messages."""
    def fail(message):
        raise NetworkFileError(f"{source}: {message}")

    if meta.get("format") != FORMAT:
        fail(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        fail(f"format version {meta.get('version')!r} is not supported (this library reads up to "
             f"{VERSION})")
    for key in ("layers", "connections", "input_names", "output_names"):
        if not isinstance(meta.get(key), list):
            fail(f"missing or malformed {key!r}")
    by_layer: dict[str, dict] = {}
    for key, value in arrays.items():
        if key.startswith(prefix) and "/" in key[len(prefix):]:
            layer, _, parameter = key[len(prefix):].rpartition("/")   # names may hold "/"
            by_layer.setdefault(layer, {})[parameter] = value
    layers = []
    for entry in meta["layers"]:
        if not isinstance(entry, dict) or not {"name", "type", "config"} <= set(entry):
            fail(f"layer entry {entry!r} needs name, type and config")
        name, type_name = entry["name"], entry["type"]
        if type_name not in LAYER_REGISTRY:
            fail(f"layer {name!r} has unknown type {type_name!r}; known types: "
                 f"{', '.join(sorted(LAYER_REGISTRY))}")
        try:
            layers.append(LAYER_REGISTRY[type_name].from_config(
                name, entry["config"], by_layer.pop(name, {})))
        except (TypeError, ValueError) as error:
            fail(f"layer {name!r} ({type_name}) cannot be rebuilt: {error}")
    if by_layer:
        fail(f"arrays for unknown layers {sorted(by_layer)}")
    try:
        net = Network(layers, [tuple(pair) for pair in meta["connections"]],
                      input_names=meta["input_names"], output_names=meta["output_names"])
    except NetworkError as error:
        fail(f"invalid graph: {error}")
    origin = meta.get("origin")
    if origin is not None:
        if not isinstance(origin, dict) or set(origin) != set(net.layer_names):
            fail("origin must map every layer name to its original layer names")
        net.origin = {name: list(origin[name]) for name in net.layer_names}
    return net


def save_network(net: Network, path) -> None:
    """Save a network to one `.npz` file (see the module docstring for the format)."""
    meta, arrays = network_to_bundle(net)
    write_npz_bundle(path, meta, arrays)


def load_network(path) -> Network:
    """Load a network saved by `save_network`; outputs are bit-identical to the saved network's."""
    meta, arrays = read_npz_bundle(path)
    return network_from_bundle(meta, arrays, source=str(path))
