"""Drift watch: is the line still the one the model was trained for, and is the model still itself?

Three watches, each a rolling series the Live screen charts and an alarm event in the ledger:

- **inputs** (``drift_input``): brightness, contrast and sharpness of every judged frame
  (:mod:`data.image_stats`), their rolling mean against the training set's reference recorded in
  the bundle. A bundle without one (the bundled demo model) is watched against the run's own first
  frames, and the event says so. Computed on the archive thread, after the verdict is out: the
  statistics never delay a part.
- **rates** (``drift_rates``): UNSURE rate (limit from the bundle's calibration, as before), OOD
  rate (parts over the energy threshold) and mean confidence (against the validation mean when the
  bundle records it, else the run's first frames).
- **golden parts** (``drift_golden``, :mod:`inspector.line.golden`): on request and every
  ``golden_every_min`` minutes, the reference set is re-judged one image per idle moment of the
  inference thread (only when no frame waits), so a check never takes a part's place in the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.errors import DataError
from data.image_stats import DEFAULT_SIDE, STATISTICS, InputReference, image_statistics
from inspector.errors import InspectorError
from inspector.line.golden import (
    Baselines,
    GoldenCheck,
    GoldenPart,
    GoldenReport,
    default_golden_dir,
    load_golden,
)
from inspector.line.inference import InferenceEngine
from inspector.line.live_stats import DriftMonitor
from inspector.line.outcome import Outcome

if TYPE_CHECKING:
    from inspector.settings import Settings

log = logging.getLogger(__name__)

SERIES_POINTS = 600  # rolling values kept per series for the charts
RATES = ("unsure_rate", "ood_rate", "confidence")
SERIES_NAMES = (*STATISTICS, *RATES)
Emit = Callable[[str, str, str], None]  # level, kind, message


@dataclass
class DriftConfig:
    window: int = 200  # frames in each rolling mean / rate
    reference_frames: int = 200  # a bundle without a training reference: the run's first N frames
    input_k: float = 3.0  # alarm when a rolling mean is more than k reference std from the reference mean
    ood_rate: float = 0.1  # alarm above this share of out-of-distribution parts
    confidence_drop: float = 0.1  # alarm when mean confidence falls this far below the reference
    golden_every_min: float = 0.0  # 0: golden parts only on request
    golden_dir: Path | None = None
    home: Path | None = None  # where golden baselines are kept

    @classmethod
    def from_settings(cls, settings: Settings, home: Path) -> DriftConfig:
        return cls(
            window=settings.drift_window,
            reference_frames=settings.drift_reference_frames,
            input_k=settings.drift_input_k,
            ood_rate=settings.drift_ood_rate,
            confidence_drop=settings.drift_confidence_drop,
            golden_every_min=settings.golden_every_min,
            golden_dir=default_golden_dir(home, settings.golden_dir),
            home=home,
        )


class Rolling:
    """A rolling mean over the last ``size`` values (O(1) per value)."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
        self.values.append(value)
        self.total += value

    @property
    def full(self) -> bool:
        return len(self.values) == self.values.maxlen

    @property
    def mean(self) -> float:
        return self.total / len(self.values) if self.values else float("nan")


@dataclass
class Band:
    """What a series is held against: a centre line and the alarm limits (either may be open)."""

    centre: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class DriftSnapshot:
    series: dict[str, list[tuple[int, float]]]
    bands: dict[str, Band]
    alarms: list[str]  # series names in alarm now
    reference: str  # where the input reference comes from, in words
    golden: GoldenReport | None
    golden_state: str
    stats_ms: float | None  # mean cost of the input statistics per frame so far
    stats_frames: int = 0
    notes: list[str] = field(default_factory=list)


def input_limit(reference: InputReference, name: str, k: float) -> tuple[float, float]:
    """The band a rolling mean may move in: k reference std either side (std floored at 1% of the
    mean, so a reference of identical images does not alarm on rounding)."""
    centre = reference.mean[name]
    spread = max(reference.std[name], 0.01 * abs(centre), 1e-6)
    return centre - k * spread, centre + k * spread


