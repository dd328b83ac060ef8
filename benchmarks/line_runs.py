"""What every line-speed measurement shares (:mod:`benchmarks.line_speed`, :mod:`benchmarks.line_beside`):
the model and its unmerged twin, one line run on the simulated station with logging and archiving on,
the per-frame latencies read back from its ledger, and rounds interleaved so every model sees the
same machine load."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sqlite3
import time
from pathlib import Path

import numpy as np

from inspector.line.archive import ArchivePolicy, ImageArchive
from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import Pipeline, PipelineConfig, RunInfo
from inspector.line.sources.simulated import SimulatedStation
from inspector.store import Ledger
from models.bundle import Bundle, load_bundle

RESULTS = Path(__file__).resolve().parent / "results" / "line_speed.json"
FINETUNE_RESULTS = RESULTS.with_name("line_speed_finetune.json")
SHADOW_RESULTS = RESULTS.with_name("line_speed_shadow.json")
LIVE_RESULTS = RESULTS.with_name("line_speed_live.json")
BACKENDS_RESULTS = RESULTS.with_name("line_speed_backends.json")
BUDGET_MS = 50.0  # --finetune: the cycle budget of the station in issue 17 (Settings → cycle budget)


def engines(model: Path | None = None) -> dict[str, InferenceEngine]:
    """The model (the demo model unless given) and its unmerged twin: same weights, merges off."""
    path = model or demo_model_path()
    ltm = load_bundle(path)
    twin = load_bundle(path)
    twin.net.set_schedule([None] * len(twin.net.schedule()))
    meta = dataclasses.replace(twin.meta, schedule=twin.net.schedule())
    return {
        "LTM (demo)": InferenceEngine(ltm),
        "unmerged twin": InferenceEngine(Bundle(twin.net, meta, None)),
    }


def bench_pipeline(
    engine: InferenceEngine,
    station,
    ledger: Ledger,
    work: Path,
    fps: float | None,
    config: PipelineConfig,
    **kw,
) -> Pipeline:
    """The simulated station looping at ``fps`` (None: unpaced) through ``engine`` into ``ledger``,
    archiving as a line does (every NG, one OK in 50): every line-speed measurement's line."""
    return Pipeline(
        SimulatedStation(station, fps=fps, loop=True),
        engine,
        ledger,
        ImageArchive(work / "archive", ArchivePolicy(ok_every=50)),
        config,
        RunInfo("bench"),
        **kw,
    )


def machine(load_before: tuple[float, float, float] | None = None) -> dict:
    """What a result file says about the machine it was measured on (load before and after)."""
    record: dict = {"cpus": os.cpu_count(), "platform": platform.platform()}
    if load_before is not None:
        record.update(load_before=load_before, load_after=os.getloadavg())
    return record


def measure(
    engine: InferenceEngine, station, work: Path, frames: int, fps: float | None, track_maps: bool = False
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    with Ledger(f"sqlite:///{work / 'inspector.db'}") as ledger:
        config = PipelineConfig(
            drop_policy="block" if fps is None else "oldest", max_frames=frames, track_maps=track_maps
        )
        pipeline = bench_pipeline(engine, station, ledger, work, fps, config)
        started = time.perf_counter()
        snap = pipeline.run()
        seconds = time.perf_counter() - started
    total = snap.latency_ms.get("total", {})
    return {
        "frames": snap.entered,
        "written": snap.written,
        "dropped": snap.dropped,
        "unaccounted": snap.entered - snap.written - snap.dropped,
        "fps": round(snap.written / snap.elapsed_s, 2),
        "seconds_incl_start": round(seconds, 2),
        "overruns": snap.overruns,
        "p50_ms": total.get("p50"),
        "p95_ms": total.get("p95"),
        "p99_ms": total.get("p99"),
        "stages_ms": snap.latency_ms,
    }


def budget_row(work: Path, snap, fps: float, budget_ms: float) -> dict:
    """Frame-to-verdict latency of *every* frame of a paced run, read back from its ledger (the live
    stats keep the last 2,000 only), against the frame period and the cycle budget."""
    with sqlite3.connect(work / "inspector.db") as db:
        totals = np.array([row[0] for row in db.execute("SELECT latency_total_ms FROM results")])
    p50, p95, p99 = (round(float(v), 1) for v in np.percentile(totals, [50, 95, 99]))
    period = 1000.0 / fps
    return {
        "frames": snap.entered,
        "written": snap.written,
        "dropped": snap.dropped,
        "unaccounted": snap.entered - snap.written - snap.dropped,
        "budget_ms": budget_ms,
        "overruns": snap.overruns,
        f"over_{period:g}_ms": int((totals > period).sum()),
        "worst_ms": round(float(totals.max()), 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def interleaved_lines(
    models: dict[str, InferenceEngine], station, args: argparse.Namespace, tmp: Path, track_maps: bool = False
) -> dict[str, dict[str, list[dict]]]:
    """Each model's line, sustained then paced, the models taking turns round by round."""
    runs: dict[str, dict[str, list[dict]]] = {name: {"sustained": [], "paced": []} for name in models}
    for round_index in range(args.rounds):
        for index, (name, engine) in enumerate(models.items()):
            for mode, fps in (("sustained", None), ("paced", args.fps)):
                work = tmp / f"{round_index}-{mode}-{index}"
                result = measure(engine, station, work, args.frames, fps, track_maps=track_maps)
                runs[name][mode].append(result)
                print(
                    f"round {round_index + 1} {name:22s} {mode:9s} fps {result['fps']:6.1f}  "
                    f"p95 {result['p95_ms']:6.1f} ms  drops {result['dropped']}",
                    flush=True,
                )
    return runs


def line_summary(models: dict[str, InferenceEngine], runs: dict[str, dict[str, list[dict]]]) -> dict:
    """Per model: its backend, the best sustained round and the median paced round (by p95)."""
    summary = {}
    for name, modes in runs.items():
        best = max(modes["sustained"], key=lambda r: r["fps"])
        paced = sorted(modes["paced"], key=lambda r: r["p95_ms"])[len(modes["paced"]) // 2]
        summary[name] = {"backend": models[name].backend, "sustained": best, "paced": paced}
    return summary
