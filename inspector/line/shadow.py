"""Shadow mode: a candidate model judges the same frames as the deployed one, beside the line.

The candidate never drives a verdict, an output or the archive: it sees a frame only after the
deployed model's decision is made and handed on, and nothing it says flows back. It runs on its
own thread, below the line's priority, with a queue of at most ``SHADOW_QUEUE`` frames, and it
is **shed first**: a frame is not offered while the line's own queue has a backlog, nor while the
shadow's queue is full (still busy with earlier frames). Every shed frame is counted, by reason.

Each part both models judged is counted (agreement, per-class and per-verdict confusion); a part
on which they disagree (verdict or class) is kept with both answers. The pipeline's writer takes
the totals and the new disagreements at its next commit, in the same transaction as the results.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from inspector.line.inference import InferenceEngine
from inspector.line.sources.base import Frame
from inspector.line.verdicts import Decision, Verdict
from inspector.store import ShadowRecord, ShadowUpdate

log = logging.getLogger(__name__)

SHADOW_QUEUE = 2  # frames waiting for the candidate at most: more would only be judged late
SHADOW_NICE = 10  # the shadow thread's niceness (Linux: per thread), so the line's threads come first
NO_LABEL = "–"
CLOSE_TIMEOUT_S = 10.0  # how long the line's end waits for the shadow's last frames
SHED_BACKLOG = "line_backlog"  # the line's own queue had frames waiting
SHED_BUSY = "shadow_busy"  # the shadow's queue was full
_END = object()


@dataclass
class ShadowSnapshot:
    """What the Live screen and the run summary say about the shadow candidate."""

    name: str
    judged: int
    agreed: int
    shed: int
    errors: int = 0
    shed_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def disagreed(self) -> int:
        return self.judged - self.agreed

    @property
    def agreement_pct(self) -> float | None:
        return 100.0 * self.agreed / self.judged if self.judged else None

    def line(self) -> str:
        """``Shadow: v3 — agreement 97.2 % of 1,204, 12 disagreements, 3 shed``"""
        return shadow_line(self.name, self.judged, self.agreed, self.shed)

    def to_json(self) -> dict:
        return {
            "model": self.name,
            "judged": self.judged,
            "agreed": self.agreed,
            "disagreed": self.disagreed,
            "shed": self.shed,
            "shed_reasons": self.shed_reasons,
            "errors": self.errors,
        }


def shadow_line(name: str, judged: int, agreed: int, shed: int) -> str:
    if not judged:
        return f"Shadow: {name} — nothing judged yet, {shed:,} shed"
    disagreed = judged - agreed
    return (
        f"Shadow: {name} — agreement {100.0 * agreed / judged:.1f} % of {judged:,}, "
        f"{disagreed:,} disagreement{'s' if disagreed != 1 else ''}, {shed:,} shed"
    )


def agree(deployed: Decision, candidate: Decision) -> bool:
    """Both gave the same verdict and the same class."""
    return deployed.verdict is candidate.verdict and deployed.label == candidate.label


class ShadowRunner:
    """The candidate's thread, its bounded queue and its tallies (thread-safe)."""

    def __init__(self, engine: InferenceEngine, name: str, queue_size: int = SHADOW_QUEUE) -> None:
        self.engine = engine
        self.name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.judged = 0
        self.agreed = 0
        self.errors = 0
        self.shed_reasons: Counter[str] = Counter()
        self.labels: dict[str, Counter[str]] = {}
        self.verdicts: dict[str, Counter[str]] = {}
        self._new: list[ShadowRecord] = []
        self._changed = False
        self.close_timeout_s = CLOSE_TIMEOUT_S

    # -- lifecycle ---------------------------------------------------------------------------

    def warm_up(self) -> None:
        self.engine.warm_up()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inspector-shadow", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float | None = None) -> bool:
        """Judge what is queued (at most ``SHADOW_QUEUE`` frames), then end the thread.

        False when the candidate is still stuck after ``timeout_s``: the line's end must not wait
        on it (its thread is a daemon; what it already judged is still written).
        """
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        timeout_s = self.close_timeout_s if timeout_s is None else timeout_s
        try:
            self._queue.put(_END, timeout=timeout_s)
        except queue.Full:
            return False
        thread.join(timeout_s)
        return not thread.is_alive()

    # -- the line's side ---------------------------------------------------------------------

    def offer(self, frame: Frame, decision: Decision, backlog: int) -> bool:
        """Hand the candidate a judged frame unless the line is behind or the shadow is busy.

        Never blocks: called on the inference thread right after the deployed model's decision.
        """
        if backlog > 0:
            self._shed(SHED_BACKLOG)
            return False
        try:
            self._queue.put_nowait((frame, decision))
        except queue.Full:
            self._shed(SHED_BUSY)
            return False
        return True

    def _shed(self, reason: str) -> None:
        with self._lock:
            self.shed_reasons[reason] += 1
            self._changed = True

    # -- the shadow's thread -----------------------------------------------------------------

    def _loop(self) -> None:
        _lower_priority()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            frame, deployed = item
            try:
                out = self.engine.infer([frame.image])
                energies = out.energies
                mine = self.engine.rules.decide(
                    out.probabilities[0], None if energies is None else energies[0]
                )
                error = mine.reason if mine.verdict is Verdict.ERROR else None
            except Exception as exc:  # a failing candidate is counted, never a stopped line
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                mine = Decision(Verdict.ERROR, None, None, None, error)
            self.record(frame, deployed, mine, error)

    def record(self, frame: Frame, deployed: Decision, mine: Decision, error: str | None = None) -> None:
        same = agree(deployed, mine)
        with self._lock:
            self.judged += 1
            self.agreed += same
            self.errors += mine.verdict is Verdict.ERROR
            d_label, c_label = deployed.label or NO_LABEL, mine.label or NO_LABEL
            self.labels.setdefault(d_label, Counter())[c_label] += 1
            self.verdicts.setdefault(deployed.verdict.value, Counter())[mine.verdict.value] += 1
            self._changed = True
            if not same:
                self._new.append(
                    ShadowRecord(
                        frame_index=frame.index,
                        captured_at=frame.captured_at,
                        deployed_verdict=deployed.verdict.value,
                        deployed_label=deployed.label,
                        deployed_confidence=_rounded(deployed.confidence),
                        verdict=mine.verdict.value,
                        label=mine.label,
                        confidence=_rounded(mine.confidence),
                        error=error,
                    )
                )

    # -- the writer's side -------------------------------------------------------------------

    def take_update(self, shadow_run_id: int | None) -> ShadowUpdate | None:
        """Totals and the disagreements since the last call (None: nothing new, or no ledger run)."""
        with self._lock:
            if not self._changed or shadow_run_id is None:
                return None
            update = ShadowUpdate(
                shadow_run_id=shadow_run_id,
                judged=self.judged,
                agreed=self.agreed,
                shed=sum(self.shed_reasons.values()),
                confusion=self._confusion(),
                disagreements=self._new,
            )
            self._new = []
            self._changed = False
            return update

    def _confusion(self) -> dict:
        return {
            "labels": {d: dict(row) for d, row in self.labels.items()},
            "verdicts": {d: dict(row) for d, row in self.verdicts.items()},
        }

    def snapshot(self) -> ShadowSnapshot:
        with self._lock:
            return ShadowSnapshot(
                self.name,
                self.judged,
                self.agreed,
                sum(self.shed_reasons.values()),
                self.errors,
                dict(self.shed_reasons),
            )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 5)


def _lower_priority() -> None:
    """Linux schedules threads individually: this one yields the CPU to the line's threads."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SHADOW_NICE)
    except (AttributeError, OSError) as exc:  # another OS, or a container that forbids it
        log.debug("shadow thread priority unchanged: %s", exc)
