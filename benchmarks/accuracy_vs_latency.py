"""The picture a plant engineer decides from (issue 24 item 6): test macro-F1 against ONNX Runtime
batch-1 latency, for Lite0 (the CNN they would otherwise fine-tune) and our hybrids at each input
geometry, one panel per station set, the product's default marked.

Accuracy is the mean ± std over the finished seeds of :mod:`benchmarks.pretrained_suite`'s cells.
Latency depends on the architecture and the merge schedule only, so every candidate is built with
random weights at its geometry, exported to ONNX and timed by ONNX Runtime in interleaved rounds in
one process (a shared, noisy machine slows every model alike); ratios are to Lite0 at 160 px.
ToMe's gather/scatter merge does not export to ONNX, so it has no ORT latency here (its torch
latency is in the suite's cells).

    python -m benchmarks.accuracy_vs_latency [--threads 2 --rounds 5 --runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.pretrained_suite import cell_files
from benchmarks.torch_latency import ort_rounds
from models.backbones import resolve_backbone
from models.flops import count_gmacs
from models.network import InspectionNet
from models.onnx_export import export_onnx
from models.schedule import fit_schedule, fit_token_budget

RESULTS = Path(__file__).parent / "results" / "accuracy_vs_latency.json"
FIGURE = Path(__file__).parents[1] / "docs" / "accuracy_vs_latency.png"
DEFAULT = "hybrid-ltm@0.8"  # what `inspector train DATA` uses (160 px, stretched, LTM @ 0.8)
# ... with defect-preserving crops where the station has masks, and at 224 px with the keep-defects
# term where those masks show defects under one stem token at 160 px (magnetic_tile; issue 24)
DEFAULTS = {"magnetic_tile": f"{DEFAULT}-224px-dc-kd"}
# Training-only variants (crops, the keep-defects term, a slower stem): the same network, so the same latency.
TRAINING_ONLY = ("-dc", "-kd", "-slr0.1")


def architecture(method: str) -> str:
    """The candidate whose network ``method`` trains: its name without training-only suffixes."""
    for suffix in reversed(TRAINING_ONLY):
        method = method.removesuffix(suffix)
    return method


@dataclass(frozen=True)
class Candidate:
    """One suite method's architecture: what its latency depends on."""

    method: str
    backbone: str
    size: int
    merge: str = "none"
    ratio: float | None = None
    tokens: int | None = None

    def build(self) -> InspectionNet:
        net = InspectionNet(resolve_backbone(self.backbone, self.size, 3), 6, self.merge, mask="content")
        if self.tokens is not None:
            fit_token_budget(net, self.tokens)
        elif self.ratio is not None:
            fit_schedule(net, self.ratio)
        return net.eval()


CANDIDATES = (
    Candidate("lite0", "lite0", 160),
    Candidate("lite0-224px", "lite0", 224),
    *(Candidate(f"lite0-{s}lb", "lite0", s) for s in (160, 224, 288, 320)),
    Candidate("hybrid", "hybrid-s16", 160),
    Candidate("hybrid-ltm@0.8", "hybrid-s16", 160, "ltm", 0.8),
    Candidate("hybrid-pooling@0.8", "hybrid-s16", 160, "ltm", 0.8),
    Candidate("hybrid-ltm@0.8-224px", "hybrid-s16", 224, "ltm", 0.8),
    Candidate("hybrid-224px", "hybrid-s16", 224),
    Candidate("hybrid-pooling@0.8-224px", "hybrid-s16", 224, "ltm", 0.8),
    Candidate("hybrid-s16-320lb", "hybrid-s16", 320),
    Candidate("hybrid-ltm-t100-320lb", "hybrid-s16", 320, "ltm", tokens=100),
    Candidate("hybrid-pooling-t100-320lb", "hybrid-s16", 320, "ltm", tokens=100),
    # The larger stems (issue 24 item 4)
    Candidate("lite2-224px", "lite2", 224),
    Candidate("hybrid-l2-ltm@0.8-224px", "hybrid-l2-s16", 224, "ltm", 0.8),
    # The slim stem with a 49-token budget (issue 24 item 4)
    *(Candidate(f"hybrid-slim-ltm-t49-{s}px", "hybrid-s16-slim", s, "ltm", tokens=49) for s in (224, 256)),
    Candidate("hybrid-ltm-t49-224px", "hybrid-s16", 224, "ltm", tokens=49),
    Candidate("hybrid-pooling-t49-224px", "hybrid-s16", 224, "ltm", tokens=49),
    Candidate("hybrid-slim-ltm@0.8-224px", "hybrid-s16-slim", 224, "ltm", 0.8),
)


def accuracy() -> dict[str, dict[str, dict]]:
    """dataset -> method -> {mean, std, seeds, recall (per class, mean)} over the finished cells."""
    out: dict[str, dict[str, dict]] = {}
    for path in cell_files():
        cell = json.loads(path.read_text(encoding="utf-8"))
        out.setdefault(cell["dataset"], {}).setdefault(cell["method"], {"cells": []})["cells"].append(cell)
    for methods in out.values():
        for name, entry in methods.items():
            cells = entry.pop("cells")
            f1 = np.array([c["macro_f1"] for c in cells])
            classes = cells[0]["classes"]
            methods[name] = {
                "mean": round(float(f1.mean()), 4),
                "std": round(float(f1.std()), 4),
                "seeds": sorted(c["seed"] for c in cells),
                "recall": {
                    k: round(float(np.mean([c["per_class"][k]["recall"] for c in cells])), 3) for k in classes
                },
            }
    return out


