"""Command line: `fixedpoint demo` and `fixedpoint quantize`.

`demo` runs the whole quantization workflow on the two bundled digits models (no arguments, no
downloads) and prints, per model, float and int8 accuracy per environment and exponent scheme and
the learnable memory before and after; then what the bundled MobileNet, as ONNX Runtime's and the
TFLite converter's own quantizers wrote it, computes on each emulated runtime and CPU. `quantize` does the same for an ONNX model and writes the
quantized network, the calibration table, the details and the HTML report (with the runtime
comparison for the ONNXRuntime and LiteRT environments), and for ONNXRuntime the QDQ model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from .files import atomic_open

DEMO_ENVIRONMENTS = ("MATLAB", "FPGA")
SCHEMES = ("MinMax", "Histogram")
REPORT_ERROR_SAMPLES = 64


def _format_table(header, rows) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def evaluate(net, calibration, validation, environments=DEMO_ENVIRONMENTS, schemes=SCHEMES,
             per_channel=False):
    """Rows (environment, scheme, float %, int8 %, float bytes, int8 bytes, reduction %) for one
    network; calibration runs once per environment, quantization once per scheme."""
    from .quantization import dlquantizer

    rows = []
    for environment in environments:
        q = dlquantizer(net, environment)
        q.calibrate(calibration, progress=False)
        for scheme in schemes:
            result = q.validate(validation, "top1", exponent_scheme=scheme, per_channel=per_channel)
            accuracy = result.metric_results["top1"]
            memory = result.statistics["LearnableParameterMemory(bytes)"]
            rows.append((environment, scheme, float(accuracy["Floating-Point"]), float(accuracy["Quantized"]),
                         int(memory["Floating-Point"]), int(memory["Quantized"]),
                         float(result.memory_reduction)))
    return rows


def demo(out=sys.stdout) -> int:
    from . import examples

    (x_cal, y_cal), (x_val, y_val) = examples.digits_data()
    header = ("environment", "exponent scheme", "float top-1 %", "int8 top-1 %", "change (pp)",
              "learnables float (B)", "learnables int8 (B)", "memory reduction %")
    for title, build in (("digits CNN", examples.digits_cnn),
                         ("digits MobileNet-style", examples.digits_mobilenet)):
        start = time.perf_counter()
        rows = evaluate(build(), x_cal, (x_val, y_val))
        table = [(env, scheme, f"{f:.2f}", f"{q:.2f}", f"{q - f:+.2f}", fb, qb, f"{red:.1f}")
                 for env, scheme, f, q, fb, qb, red in rows]
        print(f"\n{title}: {len(x_cal)} calibration / {len(x_val)} validation images "
              f"({time.perf_counter() - start:.1f} s)", file=out)
        print(_format_table(header, table), file=out)
    runtimes_demo(x_val, y_val, out)
    return 0


DEMO_RUNTIMES = {
    "digits_mobilenet_qdq.onnx": ("ONNX Runtime", "onnxruntime-vnni",
                                  ("onnxruntime-vnni", "onnxruntime-avx2", "onnxruntime-reference")),
    "digits_mobilenet_float_io.tflite": ("LiteRT", "litert-reference",
                                         ("litert-reference", "litert-optimized", "litert")),
}


def runtimes_demo(x_val, y_val, out=sys.stdout) -> None:
    """Per bundled model file: top-1 accuracy under each runtime profile, and the layers whose
    integers differ from the first profile's (fp.compare_runtimes)."""
    from . import compare_runtimes, examples, import_onnx, import_tflite
    from .runtime import get_runtime, host_runtime

    for name, (runtime, baseline, profiles) in DEMO_RUNTIMES.items():
        start = time.perf_counter()
        tflite = name.endswith(".tflite")
        qnet = (import_tflite if tflite else import_onnx)(examples.model_file(name))
        x = np.ascontiguousarray(x_val.transpose(0, 2, 3, 1)) if tflite else x_val   # LiteRT takes NHWC
        table = compare_runtimes(qnet, x, list(profiles), labels=y_val)
        accuracy = table.attrs["accuracy"]
        print(f"\n{runtime}: the bundled digits MobileNet as its own quantizer wrote it ({name}), "
              f"{len(x_val)} validation images ({time.perf_counter() - start:.1f} s)", file=out)
        print(_format_table(("runtime profile", "top-1 %", "what it emulates"),
                            [(p, f"{accuracy[p]:.2f}", get_runtime(p).description.split(":")[0])
                             for p in profiles]), file=out)
        rows = [(r.Layer, r.Runtime, f"{r._7:.3g}", int(r._8)) for r in table.itertuples(index=False)
                if r.Differing]
        if rows:
            print(f"Layers whose integers differ from {baseline} (elements %, largest difference in LSB):",
                  file=out)
            print(_format_table(("layer", "runtime profile", "differing %", "max |diff| LSB"), rows), file=out)
        if not tflite:
            print(f"This machine's CPU runs the {host_runtime()!r} profile.", file=out)


def _load_arrays(path, need_labels: bool, what: str):
    with np.load(path, allow_pickle=False) as contents:
        if "x" not in contents.files or (need_labels and "y" not in contents.files):
            raise ValueError(f"{what} file {path} must hold an array 'x'"
                             f"{' and labels y' if need_labels else ''}; it has {contents.files}")
        x = contents["x"].astype(np.float32)
        return (x, contents["y"]) if need_labels else x


