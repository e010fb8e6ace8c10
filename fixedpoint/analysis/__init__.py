"""What quantization costs: the per-layer error study and the HTML quantization report."""
from .error import quantization_error
from .report import quantization_report
