"""What every LiteRT profile shares (ai-edge-litert 2.3, the TFLite interpreter)."""

LITERT_VERSION = "2.3"

QUANTIZE = {
    "rounding": "Round", "division": "float32",
    "source": "tflite/kernels/internal/reference/quantize.h AffineQuantize: round half away from zero "
              "of x / scale, + zero point, saturated",
}
