"""Live-line speed: the demo LTM model against its unmerged twin, logging and archiving on.

Two measurements per model, interleaved over rounds so both see the same machine load:

- **sustained**: the simulated ELPV station unpaced, the queue in ``block`` mode so every frame
  is judged — the most parts per second the whole pipeline (capture, inference, archive, ledger)
  keeps up with;
- **paced**: the station at ``--fps`` (default 25) with the line's default drop-oldest queue —
  frame-to-verdict p50/p95/p99, drops and overruns against the 1/fps cycle budget.

The unmerged twin is the same network and weights with every merge switched off, so the ratio
is what merging buys on this machine.

    python -m benchmarks.line_speed [--frames 600] [--fps 25] [--rounds 2]

``--model BUNDLE --data STATION`` measures another model on its own station's test split (issue 24:
a magnetic_tile model at its letterboxed 320 px) and writes ``line_speed_<bundle name>.json``.

``--finetune`` measures instead what a fine-tune started from the wizard costs the line on the
same PC (the demo model at ``--fps``, logging and archiving on), with the app's own code path:
``inspector.jobs.finetune.run_finetune`` in a
:class:`inspector.jobs.runner.BackgroundJob` that watches the line's
overruns. Rows: the line alone; the line with that fine-tune beside it; the line with the same
fine-tune in a thread of the line's own process (how the wizard trained before); and the training
time alone, so the table also says how much longer training takes beside a line.

    python -m benchmarks.line_speed --finetune [--frames 300] [--fps 25] [--budget-ms 50] [--epochs 2]

``--shadow`` measures what shadow mode costs the line (issue 16): the demo model deployed at
``--fps``, logging and archiving on, with and without its unmerged twin judging every frame in
shadow (:mod:`inspector.line.shadow`: own thread, queue of 2, shed first), interleaved over rounds;
frame→verdict percentiles over every frame from the ledger, overruns against ``--budget-ms``, and
the shadow's judged / shed counts.

    python -m benchmarks.line_speed --shadow [--frames 300] [--fps 25] [--budget-ms 50] [--rounds 2]

``--live`` measures the line as the app's Live screen runs it, the merge-map overlay on (a map for
every frame): the demo model on PyTorch (what the screen ran before the ONNX graph gave the map)
against the same model under ``--backend auto`` (what it runs now, as ``inspector run`` does),
interleaved over rounds, sustained and paced as above; ``line_speed_live.json``.

    python -m benchmarks.line_speed --live [--frames 600] [--fps 25] [--rounds 3]

``--backends`` runs the demo line (overlay off) under each runtime named, int8 ones behind their
accuracy gate on ELPV (refused: the line runs fp32, and the row says so); ``line_speed_backends.json``.

    python -m benchmarks.line_speed --backends onnx int8 openvino openvino-int8 [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from data.elpv import load_elpv
from data.station import load_station
from inspector.line.archive import ArchivePolicy, ImageArchive
from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import Pipeline, PipelineConfig, RunInfo, default_inference_threads
from inspector.line.sources.simulated import SimulatedStation
from inspector.store import Ledger
from models.bundle import Bundle, load_bundle
from models.flops import count_gmacs

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


def measure(
    engine: InferenceEngine, station, work: Path, frames: int, fps: float | None, track_maps: bool = False
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    with Ledger(f"sqlite:///{work / 'inspector.db'}") as ledger:
        pipeline = Pipeline(
            SimulatedStation(station, fps=fps, loop=True),
            engine,
            ledger,
            ImageArchive(work / "archive", ArchivePolicy(ok_every=50)),
            PipelineConfig(
                drop_policy="block" if fps is None else "oldest", max_frames=frames, track_maps=track_maps
            ),
            RunInfo("bench"),
        )
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
        pipeline = Pipeline(
            SimulatedStation(station, fps=fps, loop=True),
            engine,
            ledger,
            ImageArchive(work / "archive", ArchivePolicy(ok_every=50)),
            PipelineConfig(drop_policy="oldest", cycle_budget_ms=budget_ms),
            RunInfo("bench"),
        )
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
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
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
        pipeline = Pipeline(
            SimulatedStation(station, fps=fps, loop=True),
            engine,
            ledger,
            ImageArchive(work / "archive", ArchivePolicy(ok_every=50)),
            PipelineConfig(drop_policy="oldest", max_frames=frames, cycle_budget_ms=budget_ms),
            RunInfo("bench"),
            shadow=runner,
        )
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
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
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


def live_main(args: argparse.Namespace) -> None:
    """The Live screen's line (overlay on) on PyTorch, as before, and on ``auto``, as now."""
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "Live on torch (before)": InferenceEngine(load_bundle(demo_model_path()), "torch"),
            "Live on auto (now)": InferenceEngine(load_bundle(demo_model_path()), "auto", Path(tmp) / "onnx"),
        }
        load_before = os.getloadavg()
        runs = interleaved_lines(models, load_elpv(0), args, Path(tmp), track_maps=True)
    summary = line_summary(models, runs)
    before, now = summary.values()
    ratios = {
        "sustained_fps": round(now["sustained"]["fps"] / before["sustained"]["fps"], 3),
        "paced_p95": round(now["paced"]["p95_ms"] / before["paced"]["p95_ms"], 3),
        "sustained_fps_per_round": [
            round(n["fps"] / b["fps"], 3)
            for b, n in zip(*(modes["sustained"] for modes in runs.values()), strict=True)
        ],
    }
    report = {
        "command": f"python -m benchmarks.line_speed --live --frames {args.frames} --fps {args.fps:g} "
        f"--rounds {args.rounds}",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "inference_threads": default_inference_threads(),
        "summary": summary,
        "ratios_now_over_before": ratios,
        "runs": runs,
    }
    LIVE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    LIVE_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'Live line, overlay on':24s} {'backend':>7s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s}")
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(f"{name:24s} {item['backend']:>7s} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f}")
    print(f"now / before: sustained fps x{ratios['sustained_fps']}, paced p95 x{ratios['paced_p95']}")
    print(f"wrote {LIVE_RESULTS}")


