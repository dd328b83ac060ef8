"""The suite's report from the cache: metrics over seeds and speed per variant, as JSON, a
markdown table and a macro-F1-against-latency plot, all under ``benchmarks/results/``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmarks.suite.cache import read_json, write_json
from benchmarks.suite.profiles import COLOURS, MARKERS, METHODS, PAPER, SPLIT_SEED, Profile, variants
from models.files import atomic_write_text


class Suite(Protocol):
    """What the report reads of a suite run (:class:`benchmarks.suite.orchestration.Suite`): the
    report is built from the cache alone, so it needs the run's names and folders, not the runner."""

    name: str
    profile: Profile
    runs: Path  # the cache: <runs>/<dataset>/<backbone>/seed<N>/<step>.json, speed/<backbone>.json
    results: Path  # where the report is written
    log: Callable[[str], None]

    def records(self) -> list[dict[str, Any]]: ...


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def aggregate(suite: Suite) -> dict[str, Any]:
    """Per (dataset, backbone, variant): metrics over seeds, speed, ratios to unmerged; plus gaps."""
    p = suite.profile
    records = suite.records()
    speed = {b: read_json(suite.runs / "speed" / f"{b}.json") for b in p.backbones}
    rows, missing, skipped = [], [], []
    for dataset in p.datasets:
        for backbone in p.backbones:
            reach = read_json(suite.runs / dataset / backbone / "reach.json") or {}
            mine = [r for r in records if r["dataset"] == dataset and r["backbone"] == backbone]
            base_rows = [r for r in mine if r["variant"] == "unmerged"]
            base_f1 = _mean_std([r["macro_f1"] for r in base_rows])[0]
            base_gmacs = base_rows[0]["gmacs"] if base_rows else None
            fast = speed.get(backbone) or {}
            by_arch = {(s["dataset"], s["arch"]): s for s in fast.get("rows", [])}
            base_speed = by_arch.get((dataset, "unmerged"))
            for v in variants(p, backbone, dataset):
                reason = reach.get(v.arch) if v.mode != "none" else None
                if reason:
                    skipped.append(
                        {"dataset": dataset, "backbone": backbone, "variant": v.key, "reason": reason}
                    )
                    continue
                got = sorted((r for r in mine if r["variant"] == v.key), key=lambda r: r["seed"])
                seeds = [r["seed"] for r in got]
                gaps = [s for s in p.seeds if s not in seeds]
                if gaps:
                    missing.append(
                        {"dataset": dataset, "backbone": backbone, "variant": v.key, "seeds": gaps}
                    )
                f1, f1_std = _mean_std([r["macro_f1"] for r in got])
                acc, _ = _mean_std([r["accuracy"] for r in got])
                row: dict[str, Any] = {
                    "dataset": dataset,
                    "backbone": backbone,
                    "variant": v.key,
                    "label": v.label,
                    "method": v.method,
                    "ratio": v.ratio,
                    "arch": v.arch,
                    "seeds": seeds,
                    "macro_f1": f1,
                    "macro_f1_std": f1_std,
                    "macro_f1_by_seed": [r["macro_f1"] for r in got],
                    "accuracy": acc,
                    "delta_f1_vs_unmerged": None if f1 is None or base_f1 is None else f1 - base_f1,
                    "recall": {
                        c: float(np.mean([r["recall"][c] for r in got]))
                        for c in (got[0]["recall"] if got else {})
                    },
                    "support": got[0]["support"] if got else {},
                    "gmacs": got[0]["gmacs"] if got else None,
                    "gmacs_ratio": got[0]["gmacs"] / base_gmacs if got and base_gmacs else None,
                    "params": got[0]["params"] if got else None,
                    "train_minutes": float(np.mean([r["train_seconds"] for r in got])) / 60 if got else None,
                    "speed": None,
                }
                mine_speed = by_arch.get((dataset, v.arch))
                if mine_speed:
                    sp = dict(mine_speed)
                    if base_speed:
                        for key in ("torch_p50_ms", "ort_p50_ms", "throughput_ips", "peak_mib"):
                            a, b = sp.get(key), base_speed.get(key)
                            sp[key.rsplit("_", 1)[0] + "_ratio"] = a / b if a is not None and b else None
                    peak = fast.get("matmul_gflops")
                    sp["ort_share_of_peak"] = (
                        sp["ort_gflops"] / peak if sp.get("ort_gflops") and peak else None
                    )
                    row["speed"] = sp
                rows.append(row)
    return {"rows": rows, "missing": missing, "skipped": skipped, "speed": speed}


