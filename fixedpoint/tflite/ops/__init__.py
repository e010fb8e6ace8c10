"""Operator handlers of the .tflite importer, one module per operator family; importing this
package registers them all in `registry.HANDLERS`."""
from . import activation, conv, elementwise, pooling, quantize, shape  # noqa: F401