def backends_main(args: argparse.Namespace) -> None:
    """The demo line (overlay off) under each asked-for backend; int8 ones only where gated."""
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for backend in args.backends:
            engine = InferenceEngine(
                load_bundle(demo_model_path()), backend, Path(tmp) / "onnx", data="elpv", log=print
            )
            models[backend if engine.backend == backend else f"{backend} (ran {engine.backend})"] = engine
            if engine.fallback:
                print(f"{backend}: {engine.fallback}", flush=True)
        load_before = os.getloadavg()
        runs = interleaved_lines(models, load_elpv(0), args, Path(tmp))
    summary = line_summary(models, runs)
    first = next(iter(summary.values()))
    ratios = {
        name: {
            "sustained_fps": round(item["sustained"]["fps"] / first["sustained"]["fps"], 3),
            "paced_p95": round(item["paced"]["p95_ms"] / first["paced"]["p95_ms"], 3),
        }
        for name, item in summary.items()
    }
    report = {
        "command": f"python -m benchmarks.line_speed --backends {' '.join(args.backends)} "
        f"--frames {args.frames} --fps {args.fps:g} --rounds {args.rounds}",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "inference_threads": default_inference_threads(),
        "gates": {name: e.gate.to_json() for name, e in models.items() if e.gate is not None},
        "summary": summary,
        "ratios_to_first": ratios,
        "runs": runs,
    }
    BACKENDS_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'demo line, overlay off':28s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s} {'x fps':>6s}")
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(
            f"{name:28s} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f} "
            f"{ratios[name]['sustained_fps']:6.2f}"
        )
    print(f"wrote {BACKENDS_RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--finetune", action="store_true", help="The line beside a wizard fine-tune.")
    parser.add_argument(
        "--shadow", action="store_true", help="The line with and without a shadow candidate (issue 16)."
    )
    parser.add_argument(
        "--live", action="store_true", help="The Live screen's line (overlay on): PyTorch before, auto now."
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        help="The demo line under each backend (torch onnx int8 openvino openvino-int8), int8 gated.",
    )
    parser.add_argument("--epochs", type=int, default=2, help="--finetune: epochs of the fine-tune.")
    parser.add_argument(
        "--budget-ms", type=float, default=BUDGET_MS, help="--finetune / --shadow: the line's cycle budget."
    )
    parser.add_argument(
        "--train-per-class", type=int, default=48, help="--finetune: training images per class."
    )
    parser.add_argument("--model", type=Path, help="A bundle other than the demo model (with --data).")
    parser.add_argument("--data", help="The station --model is judged on (its test split is replayed).")
    args = parser.parse_args()
    if args.finetune:
        finetune_main(args)
        return
    if args.shadow:
        shadow_main(args)
        return
    if args.live:
        live_main(args)
        return
    if args.backends:
        backends_main(args)
        return
    if (args.model is None) != (args.data is None):
        parser.error("--model and --data go together")
    station = load_elpv(0) if args.data is None else load_station(args.data, 0)
    models = engines(args.model)
    results = RESULTS if args.model is None else RESULTS.with_name(f"line_speed_{args.model.name}.json")
    gmacs = {
        name: count_gmacs(e.bundle.net, e.meta.backbone.img_size, e.meta.backbone.in_chans)
        for name, e in models.items()
    }
    runs: dict[str, dict[str, list[dict]]] = {name: {"sustained": [], "paced": []} for name in models}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for name, engine in models.items():
                for mode, fps in (("sustained", None), ("paced", args.fps)):
                    result = measure(
                        engine,
                        station,
                        Path(tmp) / f"{round_index}-{len(runs[name][mode])}-{mode}-{name[:3]}",
                        args.frames,
                        fps,
                    )
                    runs[name][mode].append(result)
                    print(
                        f"round {round_index + 1} {name:14s} {mode:9s} fps {result['fps']:6.1f}  "
                        f"p95 {result['p95_ms']:6.1f} ms  drops {result['dropped']}  "
                        f"overruns {result['overruns']}",
                        flush=True,
                    )
    summary = {}
    for name, modes in runs.items():
        best = max(modes["sustained"], key=lambda r: r["fps"])
        paced = sorted(modes["paced"], key=lambda r: r["p95_ms"])[len(modes["paced"]) // 2]
        summary[name] = {"gmacs": round(gmacs[name], 4), "sustained": best, "paced": paced}
    ltm, twin = summary["LTM (demo)"], summary["unmerged twin"]
    ratios = {
        "sustained_fps": round(ltm["sustained"]["fps"] / twin["sustained"]["fps"], 3),
        "paced_p95": round(ltm["paced"]["p95_ms"] / twin["paced"]["p95_ms"], 3),
    }
    report = {
        "command": "python -m benchmarks.line_speed "
        f"--frames {args.frames} --fps {args.fps:g} --rounds {args.rounds}"
        + (f" --model {args.model} --data {args.data}" if args.model else ""),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "inference_threads": default_inference_threads(),
        "summary": summary,
        "ratios_ltm_over_unmerged": ratios,
        "runs": runs,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{'model':14s} {'GMACs':>6s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s} {'p99':>7s} "
        f"{'drops':>5s} {'overruns':>8s}"
    )
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(
            f"{name:14s} {item['gmacs']:6.3f} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f} "
            f"{p['p99_ms']:7.1f} {p['dropped']:5d} {p['overruns']:8d}"
        )
    print(f"LTM / unmerged: sustained fps x{ratios['sustained_fps']}, paced p95 x{ratios['paced_p95']}")
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