class InputMonitor:
    """Rolling brightness, contrast and sharpness against a reference."""

    def __init__(self, reference: InputReference | None, config: DriftConfig, side: int) -> None:
        self.config = config
        self.reference = reference
        self.side = reference.side if reference is not None else side
        self.first: list[tuple[float, float, float]] = []
        self.rolling = {name: Rolling(config.window) for name in STATISTICS}
        self.alarmed: set[str] = set()

    def describe(self) -> str:
        ref = self.reference
        if ref is None or ref.source == "run":
            n = self.config.reference_frames
            if ref is None:
                return f"no training reference: watching against the run's first {n} frames"
            return f"no training reference: watching against the run's first {ref.count} frames"
        return f"against the training set ({ref.count} images)"

    def update(self, values: tuple[float, float, float]) -> list[tuple[str, str]]:
        """Events (level, message) this frame starts or clears."""
        for name, value in zip(STATISTICS, values, strict=True):
            self.rolling[name].add(value)
        events: list[tuple[str, str]] = []
        if self.reference is None:
            self.first.append(values)
            if len(self.first) >= self.config.reference_frames:
                self.reference = InputReference.from_values(np.array(self.first), self.side, "run")
                self.first = []
                events.append(
                    (
                        "info",
                        "input reference taken from the run's first "
                        f"{self.reference.count} frames: " + _describe_reference(self.reference),
                    )
                )
            return events
        for name in STATISTICS:
            rolling = self.rolling[name]
            if not rolling.full:
                continue
            low, high = input_limit(self.reference, name, self.config.input_k)
            mean = rolling.mean
            spread = max(self.reference.std[name], 0.01 * abs(self.reference.mean[name]), 1e-6)
            sigmas = (mean - self.reference.mean[name]) / spread
            where = "training" if self.reference.source == "training" else "the run's first frames"
            if name not in self.alarmed and not low <= mean <= high:
                self.alarmed.add(name)
                events.append(
                    (
                        "alarm",
                        f"input drift: {name} {mean:.1f} over the last {len(rolling.values)} frames, "
                        f"{where} {self.reference.mean[name]:.1f} ± {self.reference.std[name]:.1f} "
                        f"({sigmas:+.1f} σ, limit {self.config.input_k:g} σ); "
                        "lamp, camera or optics may have changed",
                    )
                )
            elif name in self.alarmed and abs(sigmas) < 0.8 * self.config.input_k:
                self.alarmed.discard(name)
                events.append(("info", f"drift cleared: {name} back to {mean:.1f} ({sigmas:+.1f} σ)"))
        return events

    def band(self, name: str) -> Band:
        if self.reference is None:
            return Band()
        low, high = input_limit(self.reference, name, self.config.input_k)
        return Band(self.reference.mean[name], low, high)


def _describe_reference(ref: InputReference) -> str:
    return ", ".join(f"{n} {ref.mean[n]:.1f} ± {ref.std[n]:.1f}" for n in STATISTICS)


