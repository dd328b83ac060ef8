"""Drift watch: what the input statistics cost per frame, and how far a station change moves them.
Usage:

    python -m benchmarks.drift_stats [--repeats 300] [--frames 400] [--json FILE]

* cost: ``data.image_stats.image_statistics`` (gray, downscale to 128 px, mean, std, Laplacian
  variance) on one core, median and p95 over ``--repeats`` calls after warm-up, for frame sizes a
  line sees: the ELPV cell (300x300 gray), a 1.3 MP gray area camera, a 1080p colour camera, a
  5 MP gray camera.
* shift: the ELPV test split (the simulated demo station) as trained, and under each station
  profile (``lighting``, ``angle``, ``optics``, severity 3, as ``inspector demo --drift-after``
  and the Live screen switch on): the mean of each statistic over ``--frames`` frames, in standard
  deviations of the as-trained frames — what ``drift_input_k`` is compared with.

* line (``--line``): the demo line as in ``benchmarks.line_speed`` (simulated ELPV station paced at
  ``--fps``, demo model, SQLite ledger, no image archive), ``--line-frames`` frames per round,
  three ways, interleaved over ``--rounds``: without the drift watch's per-frame work, with it
  (the default), and with golden parts checked back to back (16 ELPV cells, a new check the moment
  one ends: the worst case of ``golden_every_min``). Frame→verdict p50/p95/p99/max per way, and
  what one golden part costs the inference thread.

Nothing is asserted; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import cv2
import numpy as np

from data.augment import PRESETS, apply, build_augmentation
from data.image_stats import STATISTICS, image_statistics, reference_statistics
from data.images import read_image, to_uint8
from data.station import load_station

SIZES = {
    "ELPV cell 300x300 gray": (300, 300),
    "1.3 MP gray 1280x1024": (1024, 1280),
    "1080p colour 1920x1080": (1080, 1920, 3),
    "5 MP gray 2448x2048": (2048, 2448),
}


def cost(repeats: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    rows = {}
    for name, shape in SIZES.items():
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        for _ in range(20):
            image_statistics(frame)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            image_statistics(frame)
            times.append(1000 * (time.perf_counter() - start))
        rows[name] = {
            "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
        }
        print(f"{name:28s} p50 {rows[name]['p50_ms']:.3f} ms  p95 {rows[name]['p95_ms']:.3f} ms", flush=True)
    return rows


def shift(frames: int, window: int = 200) -> dict[str, dict[str, float]]:
    """Each profile's mean shift in as-trained std; and, as the demo watches (no training reference),
    the largest drift of a rolling mean of ``window`` as-trained frames from the run's first
    ``window`` frames: the noise an alarm limit must stay clear of."""
    samples = load_station("elpv").split("test")
    order = np.random.default_rng(0).permutation(len(samples))
    images = [to_uint8(read_image(samples[order[i % len(order)]].path)) for i in range(frames)]
    side = 112  # min(128, the demo model's input size)
    values = np.array([image_statistics(image, side) for image in images])
    reference = reference_statistics(images[:window], side, "run")
    kernel = np.ones(window) / window
    rows = {}
    noise = {}
    for i, n in enumerate(STATISTICS):
        rolling = np.convolve(values[window:, i], kernel, mode="valid")
        noise[n] = round(float(np.abs(rolling - reference.mean[n]).max() / reference.std[n]), 2)
    rows["as trained: largest rolling-mean drift"] = noise
    print(
        f"run reference (first {window} frames): "
        + ", ".join(f"{n} {reference.mean[n]:.1f} ± {reference.std[n]:.1f}" for n in STATISTICS)
    )
    print(
        f"as trained, frames {window + 1}-{frames}, largest rolling-mean drift: "
        + ", ".join(f"{n} {s:.2f} σ" for n, s in noise.items())
    )
    for profile in PRESETS:
        transform = build_augmentation([profile], 3, seed=0)
        shifted = np.array([image_statistics(apply(transform, image), side) for image in images[:window]])
        sigmas = {
            n: round(float((shifted[:, i].mean() - reference.mean[n]) / reference.std[n]), 2)
            for i, n in enumerate(STATISTICS)
        }
        rows[f"{profile} (severity 3)"] = sigmas
        print(
            f"{profile:9s} severity 3, {window} frames: "
            + ", ".join(f"{n} {s:+.2f} σ" for n, s in sigmas.items()),
            flush=True,
        )
    return rows


def _golden_set(folder):
    import shutil

    test = load_station("elpv").split("test")
    for label in ("ok", "defect"):
        (folder / label).mkdir(parents=True)
        for sample in [s for s in test if s.label == label][:8]:
            shutil.copy(sample.path, folder / label / sample.path.name)
    return folder


def line(frames: int, fps: float, rounds: int) -> dict:
    import tempfile
    from pathlib import Path

    from inspector.line.demo import demo_model_path
    from inspector.line.drift import DriftConfig, DriftWatch
    from inspector.line.golden import judge, load_golden
    from inspector.line.inference import InferenceEngine
    from inspector.line.pipeline import Pipeline, PipelineConfig
    from inspector.line.sources.simulated import SimulatedStation
    from inspector.store import Ledger

    station = load_station("elpv")
    engine = InferenceEngine.load(demo_model_path())
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    golden = _golden_set(tmp / "golden")
    parts = load_golden(golden)
    engine.warm_up()
    times = []
    for _ in range(3):
        for part in parts:
            start = time.perf_counter()
            judge(engine, part)
            times.append(1000 * (time.perf_counter() - start))
    per_part = {"p50_ms": round(float(np.percentile(times, 50)), 2), "max_ms": round(float(max(times)), 2)}
    print(
        f"one golden part on the inference thread: p50 {per_part['p50_ms']} ms, max {per_part['max_ms']} ms"
    )
    ways = {
        "no drift watch work": None,
        "drift watch (statistics on the archive thread)": DriftConfig(),
        "golden parts back to back": DriftConfig(golden_every_min=1e-6, golden_dir=golden, home=tmp),
    }
    results: dict[str, list] = {name: [] for name in ways}
    for round_ in range(rounds):
        for name, config in ways.items():
            with Ledger(f"sqlite:///{tmp / f'{round_}-{len(results[name])}-{abs(hash(name))}.db'}") as ledger:
                watch = DriftWatch(engine, config or DriftConfig())
                pipeline = Pipeline(
                    SimulatedStation(station, fps=fps, seed=round_),
                    engine,
                    ledger,
                    config=PipelineConfig(max_frames=frames),
                    watch=watch,
                )
                if config is None:
                    pipeline.on_archived.clear()
                    pipeline.on_idle.clear()
                pipeline.run()
                snap = pipeline.stats.snapshot()
                total = snap.latency_ms["total"]
                drift = watch.snapshot()
                checks = sum(1 for e in pipeline.events if e.kind == "drift_golden")
                row = {
                    **total,
                    "max": round(snap.worst_cycle_ms, 1),
                    "drops": snap.dropped,
                    "golden_checks": checks,
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                }
                if drift.stats_ms is not None:
                    row["stats_ms_per_frame"] = round(drift.stats_ms, 3)
                results[name].append(row)
                print(f"round {round_ + 1} {name:48s} {row}", flush=True)
    return {"golden_part": per_part, "rounds": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--json", default=None)
    parser.add_argument("--line", action="store_true", help="Also the demo line with and without the watch.")
    parser.add_argument("--line-frames", type=int, default=300)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{platform.processor() or platform.machine()}, OpenCV {cv2.__version__}, one thread")
    result = {"cost": cost(args.repeats), "shift_sigmas": shift(args.frames, args.window)}
    if args.line:
        result["line"] = line(args.line_frames, args.fps, args.rounds)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
