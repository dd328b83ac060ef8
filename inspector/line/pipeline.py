"""The live line: capture → bounded queue → inference → verdict → image archive → results ledger.

Optionally a shadow candidate judges the same frames on a thread of its own, never driving a
verdict (:mod:`inspector.line.shadow`); it is shed first when the line is behind.

Four threads, so that no stage ever waits on another's slow moment: a camera hiccup does not
stall inference, a slow disk does not stall the camera, a database checkpoint does not stall
anything but the writer. Every frame that enters ends as exactly one result row or one counted
drop with a reason; ``stop`` drains the queue and flushes the archive and the ledger first.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from inspector.line.archive import ImageArchive
from inspector.line.drift import DriftWatch
from inspector.line.frame_queue import FrameQueue
from inspector.line.inference import InferenceEngine
from inspector.line.live_stats import LiveStats, StatsSnapshot
from inspector.line.outcome import Event, Outcome
from inspector.line.outputs import LineInfo, OutputSet, PartReport
from inspector.line.shadow import ShadowRunner
from inspector.line.sources.base import BadFrame, Frame, FrameSource, SourceDisconnected, check_image
from inspector.line.verdicts import Decision, Verdict
from inspector.store import Ledger, ResultRecord
from inspector.store.station_lock import StationLock

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 0.2
BAD_FRAME_ALARM_AFTER = 50


@dataclass
class PipelineConfig:
    queue_size: int = 8
    drop_policy: str = "oldest"
    max_batch: int = 8
    commit_interval_s: float = COMMIT_INTERVAL_S
    cycle_budget_ms: float | None = None  # default: the source's frame period, else 100 ms
    max_frames: int | None = None
    track_maps: bool = False
    reconnect_max_s: float = 10.0
    # Threads for the model. None: all cores but one, so capture, archive and the ledger writer
    # keep a core and frame-to-verdict latency stays steady (measured in BENCHMARKS.md).
    inference_threads: int | None = None
    # How long stopping waits for line outputs to deliver what they hold (MQTT keeps the rest on disk).
    outputs_close_s: float = 5.0
    # How long starting waits for line outputs to be up (listening, connected or known down), so
    # that their start-up work (seconds of CPU for an OPC UA server) does not land on the first frames.
    outputs_ready_s: float = 20.0


def default_inference_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class RunInfo:
    station: str = "station-1"
    operator: str = ""
    lot: str = ""


_END = object()


class Pipeline:
    def __init__(
        self,
        source: FrameSource,
        engine: InferenceEngine,
        ledger: Ledger | None = None,
        archive: ImageArchive | None = None,
        config: PipelineConfig | None = None,
        run: RunInfo | None = None,
        outputs: OutputSet | None = None,
        shadow: ShadowRunner | None = None,
        watch: DriftWatch | None = None,
    ) -> None:
        self.source = source
        self.engine = engine
        self.shadow = shadow
        self.shadow_run_id: int | None = None
        self.ledger = ledger
        self.archive = archive
        self.config = config or PipelineConfig()
        self.run_info = run or RunInfo()
        budget = self.config.cycle_budget_ms or (1000.0 / source.fps if source.fps else 100.0)
        self.stats = LiveStats(budget)
        # Drift watch (inspector.line.drift): input statistics, rates, golden parts between parts.
        self.watch = watch or DriftWatch(engine)
        self.on_outcome: list[Callable[[Outcome], None]] = []
        # Called on the archive thread, after the verdict is out (what may cost a little per part).
        self.on_archived: list[Callable[[Outcome], None]] = [self.watch.observe]
        # Called on the inference thread when no frame waits, with the seconds left before the
        # next frame is due (None: the source keeps no rate); each does at most one small job that
        # fits and says whether it did (the golden parts, one image per idle moment).
        self.on_idle: list[Callable[[float | None], bool]] = [self.watch.idle]
        self._last_queued = 0.0
        self.on_event: list[Callable[[Event], None]] = []
        self.events: list[Event] = []
        self.run_id: int | None = None
        self.station_id: int | None = None
        self._stop = threading.Event()
        self._frames = FrameQueue(self.config.queue_size, self.config.drop_policy, self._drop)
        self._to_archive: queue.Queue[Any] = queue.Queue()
        self._to_writer: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._finished = False
        self._station_lock: StationLock | None = None
        self._threads_before = torch.get_num_threads()
        self.error: str | None = None
        self.outputs = outputs or OutputSet([])
        self._parts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the source, register the run, then start the four stages."""
        try:
            self.source.open()
        except BaseException:
            self.outputs.discard()  # built for this run (an MQTT spool is locked): let them go
            raise
        try:
            self._register_run()
            self.engine.warm_up()
            if self.shadow is not None:
                self.shadow.warm_up()
        except BaseException:
            self.source.close()
            self.outputs.discard()
            self._release_station()
            raise
        self.outputs.start(self._line_info(), self.event, self.config.outputs_ready_s)
        self.watch.attach(self.event)
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(self.config.inference_threads or default_inference_threads())
        self.stats.reset()
        if self.shadow is not None:
            self.shadow.start()
        for name, target in (
            ("writer", self._write_loop),
            ("archive", self._archive_loop),
            ("inference", self._infer_loop),
            ("capture", self._capture_loop),
        ):
            thread = threading.Thread(target=target, name=f"inspector-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self.event("info", "run_started", f"run started on {self.source.name}")

    def stop(self) -> None:
        """Ask capture to stop; what is already queued is still judged and written."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every stage has finished (source ended, ``max_frames`` reached or stopped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False
        self._finish()
        return True

    def run(self) -> StatsSnapshot:
        self.start()
        try:
            while not self.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.stop()
            self.wait()
        return self.stats.snapshot()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _register_run(self) -> None:
        if self.ledger is None:
            return
        # One line per station and ledger (released in _finish, or with the process if it dies):
        # a second line's start would mark this line's live run as interrupted.
        self._station_lock = StationLock(self.ledger.url, self.run_info.station).acquire()
        self.station_id = self.ledger.ensure_station(self.run_info.station)
        for run_id in self.ledger.mark_interrupted_runs(self.station_id):
            self.event("warning", "interrupted", f"run {run_id} had not finished (crash or power loss)")
        model_name = self.engine.bundle.path.name if self.engine.bundle.path else "in-memory"
        model_id = self._ensure_model_version(self.ledger, self.engine, model_name)
        self.run_id = self.ledger.start_run(
            self.station_id, model_id, self.source.name, self.run_info.operator, self.run_info.lot
        )
        if self.shadow is not None:
            candidate_id = self._ensure_model_version(self.ledger, self.shadow.engine, self.shadow.name)
            self.shadow_run_id = self.ledger.start_shadow(self.run_id, candidate_id)

    @staticmethod
    def _ensure_model_version(ledger: Ledger, engine: InferenceEngine, name: str) -> int:
        """The ledger id of ``engine``'s model, registered with the config the ledger keeps.

        The live model and a shadow candidate are recorded alike, so the run and shadow listings
        compare like with like.
        """
        meta = engine.meta
        config = {
            "backbone": meta.backbone.to_json(),
            "merge": meta.merge_mode,
            "gmacs_ratio": meta.gmacs_ratio,
            "classes": meta.classes,
            "normal_class": meta.normal_class,
            "thresholds": meta.thresholds,
        }
        return ledger.ensure_model_version(
            engine.sha256, name, config, dict(meta.provenance.get("metrics", {}))
        )

    def _line_info(self) -> LineInfo:
        bundle = self.engine.bundle
        return LineInfo(
            station=self.run_info.station,
            run_id=self.run_id,
            model_name=bundle.path.name if bundle.path else "in-memory",
            model_sha256=self.engine.sha256,
            classes=tuple(self.engine.meta.classes),
            source=self.source.name,
            lot=self.run_info.lot,
        )

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.source.close()
        torch.set_num_threads(self._threads_before)
        self.outputs.close(self.config.outputs_close_s)
        snapshot = self.stats.snapshot()
        self.event("info", "run_stopped", f"run stopped after {snapshot.entered} frames")
        if self.ledger is not None and self.run_id is not None:
            status = "failed" if self.error else "finished"
            stats = snapshot.to_json()
            # Which runtime judged (and the int8 gate's figures, or why it was not used).
            stats["backend"] = self.engine.backend_record()
            if self.shadow is not None:
                stats["shadow"] = self.shadow.snapshot().to_json()
            try:
                self.ledger.finish_run(self.run_id, stats, status)
            finally:
                self._release_station()
        self._release_station()  # no run was registered: nothing to finish, the station is free

    def _release_station(self) -> None:
        if self._station_lock is not None:
            self._station_lock.release()
            self._station_lock = None

    # -- events ------------------------------------------------------------------------------

    def event(self, level: str, kind: str, message: str) -> None:
        item = Event(level, kind, message)
        self.events.append(item)
        log.log(logging.WARNING if level != "info" else logging.INFO, "%s: %s", kind, message)
        if self.ledger is not None:
            try:
                self.ledger.add_event(kind, message, level, self.run_id, self.station_id)
            except Exception as exc:  # an event must never stop the line
                log.warning("event not logged: %s", exc)
        for listener in self.on_event:
            listener(item)

    def _drop(self, frame: Frame, reason: str) -> None:
        self.stats.dropped(reason)

    # -- capture -----------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            self._capture()
        except Exception as exc:  # a broken source ends the run with an alarm, not a hang
            self.error = f"{self.source.name}: {exc}"
            self.event("alarm", "source_failed", self.error)
        finally:
            self._frames.close()

    def _capture(self) -> None:
        shape: tuple[int, ...] | None = None
        bad_in_a_row = 0
        while not self._stop.is_set():
            if self.config.max_frames is not None and self.stats.entered >= self.config.max_frames:
                return
            try:
                frame = self.source.read()
            except SourceDisconnected as exc:
                if not self._reconnect(str(exc)):
                    return
                continue
            except BadFrame as exc:
                frame, problem = None, exc
            else:
                if frame is None:
                    return
                problem = self._check(frame, shape)
                shape = shape or (frame.image.shape if problem is None else None)
            self.stats.frame_entered()
            if problem is not None:
                self.stats.dropped(problem.reason)
                bad_in_a_row += 1
                if bad_in_a_row == BAD_FRAME_ALARM_AFTER:
                    self.event("alarm", "bad_frames", f"{bad_in_a_row} unusable frames in a row ({problem})")
                continue
            bad_in_a_row = 0
            frame.stamps["queued"] = self._last_queued = time.perf_counter()
            self._frames.put(frame)

    def _check(self, frame: Frame, shape: tuple[int, ...] | None) -> BadFrame | None:
        """Why this frame cannot be judged (None: it can)."""
        try:
            check_image(frame.image)
        except BadFrame as exc:
            return exc
        if self.source.fixed_shape and shape is not None and frame.image.shape != shape:
            return BadFrame("wrong_size", f"{frame.image.shape} after {shape}")
        return None

    def _reconnect(self, reason: str) -> bool:
        if not self.source.reconnectable:
            self.event("alarm", "source_lost", reason)
            return False
        self.event("alarm", "camera_lost", f"{reason}; reconnecting")
        delay = 0.5
        while not self._stop.is_set():
            self.source.close()
            if self._stop.wait(delay):
                return False
            try:
                self.source.open()
            except Exception as exc:  # keep trying whatever the driver says
                delay = min(delay * 2, self.config.reconnect_max_s)
                log.info("reconnect failed (%s); next try in %.1f s", exc, delay)
                continue
            self.stats.reconnected()
            self.event("info", "reconnected", f"{self.source.name} is back")
            return True
        return False

    # -- inference ---------------------------------------------------------------------------

    def _infer_loop(self) -> None:
        classes = self.engine.meta.classes
        while True:
            batch = self._frames.get_batch(self.config.max_batch, timeout=0.1)
            if not batch:
                if self._frames.finished:
                    break
                self._idle()
                continue
            start = time.perf_counter()
            for frame in batch:
                frame.stamps["dequeued"] = start
            try:
                out = self.engine.infer([f.image for f in batch], self.config.track_maps)
                error = None
            except Exception as exc:  # one bad batch is an ERROR verdict, not a stopped line
                out, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
            done = time.perf_counter()
            for i, frame in enumerate(batch):
                frame.stamps["inferred"] = done
                if out is None:
                    outcome = Outcome(
                        frame, Decision(Verdict.ERROR, None, None, None, error or ""), None, error=error
                    )
                else:
                    probs = out.probabilities[i]
                    decision = self.engine.rules.decide(
                        probs, None if out.energies is None else out.energies[i]
                    )
                    outcome = Outcome(
                        frame,
                        decision,
                        {c: round(float(p), 5) for c, p in zip(classes, probs, strict=False)},
                        out.maps[i] if out.maps else None,
                        error=decision.reason if decision.verdict is Verdict.ERROR else None,
                    )
                self._parts += 1
                outcome.part, outcome.judged_at = self._parts, datetime.now(timezone.utc)
                self.outputs.judged(self._part_report(outcome))
                self.stats.judged(outcome.decision.verdict.value, frame.stamps)
                for listener in self.on_outcome:
                    try:
                        listener(outcome)
                    except Exception as exc:  # a display problem must not stop the line
                        log.warning("outcome listener failed: %s", exc)
                self._to_archive.put(outcome)
                if self.shadow is not None:
                    # Shed first: a batch of more than one, or frames waiting, means the line is behind.
                    self.shadow.offer(frame, outcome.decision, len(self._frames) + (len(batch) > 1))
            if not len(self._frames):
                self._idle()
        if self.shadow is not None and not self.shadow.close():  # its last answers reach the final commit
            self.event("warning", "shadow_stuck", f"shadow {self.shadow.name} did not finish its last frames")
        self._to_archive.put(_END)

    def _idle(self) -> None:
        """Between parts, no frame waiting: one small side job (a golden part), never one per frame."""
        if self._stop.is_set():
            return
        period = 1.0 / self.source.fps if self.source.fps else None
        room = None if period is None else period - (time.perf_counter() - self._last_queued)
        for job in self.on_idle:
            try:
                if job(room):
                    return
            except Exception as exc:  # a side job must never stop the line
                log.warning("idle job failed: %s", exc)

    # -- archive -----------------------------------------------------------------------------

    def _archive_loop(self) -> None:
        while True:
            outcome = self._to_archive.get()
            if outcome is _END:
                break
            if self.archive is not None:
                try:
                    outcome.image_ref, alarm = self.archive.store(
                        outcome.frame.image, outcome.decision.verdict.value
                    )
                except Exception as exc:  # archiving is best effort; results are not
                    outcome.image_ref, alarm = None, f"image archive failed: {exc}"
                if alarm:
                    self.event("alarm", "archive_paused", alarm)
            outcome.frame.stamps["archived"] = time.perf_counter()
            self._to_writer.put(outcome)
            for listener in self.on_archived:
                try:
                    listener(outcome)
                except Exception as exc:  # a watch must not stop the line
                    log.warning("archive listener failed: %s", exc)
        self._to_writer.put(_END)

    # -- results writer ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        pending: list[Outcome] = []
        first_at = 0.0
        ended = False
        while not ended:
            timeout = (
                self.config.commit_interval_s
                if not pending
                else max(0.0, first_at + self.config.commit_interval_s - time.perf_counter())
            )
            try:
                item = self._to_writer.get(timeout=timeout)
                if item is _END:
                    ended = True
                else:
                    if not pending:
                        first_at = time.perf_counter()
                    pending.append(item)
            except queue.Empty:
                pass
            due = pending and (ended or time.perf_counter() - first_at >= self.config.commit_interval_s)
            if due or ended:  # the last commit also carries the shadow's last answers
                self._commit(pending)
                pending = []

    def _commit(self, outcomes: list[Outcome]) -> None:
        if self.ledger is not None and self.run_id is not None:
            records = [self._record(o) for o in outcomes]
            shadow = self.shadow.take_update(self.shadow_run_id) if self.shadow is not None else None
            delay = 0.2
            while records or shadow is not None:
                try:
                    self.ledger.add_results(records, shadow)
                    break
                except Exception as exc:  # keep the rows and retry; never lose a result
                    self.event("alarm", "ledger_error", f"results not written yet ({exc}); retrying")
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
        now = time.perf_counter()
        for outcome in outcomes:
            outcome.frame.stamps["written"] = now
        self.stats.stored([o.frame.stamps for o in outcomes], sum(1 for o in outcomes if o.image_ref))
        if self.outputs:
            recorded_at = datetime.now(timezone.utc)
            for outcome in outcomes:
                self.outputs.recorded(self._part_report(outcome, recorded_at))
            self.outputs.report_drops()

    def _part_report(self, outcome: Outcome, recorded_at: datetime | None = None) -> PartReport:
        decision = outcome.decision
        return PartReport(
            part=outcome.part,
            frame=outcome.frame.index,
            verdict=decision.verdict.value,
            label=decision.label,
            confidence=decision.confidence,
            reason=decision.reason,
            captured_at=outcome.frame.captured_at,
            judged_at=outcome.judged_at or datetime.now(timezone.utc),
            recorded_at=recorded_at,
        )

    def _record(self, outcome: Outcome) -> ResultRecord:
        stamps, decision = outcome.frame.stamps, outcome.decision
        return ResultRecord(
            run_id=self.run_id or 0,
            frame_index=outcome.frame.index,
            captured_at=outcome.frame.captured_at,
            verdict=decision.verdict.value,
            label=decision.label,
            confidence=decision.confidence,
            probabilities=outcome.probabilities,
            ood_score=decision.ood_score,
            latency_queue_ms=round(1000 * (stamps["dequeued"] - stamps["captured"]), 3),
            latency_infer_ms=round(1000 * (stamps["inferred"] - stamps["dequeued"]), 3),
            latency_total_ms=round(1000 * (stamps["inferred"] - stamps["captured"]), 3),
            image_ref=outcome.image_ref,
            truth=outcome.frame.truth,
            error=outcome.error,
        )
