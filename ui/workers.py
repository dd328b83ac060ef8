"""Running slow work off the UI thread: queries, model loading, training, export.

``run_task`` puts a callable on Qt's global thread pool and delivers its result (or its one-line
error) back on the UI thread through signals. A task can report progress and see a cancel flag.

``run_job`` is for the heavy work an engineer starts beside a running line (training, evaluation,
latency measurement): the same signals, but the work runs in its own low-priority process that
pauses while the line reports overruns (:mod:`inspector.jobs.runner`). It takes a job function of
:mod:`inspector.jobs` itself; this module is the UI's only door to the runner.
"""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from inspector.jobs.child import JOB_ERRORS, one_line
from inspector.jobs.line_yield import YieldState
from inspector.jobs.runner import BackgroundJob, terminate_all

__all__ = ["JOB_ERRORS", "JobTask", "Latest", "Task", "YieldState", "run_job", "run_task", "terminate_all"]


class Latest:
    """The newest request's number, so that answers to requests a newer one replaced are dropped.

    Screens ask workers the same question again and again (a filter typed, a folder changed) and
    the answers can come back out of order. The UI thread takes ``next()`` for each request and
    tags the request with it; an answer is used only while ``is_current(its number)``. A worker may
    read ``value`` too, to skip a job still queued behind a slow one once a newer request replaced
    it (an int read is atomic).
    """

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value

    def is_current(self, number: int) -> bool:
        return number == self.value


class TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object)


class Task:
    """One job. ``fn`` gets the task itself as keyword ``task`` when it asks for it.

    Not a ``QRunnable``: the pool is handed the bound ``run``, which PySide wraps in a runnable of
    its own and lets go once it has run. A started ``QRunnable`` subclass instead stays owned by
    the pool for the pool's life (PySide 6.11), and with it every result and closure it held.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, wants_task: bool = False, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.wants_task = wants_task
        self.signals = TaskSignals()
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def report(self, value: object) -> None:
        self.signals.progress.emit(value)

    def run(self) -> None:
        try:
            kwargs = dict(self.kwargs, task=self) if self.wants_task else self.kwargs
            result = self.fn(*self.args, **kwargs)
        except JOB_ERRORS as exc:
            self.signals.failed.emit(one_line(exc))
        except Exception as exc:  # a bug still becomes a message, never a dead UI
            traceback.print_exc()
            self.signals.failed.emit(f"unexpected error: {type(exc).__name__}: {one_line(exc)}")
        else:
            self.signals.done.emit(result)
        finally:
            self.finished.set()


_running: set[Any] = set()


def run_task(
    fn: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    wants_task: bool = False,
    long_running: bool = False,
    **kwargs: Any,
) -> Task:
    """Queue ``fn``. ``long_running`` jobs (training, export) get their own pool, so that they can
    never take every thread from the short queries the screens wait on."""
    task = Task(fn, *args, wants_task=wants_task, **kwargs)
    _wire(task, on_done, on_failed, on_progress)
    _release_when_ended(task)
    (_long_pool() if long_running else QThreadPool.globalInstance()).start(task.run)
    return task


def _wire(
    task: Task | JobTask,
    on_done: Callable[[Any], None] | None,
    on_failed: Callable[[str], None] | None,
    on_progress: Callable[[Any], None] | None,
) -> None:
    """Connect the caller's callbacks and keep ``task`` alive (``_running``) until it is released.

    Without the reference in ``_running`` a caller that drops the task would let it be collected
    while its worker still runs.
    """
    if on_done:
        task.signals.done.connect(on_done)
    if on_failed:
        task.signals.failed.connect(on_failed)
    if on_progress:
        task.signals.progress.connect(on_progress)
    _running.add(task)


def _release_when_ended(task: Task) -> None:
    """Drop ``_running``'s reference once ``done`` or ``failed`` has reached the UI thread.

    The slot holds only a weak reference: a closure over the task itself would make a cycle
    (task → signals → slot → task) that only the garbage collector can free, at a moment of its
    choosing and on whatever thread it runs then.
    """
    ref = weakref.ref(task)

    def release(*_: object) -> None:
        ended = ref()
        if ended is not None:
            _running.discard(ended)

    task.signals.done.connect(release)
    task.signals.failed.connect(release)


_LONG: list[QThreadPool] = []


def _long_pool() -> QThreadPool:
    if not _LONG:
        pool = QThreadPool()
        pool.setMaxThreadCount(2)
        _LONG.append(pool)
    return _LONG[0]


def wait_for_tasks(timeout_ms: int = 60_000) -> bool:
    """Wait until every queued worker-thread task has ended (True) or the time is up (False).

    For a controlled end (the tests between two screens): garbage collected while a worker still
    runs can delete a Qt object in the middle of its use.
    """
    pools = [QThreadPool.globalInstance(), *_LONG]
    return all(pool.waitForDone(timeout_ms) for pool in pools)


class JobTask(QObject):
    """A :class:`BackgroundJob` seen like a :class:`Task`: ``signals``, ``cancel``, ``finished``;
    plus ``stop`` (end early, keep the result) and ``state`` (its place behind the line)."""

    def __init__(self, job: BackgroundJob, owner: QObject | None = None) -> None:
        super().__init__()
        self.job = job
        self.signals = TaskSignals()
        self.cancelled = job.cancelled
        self.finished = threading.Event()
        self._orphaned = False
        if owner is not None:  # a screen closed before its job ended hears nothing of it
            owner.destroyed.connect(self._orphan)
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._drain)
        self._timer.start()

    def cancel(self) -> None:
        self.job.cancel()

    def stop(self) -> None:
        self.job.stop()

    def state(self) -> YieldState:
        return self.job.state()

    def _orphan(self) -> None:
        self._orphaned = True

    def _drain(self) -> None:
        ended = self.job.finished.is_set()  # read first: every item reported before it is queued
        items = self.job.take()
        if not self._orphaned:
            for item in items:
                self.signals.progress.emit(item)
        if not ended:
            return
        self._timer.stop()
        if not self._orphaned:
            if self.job.error is None:
                self.signals.done.emit(self.job.result)
            else:
                self.signals.failed.emit(self.job.error)
        self.finished.set()
        _running.discard(self)


def run_job(
    fn: Callable[..., Any],
    *args: Any,
    line: Callable[[], int | None] | None = None,
    hold: AbstractContextManager[Any] | None = None,
    owner: QObject | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> JobTask:
    """Run ``fn`` (a module-level function of :mod:`inspector.jobs`, called with ``task=``) in a
    background process; anything else is refused with a ValueError before a process starts.

    ``line`` reports the running line's overrun count (None: no line); ``hold`` is entered now and
    left when the process has ended, whatever the UI is doing (the wizard's staging folder). Once
    ``owner`` (the screen that asked) is deleted, the job's answers go nowhere.
    """
    stack = ExitStack()
    if hold is not None:
        stack.enter_context(hold)
    try:
        job = BackgroundJob(fn, *args, line=line, on_finished=stack.close, **kwargs)
    except BaseException:
        stack.close()
        raise
    task = JobTask(job, owner)
    _wire(task, on_done, on_failed, on_progress)
    return task
