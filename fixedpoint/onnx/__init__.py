"""ONNX models in and out: `import_onnx` (float models as a `Network`, quantized QDQ / QOperator models
as a `QuantizedNetwork` computing as ONNX Runtime does), `export_onnx`.

`model.py` reads files safely, `importer.py` walks the graph, `ops/` holds one module of handlers per
operator family (registered in `registry.py`), `quantized.py` and `ort_fusion.py` add what quantized
models need, `export.py` writes a network back. See docs/onnx.md and
docs/runtimes-onnxruntime-import.md.
"""
from .export import export_onnx
from .importer import BATCH, import_onnx
from .model import OnnxImportError, load_model, require_onnx
from .registry import HANDLERS