def write_report(suite: Suite) -> dict[str, Any]:
    agg = aggregate(suite)
    p = suite.profile
    suite.results.mkdir(parents=True, exist_ok=True)
    png = suite.results / f"suite_{suite.name}.png"
    plot(agg["rows"], p, png, suite.name)
    markdown = render_markdown(suite, agg, png)
    atomic_write_text(suite.results / f"suite_{suite.name}.md", markdown)
    result = {
        "profile": suite.name,
        "config": asdict(p),
        "command": f"python -m benchmarks.suite --profile {suite.name}",
        "split_seed": SPLIT_SEED,
        "paper": PAPER,
        "rows": agg["rows"],
        "missing": agg["missing"],
        "skipped": agg["skipped"],
        "speed_runs": {
            b: {k: v for k, v in s.items() if k != "rows"} if s else None for b, s in agg["speed"].items()
        },
        "generated": time.strftime("%Y-%m-%d %H:%M"),
    }
    write_json(suite.results / f"suite_{suite.name}.json", result)
    suite.log(markdown)
    return result


def _f(value: float | None, fmt: str = ".3f", none: str = "–") -> str:
    return none if value is None else format(value, fmt)


def render_markdown(suite: Suite, agg: dict[str, Any], png: Path) -> str:
    p, rows = suite.profile, agg["rows"]
    lines = [
        f"## LTM vs unmerged vs ToMe: the suite (profile `{suite.name}`)",
        "",
        "```bash",
        f"python -m benchmarks.suite --profile {suite.name}            # resumable; cached steps are skipped",
        f"python -m benchmarks.suite --profile {suite.name} --report   # these tables from the cache",
        "```",
        "",
        f"Datasets {', '.join(p.datasets)}; backbones {', '.join(p.backbones)} at {p.img_size} px; seeds "
        f"{', '.join(map(str, p.seeds))}. Every variant starts from one unmerged base trained "
        f"{p.base_epochs} epochs per (dataset, backbone, seed) and gets the same {p.extra_epochs} "
        "further epochs (ToMe off the shelf: none). Test split fixed across seeds. `–`: not run yet.",
        "",
        *([p.note, ""] if p.note else []),
        "### Accuracy (test split; macro-F1 mean ± std over seeds)",
        "",
        "| dataset | backbone | variant | seeds | GMACs | ×unmerged | params | macro-F1 | Δ vs unmerged "
        "| accuracy | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f1 = "–" if r["macro_f1"] is None else f"{r['macro_f1']:.3f} ± {_f(r['macro_f1_std'])}"
        delta = "" if r["delta_f1_vs_unmerged"] is None else f"{r['delta_f1_vs_unmerged']:+.3f}"
        if r["method"] == "unmerged":
            delta = ""
        lines.append(
            f"| {r['dataset']} | {r['backbone']} | {r['label']} | {len(r['seeds'])}/{len(p.seeds)} "
            f"| {_f(r['gmacs'])} | {_f(r['gmacs_ratio'], '.2f')} "
            f"| {'–' if r['params'] is None else format(r['params'], ',')} | {f1} | {delta} "
            f"| {_f(r['accuracy'])} | {_f(r['train_minutes'], '.1f')} |"
        )
    if agg["skipped"]:
        lines += ["", "Skipped (out of the backbone's reach; the schedule's own words):", ""]
        grouped: dict[tuple[str, str], tuple[dict, dict]] = {}
        for item in agg["skipped"]:
            names, datasets = grouped.setdefault((item["backbone"], item["reason"]), ({}, {}))
            names[item["variant"]] = datasets[item["dataset"]] = None  # ordered sets
        for (backbone, reason), (names, datasets) in grouped.items():
            lines.append(f"- {backbone}: {', '.join(names)} ({', '.join(datasets)}): {reason}")
    lines += ["", "Per-class recall (mean over seeds; support in the test split):", ""]
    for r in rows:
        if r["recall"]:
            recall = ", ".join(f"{c} {v:.2f} ({r['support'][c]})" for c, v in r["recall"].items())
            lines.append(f"- {r['dataset']} / {r['backbone']} / {r['label']}: {recall}")
    lines += [
        "",
        "### Speed (one process per backbone, models interleaved; ratios to the unmerged model)",
        "",
    ]
    for backbone, run in agg["speed"].items():
        if run:
            lines.append(
                f"- {backbone}: {run['machine']}, {run['threads']} torch threads, torch {run['torch']}, "
                f"ONNX Runtime {run['onnxruntime']}, {run['latency_runs']} batch-1 calls per model and "
                f"runtime over {run['rounds']} rounds, {run['batch_runs']} batch-{p.batch} calls; "
                f"measured {run['measured']}. fp32 matmul peak (torch.mm, same run): "
                f"**{run['matmul_gflops']:.0f} GFLOP/s**."
            )
        else:
            lines.append(f"- {backbone}: not measured yet.")
    lines += [
        "",
        f"| dataset | backbone | model | GMACs | torch p50 / p95 ms | × | ORT p50 / p95 ms | × "
        f"| batch-{p.batch} img/s | × | peak MiB (b{p.batch}) | ORT GFLOP/s | % of matmul peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for r in rows:
        sp = r["speed"]
        if (r["dataset"], r["backbone"], r["arch"]) in seen:
            continue
        seen.add((r["dataset"], r["backbone"], r["arch"]))
        name = r["arch"].replace("ltm-", "LTM @ ").replace("tome-", "ToMe @ ")
        if not sp:
            lines.append(f"| {r['dataset']} | {r['backbone']} | {name} | – | not measured yet |||||||||")
            continue
        ort = (
            f"{sp['ort_p50_ms']:.2f} / {sp['ort_p95_ms']:.2f} | {_f(sp.get('ort_p50_ratio'), '.2f')}"
            if sp["ort_p50_ms"] is not None
            else "n/a (not exportable) | –"
        )
        share = _f(None if sp.get("ort_share_of_peak") is None else 100 * sp["ort_share_of_peak"], ".1f")
        lines.append(
            f"| {r['dataset']} | {r['backbone']} | {name} | {sp['gmacs']:.3f} "
            f"| {sp['torch_p50_ms']:.2f} / {sp['torch_p95_ms']:.2f} | {_f(sp.get('torch_p50_ratio'), '.2f')} "
            f"| {ort} | {sp['throughput_ips']:.0f} | {_f(sp.get('throughput_ratio'), '.2f')} "
            f"| {_f(sp['peak_mib'], '.1f', 'n/a')} | {_f(sp['ort_gflops'], '.1f', 'n/a')} | {share} |"
        )
    lines += [
        "",
        "### The paper's headline results beside ours (ratios)",
        "",
        "The paper's figures are **ImageNet-1k top-1 on GPU** with ImageNet-pretrained backbones; ours are "
        "**macro-F1 on small defect sets, trained from scratch, timed on this CPU**. Only the ratios "
        "are comparable, and only loosely.",
        "",
        "| source | model | data, hardware | compute after / before | accuracy change "
        "| latency after / before |",
        "|---|---|---|---|---|---|",
    ]
    for entry in PAPER:
        before, after = entry["gflops"]
        lines.append(
            f"| paper | {entry['model']} | ImageNet top-1, GPU "
            f"| {after} / {before} GFLOPs = {after / before:.2f} "
            f"| {entry['top1_delta']:+.1f} points | not compared |"
        )
    for r in rows:
        if r["method"] != "LTM" or r["macro_f1"] is None:
            continue
        sp = r["speed"] or {}
        latency = (
            f"ORT {_f(sp.get('ort_p50_ratio'), '.2f')}, PyTorch {_f(sp.get('torch_p50_ratio'), '.2f')}"
            if sp
            else "–"
        )
        delta = r["delta_f1_vs_unmerged"]
        lines.append(
            f"| ours | {r['backbone']} LTM @ {r['ratio']:g} | {r['dataset']} macro-F1, CPU "
            f"| {_f(r['gmacs_ratio'], '.2f')} GMACs | "
            f"{'–' if delta is None else f'{100 * delta:+.1f} points'} | {latency} |"
        )
    lines += ["", f"![macro-F1 against latency]({png.name})", ""]
    if agg["missing"]:
        lines.append(
            f"Not finished yet: {len(agg['missing'])} (dataset, backbone, variant) cells lack some seeds "
            "(listed in the JSON under `missing`)."
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], profile: Profile, path: Path, name: str) -> Path:
    """Macro-F1 against p50 latency: ONNX Runtime (top row of each backbone) and PyTorch (below,
    where ToMe has a point too); one curve per method per dataset, columns = datasets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.files import atomic_write

    cols, backbones = list(profile.datasets), list(profile.backbones)
    fig, axes = plt.subplots(
        2 * len(backbones),
        len(cols),
        figsize=(max(7.0, 4.6 * len(cols)), 3.3 * 2 * len(backbones) + 0.8),
        squeeze=False,
        dpi=110,
        layout="constrained",
    )
    for b, backbone in enumerate(backbones):
        for c, dataset in enumerate(cols):
            for k, (runtime, key) in enumerate((("ONNX Runtime", "ort_p50_ms"), ("PyTorch", "torch_p50_ms"))):
                ax = axes[2 * b + k][c]
                drawn = False
                for method in METHODS:
                    pts = sorted(
                        (r["speed"][key], r["macro_f1"], r["macro_f1_std"] or 0.0, r["ratio"])
                        for r in rows
                        if r["dataset"] == dataset
                        and r["backbone"] == backbone
                        and r["method"] == method
                        and r["macro_f1"] is not None
                        and r["speed"]
                        and r["speed"].get(key) is not None
                    )
                    if not pts:
                        continue
                    drawn = True
                    x, y, e, ratios = zip(*pts, strict=True)
                    ax.errorbar(
                        x,
                        y,
                        yerr=e,
                        color=COLOURS[method],
                        marker=MARKERS[method],
                        ms={"unmerged": 10, "LTM no-IB": 9}.get(method, 6),
                        mfc="none" if method == "LTM no-IB" else COLOURS[method],
                        linestyle="-" if len(x) > 1 else "none",
                        capsize=3,
                        label=method,
                    )
                    for xi, yi, ri in zip(x, y, ratios, strict=True):
                        if ri is not None:
                            ax.annotate(
                                f"{ri:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7
                            )
                note = " (ToMe: not exportable)" if k == 0 else ""
                ax.set_title(f"{dataset} · {backbone} · {runtime}{note}", fontsize=9)
                ax.set_xlabel(f"{runtime} p50 latency, batch 1 (ms)", fontsize=8)
                ax.set_ylabel("test macro-F1", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
                if not drawn:
                    ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)
    handles = [
        plt.Line2D(
            [],
            [],
            color=COLOURS[m],
            marker=MARKERS[m],
            mfc="none" if m == "LTM no-IB" else COLOURS[m],
            label=m,
        )
        for m in METHODS
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=len(METHODS) if len(cols) > 1 else 3,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"suite '{name}': test macro-F1 (mean ± std over seeds) against p50 latency\n"
        "numbers beside the points: gmacs_ratio; faster is left, better is up",
        fontsize=10,
    )
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
