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
    """One tensor that is stored as integers, its calibration statistics and its type.

    `params` has one scale, or one per output channel for per-channel weights; the window drawn is
    then the union of the channels' windows."""

    layer: str
    kind: str                     # "Weights" | "Bias" | "Activations"
    params: object                # QuantParams
    statistics: object            # calibration.TensorStatistics
    note: str = ""

    @property
    def name(self) -> str:
        return self.statistics.optimized_name

    @property
    def type_text(self) -> str:
        p = self.params
        if np.all(p.zero_point == 0) and _pow2_scales(p.scale):
            f = 1 - np.frexp(p.scale.astype(np.float64))[1]
            lo, hi = int(f.min()), int(f.max())
            return f"{p.dtype.name}, f={lo if lo == hi else f'{lo}..{hi} (per channel)'}"
        return p.describe()

    def window(self) -> tuple[int, int]:
        """(lowest, highest) log2 bin k = ceil(log2|x|) the type represents: values of bins below
        round to the zero point (|x| <= scale / 2), bins above saturate (beyond the largest
        magnitude scale · max(qmax − zp, zp − qmin))."""
        p = self.params
        reach = p.scale.astype(np.float64) * np.maximum(p.qmax - p.zero_point, p.zero_point - p.qmin)
        low = int(np.floor(np.log2(p.scale.astype(np.float64))).min())
        high = int(np.floor(np.log2(reach)).max())
        return low, high

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


def _pow2_scales(scale: np.ndarray) -> bool:
    return bool(np.all(np.frexp(scale.astype(np.float64))[0] == 0.5))


def _learnable_params(ql):
    """(weight params, bias params) of a quantized layer with weights: its own for affine layers;
    power-of-two ones from the fraction lengths."""
    from ..quantization.qparams import QuantParams
    if ql.scheme == "affine":
        wp = ql.weight_params
        bias_scale = np.float64(ql.input_params[0].scale[0]) * wp.scale.astype(np.float64)
        return wp, QuantParams(np.int32, bias_scale, 0, axis=0 if bias_scale.size > 1 else None)
    f_w, f_b = np.atleast_1d(ql.weight_fraction_lengths), np.atleast_1d(ql.bias_fraction_lengths)
    return (QuantParams.pow2(f_w, np.int8, axis=0),
            QuantParams(np.int32, np.ldexp(1.0, -f_b.astype(np.int64)), 0, axis=0 if f_b.size > 1 else None))


def quantized_tensors(qnet, statistics) -> list[QuantizedTensor]:
    """Weights and biases of the quantized layers, outputs of the quantized layers, and float
    outputs quantized where a quantized layer reads them (e.g. the input layer's)."""
    network = qnet.network
    tensors = []
    for layer in network.layers:
        name = layer.name
        ql = qnet.qlayers.get(name)
        if ql is not None and getattr(ql, "weights", None) is not None and (name, "Weights") in statistics:
            wp, bp = _learnable_params(ql)
            tensors.append(QuantizedTensor(name, "Weights", wp, statistics[(name, "Weights")]))
            if (name, "Bias") in statistics:
                tensors.append(QuantizedTensor(name, "Bias", bp, statistics[(name, "Bias")]))
        if (name, "Activations") not in statistics:
            continue
        if ql is not None:
            params, note = ql.output_params, ""
        elif any(c in qnet.qlayers for c in network.layer_consumers(name)) and name in qnet.activation_params:
            params, note = qnet.activation_params[name], "float output, quantized where read"
        else:
            continue
        tensors.append(QuantizedTensor(name, "Activations", params, statistics[(name, "Activations")], note))
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


