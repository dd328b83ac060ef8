"""Why LTM's GMAC saving shows less in PyTorch than in ONNX Runtime: one model set, several runtimes.

The suite (issue 4) measures PyTorch eager with all of torch's threads. This benchmark takes the
same cached suite bundles (unmerged and LTM at each ratio, one dataset and seed) and times them
side by side, interleaved round by round, under each way the product could run them:

- PyTorch eager with 2 threads (the suite's setting) and with 1 thread (the live pipeline's
  setting on a 2-core machine: ``PipelineConfig.inference_threads = cpu_count - 1``);
- ``torch.compile`` (Inductor, C++ codegen; compile time reported) with 2 threads;
- ONNX Runtime with 2 threads and with 1 intra-op thread;

plus, for eager, the fixed part that merging cannot shrink (the convolutional stem and position
embedding, timed alone). Ratios to unmerged per runtime. Usage (after the suite has trained the
bundles; nothing else should run on the machine):

    python -m benchmarks.torch_latency --dataset xsdd --seed 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.bundle import load_bundle
from models.latency import interleaved_rounds
from models.network import InspectionNet

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "runs" / "suite" / "full"
RESULTS = ROOT / "benchmarks" / "results" / "torch_latency.json"
ARCHS = ("unmerged", "ltm-0.8", "ltm-0.6", "ltm-0.45")


def _stem(net: InspectionNet) -> Callable[[torch.Tensor], torch.Tensor]:
    vit = net.backbone
    return lambda x: vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))


def _ort_session(path: Path, threads: int):  # onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed_rounds(
    calls: dict[str, Callable[[], object]], threads: int, rounds: int, runs: int
) -> dict[str, list[float]]:
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return interleaved_rounds(calls, rounds, runs, warmup=3)


def ort_rounds(
    paths: dict[str, Path], feed: dict[str, np.ndarray], threads: int, rounds: int, runs: int
) -> dict[str, list[float]]:
    """Batch-1 ORT samples per model, interleaved round by round; sessions closed afterwards."""
    sessions = {key: _ort_session(path, threads) for key, path in paths.items()}
    calls = {key: (lambda s=session: s.run(None, feed)) for key, session in sessions.items()}
    return interleaved_rounds(calls, rounds, runs, warmup=3)


def run(dataset: str, seed: int, rounds: int, runs: int) -> dict[str, Any]:
    from models.onnx_export import export_onnx

    folder = SUITE / dataset / "vit-cpu" / f"seed{seed}"
    nets = {arch: load_bundle(folder / arch).net.eval() for arch in ARCHS if (folder / arch).is_dir()}
    if "unmerged" not in nets:
        raise SystemExit(f"{folder}: no suite bundles (run benchmarks.suite first)")
    spec = nets["unmerged"].spec
    x = torch.randn(1, spec.in_chans, spec.img_size, spec.img_size)
    results: dict[str, dict[str, float]] = {arch: {} for arch in nets}

    def record(mode: str, samples: dict[str, list[float]]) -> None:
        for arch, values in samples.items():
            results[arch][mode] = statistics.median(values)

    for threads in (2, 1):
        record(
            f"eager {threads}t",
            timed_rounds({a: lambda n=n: n(x) for a, n in nets.items()}, threads, rounds, runs),
        )
    record(
        "eager 1t, stem only",
        timed_rounds({a: lambda n=n: _stem(n)(x) for a, n in nets.items()}, 1, rounds, runs),
    )

    torch.set_num_threads(2)
    compiled, compile_s = {}, {}
    for arch, net in nets.items():
        tic = time.perf_counter()
        compiled[arch] = torch.compile(net, dynamic=False)
        with torch.inference_mode():
            compiled[arch](x)
        compile_s[arch] = time.perf_counter() - tic
    record("compile 2t", timed_rounds({a: lambda c=c: c(x) for a, c in compiled.items()}, 2, rounds, runs))
    compiled.clear()

    with tempfile.TemporaryDirectory() as tmp:
        paths = {a: export_onnx(n, Path(tmp) / f"{a}.onnx").path for a, n in nets.items()}
        feed = {"images": np.random.default_rng(0).standard_normal(tuple(x.shape)).astype(np.float32)}
        for threads in (2, 1):
            record(f"ORT {threads}t", ort_rounds(paths, feed, threads, rounds, runs))

    base = results["unmerged"]
    return {
        "dataset": dataset,
        "seed": seed,
        "rounds": rounds,
        "runs_per_round": runs,
        "p50_ms": results,
        "ratio_to_unmerged": {a: {m: v / base[m] for m, v in r.items()} for a, r in results.items()},
        "compile_seconds": compile_s,
        "torch": torch.__version__,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }


def table(
    result: dict[str, Any], first: str = "model", extra: dict[str, dict[str, str]] | None = None
) -> str:
    """p50 (ratio) per model and mode; ``extra``: more leading columns, {header: {model: cell}}."""
    modes = list(result["p50_ms"]["unmerged"])
    heads = [first, *(extra or {}), *modes]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for name, row in result["p50_ms"].items():
        ratio = result["ratio_to_unmerged"][name]
        cells = [name, *(column[name] for column in (extra or {}).values())]
        cells += [f"{row[m]:.2f} ms ({ratio[m]:.2f})" for m in modes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="xsdd")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40, help="timed calls per model per round")
    args = parser.parse_args()
    result = run(args.dataset, args.seed, args.rounds, args.runs)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"compile seconds: { {k: round(v, 1) for k, v in result['compile_seconds'].items()} }")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
