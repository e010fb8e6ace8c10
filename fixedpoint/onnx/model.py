"""Reading an ONNX file safely: parse from bytes, check with `onnx.checker`, refuse external data.

Nothing in a file is executed and nothing is downloaded. `onnx` (a dependency) is imported only
when ONNX support is used.
"""
from __future__ import annotations

import os

INSTALL_HINT = "ONNX support needs the onnx package, a dependency of fixedpoint-exact: pip install onnx"


class OnnxImportError(ValueError):
    """An ONNX model that cannot be read or mapped to our layers (names the node or the file)."""


def require_onnx():
    """The onnx module, imported only when ONNX support is used (not at `import fixedpoint`)."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return onnx


def load_model(source, what: str | None = None):
    """A checked ModelProto from a path, bytes or a ModelProto; clear errors for broken files."""
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        model, what = source, what or "the ONNX model"
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, what = bytes(source), what or "the ONNX bytes"
        elif isinstance(source, (str, os.PathLike)):
            what = what or f"ONNX file {os.fspath(source)!r}"
            try:
                with open(source, "rb") as handle:
                    data = handle.read()
            except OSError as error:
                raise OnnxImportError(f"cannot read {what}: {error}") from None
        else:
            raise TypeError(f"import_onnx expects a path, bytes or an onnx.ModelProto, got "
                            f"{type(source).__name__}")
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as error:  # protobuf's DecodeError and friends
            raise OnnxImportError(f"{what} is not a valid ONNX model (truncated or corrupted "
                                  f"protobuf: {error})") from None
    if not model.HasField("graph") or not model.graph.node and not model.graph.output:
        raise OnnxImportError(f"{what} holds no ONNX graph (empty, truncated or not an ONNX file)")
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise OnnxImportError(f"{what} fails the ONNX checker: {error}") from None
    return model, what


def attributes(node) -> dict:
    onnx = require_onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def text(value):
    return value.decode() if isinstance(value, bytes) else value