def quantization_report(quantized, path, *, validation=None, data=None, error=None, labels=None,
                        runtimes=None, comparison=None, title: str = "Quantization report") -> str:
    """Write the HTML report to `path` and return the path.

    `quantized`: a dlquantizer after calibrate and quantize, or the QuantizedNetwork it returned
    (it keeps the calibration statistics; an imported or loaded network has none, and its report
    holds the other sections). `validation`: the ValidationResult of q.validate, if any. `error`: a
    table from `quantization_error`; computed on `data` (input observations) when not given and
    `data` is. For networks that run on runtimes with scales and zero points, the runtime section is
    `comparison` (a `compare_runtimes` table), or computed on `data` with `runtimes` (default: every
    profile of the network's family) and `labels` (for accuracies); a power-of-two network gets the
    section when `runtimes` is given (its own environment's name and ONNX Runtime profiles, which
    run its QDQ export: `compare_runtimes`)."""
    from .compare import compare_runtimes

    qnet = _quantized_network(quantized)
    statistics = getattr(quantized, "calibration_statistics", None) or qnet.calibration_statistics
    if error is None and data is not None:
        error = quantization_error(qnet, data)
    if comparison is None and data is not None and (qnet.scheme == "affine" or runtimes is not None):
        comparison = compare_runtimes(qnet, data, runtimes, labels=labels)
    if not statistics and error is None and comparison is None:
        raise ValueError("quantization_report needs the calibration statistics: pass the "
                         "dlquantizer, or the QuantizedNetwork its quantize() returned (a network "
                         "loaded from a file no longer has them), or data to study")
    tensors = quantized_tensors(qnet, statistics) if statistics else []
    e = html.escape
    options = ", ".join(f"{k}={v}" for k, v in qnet.options.items())
    runtime = (f"; runs as the {e(repr(qnet.default_runtime))} runtime profile by default"
               if qnet.default_runtime else f", rounding {e(qnet.target.rounding)}")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Execution environment <b>{e(qnet.target.name)}</b> (target library "
             f"{e(qnet.target.target_library)!s}{runtime}); {e(options)}. "
             f"{len(qnet.qlayers)} of {len(qnet.network.layer_names)} layers run quantized.</p>"]
    if validation is not None:
        parts += ["<h2>Validation</h2>",
                  f"<p>{validation.num_samples} samples; learnable memory reduced by "
                  f"{validation.memory_reduction:.1f}%.</p>",
                  validation.metric_results.to_html(border=0, classes="table", float_format=_fmt),
                  validation.statistics.to_html(border=0, classes="table")]
    if comparison is not None:
        parts += runtime_section(comparison)
    if error is not None:
        parts += ["<h2>Per-layer error (float versus quantized)</h2>",
                  "<p>SQNR = 10·log10(Σ float² / Σ (quantized − float)²); errors accumulate from "
                  "the input. Saturated: float values beyond the layer's integer range; underflow: "
                  "non-zero float values that round to the zero point.</p>", _table(error)]
    if not statistics:
        parts.append("<p>No calibration statistics (an imported or loaded network): no calibration "
                     "table or histograms.</p></body></html>")
        return _write(path, parts)
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
    return _write(path, parts)


def runtime_section(comparison: pd.DataFrame) -> list[str]:
    """The HTML of a `compare_runtimes` table: accuracies per runtime, then the layers that differ."""
    e = html.escape
    names = comparison.attrs.get("runtimes", [])
    parts = ["<h2>Runtimes</h2>",
             f"<p>The same inputs on each runtime profile, compared layer by layer with "
             f"<b>{e(names[0]) if names else 'the first'}</b>: elements that differ and the largest "
             f"difference in LSB of the layer's integers (differences accumulate along the graph).</p>"]
    accuracy = comparison.attrs.get("accuracy")
    if accuracy:
        table = pd.DataFrame({"Runtime": list(accuracy), "Top-1 accuracy (%)": list(accuracy.values())})
        parts.append(_table(table))
    differing = comparison[comparison["Differing"] > 0]
    parts.append(_table(differing) if len(differing) else
                 "<p>Every layer computes the same bits on every runtime compared.</p>")
    return parts


def _write(path, parts) -> str:
    from ..files import atomic_write
    atomic_write(path, "\n".join(parts))
    return str(path)
