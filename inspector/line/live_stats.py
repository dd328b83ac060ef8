"""Live counters and per-stage latency percentiles of a running line (thread-safe, cheap to read).

What an operator and a plant engineer read off the status line: fps, counts per verdict, yield,
drops by reason, overruns against the cycle-time budget, and p50/p95/p99 per pipeline stage.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

STAGES = ("queue", "infer", "archive", "write", "total")
WINDOW = 2000  # latencies kept per stage for the percentiles
FPS_WINDOW_S = 5.0


@dataclass
class StatsSnapshot:
    elapsed_s: float
    fps: float
    fps_mean: float
    entered: int
    verdicts: dict[str, int]
    written: int
    drops: dict[str, int]
    overruns: int
    worst_cycle_ms: float
    reconnects: int
    archived: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # CPU seconds the whole line process spent since the counters started (every thread: capture,
    # inference, archive, ledger writes — and the app's screens when the line runs in the app).
    # The shift report's cost per part is this over the parts judged.
    cpu_s: float = 0.0

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def judged(self) -> int:
        return sum(self.verdicts.values())

    @property
    def yield_pct(self) -> float | None:
        """OK share of the parts the machine judged (UNSURE counts against: it needs a person)."""
        judged = sum(self.verdicts.get(v, 0) for v in ("OK", "NG", "UNSURE"))
        return 100.0 * self.verdicts.get("OK", 0) / judged if judged else None

    def to_json(self) -> dict:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "fps_mean": round(self.fps_mean, 2),
            "entered": self.entered,
            "verdicts": self.verdicts,
            "written": self.written,
            "drops": self.drops,
            "overruns": self.overruns,
            "worst_cycle_ms": round(self.worst_cycle_ms, 2),
            "reconnects": self.reconnects,
            "archived": self.archived,
            "yield_pct": None if self.yield_pct is None else round(self.yield_pct, 2),
            "latency_ms": self.latency_ms,
            "cpu_s": round(self.cpu_s, 3),
        }


class LiveStats:
    def __init__(self, cycle_budget_ms: float) -> None:
        self.cycle_budget_ms = cycle_budget_ms
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start a new shift's counters (the line keeps running)."""
        with self._lock:
            self.started = time.perf_counter()
            self.cpu_started = time.process_time()
            self.entered = 0
            self.verdicts: Counter[str] = Counter()
            self.drops: Counter[str] = Counter()
            self.written = 0
            self.overruns = 0
            self.worst_cycle_ms = 0.0
            self.reconnects = 0
            self.archived = 0
            self.latencies = {stage: deque(maxlen=WINDOW) for stage in STAGES}
            self.done_at: deque[float] = deque()

    def reset_extremes(self) -> None:
        """A new shift's worst cycle and latency window; counts stay (the UI shows them as differences)."""
        with self._lock:
            self.worst_cycle_ms = 0.0
            self.latencies = {stage: deque(maxlen=WINDOW) for stage in STAGES}

    def frame_entered(self) -> None:
        with self._lock:
            self.entered += 1

    def dropped(self, reason: str) -> None:
        with self._lock:
            self.drops[reason] += 1

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1

    def judged(self, verdict: str, stamps: dict[str, float]) -> None:
        now = stamps.get("inferred", time.perf_counter())
        total_ms = 1000.0 * (now - stamps["captured"])
        with self._lock:
            self.verdicts[verdict] += 1
            self.latencies["queue"].append(1000.0 * (stamps["dequeued"] - stamps["captured"]))
            self.latencies["infer"].append(1000.0 * (now - stamps["dequeued"]))
            self.latencies["total"].append(total_ms)
            self.worst_cycle_ms = max(self.worst_cycle_ms, total_ms)
            if total_ms > self.cycle_budget_ms:
                self.overruns += 1
            self.done_at.append(now)
            while self.done_at and now - self.done_at[0] > FPS_WINDOW_S:
                self.done_at.popleft()

    def stored(self, stamps_list: list[dict[str, float]], archived: int = 0) -> None:
        with self._lock:
            self.written += len(stamps_list)
            self.archived += archived
            for stamps in stamps_list:
                if "archived" in stamps:
                    self.latencies["archive"].append(1000.0 * (stamps["archived"] - stamps["inferred"]))
                    self.latencies["write"].append(1000.0 * (stamps["written"] - stamps["archived"]))

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = time.perf_counter()
            elapsed = now - self.started
            recent = [t for t in self.done_at if now - t <= FPS_WINDOW_S]
            span = min(FPS_WINDOW_S, elapsed)
            latency = {stage: _percentiles(values) for stage, values in self.latencies.items() if len(values)}
            judged = sum(self.verdicts.values())
            return StatsSnapshot(
                elapsed_s=elapsed,
                fps=len(recent) / span if span > 0 else 0.0,
                fps_mean=judged / elapsed if elapsed > 0 else 0.0,
                entered=self.entered,
                verdicts=dict(self.verdicts),
                written=self.written,
                drops=dict(self.drops),
                overruns=self.overruns,
                worst_cycle_ms=self.worst_cycle_ms,
                reconnects=self.reconnects,
                archived=self.archived,
                latency_ms=latency,
                cpu_s=time.process_time() - self.cpu_started,
            )


def _percentiles(values: deque[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.fromiter(values, float), [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


class DriftMonitor:
    """Raises a drift alarm when the rolling UNSURE rate leaves what validation promised.

    The bundle's calibration says how often familiar parts are UNSURE (``val_unsure_rate``). A
    station whose lighting or camera has moved sends many more; that is the cue to fine-tune.
    """

    def __init__(self, expected_unsure: float | None, window: int = 200) -> None:
        base = expected_unsure if expected_unsure is not None else 0.1
        self.limit = min(0.95, max(2 * base, base + 0.15))
        self.window: deque[bool] = deque(maxlen=window)
        self.alarmed = False

    def update(self, verdict: str) -> str | None:
        """A message when the alarm starts or clears, else None."""
        self.window.append(verdict == "UNSURE")
        if len(self.window) < self.window.maxlen:
            return None
        rate = sum(self.window) / len(self.window)
        if not self.alarmed and rate > self.limit:
            self.alarmed = True
            return (
                f"drift: {rate:.0%} of the last {len(self.window)} parts UNSURE "
                f"(limit {self.limit:.0%}); the station may have changed, consider fine-tuning"
            )
        if self.alarmed and rate < 0.8 * self.limit:
            self.alarmed = False
            return f"drift cleared: UNSURE rate back to {rate:.0%}"
        return None
