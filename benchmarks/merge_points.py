"""Would fewer, larger LTM merges close the PyTorch gap? Latency of one GMACs budget, split differently.

``benchmarks.torch_latency`` shows LTM @ 0.6 on vit-cpu at 0.77-0.88x of the unmerged latency in
PyTorch eager against 0.60x of its GMACs: the merges add ~120 small operator calls whose cost
does not scale with tokens. The product merges at three points (``models.schedule``). This probe
builds the same 0.6 budget as ONE merge after block 1, 2 or 3 (``fit_schedule`` with
``points``) and times them beside the unmerged model and the product's three merges, interleaved
round by round, in PyTorch eager (1 and 2 threads) and ONNX Runtime (1 and 2 threads). Random
weights: latency does not depend on them. What one merge costs in accuracy needs training: the
suite's ``ltm-0.6-one`` design try (one merge after block 2). Usage (nothing else should run on the machine):

    python -m benchmarks.merge_points [--ratio 0.6] [--rounds 5] [--runs 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.torch_latency import ort_rounds, timed_rounds
from benchmarks.torch_latency import table as latency_table
from models.backbones import resolve_backbone
from models.network import InspectionNet
from models.onnx_export import export_onnx
from models.schedule import fit_schedule

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "merge_points.json"


def _net(mode: str) -> InspectionNet:
    spec = resolve_backbone("vit-cpu", 112, 1)
    return InspectionNet(spec, 6, mode).eval()


def run(ratio: float, rounds: int, runs: int) -> dict[str, Any]:
    base = _net("none")
    three = _net("ltm")
    fit = fit_schedule(three, ratio)
    nets: dict[str, InspectionNet] = {"unmerged": base, "3 merges (product)": three}
    layout: dict[str, dict[str, Any]] = {
        "unmerged": {"schedule": None, "gmacs_ratio": 1.0},
        "3 merges (product)": {"schedule": fit.schedule, "gmacs_ratio": fit.ratio},
    }
    for block in (1, 2, 3):
        name = f"1 merge after block {block}"
        nets[name] = _net("ltm")
        one = fit_schedule(nets[name], ratio, points=[block])
        layout[name] = {"schedule": one.schedule, "gmacs_ratio": one.ratio}
    x = torch.randn(1, 1, 112, 112)
    p50: dict[str, dict[str, float]] = {name: {} for name in nets}
    for threads in (2, 1):
        samples = timed_rounds({k: lambda n=n: n(x) for k, n in nets.items()}, threads, rounds, runs)
        for name, values in samples.items():
            p50[name][f"eager {threads}t"] = statistics.median(values)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: export_onnx(n, Path(tmp) / f"{i}.onnx").path for i, (k, n) in enumerate(nets.items())}
        feed = {"images": np.random.default_rng(0).standard_normal((1, 1, 112, 112)).astype(np.float32)}
        for threads in (2, 1):
            for name, values in ort_rounds(paths, feed, threads, rounds, runs).items():
                p50[name][f"ORT {threads}t"] = statistics.median(values)
    unmerged = p50["unmerged"]
    return {
        "target_ratio": ratio,
        "layout": layout,
        "p50_ms": p50,
        "ratio_to_unmerged": {k: {m: v / unmerged[m] for m, v in r.items()} for k, r in p50.items()},
        "rounds": rounds,
        "runs_per_round": runs,
        "torch": torch.__version__,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }


def table(result: dict[str, Any]) -> str:
    gmacs = {k: f"{v['gmacs_ratio']:.2f}" for k, v in result["layout"].items()}
    return latency_table(result, first="schedule", extra={"GMACs (×)": gmacs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=0.6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40, help="timed calls per model per round")
    args = parser.parse_args()
    result = run(args.ratio, args.rounds, args.runs)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
