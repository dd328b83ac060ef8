"""Cost table of the merge modes at batch 1: GMACs, params, latency in PyTorch and ONNX Runtime.

Every variant of a backbone is built and measured in this one process, interleaved round by round,
so machine noise hits all of them alike; ratios are to the unmerged model of the same backbone.
Weights are random (speed does not depend on them). Usage:

    python -m benchmarks.merge_cost --size 224 --runs 50 --json benchmarks/results/merge_cost.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from models.backbones import resolve_backbone
from models.errors import ScheduleError
from models.flops import count_gmacs, count_params
from models.latency import interleaved_rounds, summarise
from models.network import InspectionNet
from models.onnx_export import _session, export_onnx
from models.schedule import fit_schedule


@dataclass
class Variant:
    backbone: str
    label: str
    net: InspectionNet
    gmacs: float
    params: int
    schedule: list
    onnx: Path | None = None
    torch_ms: list[float] = field(default_factory=list)
    ort_ms: list[float] = field(default_factory=list)


def _floor(net: InspectionNet, ratio: float) -> float | None:
    """None when ``ratio`` is reachable, else the lowest ratio this merge mode can reach."""
    try:
        fit_schedule(net, ratio)
        return None
    except ScheduleError as exc:
        return float(str(exc).rsplit(" ", 1)[-1])


def build_variants(backbone: str, size: int, ratio: float, channels: int) -> tuple[list[Variant], list[str]]:
    """Unmerged, LTM and ToMe at one common ratio (the requested one, or the lowest both reach)."""
    notes: list[str] = []
    spec = resolve_backbone(backbone, size, channels)
    nets = {}
    for mode in ("none", "ltm", "tome"):
        torch.manual_seed(0)
        nets[mode] = InspectionNet(spec, 2, mode).eval()
    floors = {mode: _floor(nets[mode], ratio) for mode in ("ltm", "tome")}
    common = ratio
    if any(floors.values()):
        common = math.ceil((max(f or 0 for f in floors.values()) + 0.02) * 100) / 100
        notes.append(
            f"{backbone} at {size}px: gmacs_ratio {ratio} is out of reach (lowest reachable: "
            + ", ".join(f"{m.upper()} {f:.2f}" for m, f in floors.items() if f)
            + f"); compared at {common} instead"
        )
    labels = {"none": "unmerged"}
    for mode in ("ltm", "tome"):
        fit_schedule(nets[mode], common)
        labels[mode] = f"{mode.upper()} @ {common}"
    if floors["ltm"] and floors["ltm"] + 0.02 < common:
        torch.manual_seed(0)
        nets["ltm-low"] = InspectionNet(spec, 2, "ltm").eval()
        low = math.ceil((floors["ltm"] + 0.02) * 100) / 100
        fit_schedule(nets["ltm-low"], low)
        labels["ltm-low"] = f"LTM @ {low}"
    variants = [
        Variant(
            backbone,
            labels[key],
            net,
            count_gmacs(net, size, spec.in_chans),
            count_params(net),
            net.schedule(),
        )
        for key, net in nets.items()
    ]
    return variants, notes


def measure(variants: list[Variant], runs: int, rounds: int, workdir: Path) -> None:
    spec = variants[0].net.spec
    sample = torch.randn(1, spec.in_chans, spec.img_size, spec.img_size)
    sessions = {}
    for v in variants:
        if v.net.merge_mode != "tome":
            v.onnx = export_onnx(v.net, workdir / f"{v.backbone}-{v.net.merge_mode}.onnx").path
            sessions[v.label] = _session(v.onnx)
    # Interleave variants round by round; PyTorch and ONNX Runtime in separate phases so that ORT's
    # spinning worker threads never steal cycles from a PyTorch measurement.
    feed = {"images": sample.numpy()}
    calls: dict[tuple[str, int], Callable[[], object]] = {
        ("torch", i): (lambda v=v: v.net(sample)) for i, v in enumerate(variants)
    }
    for i, v in enumerate(variants):
        if v.label in sessions:
            calls["ort", i] = lambda s=sessions[v.label]: s.run(None, feed)
    rounds_bar = tqdm(range(rounds), desc=f"{variants[0].backbone} rounds", leave=False)
    with torch.inference_mode():  # ONNX Runtime does not see it
        samples = interleaved_rounds(calls, rounds_bar, runs // rounds, warmup=5)
    for i, v in enumerate(variants):
        v.torch_ms += samples["torch", i]
        v.ort_ms += samples.get(("ort", i), [])


def run(size: int, ratio: float, runs: int, rounds: int, backbones: list[str], channels: int = 3) -> dict:
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in backbones:
            variants, more = build_variants(backbone, size, ratio, channels)
            notes += more
            measure(variants, runs, rounds, Path(tmp))
            base = variants[0]
            for v in variants:
                rows.append(_row(v, base))
    return {
        "size": size,
        "ratio": ratio,
        "runs": runs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "channels": channels,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "notes": notes,
        "rows": rows,
    }


def _row(v: Variant, base: Variant) -> dict:
    t, tb = summarise(v.torch_ms), summarise(base.torch_ms)
    row = {
        "backbone": v.backbone,
        "variant": v.label,
        "gmacs": v.gmacs,
        "params": v.params,
        "gmacs_ratio": v.gmacs / base.gmacs,
        "torch_p50_ms": t.p50_ms,
        "torch_p95_ms": t.p95_ms,
        "torch_ratio": t.p50_ms / tb.p50_ms,
        "schedule": v.schedule,
    }
    if v.ort_ms:
        o, ob = summarise(v.ort_ms), summarise(base.ort_ms)
        row.update(ort_p50_ms=o.p50_ms, ort_p95_ms=o.p95_ms, ort_ratio=o.p50_ms / ob.p50_ms)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--ratio", type=float, default=0.6)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=["vit_tiny_patch16_224", "mobilevit_xs"],
        help="timm names or presets (vit-cpu, vit-tiny, mobilevit-xs)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    args = parser.parse_args()
    result = run(args.size, args.ratio, args.runs, args.rounds, args.backbones, args.channels)
    print(
        "| backbone | variant | GMACs | ×unmerged | params | torch p50 / p95 ms | ×unmerged "
        "| ORT p50 / p95 ms | ×unmerged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        ort = (
            f"{r['ort_p50_ms']:.2f} / {r['ort_p95_ms']:.2f} | {r['ort_ratio']:.2f}"
            if "ort_p50_ms" in r
            else "not exported | –"
        )
        print(
            f"| {r['backbone']} | {r['variant']} | {r['gmacs']:.3f} | {r['gmacs_ratio']:.2f} "
            f"| {r['params']:,} "
            f"| {r['torch_p50_ms']:.2f} / {r['torch_p95_ms']:.2f} | {r['torch_ratio']:.2f} | {ort} |"
        )
    for note in result["notes"]:
        print("note:", note)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
