"""The operator handlers of the .tflite importer, by builtin operator name (filled by `ops/`)."""
from __future__ import annotations

from typing import Callable

# builtin operator name -> handler(importer, op: reader.OperatorInfo)
HANDLERS: dict[str, Callable] = {}


def register(*names: str):
    """Function decorator: the handler of the TFLite builtin operators `names`."""
    def decorate(function):
        for name in names:
            if name in HANDLERS:
                raise TypeError(f"a handler for TFLite operator {name} is already registered")
            HANDLERS[name] = function
        return function
    return decorate


def supported_operators() -> list[str]:
    return sorted(HANDLERS)
