"""An engineer's job beside a running line: its own process, below the line in every way.

The fine-tune wizard trains, evaluates and measures models on the same PC that runs the line
(measured before this existed, with training in the app's process on 2 cores: frame-to-verdict
p95 63 ms and 7 overruns in 300 parts against a 50 ms budget). So such work runs here instead:

- in a **separate process** (``spawn``), so its torch thread pool, its memory and its GIL are its
  own and cannot stall the line's inference thread;

and, while a line runs (from the start, or from the moment one starts):

- at the **lowest CPU priority** the OS offers (Linux ``SCHED_IDLE``: it only gets cycles the line
  leaves idle; elsewhere nice 19 / the idle priority class), set on every thread of the process.
  An unprivileged process cannot raise it again, so it stays there after the line stops;
- with **fewer torch threads** (half the cores; a training job adopts it at its next step);
- **paused** as soon as the line reports an overrun, and resumed after a hold that grows when
  overruns come back right after resuming (:class:`~inspector.jobs.line_yield.LineYield`). On
  POSIX the pause is SIGSTOP / SIGCONT (immediate, whatever the job is doing); elsewhere the job
  waits at its next step.

With no line running, a job runs at normal priority on every core: nothing to yield to.

The job reports ``(kind, value)`` progress items and ends with its result or a one-line error.
This module is the app's side; the job's process runs :mod:`inspector.jobs.child`. Nothing here
imports Qt: the app wraps a :class:`BackgroundJob` in ``ui.workers``, and
``benchmarks/line_beside.py`` drives the same class to measure what a fine-tune costs the line.
"""

from __future__ import annotations

import atexit
import inspect
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from inspector.jobs.child import JobFlags, job_main
from inspector.jobs.line_yield import LineYield, YieldState
from inspector.jobs.priority import NORMAL, background_threads, lower_priority

CTX = multiprocessing.get_context("spawn")
PROBE_INTERVAL_S = 0.2
CAN_STOP = hasattr(signal, "SIGSTOP") and hasattr(signal, "SIGCONT")
JOB_PACKAGES: tuple[str, ...] = ("inspector.jobs",)
"""Where job functions live (the tests add their own module of toy jobs)."""


def job_target(fn: Callable[..., Any]) -> str:
    """``"module:function"`` for the spawned process to import, refusing what it could not import
    by that name (a lambda, a method, a nested function, a partial) or what lives outside
    :data:`JOB_PACKAGES` (every job in one place, reviewed as one)."""
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", "")
    in_package = any(module == p or module.startswith(p + ".") for p in JOB_PACKAGES)
    found = getattr(sys.modules.get(module), name, None) if name.isidentifier() else None
    if not (inspect.isfunction(fn) and in_package and found is fn):
        what = f"{module}.{name}" if inspect.isfunction(fn) else repr(fn)
        raise ValueError(f"{what} is not a module-level function of {' or '.join(JOB_PACKAGES)}")
    return f"{module}:{name}"


# ---------------------------------------------------------------------------------------------
# the app's side


_jobs: set[BackgroundJob] = set()
_jobs_lock = threading.Lock()


