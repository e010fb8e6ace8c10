"""What a network computes differently on different runtimes, layer by layer.

    table = fp.compare_runtimes(qnet, x, runtimes=["onnxruntime-vnni", "onnxruntime-avx2"], labels=y)
    table.attrs["accuracy"]     # {"onnxruntime-vnni": 99.05, "onnxruntime-avx2": 58.98}

Every runtime runs the same inputs; each later runtime's integers are compared with the first's
(the baseline), layer by layer, in units of the layer's output integer (LSB). Differences accumulate
along the graph, as they do on the devices: a layer's row shows what reaches it, not only what it
adds itself.

A power-of-two network (MATLAB / GPU / FPGA) computes one way, named by its environment ("MATLAB");
ONNX Runtime profiles run the QDQ model `export_onnx` writes of it (scales 2^-f, zero point 0), read
back with `import_onnx`, whose layers keep the network's names:

    fp.compare_runtimes(pow2_qnet, x, runtimes=["MATLAB", "onnxruntime"], labels=y)

shows what deploying the MATLAB-style model to ONNX Runtime changes (its rounding, its kernels).
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
        if isinstance(base, QTensor) and isinstance(other, QTensor) and base.params == other.params:
            self.output = f"{base.q.dtype}"
            diff = np.abs(base.q.astype(np.int64) - other.q.astype(np.int64))
        elif isinstance(base, QTensor):   # other parameters, or float: compared as real values
            self.output = f"{base.q.dtype}"
            values = [(t.params.dequantize(t.q) if isinstance(t, QTensor) else np.asarray(t))
                      .astype(np.float64) for t in (base, other)]
            diff = np.abs(values[1] - values[0]) / float(base.params.scale[0])
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
    the baseline runtime (the first of `runtimes`) and by how much, in LSB of the baseline layer's
    integer output (an output with other parameters, or in float, is compared by its real value;
    float outputs: in their own units). `runtimes` default: every profile of the network's family,
    the host's ONNX Runtime profile first; for a power-of-two network its environment's name (its
    own semantics) then every ONNX Runtime profile, which run its QDQ export (module docstring).
    `labels` (class indices, one per observation): top-1 accuracy per runtime in
    `table.attrs["accuracy"]` (percent), from the network's first output. `x`: what the network
    takes (float32, or the integers of a full-integer model)."""
    from ..runtime import RUNTIMES, get_runtime, host_runtime

    scheme = getattr(qnet, "scheme", None)
    if scheme not in ("affine", "pow2"):
        raise ValueError(f"compare_runtimes needs a QuantizedNetwork, got {type(qnet).__name__}")
    family = qnet.target.runtime_family or "onnxruntime"
    own = qnet.target.name if scheme == "pow2" else None
    if runtimes is None:
        names = [p.name for p in RUNTIMES.values() if p.family == family]
        if family == "onnxruntime":
            names.remove(host_runtime())
            names.insert(0, host_runtime())
        runtimes = ([own] if own else []) + names
    if isinstance(runtimes, str):
        runtimes = [runtimes]
    runners = []   # (name, network, profile or None)
    exported = None
    for r in runtimes:
        if own is not None and isinstance(r, str) and r.upper() == own.upper():
            runners.append((own, qnet, None))
            continue
        p = get_runtime(r)
        if p.family != family:
            raise ValueError(f"runtime {p.name!r} emulates {p.family} models; this is a {family} network"
                             + (f" (or name its own semantics, {own!r})" if own else ""))
        if own is not None:
            if exported is None:
                from ..onnx import export_onnx, import_onnx
                exported = import_onnx(export_onnx(qnet))
            runners.append((p.name, exported, p))
        else:
            runners.append((p.name, qnet, p))
    if not runners:
        raise ValueError("runtimes must name at least one runtime profile")
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
    names = [n for n in network.layer_names if n not in network.input_names
             and all(n in net.network.layer_names for _, net, _ in runners)]
    output = network.output_names[0]
    tallies = {(n, r[0]): _Tally() for r in runners[1:] for n in names}
    correct = {r[0]: 0 for r in runners}
    requested = names if output in names else names + [output]
    for start in range(0, len(x), batch_size):
        batch = np.ascontiguousarray(x[start:start + batch_size])
        results = [net.run({net.network.input_names[0]: batch}, outputs=requested, runtime=p)
                   for _, net, p in runners]
        for (name, _, _), values in zip(runners[1:], results[1:]):
            for n in names:
                tallies[(n, name)].add(results[0][n], values[n])
        if labels is not None:
            for (name, _, _), values in zip(runners, results):
                scores = values[output]
                scores = scores.q if isinstance(scores, QTensor) else scores
                predicted = np.asarray(scores).reshape(len(batch), -1).argmax(axis=1)
                correct[name] += int(np.count_nonzero(predicted == labels[start:start + len(batch)]))
    rows = []
    for name, _, _ in runners[1:]:
        for n in names:
            t = tallies[(n, name)]
            rows.append((n, network.layer(n).type_name, name, runners[0][0], t.output, t.elements,
                         t.differing, 100.0 * t.differing / t.elements if t.elements else 0.0, t.max_diff))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["runtimes"] = [r[0] for r in runners]
    if labels is not None:
        table.attrs["accuracy"] = {name: 100.0 * c / len(x) for name, c in correct.items()}
    return table
