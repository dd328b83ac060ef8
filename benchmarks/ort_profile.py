"""Where the time goes in ONNX Runtime: time per op type of the default model, fp32 against its int8
graph (issue 25), from ORT's own profiler (one trace per graph, 1 thread, batch 1).

QDQ graphs show their fused kernels as QLinear*/ConvInteger/MatMulInteger (or as DequantizeLinear /
QuantizeLinear where ORT could not fuse a pair: time spent converting, not computing).

    python -m benchmarks.ort_profile --data elpv [--iters 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "ort_profile.json"


def op_times(path: Path, sample: np.ndarray, iters: int, threads: int = 1) -> dict[str, float]:
    """Mean µs per forward spent in each op type (ORT's kernel events)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ort-profile-")) / "trace")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(20):
        session.run(None, {name: sample})
    trace = Path(session.end_profiling())
    # Warm-up runs are in the trace too: profile again from a fresh session holding only timed runs.
    trace.unlink(missing_ok=True)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(iters):
        session.run(None, {name: sample})
    trace = Path(session.end_profiling())
    totals: dict[str, float] = defaultdict(float)
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    trace.unlink(missing_ok=True)
    return {op: round(total / iters, 1) for op, total in sorted(totals.items(), key=lambda kv: -kv[1])}


def main() -> None:
    from inspector.line.demo import demo_model_path
    from inspector.line.inference import InferenceEngine
    from inspector.line.int8 import calibration_inputs, open_station_for
    from models.bundle import load_bundle
    from models.quantize import DEFAULT_KEEP_FP32, quantize_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Bundle (default: the demo model).")
    parser.add_argument("--data", default=None, help="Station to calibrate on (default: the bundle's).")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    bundle = load_bundle(args.model or demo_model_path())
    scratch = Path(tempfile.mkdtemp(prefix="ort-profile-"))
    engine = InferenceEngine(bundle, "onnx", scratch)
    station = open_station_for(bundle, args.data)
    int8 = scratch / "int8.onnx"
    quantize_onnx(engine.onnx_path, int8, calibration_inputs(bundle, station))
    prep = bundle.meta.preprocessing
    sample = np.random.default_rng(0).standard_normal((1, prep.channels, prep.size, prep.size))
    sample = sample.astype(np.float32)
    profiles = {
        "fp32": op_times(engine.onnx_path, sample, args.iters),
        "int8": op_times(int8, sample, args.iters),
    }
    totals = {name: round(sum(times.values()), 1) for name, times in profiles.items()}
    print(f"{'op type':28} {'fp32 µs':>9} {'int8 µs':>9}")
    ops = sorted(set(profiles["fp32"]) | set(profiles["int8"]), key=lambda op: -max(
        profiles["fp32"].get(op, 0.0), profiles["int8"].get(op, 0.0)))  # fmt: skip
    for op in ops:
        print(f"{op:28} {profiles['fp32'].get(op, 0.0):9.1f} {profiles['int8'].get(op, 0.0):9.1f}")
    print(f"{'total (kernels)':28} {totals['fp32']:9.1f} {totals['int8']:9.1f}")
    result = {
        "command": f"python -m benchmarks.ort_profile --data {args.data} --iters {args.iters}",
        "model": str(args.model or "inspector/demo_model"),
        "keep_fp32": list(DEFAULT_KEEP_FP32),
        "us_per_forward": profiles,
        "total_us": totals,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
