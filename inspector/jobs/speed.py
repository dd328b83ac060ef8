"""Speed jobs, run below the line but never paused by it (a pause mid-call would be timed as
latency): the wizard's before/after and the Models screen's *Speed on this PC*."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.registry import Registry
from models.bundle import load_bundle
from models.flops import count_gmacs, count_params

LATENCY_RUNS = 30


def measure_speed(
    base: Path, bundle: Path, runs: int = LATENCY_RUNS, *, task: Any
) -> dict[str, dict[str, Any]]:
    """GMACs, parameters and batch-1 latency of the base and the new model, in one process, each
    on the backend the line would run it on (``backend``: ONNX Runtime where it exports), so the
    wizard's speed is the line's, not PyTorch eager's.

    The two models are timed in alternating rounds, so a busy moment of the machine (the line,
    another job) falls on both alike and the ratio stays honest (DESIGN §6).
    """
    # Here, not at the top: the line's timing harness is not loaded by the app at start, and the
    # app imports this module only to name the job.
    from inspector.line.line_timing import backend_name, line_engines, time_per_part

    rounds = 3
    bundles = {"before": load_bundle(base), "after": load_bundle(bundle)}
    figures: dict[str, dict[str, Any]] = {}
    for key, loaded in bundles.items():
        spec = loaded.net.spec
        figures[key] = {
            "gmacs": count_gmacs(loaded.net, spec.img_size, spec.in_chans),
            "params": count_params(loaded.net),
        }
    with line_engines(bundles) as engines:
        timed = time_per_part(engines, rounds, max(1, runs // rounds), warmup=1)
        for key, engine in engines.items():
            figures[key].update(p50=timed[key].p50_ms, p95=timed[key].p95_ms, backend=backend_name(engine))
    return figures


def bench_version(home: Path, version_id: str, threads: int = 1, *, task: Any) -> dict:
    """The bench table of one registered version (``inspector models bench``'s, as a job).

    The int8 graphs are built and judged on the station the version was trained on where it can
    be read; otherwise their rows are missing and ``skipped`` says why, as on the CLI.
    """
    # Here, not at the top: the bench and the OpenVINO probe are not loaded by the app at start.
    from inspector.line.bench import bench
    from models.openvino_backend import unavailable

    path = Registry(home).checked_path(version_id)  # a version changed outside the product: refused
    backends = ("torch", "onnx", "int8") + (() if unavailable() else ("openvino", "openvino-int8"))
    result = bench(path, backends, threads, home / "cache" / "onnx", rounds=3, runs=10, log=task.report)
    return {
        **result.to_json(),
        "model": version_id,
        "gates": {name: gate.reason for name, gate in result.gates.items()},
        "skipped": dict(result.skipped),
    }
