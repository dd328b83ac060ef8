"""The job's own process: what runs there, and what the job function sees of its job.

``job_main`` is the spawned process's entry point: it sets the torch threads and the priority,
imports the job function by the name the runner derived, calls it with ``task=JobContext`` and
sends back its result or one line of error. Nothing here may import Qt or the app's state:
the process starts from a bare interpreter.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inspector.errors import USER_ERRORS
from inspector.jobs.priority import NORMAL, lower_priority

if TYPE_CHECKING:
    from ctypes import c_double, c_int
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event

JOB_ERRORS = (*USER_ERRORS, ValueError)
"""What a job reports as one line: the user errors, and a bad value met inside the job."""


def one_line(exc: BaseException) -> str:
    """A job's error as the engineer sees it: the first line, or the file an OSError names."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class JobFlags:
    """The switches the app and the job's process share (made by the app before the spawn; a
    process can only inherit them then), named so that neither side counts positions."""

    cancelled: Event  # discard: the caller's staging folder takes what the job wrote
    stopping: Event  # "stop now, keep the best" (a fine-tune keeps its best epoch)
    running: Event  # cleared while paused, for where SIGSTOP does not exist
    paused_s: c_double  # seconds the line has held the job so far
    low: Event  # a line runs (or ran) beside the job: stay below it
    threads: c_int  # torch threads to use; fewer once a line starts


class JobContext:
    """What the job function sees of its job (passed as keyword ``task``), like ``ui.workers.Task``:
    ``cancelled`` (discard), ``stopping`` ("stop now, keep the best"), ``report(value)``."""

    def __init__(self, channel: _Channel, flags: JobFlags, lowered: bool) -> None:
        self._channel = channel
        self._flags = flags
        self.cancelled = flags.cancelled
        self.stopping = flags.stopping
        self._lowered = lowered

    def report(self, value: object) -> None:
        self._channel.put(("progress", value))

    def paused_seconds(self) -> float:
        """How long the line has held this job so far (a time budget does not count it)."""
        return float(self._flags.paused_s.value)

    def wait_if_paused(self) -> None:
        """Where SIGSTOP does not exist, the job holds here between steps while paused."""
        while not self._flags.running.wait(0.2):
            if self.cancelled.is_set():
                return

    def adapt(self) -> None:
        """A line has started since the job did: fewer threads, and below it (where the app
        could not lower this process from outside)."""
        if self._flags.low.is_set() and not self._lowered:
            self._lowered = True
            self._channel.put(("priority", lower_priority()))
        threads = int(self._flags.threads.value)
        if threads:
            import torch  # already loaded by job_main: only a name here

            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def should_stop(self) -> bool:
        """Between steps: hold while paused, adapt to a line, and say whether to stop."""
        self.wait_if_paused()
        self.adapt()
        return self.cancelled.is_set() or self.stopping.is_set()


class _Channel:
    """The job's end of the pipe to the app (one message at a time, from any thread)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def put(self, item: tuple[str, Any]) -> None:
        with self._lock:
            self._connection.send(item)

    def close(self) -> None:
        self._connection.close()


def _watch_parent() -> None:
    """A job never outlives the app that started it (killed, crashed): it ends itself."""
    parent = multiprocessing.parent_process()
    while parent is not None:
        parent.join(1.0)
        if not parent.is_alive():
            os._exit(3)


def job_main(target: str, args: tuple, kwargs: dict, connection: Connection, flags: JobFlags) -> None:
    """The spawned process's entry: ``target`` is ``"module:function"`` as the runner derived it."""
    channel = _Channel(connection)
    threads = int(flags.threads.value)
    lowered = flags.low.is_set()
    priority = lower_priority() if lowered else NORMAL
    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    try:
        # Here, not at the top: this module is imported by the app too, which must not pay for
        # torch to start a job; in the job's process the threads must be set before any work.
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        try:
            import cv2

            cv2.setNumThreads(threads)
        except ImportError:
            pass
        module, _, name = target.partition(":")
        fn = getattr(importlib.import_module(module), name)
        if lowered:
            priority = lower_priority()  # threads that imports started (BLAS pools) go below too
        started = {"priority": priority, "threads": torch.get_num_threads(), "pid": os.getpid()}
        channel.put(("started", started))
        context = JobContext(channel, flags, lowered=lowered)
        result = fn(*args, **kwargs, task=context)
    except JOB_ERRORS as exc:
        channel.put(("failed", one_line(exc)))
    except BaseException as exc:  # a bug still becomes a message, never a dead wizard
        traceback.print_exc()
        channel.put(("failed", f"unexpected error: {type(exc).__name__}: {one_line(exc)}"))
    else:
        try:
            channel.put(("done", result))
        except Exception as exc:  # e.g. a result that cannot be pickled
            channel.put(("failed", f"unexpected error: the result could not be sent back ({one_line(exc)})"))
    finally:
        channel.close()
