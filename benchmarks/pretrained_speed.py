"""Speed of the pretrained candidates side by side (issue 12): plain Lite0, the hybrids unmerged,
with LTM and with ToMe, at batch 1, PyTorch eager and ONNX Runtime, interleaved round by round in
one run so that a noisy shared machine slows every model alike. Ratios are to plain Lite0 (what a
plant engineer would otherwise run) and, for merged models, to their unmerged twin. Latency depends
on the architecture only, so the networks are built with random weights; GMACs are counted as
everywhere else (PyTorch's FLOP counter, attention unfused). The transformer-only saving is the
whole network's GMACs minus the stem's.

    python -m benchmarks.pretrained_speed [--rounds 5 --runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks.torch_latency import ort_rounds, timed_rounds
from models.backbones import resolve_backbone
from models.flops import count_gmacs, count_params
from models.network import InspectionNet
from models.onnx_export import export_onnx
from models.schedule import fit_schedule

RESULTS = Path(__file__).parent / "results" / "pretrained_speed.json"
# (name, backbone, merge, gmacs_ratio, img size)
CANDIDATES = (
    ("lite0", "lite0", "none", None, 160),
    ("hybrid-s16", "hybrid-s16", "none", None, 160),
    ("hybrid-s16-ltm@0.8", "hybrid-s16", "ltm", 0.8, 160),
    ("hybrid-s16-tome@0.8", "hybrid-s16", "tome", 0.8, 160),
    ("hybrid-s16-wide", "hybrid-s16-wide", "none", None, 160),
    ("hybrid-s16-wide-ltm@0.8", "hybrid-s16-wide", "ltm", 0.8, 160),
    ("hybrid-s8", "hybrid-s8", "none", None, 160),
    ("hybrid-s8-ltm@0.6", "hybrid-s8", "ltm", 0.6, 160),
    ("lite0@224", "lite0", "none", None, 224),
    ("hybrid-s16@224", "hybrid-s16", "none", None, 224),
    ("hybrid-s16-ltm@0.8@224", "hybrid-s16", "ltm", 0.8, 224),
)


def _build(backbone: str, merge: str, ratio: float | None, size: int) -> InspectionNet:
    net = InspectionNet(resolve_backbone(backbone, size, 3), 6, merge, mask="content")
    if ratio is not None:
        fit_schedule(net, ratio)
    return net.eval()


def _stem_gmacs(net: InspectionNet, size: int) -> float:
    embed = getattr(net.backbone, "patch_embed", None)
    return count_gmacs(embed, size, 3) if embed is not None else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="1: the live pipeline's setting on 2 cores")
    args = parser.parse_args()
    nets = {name: _build(b, m, r, s) for name, b, m, r, s in CANDIDATES}
    sizes = {name: s for name, _, _, _, s in CANDIDATES}
    rows = {
        name: {
            "gmacs": round(count_gmacs(net, sizes[name], 3), 4),
            "stem_gmacs": round(_stem_gmacs(net, sizes[name]), 4),
            "params": count_params(net),
            "schedule": net.schedule(),
        }
        for name, net in nets.items()
    }
    inputs = {name: torch.randn(1, 3, sizes[name], sizes[name]) for name in nets}
    eager = timed_rounds(
        {name: (lambda n=net, x=inputs[name]: n(x)) for name, net in nets.items()},
        args.threads,
        args.rounds,
        args.runs,
    )
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, net in nets.items():
            if net.merge_mode != "tome":  # ToMe's gather/scatter does not export
                paths[name] = export_onnx(net, Path(tmp) / f"{name}.onnx", samples=2).path
        ort = {}
        for size in sorted(set(sizes.values())):
            group = {k: v for k, v in paths.items() if sizes[k] == size}
            ort.update(
                ort_rounds(
                    group, {"images": inputs[next(iter(group))].numpy()}, args.threads, args.rounds, args.runs
                )
            )
    for name, row in rows.items():
        row["torch_p50_ms"] = round(statistics.median(eager[name]), 2)
        row["torch_p95_ms"] = round(statistics.quantiles(eager[name], n=20)[18], 2)
        if name in ort:
            row["ort_p50_ms"] = round(statistics.median(ort[name]), 2)
            row["ort_p95_ms"] = round(statistics.quantiles(ort[name], n=20)[18], 2)
    RESULTS.write_text(
        json.dumps(
            {"threads": args.threads, "rounds": args.rounds, "runs": args.runs, "rows": rows}, indent=2
        )
        + "\n"
    )
    print(table(rows))


def table(rows: dict) -> str:
    lines = [
        "| model | GMACs | stem GMACs | params | torch p50 / p95 ms | vs lite0 "
        "| ORT p50 / p95 ms | vs lite0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        base = rows["lite0@224" if name.endswith("@224") else "lite0"]
        ort = "— | —"
        if "ort_p50_ms" in row:
            ratio = row["ort_p50_ms"] / base["ort_p50_ms"]
            ort = f"{row['ort_p50_ms']:.2f} / {row['ort_p95_ms']:.2f} | {ratio:.2f}×"
        lines.append(
            f"| {name} | {row['gmacs']:.3f} | {row['stem_gmacs']:.3f} | {row['params'] / 1e6:.2f} M | "
            f"{row['torch_p50_ms']:.2f} / {row['torch_p95_ms']:.2f} | "
            f"{row['torch_p50_ms'] / base['torch_p50_ms']:.2f}× | {ort} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
