"""Train-and-evaluate runs behind the accuracy figures in BENCHMARKS.md, resumable and cached.

Each job trains with the product's own ``train_model`` (the code behind ``inspector train``) and
evaluates on the held-out test split with ``evaluate_model`` (``inspector eval``). A finished job
leaves ``benchmarks/results/training/<job>.json`` and is skipped on the next run; an interrupted
one resumes from its last epoch. Bundles go to ``benchmarks/runs/`` (not committed). Usage:

    python -m benchmarks.training_suite --only xsdd-none xsdd-ltm-convert
    python -m benchmarks.training_suite --list
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from inspector.training import Recipe
from inspector.workflows import evaluate_model, train_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results" / "training"
RUNS = ROOT / "benchmarks" / "runs"


def _job(name: str, data: str, merge: str, ltm_start: str = "convert", **kw: object) -> dict:
    return {"name": name, "data": data, "merge": merge, "ltm_start": ltm_start, **kw}


JOBS = [
    _job("xsdd-none", "xsdd", "none"),
    _job("xsdd-ltm-convert", "xsdd", "ltm", "convert"),
    _job("xsdd-ltm-scratch", "xsdd", "ltm", "scratch"),
    _job("magnetic_tile-none", "magnetic_tile", "none"),
    _job("magnetic_tile-ltm", "magnetic_tile", "ltm", "convert"),
    _job("elpv-ltm", "elpv", "ltm", "convert"),
    _job("elpv-none", "elpv", "none"),
]


def data_source(name: str) -> str:
    return name if name == "elpv" else str(SHARED / name)


def run_job(job: dict, epochs: int, img_size: int) -> dict:
    out = RUNS / job["name"]
    resume = (out.parent / f"{out.name}.partial" / "state.json").is_file() and not out.exists()
    if not out.exists():
        train_model(
            data_source(job["data"]),
            out,
            merge=job["merge"],
            gmacs_ratio=job.get("gmacs_ratio", 0.6),
            img_size=img_size,
            recipe=Recipe(epochs=epochs, seed=job.get("seed", 0)),
            ltm_start=job["ltm_start"],
            resume=resume,
            progress=False,
            log=lambda line: print(f"  [{job['name']}] {line}", flush=True),
        )
    report = evaluate_model(
        out,
        data_source(job["data"]),
        json_path=RUNS / f"{job['name']}.eval.json",
        progress=False,
        log=lambda line: None,
    )
    meta = json.loads((out / "model.json").read_text())
    return {
        "job": job,
        "epochs": epochs,
        "img_size": img_size,
        "test": report,
        "train_seconds": meta["provenance"]["train_seconds"],
        "val": meta["provenance"]["val"],
        "thresholds": meta["thresholds"],
        "schedule": meta["merge"]["schedule"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="job names (default: all)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    jobs = [j for j in JOBS if not args.only or j["name"] in args.only]
    if args.list:
        for job in jobs:
            done = (RESULTS / f"{job['name']}.json").is_file()
            print(f"{job['name']:24} {'done' if done else 'pending'}")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    for number, job in enumerate(jobs, 1):
        target = RESULTS / f"{job['name']}.json"
        if target.is_file():
            print(f"[{number}/{len(jobs)}] {job['name']}: cached", flush=True)
            continue
        tic = time.perf_counter()
        print(f"[{number}/{len(jobs)}] {job['name']}: training", flush=True)
        result = run_job(job, args.epochs, args.img_size)
        target.write_text(json.dumps(result, indent=2) + "\n")
        spent = time.perf_counter() - tic
        left = len(jobs) - number
        print(
            f"[{number}/{len(jobs)}] {job['name']}: test macro-F1 {result['test']['macro_f1']:.3f} "
            f"acc {result['test']['accuracy']:.3f} in {spent / 60:.1f} min; "
            f"~{left * spent / 60:.0f} min left "
            f"(elapsed {(time.perf_counter() - began) / 60:.0f} min)",
            flush=True,
        )


if __name__ == "__main__":
    main()
