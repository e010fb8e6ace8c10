"""What a network computes differently on different runtimes, layer by layer.

    table = fp.compare_runtimes(qnet, x, runtimes=["onnxruntime-vnni", "onnxruntime-avx2"], labels=y)
    table.attrs["accuracy"]     # {"onnxruntime-vnni": 99.05, "onnxruntime-avx2": 58.98}

Every runtime runs the same inputs; each later runtime's integers are compared with the first's
(the baseline), layer by layer, in units of the layer's output integer (LSB). Differences accumulate
along the graph, as they do on the devices: a layer's row shows what reaches it, not only what it
adds itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..quantization.qnetwork import QTensor

COLUMNS = ["Layer", "Type", "Runtime", "Baseline", "Output", "Elements", "Differing",
           "Differing (%)", "Max |diff| (LSB)"]


class _Tally:
    def __init__(self):
        self.elements = 0
        self.differing = 0
        self.max_diff = 0.0
        self.output = ""

    def add(self, base, other):
        if isinstance(base, QTensor):
            self.output = f"{base.q.dtype}"
            diff = np.abs(base.q.astype(np.int64) - other.q.astype(np.int64))
        else:
            self.output = "float32"
            a, b = np.asarray(base, np.float64), np.asarray(other, np.float64)
            diff = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
        self.elements += diff.size
        self.differing += int(np.count_nonzero(diff))
        if diff.size:
            self.max_diff = max(self.max_diff, float(diff.max()))


def compare_runtimes(qnet, x, runtimes=None, *, labels=None, batch_size: int = 64) -> pd.DataFrame:
    """One row per layer and compared runtime: how many of the layer's output elements differ from
    the baseline runtime (the first of `runtimes`) and by how much, in LSB of the layer's integer
    output (float outputs: in their own units). `runtimes` default: every profile of the network's
    family, the host's ONNX Runtime profile first. `labels` (class indices, one per observation):
    top-1 accuracy per runtime in `table.attrs["accuracy"]` (percent), from the network's first
    output. `x`: what the network takes (float32, or the integers of a full-integer model)."""
    from ..runtime import RUNTIMES, get_runtime, host_runtime

    if getattr(qnet, "scheme", None) != "affine":
        raise ValueError("compare_runtimes needs a network quantized for a runtime with scales and zero "
                         "points (an imported ONNX/TFLite model, or an ONNXRuntime/LiteRT dlquantizer "
                         "network); power-of-two networks compute one way")
    family = qnet.target.runtime_family
    if runtimes is None:
        names = [p.name for p in RUNTIMES.values() if p.family == family]
        if family == "onnxruntime":
            names.remove(host_runtime())
            names.insert(0, host_runtime())
        runtimes = names
    profiles = [get_runtime(r) for r in runtimes]
    if not profiles:
        raise ValueError("runtimes must name at least one runtime profile")
    for p in profiles:
        if p.family != family:
            raise ValueError(f"runtime {p.name!r} emulates {p.family} models; this is a {family} network")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one observation, got shape {x.shape}")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(x):
            raise ValueError(f"labels has {len(labels)} entries for {len(x)} observations")

    network = qnet.network
    names = [n for n in network.layer_names if n not in network.input_names]
    output = network.output_names[0]
    tallies = {(n, p.name): _Tally() for p in profiles[1:] for n in names}
    correct = {p.name: 0 for p in profiles}
    input_name = network.input_names[0]
    for start in range(0, len(x), batch_size):
        batch = np.ascontiguousarray(x[start:start + batch_size])
        results = [qnet.run({input_name: batch}, outputs=names, runtime=p) for p in profiles]
        for p, values in zip(profiles[1:], results[1:]):
            for n in names:
                tallies[(n, p.name)].add(results[0][n], values[n])
        if labels is not None:
            for p, values in zip(profiles, results):
                scores = values[output]
                scores = scores.q if isinstance(scores, QTensor) else scores
                predicted = np.asarray(scores).reshape(len(batch), -1).argmax(axis=1)
                correct[p.name] += int(np.count_nonzero(predicted == labels[start:start + len(batch)]))
    rows = []
    for p in profiles[1:]:
        for n in names:
            t = tallies[(n, p.name)]
            rows.append((n, network.layer(n).type_name, p.name, profiles[0].name, t.output, t.elements,
                         t.differing, 100.0 * t.differing / t.elements if t.elements else 0.0, t.max_diff))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["runtimes"] = [p.name for p in profiles]
    if labels is not None:
        table.attrs["accuracy"] = {name: 100.0 * c / len(x) for name, c in correct.items()}
    return table
