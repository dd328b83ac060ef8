"""int8 on the line (issue 25): batch-1 latency of the default model, its unmerged twin and Lite0 under
every backend this PC has — PyTorch, ONNX Runtime fp32 and int8, OpenVINO fp32 and int8 — all
fifteen taking turns round by round in one run per thread count, with each int8 graph's accuracy
gate on the station's validation split beside it.

The default model is the bundled demo model (the hybrid LTM @ 0.8 that ``inspector train`` makes,
trained on ELPV). Its unmerged twin has the same weights with merging off; Lite0 has its ImageNet
weights and an untrained two-class head. Latency depends on the architecture only, so both are fair
for speed; their gates measure how far int8 moves their *own* fp32 outputs (agreement), and their
macro-F1 means nothing.

    python -m benchmarks.int8_speed --data elpv [--threads 1 2] [--rounds 5 --runs 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "int8_speed.json"
BACKENDS = ("torch", "onnx", "int8", "openvino", "openvino-int8")


def _bundles(scratch: Path) -> dict[str, Path]:
    """The three models as bundles on disk (the int8 gate and the ONNX cache work on bundles)."""
    import dataclasses

    from inspector.line.demo import demo_model_path
    from models.backbones import resolve_backbone
    from models.bundle import load_bundle, meta_for, save_bundle
    from models.network import InspectionNet

    demo = load_bundle(demo_model_path())
    twin = load_bundle(demo_model_path())
    twin.net.set_schedule([None] * len(twin.net.schedule()))
    twin_meta = dataclasses.replace(twin.meta, schedule=twin.net.schedule())
    lite0 = InspectionNet(resolve_backbone("lite0", demo.meta.preprocessing.size, 3), 2, "none").eval()
    lite0_meta = meta_for(
        lite0,
        list(demo.meta.classes),
        preprocessing=demo.meta.preprocessing,
        provenance=dict(demo.meta.provenance),
        normal_class=demo.meta.normal_class,
    )
    return {
        "hybrid-ltm@0.8 (default)": demo_model_path(),
        "hybrid unmerged twin": save_bundle(twin.net, twin_meta, scratch / "twin"),
        "lite0 (ImageNet, untrained head)": save_bundle(lite0, lite0_meta, scratch / "lite0"),
    }


def main() -> None:
    from inspector.line.backends import gated_int8, int8_path, openvino_int8_path
    from inspector.line.bench import _openvino_call, _ort_call, _torch_call
    from inspector.line.inference import InferenceEngine
    from models.bundle import load_bundle
    from models.latency import interleaved_rounds, summarise
    from models.openvino_backend import int8_unavailable

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="elpv", help="Station to calibrate and gate the int8 graphs on.")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    if int8_unavailable():
        raise SystemExit(f"int8_speed measures OpenVINO too: {int8_unavailable()}")

    scratch = Path(tempfile.mkdtemp(prefix="int8-speed-"))
    cache = scratch / "onnx"
    files: dict[tuple[str, str], Path] = {}
    gates: dict[str, dict[str, dict]] = {}
    samples: dict[str, np.ndarray] = {}
    nets = {}
    for model, path in _bundles(scratch).items():
        bundle = load_bundle(path)
        engine = InferenceEngine(bundle, "onnx", cache)
        prep = bundle.meta.preprocessing
        rng = np.random.default_rng(0)
        samples[model] = rng.standard_normal((1, prep.channels, prep.size, prep.size)).astype(np.float32)
        nets[model] = bundle.net.eval()
        files[(model, "onnx")] = files[(model, "openvino")] = engine.onnx_path
        gates[model] = {}
        for backend, target in (("int8", int8_path), ("openvino-int8", openvino_int8_path)):
            tic = time.perf_counter()
            _, gate, why = gated_int8(engine, backend, engine.onnx_path, engine.onnx, args.data, True, print)
            if gate is None:
                raise SystemExit(f"{model} {backend}: {why}")
            gates[model][backend] = {**gate.to_json(), "build_s": round(time.perf_counter() - tic, 1)}
            files[(model, backend)] = target(engine.onnx_path)
            print(f"{model} {backend}: {gate.reason}", flush=True)

    tables = {}
    previous = torch.get_num_threads()
    for threads in args.threads:
        torch.set_num_threads(threads)
        calls = {}
        for model, sample in samples.items():
            for backend in BACKENDS:
                if backend == "torch":
                    calls[(model, backend)] = _torch_call(nets[model], sample)
                elif backend.startswith("openvino"):
                    calls[(model, backend)] = _openvino_call(files[(model, backend)], threads, sample)
                else:
                    calls[(model, backend)] = _ort_call(files[(model, backend)], threads, sample)
        timed = interleaved_rounds(calls, args.rounds, args.runs, warmup=5)
        rows = []
        for (model, backend), values in timed.items():
            stats = summarise(values)
            rows.append(
                {"model": model, "backend": backend, "p50_ms": round(stats.p50_ms, 3),
                 "p95_ms": round(stats.p95_ms, 3)}
            )  # fmt: skip
        by = {(r["model"], r["backend"]): r["p50_ms"] for r in rows}
        for row in rows:
            row["vs_own_onnx"] = round(row["p50_ms"] / by[(row["model"], "onnx")], 3)
            lite0 = by[("lite0 (ImageNet, untrained head)", row["backend"])]
            row["vs_lite0_same_backend"] = round(row["p50_ms"] / lite0, 3)
        tables[str(threads)] = rows
        print(f"\n{threads} thread(s)")
        print(f"{'model':34} {'backend':14} {'p50 ms':>8} {'p95 ms':>8} {'x onnx':>7} {'x lite0':>8}")
        for row in rows:
            print(
                f"{row['model']:34} {row['backend']:14} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} "
                f"{row['vs_own_onnx']:7.2f} {row['vs_lite0_same_backend']:8.2f}"
            )
    torch.set_num_threads(previous)
    import os
    import platform

    result = {
        "command": "python -m benchmarks.int8_speed " + " ".join(
            [f"--data {args.data}", "--threads", *map(str, args.threads), f"--rounds {args.rounds}",
             f"--runs {args.runs}"]
        ),  # fmt: skip
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "gates": gates,
        "latency": tables,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
