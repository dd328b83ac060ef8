"""Running slow work off the UI thread: queries, model loading, training, export.

``run_task`` puts a callable on Qt's global thread pool and delivers its result (or its one-line
error) back on the UI thread through signals. A task can report progress and see a cancel flag.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from data.errors import DataError
from inspector.errors import InspectorError
from models.errors import ModelError

USER_ERRORS = (ModelError, DataError, InspectorError, OSError, ValueError)


class TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object)


class Task(QRunnable):
    """One job. ``fn`` gets the task itself as keyword ``task`` when it asks for it."""

    def __init__(self, fn: Callable[..., Any], *args: Any, wants_task: bool = False, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.wants_task = wants_task
        self.signals = TaskSignals()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self.cancelled.set()

    def report(self, value: object) -> None:
        self.signals.progress.emit(value)

    def run(self) -> None:
        try:
            kwargs = dict(self.kwargs, task=self) if self.wants_task else self.kwargs
            result = self.fn(*self.args, **kwargs)
        except USER_ERRORS as exc:
            self.signals.failed.emit(_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a bug still becomes a message, never a dead UI
            traceback.print_exc()
            self.signals.failed.emit(f"unexpected error: {type(exc).__name__}: {_one_line(exc)}")
        else:
            self.signals.done.emit(result)
        finally:
            self.finished.set()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_running: set[Task] = set()


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
    if on_done:
        task.signals.done.connect(on_done)
    if on_failed:
        task.signals.failed.connect(on_failed)
    if on_progress:
        task.signals.progress.connect(on_progress)
    _running.add(task)
    task.signals.done.connect(lambda *_: _running.discard(task))
    task.signals.failed.connect(lambda *_: _running.discard(task))
    (_long_pool() if long_running else QThreadPool.globalInstance()).start(task)
    return task


_LONG: list[QThreadPool] = []


def _long_pool() -> QThreadPool:
    if not _LONG:
        pool = QThreadPool()
        pool.setMaxThreadCount(2)
        _LONG.append(pool)
    return _LONG[0]
