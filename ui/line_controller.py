"""The bridge between a running pipeline (plain threads) and the Qt screens.

The pipeline calls back from its inference thread; those callbacks only park the newest outcome
and the flagged parts in thread-safe slots. A UI-thread timer picks them up at display rate, so a
line running at 60 parts per second can never flood the event loop.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from inspector.access import Actor, authorise
from inspector.line.build import LineRequest, build_pipeline
from inspector.line.live_stats import StatsSnapshot
from inspector.line.outcome import Event, Outcome
from inspector.line.pipeline import Pipeline
from ui.context import AppContext
from ui.workers import Task, run_task


class LineController(QObject):
    started = Signal(str)
    stopped = Signal(object)  # StatsSnapshot
    failed = Signal(str)

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self._latest: Outcome | None = None
        self._flagged: deque[Outcome] = deque(maxlen=64)
        self._events: deque[Event] = deque(maxlen=64)
        self.starting = False
        self._start_task: Task | None = None
        self._built: Pipeline | None = None  # set by the worker, before the UI hears of it

    @property
    def running(self) -> bool:
        return self.pipeline is not None and self.pipeline.running

    def start(self, request: LineRequest) -> None:
        if self.running or self.starting:
            return
        self.starting = True
        request = replace(request, settings=self.context.settings)
        self._start_task = run_task(
            self._build_and_start,
            request,
            self.context.actor,
            on_done=self._on_started,
            on_failed=self._on_failed,
            long_running=True,
        )

    def _build_and_start(self, request: LineRequest, actor: Actor) -> Pipeline:
        ledger = self.context.ledger()
        authorise(ledger, actor, "run_line")  # with accounts: a signed-in role that may run the line
        pipeline = build_pipeline(request, ledger)
        pipeline.on_outcome.append(self._park)
        pipeline.on_event.append(self._park_event)
        pipeline.start()
        self._built = pipeline
        return pipeline

    def _on_started(self, pipeline: Pipeline) -> None:
        self.starting = False
        self.pipeline = pipeline
        self.context.pipeline = pipeline
        self.started.emit(pipeline.source.name)

    def _on_failed(self, message: str) -> None:
        self.starting = False
        self.failed.emit(message)

    def stop(self) -> None:
        """Stop capture; the queue drains and the ledger flushes in a worker, then ``stopped``."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.stop()
        run_task(
            self._drain, pipeline, on_done=self.stopped.emit, on_failed=self.failed.emit, long_running=True
        )

    @staticmethod
    def _drain(pipeline: Pipeline) -> StatsSnapshot:
        pipeline.wait()
        return pipeline.stats.snapshot()

    def stop_and_wait(self, timeout: float = 30.0) -> None:
        """For closing the window: stop and wait here (everything queued is still written).

        A line still starting (closed, or SIGTERM, right after Start) is waited for, then stopped.
        """
        if self.starting and self._start_task is not None:
            self._start_task.finished.wait(timeout)
        pipeline = self.pipeline or self._built
        if pipeline is not None:
            pipeline.stop()
            pipeline.wait(timeout)

    def set_overlay(self, on: bool) -> None:
        if self.pipeline is not None:
            self.pipeline.config.track_maps = on

    # -- called from the pipeline's threads ----------------------------------------------------

    def _park(self, outcome: Outcome) -> None:
        with self._lock:
            self._latest = outcome
            if outcome.decision.verdict.value in ("NG", "UNSURE", "ERROR"):
                self._flagged.append(outcome)

    def _park_event(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    # -- read by the UI timer --------------------------------------------------------------------

    def take(self) -> tuple[Outcome | None, list[Outcome], list[Event]]:
        with self._lock:
            latest, self._latest = self._latest, None
            flagged, events = list(self._flagged), list(self._events)
            self._flagged.clear()
            self._events.clear()
        return latest, flagged, events
