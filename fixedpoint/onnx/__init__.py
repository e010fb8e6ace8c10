"""ONNX models in and out: `import_onnx` (float models as a `Network`), `export_onnx`.

`model.py` reads files safely, `importer.py` walks the graph, `ops/` holds one module of handlers per
operator family (registered in `registry.py`), `export.py` writes a network back. See docs/onnx.md.
"""
from .export import export_onnx
from .importer import BATCH, import_onnx
from .model import OnnxImportError, load_model, require_onnx
from .registry import HANDLERS
