"""The layer contract every network layer follows, and the registry that maps type names to classes.

A layer is a small object with a name, its learnables (MATLAB-style parameter names) and plain
hyper-parameters. It knows its float32 inference semantics (`forward`) and how its output shape
follows from its input shapes (`output_shape`). The network only walks the graph; everything a layer
means lives with the layer, so importers, the preparation passes and the quantization workflow all
agree on one definition.
"""
from __future__ import annotations

import numpy as np

LAYER_REGISTRY: dict[str, type["Layer"]] = {}


def register_layer(cls: type["Layer"]) -> type["Layer"]:
    """Class decorator: make `cls` constructible by its `type_name` (used by load and copy)."""
    if not cls.type_name:
        raise TypeError(f"layer class {cls.__name__} has no type_name")
    if cls.type_name in LAYER_REGISTRY and LAYER_REGISTRY[cls.type_name] is not cls:
        raise TypeError(f"layer type name {cls.type_name!r} is already registered "
                        f"by {LAYER_REGISTRY[cls.type_name].__name__}")
    LAYER_REGISTRY[cls.type_name] = cls
    return cls


def make_layer(type_name: str, name: str, **kwargs) -> "Layer":
    """Construct a registered layer by type name, e.g. ``make_layer("ReLU", "relu1")``."""
    try:
        cls = LAYER_REGISTRY[type_name]
    except KeyError:
        raise ValueError(f"unknown layer type {type_name!r}; known types: "
                         f"{', '.join(sorted(LAYER_REGISTRY))}") from None
    return cls(name, **kwargs)


def as_float32(value, what: str) -> np.ndarray:
    """A float32 copy of a parameter array, rejecting non-numeric data with a message naming it."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
    return np.array(array, dtype=np.float32)


def pair(value, what: str) -> tuple[int, int]:
    """Normalise an int or a 2-sequence of ints to a (height, width) pair of positive ints."""
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) != 2 or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"{what} must be a positive int or a pair of positive ints, got {value!r}")
    return int(values[0]), int(values[1])


class Layer:
    """Base class of all layers.

    Class attributes: `type_name` (registry key), `num_inputs` (0 for input layers, 1, or -1 for a
    variadic layer whose instances set their own count), `has_learnables`, `learnable_args`, the
    map from learnable name to constructor argument that lets `from_config` rebuild the layer, and
    `overwrites_input` for element-wise layers that implement `forward_into`.
    """

    type_name: str = ""
    num_inputs: int = 1
    has_learnables: bool = False
    learnable_args: dict[str, str] = {}
    overwrites_input: bool = False  # True: `forward_into` may reuse the input's memory

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"layer name must be a non-empty string, got {name!r}")
        self.name = name
        self.learnables: dict[str, np.ndarray] = {}

    # --- semantics -----------------------------------------------------------------------------
    def forward(self, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward_into(self, x: np.ndarray) -> np.ndarray:
        """`forward` writing its result into `x` (the network calls it only when nothing else reads
        `x`; saves an allocation and a pass over memory for element-wise layers)."""
        raise NotImplementedError

    def output_shape(self, *input_shapes: tuple) -> tuple:
        """Shape of the output for inputs of these shapes (batch dimension included; a dimension
        may be None when it is only known at run time)."""
        return tuple(input_shapes[0])

    # --- graph ---------------------------------------------------------------------------------
    @property
    def input_ports(self) -> list[str]:
        """Names of the input ports: ``in`` for a single-input layer, ``in1``, ``in2``, ... for
        variadic layers (whatever their count), none for input layers."""
        if type(self).num_inputs == 1:
            return ["in"]
        return [f"in{k}" for k in range(1, self.num_inputs + 1)]

    # --- serialisation -------------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-serialisable hyper-parameters (everything but the arrays)."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array needed to rebuild the layer: its learnables plus any fixed statistics (input
        normalisation). Keys are the learnable names."""
        return dict(self.learnables)

    @classmethod
    def from_config(cls, name: str, config: dict, learnables: dict) -> "Layer":
        """Inverse of `config` + `arrays`."""
        unknown = set(learnables) - set(cls.learnable_args)
        if unknown:
            raise ValueError(f"layer {name!r} of type {cls.type_name}: unexpected arrays "
                             f"{sorted(unknown)}; expected {sorted(cls.learnable_args)}")
        kwargs = {cls.learnable_args[key]: value for key, value in learnables.items()}
        return cls(name, **config, **kwargs)

    def copy(self, name: str | None = None) -> "Layer":
        """An independent copy (arrays copied), optionally renamed."""
        arrays = {key: np.array(value) for key, value in self.arrays().items()}
        return type(self).from_config(self.name if name is None else name, self.config(), arrays)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({self.name!r}{', ' if settings else ''}{settings})"
