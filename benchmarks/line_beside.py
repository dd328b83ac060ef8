"""The line beside other work on the same PC: a fine-tune started from the wizard (``--finetune``)
and a shadow candidate judging every frame (``--shadow``); run through ``python -m
benchmarks.line_speed --finetune`` / ``--shadow`` (that module's docstring says what each measures)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.line_runs import (
    FINETUNE_RESULTS,
    SHADOW_RESULTS,
    bench_pipeline,
    budget_row,
    engines,
    machine,
)
from data.elpv import load_elpv
from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import PipelineConfig, default_inference_threads
from inspector.store import Ledger
from models.bundle import load_bundle

# -- the line beside a fine-tune -----------------------------------------------------------------


def finetune_station(station, per_class: dict[str, int]):  # data.station.Station
    """A small station from ELPV cells: ``per_class[split]`` images of each class and split."""
    from data.station import Station

    taken: dict[tuple[str, str], int] = {}
    samples = []
    for sample in station.samples:
        key = (sample.split, sample.label)
        if taken.get(key, 0) < per_class.get(sample.split, 0):
            taken[key] = taken.get(key, 0) + 1
            samples.append(sample)
    return Station(station.root, samples, "elpv subset")


class _ThreadTask:
    """What ``run_finetune`` needs of its task when it runs in a thread of the line's process."""

    def __init__(self) -> None:
        import threading

        self.cancelled, self.stopping = threading.Event(), threading.Event()

    def report(self, value: object) -> None:
        pass

    def paused_seconds(self) -> float:
        return 0.0

    def should_stop(self) -> bool:
        return False


def line_beside(
    engine: InferenceEngine,
    station,  # data.station.Station
    work: Path,
    frames: int,
    fps: float,
    budget_ms: float,
    training: str | None,
    job_args: tuple,
) -> dict:
    """The paced line for at least ``frames`` frames and until the training (if any) has ended."""
    import threading

    from inspector.jobs.finetune import run_finetune
    from inspector.jobs.runner import BackgroundJob

    work.mkdir(parents=True, exist_ok=True)
    with Ledger(f"sqlite:///{work / 'inspector.db'}") as ledger:
        config = PipelineConfig(drop_policy="oldest", cycle_budget_ms=budget_ms)
        pipeline = bench_pipeline(engine, station, ledger, work, fps, config)
        pipeline.start()
        started = time.perf_counter()
        train_s = None
        job = None
        if training == "process":  # the app's way: what the wizard's Train page starts
            job = BackgroundJob(
                run_finetune,
                *job_args,
                line=lambda: pipeline.stats.overruns if pipeline.running else None,
            )
            job.wait()
            train_s = time.perf_counter() - started
            if job.error:
                raise SystemExit(f"fine-tune failed: {job.error}")
        elif training == "thread":  # before: in a thread of the line's process
            failed: list[str] = []

            def train() -> None:
                try:
                    run_finetune(*job_args, task=_ThreadTask())
                except Exception as exc:
                    failed.append(str(exc))

            thread = threading.Thread(target=train)
            thread.start()
            thread.join()
            train_s = time.perf_counter() - started
            if failed:
                raise SystemExit(f"fine-tune failed: {failed[0]}")
        while pipeline.stats.entered < frames:
            time.sleep(0.05)
        pipeline.stop()
        pipeline.wait()
        snap = pipeline.stats.snapshot()
    return {
        **budget_row(work, snap, fps, budget_ms),
        "stages_ms_last_2000": snap.latency_ms,
        "train_s": None if train_s is None else round(train_s, 1),
        "job": None
        if job is None
        else {
            "priority": job.priority,
            "threads": job.threads,
            "pauses": job.policy.pauses,
            "paused_s": round(job.paused_seconds(), 1),
        },
    }


def finetune_main(args: argparse.Namespace) -> None:
    from inspector.jobs.finetune import run_finetune
    from inspector.jobs.runner import BackgroundJob
    from inspector.training.finetune import FINETUNE_RECIPE

    station = load_elpv(0)
    small = finetune_station(station, {"train": args.train_per_class, "val": 24, "test": 24})
    recipe = dataclasses.replace(FINETUNE_RECIPE, epochs=args.epochs)
    engine = InferenceEngine(load_bundle(demo_model_path()))
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:

        def job_args(name: str) -> tuple:
            return (demo_model_path(), small, Path(tmp) / name / "model", ["lighting", "angle"], recipe, None)

        def report(name: str, row: dict) -> None:
            rows[name] = row
            print(
                f"{name:34s} frames {row['frames']:5d}  p50 {row['p50_ms']:6.1f}  p95 {row['p95_ms']:6.1f}  "
                f"p99 {row['p99_ms']:6.1f}  overruns {row['overruns']:4d}  train {row['train_s']} s",
                flush=True,
            )

        line = (engine, station)
        pace = (args.frames, args.fps, args.budget_ms)
        report("line alone", line_beside(*line, Path(tmp) / "a", *pace, None, ()))
        report(
            "line + wizard fine-tune (app)",
            line_beside(*line, Path(tmp) / "b", *pace, "process", job_args("b")),
        )
        report(
            "line + fine-tune in-process (before)",
            line_beside(*line, Path(tmp) / "c", *pace, "thread", job_args("c")),
        )
        started = time.perf_counter()
        # no line: full speed
        alone = BackgroundJob(run_finetune, *job_args("d"))
        alone.wait()
        if alone.error:
            raise SystemExit(f"fine-tune failed: {alone.error}")
        train_alone = time.perf_counter() - started
        print(f"fine-tune alone (no line)          train {train_alone:.1f} s", flush=True)
    report_data = {
        "command": f"python -m benchmarks.line_speed --finetune --frames {args.frames} --fps {args.fps:g} "
        f"--budget-ms {args.budget_ms:g} --epochs {args.epochs} --train-per-class {args.train_per_class}",
        "machine": {**machine(), "load": os.getloadavg()},
        "inference_threads": default_inference_threads(),
        "station": {"train": 2 * args.train_per_class, "val": 48, "test": 48, "epochs": args.epochs},
        "rows": rows,
        "train_alone_s": round(train_alone, 1),
    }
    FINETUNE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    FINETUNE_RESULTS.write_text(json.dumps(report_data, indent=2) + "\n")
    late = f"over_{1000.0 / args.fps:g}_ms"
    print(
        f"\n{'line (' + format(args.fps, 'g') + ' fps)':36s} {'p50':>6s} {'p95':>6s} {'p99':>6s} "
        f"{'worst':>6s} {'>' + format(args.budget_ms, 'g') + 'ms':>8s} {'>1/fps':>6s} {'drops':>5s} "
        f"{'train s':>8s}"
    )
    for name, row in rows.items():
        train = "" if row["train_s"] is None else f"{row['train_s']:.1f}"
        print(
            f"{name:36s} {row['p50_ms']:6.1f} {row['p95_ms']:6.1f} {row['p99_ms']:6.1f} "
            f"{row['worst_ms']:6.1f} {row['overruns']:8d} {row[late]:6d} {row['dropped']:5d} {train:>8s}"
        )
    print(
        f"{'fine-tune alone (no line)':36s} {'':6s} {'':6s} {'':6s} {'':6s} {'':8s} {'':6s} {'':5s} "
        f"{train_alone:8.1f}"
    )
    print(f"wrote {FINETUNE_RESULTS}")


