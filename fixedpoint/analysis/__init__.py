"""What quantization costs: the per-layer error study, the HTML quantization report, and what a
network computes differently on different runtimes."""
from .compare import compare_runtimes
from .error import quantization_error
from .report import quantization_report
