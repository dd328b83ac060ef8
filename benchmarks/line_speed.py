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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from data.elpv import load_elpv
from inspector.archive import ArchivePolicy, ImageArchive
from inspector.demo import demo_model_path
from inspector.inference import InferenceEngine
from inspector.pipeline import Pipeline, PipelineConfig, RunInfo, default_inference_threads
from inspector.sources.simulated import SimulatedStation
from inspector.store import Ledger
from models.bundle import Bundle, load_bundle
from models.flops import count_gmacs

RESULTS = Path(__file__).resolve().parent / "results" / "line_speed.json"


def engines() -> dict[str, InferenceEngine]:
    ltm = load_bundle(demo_model_path())
    twin = load_bundle(demo_model_path())
    twin.net.set_schedule([None] * len(twin.net.schedule()))
    meta = dataclasses.replace(twin.meta, schedule=twin.net.schedule())
    return {
        "LTM (demo)": InferenceEngine(ltm),
        "unmerged twin": InferenceEngine(Bundle(twin.net, meta, None)),
    }


def measure(engine: InferenceEngine, station, work: Path, frames: int, fps: float | None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    with Ledger(f"sqlite:///{work / 'inspector.db'}") as ledger:
        pipeline = Pipeline(
            SimulatedStation(station, fps=fps, loop=True),
            engine,
            ledger,
            ImageArchive(work / "archive", ArchivePolicy(ok_every=50)),
            PipelineConfig(drop_policy="block" if fps is None else "oldest", max_frames=frames),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    station = load_elpv(0)
    models = engines()
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
        f"--frames {args.frames} --fps {args.fps:g} --rounds {args.rounds}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "inference_threads": default_inference_threads(),
        "summary": summary,
        "ratios_ltm_over_unmerged": ratios,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
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
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