# -- the line with a shadow candidate --------------------------------------------------------------


def shadow_line(
    engine: InferenceEngine,
    candidate: InferenceEngine | None,
    station,  # data.station.Station
    work: Path,
    frames: int,
    fps: float,
    budget_ms: float,
) -> dict:
    """The paced line for ``frames`` frames, with ``candidate`` in shadow (or none)."""
    from inspector.line.shadow import ShadowRunner

    work.mkdir(parents=True, exist_ok=True)
    runner = None if candidate is None else ShadowRunner(candidate, "unmerged twin")
    with Ledger(f"sqlite:///{work / 'inspector.db'}") as ledger:
        config = PipelineConfig(drop_policy="oldest", max_frames=frames, cycle_budget_ms=budget_ms)
        pipeline = bench_pipeline(engine, station, ledger, work, fps, config, shadow=runner)
        snap = pipeline.run()
    with sqlite3.connect(work / "inspector.db") as db:
        stored = db.execute("SELECT count(*) FROM shadow_results").fetchone()[0]
    row = {
        **budget_row(work, snap, fps, budget_ms),
        "stages_ms": snap.latency_ms,
        "cpu_s": round(snap.cpu_s, 2),
        "shadow": None,
    }
    if runner is not None:
        shadow = runner.snapshot()
        row["shadow"] = {**shadow.to_json(), "disagreements_stored": stored}
    return row


def shadow_main(args: argparse.Namespace) -> None:
    station = load_elpv(0)
    models = engines()
    deployed, twin = models["LTM (demo)"], models["unmerged twin"]
    names = ("no shadow", "shadow: unmerged twin")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for name, candidate in zip(names, (None, twin), strict=True):
                row = shadow_line(
                    deployed,
                    candidate,
                    station,
                    Path(tmp) / f"{round_index}-{name[:6]}",
                    args.frames,
                    args.fps,
                    args.budget_ms,
                )
                runs[name].append(row)
                shadow = row["shadow"] or {}
                print(
                    f"round {round_index + 1} {name:22s} p50 {row['p50_ms']:6.1f}  p95 {row['p95_ms']:6.1f}  "
                    f"p99 {row['p99_ms']:6.1f}  overruns {row['overruns']:3d}  drops {row['dropped']}  "
                    f"shadow judged {shadow.get('judged', '–')} shed {shadow.get('shed', '–')}",
                    flush=True,
                )
    summary = {name: sorted(rows, key=lambda r: r["p95_ms"])[len(rows) // 2] for name, rows in runs.items()}
    report_data = {
        "command": f"python -m benchmarks.line_speed --shadow --frames {args.frames} --fps {args.fps:g} "
        f"--budget-ms {args.budget_ms:g} --rounds {args.rounds}",
        "machine": machine(load_before),
        "inference_threads": default_inference_threads(),
        "summary_median_round": summary,
        "runs": runs,
    }
    SHADOW_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    SHADOW_RESULTS.write_text(json.dumps(report_data, indent=2) + "\n")
    late = f"over_{1000.0 / args.fps:g}_ms"
    print(
        f"\n{'line (' + format(args.fps, 'g') + ' fps), median round':34s} "
        f"{'p50':>6s} {'p95':>6s} {'p99':>6s} "
        f"{'worst':>6s} {'>' + format(args.budget_ms, 'g') + 'ms':>7s} {'>1/fps':>6s} {'drops':>5s} "
        f"{'judged':>7s} {'shed':>5s}"
    )
    for name, row in summary.items():
        shadow = row["shadow"] or {}
        print(
            f"{name:34s} {row['p50_ms']:6.1f} {row['p95_ms']:6.1f} {row['p99_ms']:6.1f} "
            f"{row['worst_ms']:6.1f} "
            f"{row['overruns']:7d} {row[late]:6d} {row['dropped']:5d} {shadow.get('judged', ''):>7} "
            f"{shadow.get('shed', ''):>5}"
        )
    print(f"wrote {SHADOW_RESULTS}")