class RateMonitor:
    """UNSURE rate, OOD rate and mean confidence over the last ``window`` parts."""

    def __init__(self, engine: InferenceEngine, config: DriftConfig) -> None:
        self.config = config
        self.unsure = DriftMonitor(engine.thresholds.get("val_unsure_rate"), config.window)
        self.ood_above = engine.rules.ood_energy_above
        expected = engine.thresholds.get("val_mean_confidence")
        self.confidence_ref: float | None = float(expected) if isinstance(expected, (int, float)) else None
        self.confidence_source = "validation" if self.confidence_ref is not None else "run"
        self.first_confidences: list[float] = []
        self.rolling = {"ood_rate": Rolling(config.window), "confidence": Rolling(config.window)}
        self.alarmed: set[str] = set()

    def update(
        self, verdict: str, confidence: float | None, ood_score: float | None
    ) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        message = self.unsure.update(verdict)
        if message:
            events.append(("info" if message.startswith("drift cleared") else "alarm", message))
        if verdict == "ERROR":
            return events
        if self.ood_above is not None and ood_score is not None:
            self.rolling["ood_rate"].add(float(ood_score > self.ood_above))
            rolling = self.rolling["ood_rate"]
            if rolling.full:
                rate = rolling.mean
                if "ood_rate" not in self.alarmed and rate > self.config.ood_rate:
                    self.alarmed.add("ood_rate")
                    events.append(
                        (
                            "alarm",
                            f"drift: {rate:.0%} of the last {len(rolling.values)} parts out of "
                            f"distribution (limit {self.config.ood_rate:.0%}); "
                            "they look unlike the training images",
                        )
                    )
                elif "ood_rate" in self.alarmed and rate < 0.8 * self.config.ood_rate:
                    self.alarmed.discard("ood_rate")
                    events.append(("info", f"drift cleared: out-of-distribution rate back to {rate:.0%}"))
        if confidence is not None:
            self.rolling["confidence"].add(confidence)
            if self.confidence_ref is None:
                self.first_confidences.append(confidence)
                if len(self.first_confidences) >= self.config.reference_frames:
                    self.confidence_ref = float(np.mean(self.first_confidences))
                    self.first_confidences = []
                return events
            rolling = self.rolling["confidence"]
            if rolling.full:
                floor = self.confidence_ref - self.config.confidence_drop
                mean = rolling.mean
                if "confidence" not in self.alarmed and mean < floor:
                    self.alarmed.add("confidence")
                    where = (
                        "validation" if self.confidence_source == "validation" else "the run's first frames"
                    )
                    events.append(
                        (
                            "alarm",
                            f"drift: mean confidence {mean:.0%} over the last {len(rolling.values)} "
                            f"parts, {where} {self.confidence_ref:.0%} "
                            f"(limit −{self.config.confidence_drop:.0%})",
                        )
                    )
                elif "confidence" in self.alarmed and mean > floor + 0.2 * self.config.confidence_drop:
                    self.alarmed.discard("confidence")
                    events.append(("info", f"drift cleared: mean confidence back to {mean:.0%}"))
        return events

    def value(self, name: str) -> float | None:
        if name == "unsure_rate":
            window = self.unsure.window
            return sum(window) / len(window) if window else None
        rolling = self.rolling[name]
        return rolling.mean if rolling.values else None

    def band(self, name: str) -> Band:
        if name == "unsure_rate":
            return Band(None, None, self.unsure.limit)
        if name == "ood_rate":
            return Band(None, None, self.config.ood_rate) if self.ood_above is not None else Band()
        if self.confidence_ref is None:
            return Band()
        return Band(self.confidence_ref, self.confidence_ref - self.config.confidence_drop, None)