def latency(methods: set[str], threads: int, rounds: int, runs: int) -> dict[str, dict]:
    """ORT batch-1 p50/p95 of the candidates that have cells, interleaved in one process; GMACs beside."""
    wanted = {architecture(m) for m in methods}
    chosen = [c for c in CANDIDATES if c.method in wanted]
    nets = {c.method: c.build() for c in chosen}
    rows = {
        c.method: {"size": c.size, "gmacs": round(count_gmacs(nets[c.method], c.size, 3), 4)} for c in chosen
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            name: export_onnx(net, Path(tmp) / f"{name}.onnx", samples=1).path for name, net in nets.items()
        }
        samples: dict[str, list[float]] = {}
        # One interleaved run per input size (ORT takes one feed per call), sizes in turn per round.
        for _ in range(rounds):
            for size in sorted({c.size for c in chosen}):
                group = {k: v for k, v in paths.items() if rows[k]["size"] == size}
                feed = {"images": torch.randn(1, 3, size, size).numpy()}
                for name, values in ort_rounds(group, feed, threads, 1, runs).items():
                    samples.setdefault(name, []).extend(values)
    for name, values in samples.items():
        rows[name]["ort_p50_ms"] = round(statistics.median(values), 2)
        rows[name]["ort_p95_ms"] = round(statistics.quantiles(values, n=20)[18], 2)
    return with_variants(rows, methods)


def with_variants(rows: dict[str, dict], methods: set[str]) -> dict[str, dict]:
    """``rows`` with each training-only variant timed as the network it trains."""
    return {**{m: rows[architecture(m)] for m in methods if architecture(m) in rows}, **rows}


def plot(acc: dict, speed: dict, path: Path, threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from adjustText import adjust_text

    sets = [d for d in ("magnetic_tile", "elpv", "xsdd") if d in acc]
    # A panel's width follows its number of points: magnetic_tile carries every small-defect cell.
    widths = [min(1.8, max(1.0, len(acc[d]) / 8)) for d in sets]
    fig, axes = plt.subplots(
        1, len(sets), figsize=(6.2 * sum(widths), 6.4), squeeze=False, gridspec_kw={"width_ratios": widths}
    )
    placed = []
    for ax, dataset in zip(axes[0], sets, strict=True):
        labels, xs, ys = [], [], []
        for name, entry in acc[dataset].items():
            if name not in speed or "ort_p50_ms" not in speed[name]:
                continue
            x, y = speed[name]["ort_p50_ms"], entry["mean"]
            cnn = name.startswith("lite")  # Lite0 and the larger Lite2
            style = dict(fmt="s" if cnn else "o", color="tab:gray" if cnn else "tab:blue", capsize=3)
            if name == DEFAULTS.get(dataset, DEFAULT):
                style.update(fmt="*", color="tab:red", markersize=14)
            ax.errorbar(x, y, yerr=entry["std"] if len(entry["seeds"]) > 1 else None, **style)
            labels.append(ax.text(x, y, f"{name} ({len(entry['seeds'])}s)", fontsize=8))
            xs.append(x)
            ys.append(y)
        placed.append((ax, labels, xs, ys))
        ax.set_title(f"{dataset}: test macro-F1 vs ONNX Runtime latency")
        ax.set_xlabel(f"ORT batch-1 p50 latency (ms, {threads} thread(s), this machine)")
        ax.set_ylabel("test macro-F1 (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    fig.text(
        0.01,
        0.01,
        "grey squares: fine-tuned Lite0 / Lite2 (the CNNs a plant engineer would pick); blue: our hybrids; "
        "red star: inspector train's default. (Ns) = seeds; lb = letterboxed.",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    # Last, once the axes have their final size: labels moved off each other and off the points
    # (in screen space), with a thin line back where one moved far.
    for ax, labels, xs, ys in placed:
        adjust_text(labels, x=xs, y=ys, ax=ax, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(acc: dict, speed: dict) -> str:
    base = speed["lite0"]["ort_p50_ms"]
    lines = [
        "| set | method | seeds | macro-F1 | GMACs | ORT p50 / p95 ms | vs Lite0@160 |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, methods in acc.items():
        for name in sorted(methods, key=lambda n: speed.get(n, {}).get("ort_p50_ms", 1e9)):
            entry, row = methods[name], speed.get(name)
            if row is None:
                continue
            spread = f" ± {entry['std']:.3f}" if len(entry["seeds"]) > 1 else ""
            lines.append(
                f"| {dataset} | {name} | {len(entry['seeds'])} | {entry['mean']:.3f}{spread} | "
                f"{row['gmacs']:.3f} | {row['ort_p50_ms']:.2f} / {row['ort_p95_ms']:.2f} | "
                f"{row['ort_p50_ms'] / base:.2f}× |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--plot-only", action="store_true", help="Re-draw from the last measured latencies.")
    args = parser.parse_args()
    acc = accuracy()
    if args.plot_only:  # the stored timings, and how they were taken
        stored = json.loads(RESULTS.read_text(encoding="utf-8"))
        speed = with_variants(stored["latency"], {m for methods in acc.values() for m in methods})
        args.threads, args.rounds, args.runs = stored["threads"], stored["rounds"], stored["runs"]
    else:
        speed = latency(
            {m for methods in acc.values() for m in methods}, args.threads, args.rounds, args.runs
        )
    RESULTS.write_text(
        json.dumps(
            {
                "threads": args.threads,
                "rounds": args.rounds,
                "runs": args.runs,
                "latency": speed,
                "accuracy": acc,
            },
            indent=2,
            sort_keys=True,  # the same file for the same figures (methods come from a set)
        )
        + "\n",
        encoding="utf-8",
    )
    plot(acc, speed, FIGURE, args.threads)
    print(table(acc, speed))
    print(f"wrote {FIGURE} and {RESULTS}")


if __name__ == "__main__":
    main()
