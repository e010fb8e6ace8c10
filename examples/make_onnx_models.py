"""Make the quantized ONNX models of the bundled networks (package data), as ONNX Runtime's own
quantizer writes them: `onnxruntime.quantization.quantize_static`, QDQ format, uint8 activations,
int8 weights per output channel (U8S8, ORT's defaults but for per_channel), calibrated on the
bundled calibration images, from the prepared networks (batch norm folded, as ORT's
`quant_pre_process` would do).

    PYTHONPATH=. python examples/make_onnx_models.py

writes fixedpoint/examples/data/digits_cnn_qdq.onnx and digits_mobilenet_qdq.onnx
(`fp.examples.model_file`); onnxruntime is needed here only, never at run time.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "fixedpoint" / "examples" / "data"


def main() -> int:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    import fixedpoint as fp

    (x_cal, _), _ = fp.examples.digits_data()
    for name, build in (("digits_cnn", fp.examples.digits_cnn), ("digits_mobilenet", fp.examples.digits_mobilenet)):
        model = fp.export_onnx(fp.prepare_network(build()))
        input_name = model.graph.input[0].name

        class Batches(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{input_name: x_cal[k:k + 32]} for k in range(0, len(x_cal), 32)])

            def get_next(self):
                return next(self.batches, None)

        with tempfile.TemporaryDirectory() as tmp:
            float_path = os.path.join(tmp, f"{name}.onnx")
            onnx.save(model, float_path)
            out = OUT_DIR / f"{name}_qdq.onnx"
            quantize_static(float_path, str(out), Batches(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