class DriftWatch:
    """The three watches of one running line; thread-safe (archive, inference and UI threads)."""

    def __init__(
        self, engine: InferenceEngine, config: DriftConfig | None = None, sha256: str | None = None
    ) -> None:
        self.engine = engine
        self.config = config or DriftConfig()
        self.emit: Emit = lambda level, kind, message: None
        self._lock = threading.Lock()
        raw = engine.meta.provenance.get("input_reference")
        reference, self.notes = None, []
        if raw is not None:
            try:
                reference = InputReference.from_json(raw)
            except DataError as exc:
                self.notes.append(f"the bundle's input reference is unusable ({exc})")
        self.inputs = InputMonitor(reference, self.config, min(DEFAULT_SIDE, engine.meta.preprocessing.size))
        self.rates = RateMonitor(engine, self.config)
        self.series = {name: deque(maxlen=SERIES_POINTS) for name in SERIES_NAMES}
        self.stats_seconds = 0.0
        self.stats_frames = 0
        self._sha256 = sha256
        self.golden_parts: list[GoldenPart] | None = None
        self.golden_error: str | None = None
        self.golden_report: GoldenReport | None = None
        self._golden: GoldenCheck | None = None
        self._golden_wanted = False
        self._golden_next: float | None = None
        self._golden_cost: float | None = None  # seconds one golden part takes (moving average)
        self._model_name = engine.bundle.path.name if engine.bundle.path else "in-memory"

    # -- wiring -----------------------------------------------------------------------------

    def attach(self, emit: Emit) -> None:
        """Start watching: say what the inputs are watched against, load the golden set."""
        self.emit = emit
        for note in self.notes:
            emit("warning", "drift_input", note)
        emit("info", "drift_input", f"input statistics {self.inputs.describe()}")
        if self.config.golden_dir is not None and (
            self.config.golden_every_min > 0 or self.config.golden_dir.is_dir()
        ):
            self._load_golden()
        if self.config.golden_every_min > 0 and self.golden_parts:
            self._golden_next = time.monotonic()  # a check soon after the start, then on the schedule

    def _load_golden(self) -> None:
        try:
            self.golden_parts = load_golden(self.config.golden_dir)  # type: ignore[arg-type]
            self.golden_error = None
        except InspectorError as exc:
            self.golden_parts, self.golden_error = None, str(exc)
            self.emit("warning", "drift_golden", f"{exc}; golden checks are off for this run")

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = self.engine.sha256
        return self._sha256

    # -- per frame (archive thread) ---------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        start = time.perf_counter()
        values = image_statistics(outcome.frame.image, self.inputs.side)
        spent = time.perf_counter() - start
        decision = outcome.decision
        with self._lock:
            self.stats_seconds += spent
            self.stats_frames += 1
            events = [("drift_input", *e) for e in self.inputs.update(values)]
            events += [
                ("drift_rates", *e)
                for e in self.rates.update(decision.verdict.value, decision.confidence, decision.ood_score)
            ]
            part = outcome.part or self.stats_frames
            for name in STATISTICS:
                rolling = self.inputs.rolling[name]
                self.series[name].append((part, rolling.mean))
            for name in RATES:
                value = self.rates.value(name)
                if value is not None:
                    self.series[name].append((part, value))
        for kind, level, message in events:
            self.emit(level, kind, message)

    # -- golden parts (inference thread, between parts) -------------------------------------

    def request_golden(self) -> str:
        """Ask for a check now (the Live button); it runs in the line's next idle moments."""
        with self._lock:
            if self.golden_parts is None and self.config.golden_dir is not None:
                self._load_golden()
            if not self.golden_parts:
                return self.golden_error or "no golden parts"
            self._golden_wanted = True
        return f"golden check queued: {len(self.golden_parts)} part(s), judged between parts"

    def idle(self, room_s: float | None = None) -> bool:
        """Judge one golden part if a check is due and it fits before the next frame is due
        (``room_s``; None: unknown, go ahead); True when it did work."""
        cost = self._golden_cost
        if room_s is not None and cost is not None and room_s < 1.5 * cost:
            # It would still be running when the next part arrives. The estimate decays while
            # parts are skipped, so one slow measurement (a busy moment) cannot starve the check.
            self._golden_cost = 0.97 * cost
            return False
        if self._golden is None:
            due = self._golden_wanted or (
                self._golden_next is not None and time.monotonic() >= self._golden_next
            )
            if not due or not self.golden_parts:
                return False
            self._golden_wanted = False
            if self.config.golden_every_min > 0:
                self._golden_next = time.monotonic() + 60.0 * self.config.golden_every_min
            self._golden = GoldenCheck(
                self.engine, self.golden_parts, Baselines(self._home()), self._model_name, self.sha256
            )
        try:
            start = time.perf_counter()
            self._golden.step()
            spent = time.perf_counter() - start
            self._golden_cost = spent if cost is None else 0.7 * cost + 0.3 * spent
            if self._golden.done:
                report = self._golden.finish()
                self._golden = None
                with self._lock:
                    self.golden_report = report
                self.emit(report.level, "drift_golden", report.message())
        except Exception as exc:  # a broken baseline file or image must not stop the line
            self._golden = None
            self.emit("warning", "drift_golden", f"golden check failed: {exc}")
        return True

    def _home(self) -> Path:
        return self.config.home or (self.config.golden_dir.parent if self.config.golden_dir else Path("."))

    # -- read by the UI / CLI ---------------------------------------------------------------

    def snapshot(self) -> DriftSnapshot:
        with self._lock:
            series = {name: list(points) for name, points in self.series.items()}
            bands = {name: self.inputs.band(name) for name in STATISTICS}
            bands.update({name: self.rates.band(name) for name in RATES})
            alarms = sorted(
                self.inputs.alarmed
                | self.rates.alarmed
                | ({"unsure_rate"} if self.rates.unsure.alarmed else set())
            )
            check = self._golden
            if check is not None:
                state = f"checking {len(check.answers)}/{len(check.parts)}"
            elif self._golden_wanted:
                state = "check queued"
            elif self.golden_error:
                state = self.golden_error
            elif self.golden_parts is None:
                state = "no golden parts folder"
            else:
                state = "idle"
            if self.golden_report is not None and self.golden_report.alarm:
                alarms.append("golden")
            return DriftSnapshot(
                series,
                bands,
                alarms,
                self.inputs.describe(),
                self.golden_report,
                state,
                1000.0 * self.stats_seconds / self.stats_frames if self.stats_frames else None,
                self.stats_frames,
                list(self.notes),
            )
