"""Which op groups should stay fp32 in the int8 graph (issue 25): measured, not assumed.

For one bundle and its station, quantize the fp32 export once per candidate set of fp32 groups
(op types, ``merge`` = every node of an LTM merge module, ``depthwise`` = depthwise convs), then
on the validation split report macro-F1 against fp32, the share of images with the same verdict
(the gate's two numbers) and batch-1 latency, all variants timed interleaved in one process.

    python -m benchmarks.int8_ops --model inspector/demo_model --data elpv \\
        --json benchmarks/results/int8_ops.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

STEM_CONV = ("scope:proj.cnn.conv_stem", "scope:proj.cnn.bn1")
STEM_EARLY = ("scope:cnn.blocks.0.", "scope:cnn.blocks.1.")
STEM_LATE = ("scope:cnn.blocks.2.", "scope:cnn.blocks.3.", "scope:cnn.blocks.4.")
# name -> (groups kept fp32, calibration method). ``scope:patch_embed`` is the hybrid's CNN stem,
# ``scope:head`` the classifier.
VARIANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "all int8": ((), "minmax"),
    "Softmax": (("Softmax",), "minmax"),
    "LayerNormalization": (("LayerNormalization",), "minmax"),
    "merge": (("merge",), "minmax"),
    "depthwise": (("depthwise",), "minmax"),
    "Softmax+merge": (("Softmax", "merge"), "minmax"),
    "Softmax+merge+LayerNorm": (("Softmax", "merge", "LayerNormalization"), "minmax"),
    "Softmax+merge+depthwise": (("Softmax", "merge", "depthwise"), "minmax"),
    "Softmax+merge, percentile": (("Softmax", "merge"), "percentile"),
    "Softmax+merge, entropy": (("Softmax", "merge"), "entropy"),
    "Softmax+merge+head": (("Softmax", "merge", "scope:head"), "minmax"),
    "Softmax+merge+stem": (("Softmax", "merge", "scope:patch_embed"), "minmax"),
    # Which part of the stem int8 hurts (the whole stem fp32 keeps the verdicts, and the time).
    "Softmax+merge+stem conv": (("Softmax", "merge", *STEM_CONV), "minmax"),
    "Softmax+merge+stem blocks 0-1": (("Softmax", "merge", *STEM_CONV, *STEM_EARLY), "minmax"),
    "Softmax+merge+stem blocks 2-4": (("Softmax", "merge", *STEM_LATE), "minmax"),
    "Softmax+merge+stem blocks 4": (("Softmax", "merge", "scope:cnn.blocks.4."), "minmax"),
    "Softmax+merge+stem blocks 0-2": (
        ("Softmax", "merge", *STEM_CONV, *STEM_EARLY, "scope:cnn.blocks.2."),
        "minmax",
    ),
    "Softmax+merge+stem blocks 0-1, percentile": (
        ("Softmax", "merge", *STEM_CONV, *STEM_EARLY),
        "percentile",
    ),
    "Softmax+merge+stem blocks 0-1, entropy": (("Softmax", "merge", *STEM_CONV, *STEM_EARLY), "entropy"),
}


def main() -> None:
    from inspector.line.bench import _ort_call
    from inspector.line.inference import InferenceEngine
    from inspector.line.int8 import CALIBRATION_IMAGES, _inputs, judge, open_station_for, stratified
    from models.bundle import load_bundle
    from models.latency import interleaved_rounds, summarise
    from models.quantize import nodes_in, quantize_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("inspector/demo_model"))
    parser.add_argument("--data", default=None, help="Station (default: the one the bundle was trained on).")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    bundle = load_bundle(args.model)
    scratch = Path(tempfile.mkdtemp(prefix="int8-ops-"))
    engine = InferenceEngine(bundle, "onnx", scratch)
    fp32_path = engine.onnx_path
    station = open_station_for(bundle, args.data)
    calibration = _inputs(bundle, stratified(station.split("train"), CALIBRATION_IMAGES), print)[0]
    inputs, labels = _inputs(bundle, station.split("val"), print)
    fp32 = engine.onnx.run_outputs(inputs)
    import onnx

    graph = onnx.load(str(fp32_path))
    rows, calls = [], {}
    prep = bundle.meta.preprocessing
    sample = np.random.default_rng(0).standard_normal((1, prep.channels, prep.size, prep.size))
    sample = sample.astype(np.float32)
    calls["fp32"] = _ort_call(fp32_path, args.threads, sample)
    for name in args.variants:
        groups, method = VARIANTS[name]
        target = scratch / f"{name.replace('+', '_').replace(' ', '_')}.onnx"
        tic = time.perf_counter()
        report = quantize_onnx(fp32_path, target, calibration, keep_fp32=groups, method=method)
        seconds = time.perf_counter() - tic
        from models.onnx_export import OnnxPredictor

        int8 = OnnxPredictor(target, prep).run_outputs(inputs)
        gate = judge(bundle.meta.classes, engine.rules, labels, fp32, int8)
        rows.append(
            {
                "variant": name,
                "keep_fp32": list(groups),
                "calibration": method,
                "fp32_nodes": report.fp32_nodes,
                "merge_nodes": len(nodes_in(graph, ["merge"])),
                "macro_f1_fp32": gate.macro_f1_fp32,
                "macro_f1_int8": gate.macro_f1_int8,
                "agreement": gate.agreement,
                "max_abs_prob_diff": round(float(np.abs(int8[0] - fp32[0]).max()), 4),
                "gate": gate.passed,
                "quantize_s": round(seconds, 1),
            }
        )
        print(rows[-1], flush=True)
        calls[name] = _ort_call(target, args.threads, sample)
    samples = interleaved_rounds(calls, args.rounds, args.runs, warmup=5)
    stats = {name: summarise(values) for name, values in samples.items()}
    for row in rows:
        row["p50_ms"] = round(stats[row["variant"]].p50_ms, 3)
        row["p95_ms"] = round(stats[row["variant"]].p95_ms, 3)
        row["p50_vs_fp32"] = round(stats[row["variant"]].p50_ms / stats["fp32"].p50_ms, 3)
    result = {
        "model": str(args.model),
        "data": args.data or bundle.meta.provenance.get("data"),
        "threads": args.threads,
        "rounds": args.rounds,
        "runs": args.runs,
        "calibration_images": len(calibration),
        "val_images": len(labels),
        "fp32": {"p50_ms": round(stats["fp32"].p50_ms, 3), "p95_ms": round(stats["fp32"].p95_ms, 3)},
        "rows": rows,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    header = ("F1 fp32", "F1 int8", "agree", "max dp", "p50 ms", "x fp32")
    print(f"{'variant':28} " + " ".join(f"{h:>8}" for h in header))
    for row in rows:
        print(
            f"{row['variant']:28} {row['macro_f1_fp32']:8.3f} {row['macro_f1_int8']:8.3f} "
            f"{row['agreement']:8.3f} {row['max_abs_prob_diff']:8.3f} {row['p50_ms']:8.2f} "
            f"{row['p50_vs_fp32']:8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
