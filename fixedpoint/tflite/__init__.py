"""TFLite import: full-integer .tflite models as `QuantizedNetwork`s computing as LiteRT does.

    qnet = fp.import_tflite("model.tflite")              # runs as "litert" (XNNPACK where it applies)
    qnet.predict(x_int8_nhwc, runtime="litert-reference")

reader.py checks and reads the flatbuffer (the `tflite` schema package), importer.py walks the
graph, ops/ holds one module of handlers per operator family (registry.HANDLERS). See
docs/runtimes-litert-import.md.
"""
from .importer import Importer, import_tflite
from .reader import TfliteImportError, read_model
from .registry import HANDLERS, supported_operators

__all__ = ["import_tflite", "TfliteImportError", "read_model", "supported_operators", "Importer", "HANDLERS"]