class BackgroundJob:
    """Run ``fn`` (a module-level function of :mod:`inspector.jobs`) in a low-priority process;
    ``line`` says the line's overrun count (None when no line runs) and is watched while the job
    runs.

    ``fn`` is called as ``fn(*args, **kwargs, task=JobContext)`` in the job's process; its
    arguments and result travel by pickle. Read progress with :meth:`take`; when :attr:`finished`
    is set, :attr:`result` or :attr:`error` holds how it ended. ``on_finished`` runs (in a reader
    thread) once the process has ended, before :attr:`finished` is set.

    ``pause_for_line=False`` is for jobs that time something (a latency measurement): a pause in
    the middle of a timed call would be measured as latency, so such a job only goes below the
    line, it is not stopped by it.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        line: Callable[[], int | None] | None = None,
        threads: int | None = None,
        policy: LineYield | None = None,
        on_finished: Callable[[], None] | None = None,
        pause_for_line: bool = True,
        **kwargs: Any,
    ) -> None:
        self.target = job_target(fn)  # refused here, in the caller's process, before any spawn
        self.pause_for_line = pause_for_line
        self._on_finished = on_finished
        self.line = line or (lambda: None)
        self.policy = policy or LineYield()
        line_running = self._probe() is not None
        self._fixed_threads = threads
        self.threads = threads or background_threads(line_running)
        self._flags = JobFlags(
            cancelled=CTX.Event(),
            stopping=CTX.Event(),
            running=CTX.Event(),
            paused_s=CTX.Value("d", 0.0, lock=False),
            low=CTX.Event(),
            threads=CTX.Value("i", self.threads, lock=False),
        )
        self._flags.running.set()
        if line_running:
            self._flags.low.set()
        # A pipe, not a Queue: once the job's process is gone its end closes, so a message cut
        # short (the process killed mid-send) ends the reader instead of hanging it.
        self._channel, sender = CTX.Pipe(duplex=False)
        self._items: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._paused_at: float | None = None
        self.priority = "starting"
        self.line_running = line_running
        self.result: Any = None
        self.error: str | None = None
        self.finished = threading.Event()
        self._process = CTX.Process(
            target=job_main,
            args=(self.target, args, kwargs, sender, self._flags),
            name=f"inspector-job-{fn.__name__}",
            daemon=True,
        )
        with _jobs_lock:
            _jobs.add(self)
        self._process.start()
        sender.close()
        if self._flags.low.is_set():
            self.priority = lower_priority(self._process.pid)  # Linux: at once, from here
        threading.Thread(target=self._read, name="job-reader", daemon=True).start()
        threading.Thread(target=self._watch, name="job-line-watch", daemon=True).start()

    # -- control ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def cancelled(self) -> Any:
        return self._flags.cancelled

    def cancel(self) -> None:
        """End the job now and discard what it did (its files go with the caller's staging)."""
        self._flags.cancelled.set()
        if self._process.is_alive():
            self._process.terminate()
            self._signal(getattr(signal, "SIGCONT", None))  # a stopped process only dies once it runs

    def stop(self) -> None:
        """Stop at the next step and keep what the job has (a fine-tune keeps its best epoch)."""
        self._flags.stopping.set()
        self.resume()

    def terminate(self, timeout: float = 10.0) -> None:
        """End the process and wait for it (the app is quitting)."""
        self.cancel()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout)

    def pause(self) -> None:
        with self._lock:
            if self._paused_at is not None or self.finished.is_set():
                return
            self._paused_at = time.monotonic()
            self._flags.running.clear()
            self._signal(getattr(signal, "SIGSTOP", None))

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is None:
                return
            self._signal(getattr(signal, "SIGCONT", None))
            self._flags.running.set()
            self._flags.paused_s.value += time.monotonic() - self._paused_at
            self._paused_at = None

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def paused_seconds(self) -> float:
        with self._lock:
            extra = time.monotonic() - self._paused_at if self._paused_at is not None else 0.0
            return self._flags.paused_s.value + extra

    def state(self) -> YieldState:
        return YieldState(
            priority=self.priority,
            threads=self.threads,
            line_running=self.line_running,
            paused=self.paused,
            pauses=self.policy.pauses,
            paused_s=self.paused_seconds(),
            resume_in_s=max(0.0, self.policy.until - time.monotonic()) if self.paused else 0.0,
            line_overloaded=self.policy.line_overloaded(time.monotonic()),
        )

    def take(self) -> list[tuple[str, Any]]:
        """Progress items reported since the last call (any thread; the UI drains it on a timer)."""
        items = []
        while True:
            try:
                items.append(self._items.get_nowait())
            except queue.Empty:
                return items

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # -- threads -----------------------------------------------------------------------------

    def _signal(self, signum: int | None) -> None:
        if signum is None or not CAN_STOP or not self._process.is_alive():
            return
        try:
            os.kill(self._process.pid, signum)
        except ProcessLookupError:
            pass

    def _probe(self) -> int | None:
        try:
            return self.line()
        except Exception:  # a line that is going away is no line
            return None

    def _yield_to_line(self) -> None:
        """A line has started beside the job: below it from now on (for good)."""
        self._flags.low.set()
        if not self._fixed_threads:
            self._flags.threads.value = background_threads(True)
            self.threads = self._flags.threads.value
        if self._process.pid is not None and self.priority != "starting":
            lowered = lower_priority(self._process.pid)
            if lowered != NORMAL:
                self.priority = lowered

    def _watch(self) -> None:
        """Apply :class:`LineYield` to the line's overrun counter while the job runs."""
        while not self.finished.wait(PROBE_INTERVAL_S):
            overruns = self._probe()
            self.line_running = overruns is not None
            if self.line_running and not self._flags.low.is_set():
                self._yield_to_line()
            if not self.pause_for_line:
                continue
            action = self.policy.update(overruns, time.monotonic())
            if action == "pause" and not (self._flags.cancelled.is_set() or self._flags.stopping.is_set()):
                self.pause()
            elif action == "resume":
                self.resume()

    def _read(self) -> None:
        """Blocking reads off the job's pipe (a paused job may leave a message half-sent)."""
        outcome: tuple[str, Any] | None = None
        while outcome is None:
            try:
                kind, value = self._channel.recv()
            except (EOFError, OSError):
                break  # the process has ended (or was killed)
            except Exception as exc:  # a message that cannot be unpickled
                outcome = ("failed", f"unexpected error: a message from the job was unreadable ({exc})")
                break
            if kind == "started":
                self.priority = value["priority"]
                self.threads = value["threads"]
                if self._flags.low.is_set() and self.priority == NORMAL:
                    self._yield_to_line()  # the line started while the job was starting up
            elif kind == "priority":
                self.priority = value
            elif kind == "progress":
                self._items.put(value)
            else:
                outcome = (kind, value)
        self._channel.close()
        self._process.join(10.0)
        if outcome is None:
            code = self._process.exitcode
            cancelled = self._flags.cancelled.is_set()
            why = "cancelled" if cancelled else f"the job's process ended (exit code {code})"
            outcome = ("failed", why)
        self.resume()
        if outcome[0] == "done":
            self.result = outcome[1]
        else:
            self.error = str(outcome[1])
        with _jobs_lock:
            _jobs.discard(self)
        if self._on_finished is not None:
            try:
                self._on_finished()
            except Exception:  # the job has ended either way
                traceback.print_exc()
        self.finished.set()


def terminate_all() -> None:
    """End every job still running (the app is quitting; jobs must not outlive it)."""
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.terminate()


atexit.register(terminate_all)
