"""The quantization report: one self-contained HTML file (plots embedded as base64 PNG).

It shows, like MATLAB's Deep Network Quantizer, for every quantized tensor the calibration histogram
of log2 magnitudes with the representable window of its fixed-point type drawn over it, bins that
will saturate and bins that will underflow marked; then the calibration table, the validation summary
and the per-layer error study. Nothing in the file refers to anything outside it.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..quantization.exponent import K_MIN, NUM_BINS
from .error import _quantized_network, quantization_error

_COLORS = {"in range": "#4878a8", "saturate": "#d62728", "underflow": "#e8a317"}


@dataclass
class QuantizedTensor:
    """One tensor that is stored in fixed point, its calibration statistics and its type.

    `fraction_lengths` has one entry, or one per output channel for per-channel weights; the window
    drawn is then the union of the channels' windows."""

    layer: str
    kind: str                     # "Weights" | "Bias" | "Activations"
    word_length: int
    fraction_lengths: np.ndarray
    statistics: object            # calibration.TensorStatistics
    note: str = ""

    @property
    def name(self) -> str:
        return self.statistics.optimized_name

    @property
    def type_text(self) -> str:
        lo, hi = int(self.fraction_lengths.min()), int(self.fraction_lengths.max())
        f = str(lo) if lo == hi else f"{lo}..{hi} (per channel)"
        return f"int{self.word_length}, f={f}"

    def window(self) -> tuple[int, int]:
        """(lowest, highest) log2 bin k = ceil(log2|x|) that the type represents: bins above would
        saturate (|x| beyond 2^(w-1-f)), bins below round to zero (|x| <= 2^(-f-1))."""
        return -int(self.fraction_lengths.max()), self.word_length - 1 - int(self.fraction_lengths.min())

    def fractions(self) -> tuple[float, float]:
        """(share of all values in saturating bins, share of non-zero values in underflow bins),
        estimated from the histogram (one bin per power of two)."""
        counts = self.statistics.counts
        low, high = self.window()
        total = int(counts.sum()) + int(self.statistics.zeros)
        nonzero = int(counts.sum())
        over = int(counts[max(high + 1 - K_MIN, 0):].sum())
        under = int(counts[:max(low - K_MIN, 0)].sum())
        return (over / total if total else 0.0), (under / nonzero if nonzero else 0.0)


def quantized_tensors(qnet, statistics) -> list[QuantizedTensor]:
    """Weights and biases of the quantized layers, outputs of the quantized layers, and float
    outputs quantized where a quantized layer reads them (e.g. the input layer's)."""
    network = qnet.network
    tensors = []
    for layer in network.layers:
        name = layer.name
        ql = qnet.qlayers.get(name)
        if ql is not None and hasattr(ql, "weights") and (name, "Weights") in statistics:
            tensors.append(QuantizedTensor(name, "Weights", 8, np.atleast_1d(ql.weight_fraction_lengths),
                                           statistics[(name, "Weights")]))
            if (name, "Bias") in statistics:
                tensors.append(QuantizedTensor(name, "Bias", 32, np.atleast_1d(ql.bias_fraction_lengths),
                                               statistics[(name, "Bias")]))
        if (name, "Activations") not in statistics:
            continue
        if ql is not None:
            f, note = ql.output_fraction_length, ""
        elif any(c in qnet.qlayers for c in network.layer_consumers(name)):
            f, note = qnet.activation_fraction_lengths[name], "float output, quantized where read"
        else:
            continue
        tensors.append(QuantizedTensor(name, "Activations", 8, np.array([f]),
                                       statistics[(name, "Activations")], note))
    return tensors