def quantize_model(args, out=sys.stdout) -> int:
    from .quantization import dlquantizer, quantization_details

    if str(args.model).endswith(".npz"):
        from .nn.io import load_network
        net = load_network(args.model)
    else:
        from .onnx import import_onnx
        net = import_onnx(args.model)
    calibration = _load_arrays(args.calibration, False, "--calibration")
    os.makedirs(args.out, exist_ok=True)
    q = dlquantizer(net, args.environment)
    affine = q.target.runtime_family is not None
    if not affine and (args.activation_dtype or args.reduce_range or args.per_tensor):
        raise ValueError("--activation-dtype, --reduce-range and --per-tensor apply to the "
                         "ONNXRuntime and LiteRT environments")
    if args.per_channel and args.per_tensor:
        raise ValueError("--per-channel and --per-tensor exclude each other")
    table = q.calibrate(calibration, batch_size=args.batch_size, progress=not args.quiet)
    table.to_csv(os.path.join(args.out, "calibration.csv"), index=False)
    options = {"skip_layers": args.skip_layers, "per_channel": args.per_channel,
               "histogram_threshold": args.histogram_threshold}
    if affine:   # per channel unless told otherwise; no histogram threshold (ranges only)
        options = {"skip_layers": args.skip_layers, "per_channel": not args.per_tensor,
                   "activation_dtype": args.activation_dtype, "reduce_range": args.reduce_range}
    qnet = q.quantize(args.exponent_scheme, **options)
    qnet.save(os.path.join(args.out, "quantized_network.npz"))
    if q.target.runtime_family == "onnxruntime":
        from .onnx import export_onnx
        export_onnx(qnet, os.path.join(args.out, "quantized_model.onnx"))
    details = quantization_details(qnet)
    with atomic_open(os.path.join(args.out, "details.json"), "w") as stream:
        json.dump({"target_library": details.target_library,
                   "quantized_layer_names": details.quantized_layer_names,
                   "numerictypes": {f"{layer}/{kind}": repr(t) for (layer, kind), t
                                    in details.numerictypes.items()},
                   "parameters": [{"layer": r[0], "tensor": r[1], "dtype": r[2],
                                   "scale": np.asarray(r[3], np.float64).tolist(),
                                   "zero_point": np.asarray(r[4]).tolist(), "per_channel": bool(r[5])}
                                  for r in details.parameters.itertuples(index=False)]},
                  stream, indent=1)
    validation, x_val, y_val = None, None, None
    if args.validation:
        x_val, y_val = _load_arrays(args.validation, True, "--validation")
        validation = q.validate((x_val, y_val), "top1", batch_size=args.batch_size,
                                exponent_scheme=args.exponent_scheme, **options)
        with atomic_open(os.path.join(args.out, "validation.json"), "w") as stream:
            json.dump({"num_samples": validation.num_samples,
                       "top1": validation.metric_results["top1"].to_dict(),
                       "memory_bytes": validation.statistics.iloc[:, 0].astype(int).to_dict(),
                       "memory_reduction_percent": validation.memory_reduction}, stream, indent=1)
        print(validation, file=out)
    from .analysis.report import quantization_report
    # the per-layer error study runs on a few observations (validation data when given)
    error_data = (x_val if x_val is not None else calibration)[:REPORT_ERROR_SAMPLES]
    comparison = None
    if affine:   # every runtime profile of the family on the validation data (else the error samples)
        from .analysis.compare import compare_runtimes
        labels = y_val if x_val is not None else None
        comparison = compare_runtimes(qnet, x_val if x_val is not None else error_data, labels=labels,
                                      batch_size=args.batch_size)
    quantization_report(q, os.path.join(args.out, "report.html"), validation=validation,
                        data=error_data, comparison=comparison)
    print(f"wrote {sorted(os.listdir(args.out))} to {args.out}", file=out)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fixedpoint", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the quantization workflow on the bundled digits models")
    quant = sub.add_parser("quantize", help="calibrate, quantize and validate an ONNX model")
    quant.add_argument("model", help="the float model: .onnx, or a network saved with fp.save_network (.npz)")
    quant.add_argument("--calibration", required=True, help=".npz with an array x (N, ...)")
    quant.add_argument("--validation", help=".npz with arrays x and integer labels y")
    quant.add_argument("--environment", default="MATLAB",
                       choices=["MATLAB", "GPU", "FPGA", "ONNXRuntime", "LiteRT"])
    quant.add_argument("--exponent-scheme", default="MinMax", choices=list(SCHEMES),
                       help="ONNXRuntime / LiteRT take MinMax only (scales from the ranges)")
    quant.add_argument("--histogram-threshold", type=float, default=1e-4)
    quant.add_argument("--per-channel", action="store_true",
                       help="per-output-channel weights (the default for ONNXRuntime / LiteRT)")
    quant.add_argument("--per-tensor", action="store_true",
                       help="ONNXRuntime / LiteRT: one weight scale per layer")
    quant.add_argument("--activation-dtype", choices=["uint8", "int8"],
                       help="ONNXRuntime: uint8 (default) or int8 activations; LiteRT: int8")
    quant.add_argument("--reduce-range", action="store_true",
                       help="ONNXRuntime: 7-bit weights in [-64, 64] (quantize_static's reduce_range)")
    quant.add_argument("--skip-layers", nargs="*", default=[], help="layers to keep in float")
    quant.add_argument("--batch-size", type=int, default=32)
    quant.add_argument("--quiet", action="store_true", help="no progress bar")
    quant.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        return demo() if args.command == "demo" else quantize_model(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"fixedpoint {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
