"""Cost per part in the terms a plant manager reads: CPU-ms per part, parts/s headroom, and what
LTM saves against the same model with its merges off — measured on this PC, not assumed.

The line records its process CPU time per run (``cpu_s`` in the run's stats). The twin is timed
here, now: the model that judged most parts in the window and its unmerged twin, interleaved
round by round on the same frames so both see the same machine load.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from inspector.errors import InspectorError
from inspector.store.summary import LedgerSummary

TWIN_ROUNDS = 20
FRAMES_PER_ROUND = 4


@dataclass
class TwinTiming:
    model: str
    backend: str
    rounds: int
    cpu_ms: float  # process CPU per part (batch 1), every thread counted
    wall_ms: float
    twin_cpu_ms: float
    twin_wall_ms: float

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_ms / self.twin_cpu_ms


@dataclass
class PartCost:
    cpu_ms_per_part: float | None  # the line process, per judged part, over runs that recorded it
    runs_measured: int
    rate_parts_s: float | None  # parts judged per second while the line ran
    infer_p50_ms: float | None
    cores: int
    twin: TwinTiming | None = None
    twin_note: str = ""  # why there is no twin measurement

    def capacity(self, cpu_ms: float | None, infer_ms: float | None) -> float | None:
        """Parts/s this PC could judge: bounded by the serial inference step and by all cores' CPU."""
        limits = [1000.0 / infer_ms] if infer_ms else []
        if cpu_ms:
            limits.append(self.cores * 1000.0 / cpu_ms)
        return min(limits) if limits else None

    def rows(self) -> list[tuple[str, float | None, float | None, float | None]]:
        """(model, CPU-ms per part, capacity parts/s, headroom ×) for this model and, if measured,
        the unmerged twin in the same terms (its inference difference added to the line's cost)."""
        capacity = self.capacity(self.cpu_ms_per_part, self.infer_p50_ms)
        rows = [("this model (LTM)", self.cpu_ms_per_part, capacity, self._headroom(capacity))]
        if self.twin and self.cpu_ms_per_part is not None:
            cpu = self.cpu_ms_per_part + (self.twin.twin_cpu_ms - self.twin.cpu_ms)
            infer = (
                self.infer_p50_ms * self.twin.twin_wall_ms / self.twin.wall_ms if self.infer_p50_ms else None
            )
            twin_capacity = self.capacity(cpu, infer)
            rows.append(("unmerged twin", cpu, twin_capacity, self._headroom(twin_capacity)))
        return rows

    def _headroom(self, capacity: float | None) -> float | None:
        return capacity / self.rate_parts_s if capacity and self.rate_parts_s else None


def part_cost(summary: LedgerSummary, since: datetime | None, until: datetime | None) -> PartCost:
    """CPU per part from the runs' own accounting; the rate over the time the line ran in the window."""
    cpu_s = parts = 0.0
    measured = 0
    running_s = 0.0
    now = datetime.now(timezone.utc)
    for run in summary.runs:
        stats = run.get("stats") or {}
        judged = sum((stats.get("verdicts") or {}).values())
        if stats.get("cpu_s") and judged:
            cpu_s += float(stats["cpu_s"])
            parts += judged
            measured += 1
        start = max(run["started_at"], since) if since else run["started_at"]
        end = run["stopped_at"] or now
        end = min(end, until) if until else end
        running_s += max((end - start).total_seconds(), 0.0)
    infer = summary.latency_ms.get("infer")
    return PartCost(
        cpu_ms_per_part=1000.0 * cpu_s / parts if parts else None,
        runs_measured=measured,
        rate_parts_s=summary.parts / running_s if running_s > 0 and summary.parts else None,
        infer_p50_ms=float(np.median(infer)) if infer is not None and len(infer) else None,
        cores=os.cpu_count() or 1,
    )


def find_bundle(sha256: str, home: Path) -> Path | None:
    """The bundle whose weights have this checksum: a registry version, or the bundled demo model."""
    from inspector.line.demo import DEMO_MODEL_DIR
    from inspector.registry import Registry
    from models.bundle import read_meta
    from models.errors import ModelError

    candidates = [DEMO_MODEL_DIR]
    try:
        registry = Registry(home)
        candidates += [registry.path_of(version.id) for version in registry.versions()]
    except InspectorError:
        pass  # no registry yet, or a broken index: the demo model may still match
    for path in candidates:
        try:
            if read_meta(path)[1] == sha256:
                return path
        except ModelError:
            continue
    return None


def time_twin(
    bundle_path: Path,
    backend: str = "auto",
    rounds: int = TWIN_ROUNDS,
    tick: Callable[[], None] | None = None,
    home: Path | None = None,
) -> TwinTiming:
    """Batch-1 CPU and wall time per part of a bundle and of its unmerged twin, interleaved.

    The bundle runs as the line runs it: ``auto`` from the line's own ONNX cache (``home``'s, or a
    registered version's home: the export and backend pick the line uses), so the cost per part is priced
    on the runtime that judges the parts, not on PyTorch. The twin runs on the same backend where
    it can (an int8 graph needs its own gate: the twin then runs ``auto``, and the label says so).
    """
    from inspector.line.inference import InferenceEngine
    from inspector.line.line_timing import backend_name, line_cache
    from models.bundle import Bundle, load_bundle
    from models.latency import interleaved_rounds

    merged = load_bundle(bundle_path)
    twin = load_bundle(bundle_path)
    twin.net.set_schedule([None] * len(twin.net.schedule()))
    twin_meta = dataclasses.replace(twin.meta, schedule=twin.net.schedule())
    with tempfile.TemporaryDirectory(prefix="inspector-twin-") as cache:
        merged_engine = InferenceEngine(
            merged, backend, line_cache(bundle_path, home) or Path(cache) / "merged"
        )
        twin_bundle = Bundle(twin.net, twin_meta, None)
        try:
            twin_engine = InferenceEngine(twin_bundle, merged_engine.backend, Path(cache) / "twin")
        except InspectorError:
            twin_engine = InferenceEngine(twin_bundle, "auto", Path(cache) / "twin")
        engines = {"merged": merged_engine, "twin": twin_engine}
        size = merged.meta.preprocessing.size
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(FRAMES_PER_ROUND)]
        cpu = {name: 0.0 for name in engines}
        for engine in engines.values():
            engine.warm_up()

        def call(name: str) -> Callable[[], None]:
            engine, turns = engines[name], itertools.cycle(frames)

            def infer() -> None:  # process CPU as well as the helper's wall clock
                start = time.process_time()
                engine.infer([next(turns)])
                cpu[name] += time.process_time() - start

            return infer

        wall = interleaved_rounds(
            {name: call(name) for name in engines},
            rounds,
            runs=FRAMES_PER_ROUND,
            on_round=(lambda _index: tick()) if tick else None,
        )
        label = backend_name(merged_engine)
        if twin_engine.backend != merged_engine.backend:
            label += f"; twin on {backend_name(twin_engine)}"
    per_part = 1000.0 / (rounds * FRAMES_PER_ROUND)
    return TwinTiming(
        model=bundle_path.name,
        backend=label,
        rounds=rounds,
        cpu_ms=cpu["merged"] * per_part,
        wall_ms=float(np.mean(wall["merged"])),
        twin_cpu_ms=cpu["twin"] * per_part,
        twin_wall_ms=float(np.mean(wall["twin"])),
    )