def histogram_png(tensor: QuantizedTensor) -> bytes:
    """Bar chart of the log2-magnitude histogram with the type's window shaded."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    counts = tensor.statistics.counts
    k = np.arange(NUM_BINS) + K_MIN
    low, high = tensor.window()
    used = k[counts > 0]
    left = min(int(used.min()) if used.size else low, low) - 1
    right = max(int(used.max()) if used.size else high, high) + 1
    shown = (k >= left) & (k <= right)
    colors = [_COLORS["saturate"] if b > high else _COLORS["underflow"] if b < low
              else _COLORS["in range"] for b in k[shown]]
    fig = Figure(figsize=(5.2, 2.2), dpi=80)
    ax = fig.add_subplot()
    ax.axvspan(low - 0.5, high + 0.5, color="#bbbbbb", alpha=0.35, lw=0)
    ax.bar(k[shown], counts[shown], width=0.85, color=colors)
    ax.set_xlim(left - 0.5, right + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("log2 |value| (bin k: 2^(k-1) < |x| <= 2^k)", fontsize=8)
    ax.set_ylabel("count", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{tensor.name}: {tensor.type_text}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="table", na_rep="", float_format=_fmt)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def calibration_table(statistics, tensors: list[QuantizedTensor]) -> pd.DataFrame:
    """The calibration table with each quantized tensor's type and its estimated saturation and
    underflow shares."""
    by_key = {(t.layer, t.kind): t for t in tensors}
    rows = []
    for (layer, kind), s in statistics.items():
        t = by_key.get((layer, kind))
        over, under = t.fractions() if t is not None else (np.nan, np.nan)
        rows.append((s.optimized_name, s.network_layer, kind, np.float32(s.min_value),
                     np.float32(s.max_value), t.type_text if t is not None else "single",
                     100 * over, 100 * under))
    return pd.DataFrame(rows, columns=["Optimized Layer Name", "Network Layer Name",
                                       "Learnables / Activations", "MinValue", "MaxValue",
                                       "Type", "Saturation % (est.)", "Underflow % (est.)"])


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
.table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
.table td, .table th { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }
.table th { background: #f0f0f0; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; border: 1px solid #ddd; padding: 4px; }
figcaption { font-size: 0.8em; }
.key span { padding: 0 6px; margin-right: 6px; color: white; }
"""


def quantization_report(quantized, path, *, validation=None, data=None, error=None,
                        title: str = "Quantization report") -> str:
    """Write the HTML report to `path` and return the path.

    `quantized`: a dlquantizer after calibrate and quantize, or the QuantizedNetwork it returned
    (it keeps the calibration statistics). `validation`: the ValidationResult of q.validate, if
    any. `error`: a table from `quantization_error`; computed on `data` (input observations) when
    not given and `data` is."""
    qnet = _quantized_network(quantized)
    statistics = getattr(quantized, "calibration_statistics", None) or qnet.calibration_statistics
    if not statistics:
        raise ValueError("quantization_report needs the calibration statistics: pass the "
                         "dlquantizer, or the QuantizedNetwork its quantize() returned (a network "
                         "loaded from a file no longer has them)")
    if error is None and data is not None:
        error = quantization_error(qnet, data)
    tensors = quantized_tensors(qnet, statistics)
    e = html.escape
    options = ", ".join(f"{k}={v}" for k, v in qnet.options.items())
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Execution environment <b>{e(qnet.target.name)}</b> (target library "
             f"{e(qnet.target.target_library)!s}, rounding {e(qnet.target.rounding)}); {e(options)}. "
             f"{len(qnet.qlayers)} of {len(qnet.network.layer_names)} layers run quantized.</p>"]
    if validation is not None:
        parts += ["<h2>Validation</h2>",
                  f"<p>{validation.num_samples} samples; learnable memory reduced by "
                  f"{validation.memory_reduction:.1f}%.</p>",
                  validation.metric_results.to_html(border=0, classes="table", float_format=_fmt),
                  validation.statistics.to_html(border=0, classes="table")]
    if error is not None:
        parts += ["<h2>Per-layer error (float versus quantized)</h2>",
                  "<p>SQNR = 10·log10(Σ float² / Σ (quantized − float)²); errors accumulate from "
                  "the input. Saturated: float values beyond the layer's int8 range; underflow: "
                  "non-zero float values that round to zero.</p>", _table(error)]
    parts += ["<h2>Calibration</h2>", _table(calibration_table(statistics, tensors)),
              "<h2>Histograms of the quantized tensors</h2>",
              "<p class='key'>Grey: the representable window of the type. "
              + "".join(f"<span style='background:{c}'>{e(label)}</span>"
                        for label, c in _COLORS.items())
              + "</p><div class='grid'>"]
    for tensor in tensors:
        png = base64.b64encode(histogram_png(tensor)).decode("ascii")
        over, under = tensor.fractions()
        caption = (f"{e(tensor.name)} ({e(tensor.kind)}{', ' + e(tensor.note) if tensor.note else ''})"
                   f": {e(tensor.type_text)}; saturate {100 * over:.3g}%, underflow "
                   f"{100 * under:.3g}% of non-zero; {int(tensor.statistics.zeros)} zeros")
        parts.append(f"<figure class='histogram' data-tensor='{e(tensor.name)}'>"
                     f"<img alt='{e(tensor.name)}' src='data:image/png;base64,{png}'>"
                     f"<figcaption>{caption}</figcaption></figure>")
    parts.append("</div></body></html>")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("\n".join(parts))
    return str(path)
