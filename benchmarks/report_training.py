"""Markdown tables of the training suite's cached results, for BENCHMARKS.md.

python -m benchmarks.report_training
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "training"


def _load() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


def accuracy_table(results: dict[str, dict]) -> str:
    lines = [
        "| job | dataset | backbone | merge | start | epochs | test macro-F1 | test accuracy | GMACs | "
        "params | PyTorch p50 ms | train min | UNSURE below |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if r["job"].get("kind"):
            continue
        test, job = r["test"], r["job"]
        start = job["ltm_start"] if job["merge"] != "none" else "–"
        merge = f"{job['merge']} @ {test.get('gmacs_ratio')}" if job["merge"] != "none" else "none"
        lines.append(
            f"| {name} | {job['data']} | {_model(job)} | {merge} | {start} | {r['epochs']} | "
            f"{test['macro_f1']:.3f} | "
            f"{test['accuracy']:.3f} | {test['gmacs']:.3f} | {test['params']:,} | "
            f"{test['latency_ms']['p50']:.1f} | "
            f"{r['train_seconds'] / 60:.0f} | {r['thresholds']['unsure_below']} |"
        )
    return "\n".join(lines)


def _model(job: dict) -> str:
    """The backbone preset, with the input normalisation when it is not the dataset's mean/std."""
    image = ", image-normalised" if job.get("normalize") == "image" else ""
    return job.get("backbone", "vit-cpu") + image


def recall_table(results: dict[str, dict]) -> str:
    lines = []
    for name, r in results.items():
        if r["job"].get("kind"):
            continue
        per_class = r["test"]["per_class"]
        recalls = ", ".join(f"{c} {v['recall']:.2f} ({v['support']})" for c, v in per_class.items())
        lines.append(f"- **{name}** recall (support): {recalls}")
    return "\n".join(lines)


def lighting_table(r: dict) -> str:
    job = r["job"]
    reference = job.get("reference", "magnetic_tile-ltm")
    lines = [
        f"**{job['name']}** — base model: {_model(job)}, LTM @ {job.get('gmacs_ratio', 0.6)} trained "
        f"on exp1–3 of the train groups ({r['base_train_images']} images, "
        f"{r['epochs']} epochs). Evaluated on exp4–6 of the test groups ({r['shifted_test_images']} images).",
        "",
        "| model | macro-F1 | accuracy | fine-tune s | fine-tune images |",
        "|---|---|---|---|---|",
        f"| before (exp1–3 only) | {r['before']['macro_f1']:.3f} | {r['before']['accuracy']:.3f} | – | – |",
    ]
    for trainable, a in r["after"].items():
        lines.append(
            f"| after fine-tune, `--trainable {trainable}` | {a['macro_f1']:.3f} | {a['accuracy']:.3f} | "
            f"{a['seconds']:.0f} | {a['train_images']} |"
        )
    everything = r.get("trained_on_everything")
    if everything:
        lines.append(
            f"| trained on all lightings ({reference}) | {everything['macro_f1']:.3f} | "
            f"{everything['accuracy']:.3f} | – | – |"
        )
    return "\n".join(lines)


def main() -> None:
    results = _load()
    print(accuracy_table(results))
    print()
    print(recall_table(results))
    for r in results.values():
        if r["job"].get("kind") == "lighting-shift":
            print()
            print(lighting_table(r))


if __name__ == "__main__":
    main()
