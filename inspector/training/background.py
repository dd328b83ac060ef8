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
  overruns come back right after resuming (:class:`LineYield`). On POSIX the pause is SIGSTOP /
  SIGCONT (immediate, whatever the job is doing); elsewhere the job waits at its next step.

With no line running, a job runs at normal priority on every core: nothing to yield to.

The job reports ``(kind, value)`` progress items and ends with its result or a one-line error.
Nothing here imports Qt: the app wraps a :class:`BackgroundJob` in ``ui.workers``, and
``benchmarks/line_speed.py`` drives the same class to measure what a fine-tune costs the line.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspector.errors import USER_ERRORS

JOB_ERRORS = (*USER_ERRORS, ValueError)
"""What a job reports as one line: the user errors, and a bad value met inside the job."""
CTX = multiprocessing.get_context("spawn")
PROBE_INTERVAL_S = 0.2
CAN_STOP = hasattr(signal, "SIGSTOP") and hasattr(signal, "SIGCONT")


def one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def background_threads(line_running: bool, cpus: int | None = None) -> int:
    """Torch threads for a job: half the cores beside a running line (at least one), else all."""
    cpus = cpus or os.cpu_count() or 2
    return max(1, cpus // 2) if line_running else cpus


# ---------------------------------------------------------------------------------------------
# the job's own process


NORMAL = "normal priority"


def lower_priority(pid: int | None = None) -> str:
    """Put every thread of this process (or of process ``pid``, Linux only) below the line;
    returns what was done, in words.

    On Linux scheduling policy and nice value are per thread (new threads inherit them from the
    thread that creates them), so each thread that already exists is lowered.
    """
    done = NORMAL
    if sys.platform.startswith("linux"):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid or 'self'}/task")]
        except OSError:
            tids = [pid or 0]
        idle = hasattr(os, "SCHED_IDLE")
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, 19)
                done = "nice 19"
                if idle:
                    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except ProcessLookupError:
                continue  # that thread has ended meanwhile
            except OSError:
                idle = False
        return "idle priority (SCHED_IDLE)" if idle else done
    if pid is not None:
        return done  # another process: only Linux allows it; the job lowers itself at its next step
    if os.name == "nt":
        try:
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            if kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), 0x00000040):  # IDLE_PRIORITY_CLASS
                return "idle priority class"
        except (AttributeError, OSError):
            pass
        return done
    try:
        os.nice(19)
        return "nice 19"
    except (AttributeError, OSError):
        return done


class JobContext:
    """What the job function sees of its job (passed as keyword ``task``), like ``ui.workers.Task``:
    ``cancelled`` (discard), ``stopping`` ("stop now, keep the best"), ``report(value)``."""

    def __init__(
        self,
        channel: Any,
        cancelled: Any,
        stopping: Any,
        running: Any,
        paused_s: Any,
        low: Any,
        threads: Any,
        lowered: bool,
    ) -> None:
        self._channel = channel
        self.cancelled = cancelled
        self.stopping = stopping
        self._running = running
        self._paused_s = paused_s
        self._low = low
        self._threads = threads
        self._lowered = lowered

    def report(self, value: object) -> None:
        self._channel.put(("progress", value))

    def paused_seconds(self) -> float:
        """How long the line has held this job so far (a time budget does not count it)."""
        return float(self._paused_s.value)

    def wait_if_paused(self) -> None:
        """Where SIGSTOP does not exist, the job holds here between steps while paused."""
        while not self._running.wait(0.2):
            if self.cancelled.is_set():
                return

    def adapt(self) -> None:
        """A line has started since the job did: fewer threads, and below it (where the app
        could not lower this process from outside)."""
        if self._low.is_set() and not self._lowered:
            self._lowered = True
            self._channel.put(("priority", lower_priority()))
        threads = int(self._threads.value)
        if threads:
            import torch

            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def should_stop(self) -> bool:
        """Between steps: hold while paused, adapt to a line, and say whether to stop."""
        self.wait_if_paused()
        self.adapt()
        return self.cancelled.is_set() or self.stopping.is_set()


class _Channel:
    """The job's end of the pipe to the app (one message at a time, from any thread)."""

    def __init__(self, connection: Any) -> None:
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


def _job_main(
    target: str,
    args: tuple,
    kwargs: dict,
    connection: Any,
    flags: tuple[Any, ...],
) -> None:
    channel = _Channel(connection)
    low, threads = flags[4], int(flags[5].value)
    lowered = low.is_set()
    priority = lower_priority() if lowered else NORMAL
    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    try:
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
        context = JobContext(channel, *flags, lowered=lowered)
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


# ---------------------------------------------------------------------------------------------
# yielding to the line


class LineYield:
    """When to hold the job for the line: pause at an overrun, resume after a hold.

    The hold starts at ``hold_s``; an overrun within ``relapse_s`` of resuming doubles it (up to
    ``max_hold_s``), so a job that keeps hurting the line runs less and less.

    A pause is also a test: when the line keeps overrunning ``grace_s`` after the job stopped (its
    queue had time to clear), the job is not all that makes it late — the line is short of CPU
    without it, or its cycle budget is too tight. :meth:`line_overloaded` says so (for
    ``cooldown_s``), so the app can tell the engineer; the job stays held all the same, because any
    work beside a line that is already late makes it later (cores share caches and memory
    bandwidth, or are one core's hyperthreads, which no CPU priority separates).

    ``update`` takes the line's overrun counter (None: no line running) and the time, and says
    what to do.
    """

    def __init__(
        self,
        hold_s: float = 2.0,
        max_hold_s: float = 60.0,
        relapse_s: float = 10.0,
        grace_s: float = 1.0,
        cooldown_s: float = 30.0,
    ) -> None:
        self.base_hold_s, self.max_hold_s, self.relapse_s = hold_s, max_hold_s, relapse_s
        self.grace_s, self.cooldown_s = grace_s, cooldown_s
        self.hold_s = hold_s
        self.paused = False
        self.paused_at = 0.0
        self.until = 0.0
        self.resumed_at: float | None = None
        self.not_ours_until = 0.0
        self.seen: int | None = None
        self.pauses = 0
        self.overruns_seen = 0

    def line_overloaded(self, now: float) -> bool:
        """Whether the line was found to overrun without the job's help (recently)."""
        return now < self.not_ours_until

    def update(self, overruns: int | None, now: float) -> str | None:
        """``"pause"``, ``"resume"`` or None."""
        if overruns is None:  # no line (stopped): nothing to yield to
            self.seen = None
            return self._resume(now) if self.paused else None
        if self.seen is None or overruns < self.seen:  # a line (re)started or a new shift began
            self.seen = overruns
        if overruns > self.seen:
            self.overruns_seen += overruns - self.seen
            self.seen = overruns
            if self.paused:
                if now - self.paused_at >= self.grace_s:  # late without the job, too
                    self.not_ours_until = now + self.cooldown_s
                self.until = max(self.until, now + self.hold_s)  # the line is still late: hold on
                return None
            relapse = self.resumed_at is not None and now - self.resumed_at < self.relapse_s
            self.hold_s = min(self.max_hold_s, self.hold_s * 2) if relapse else self.base_hold_s
            self.paused = True
            self.pauses += 1
            self.paused_at = now
            self.until = now + self.hold_s
            return "pause"
        if self.paused and now >= self.until:
            return self._resume(now)
        return None

    def _resume(self, now: float) -> str:
        self.paused = False
        self.resumed_at = now
        return "resume"


@dataclass
class YieldState:
    """What the wizard shows about the job's place behind the line."""

    priority: str
    threads: int
    line_running: bool
    paused: bool
    pauses: int
    paused_s: float
    resume_in_s: float
    line_overloaded: bool = False  # the line overran while the job waited: not the job's doing


# ---------------------------------------------------------------------------------------------
# the app's side


_jobs: set[BackgroundJob] = set()
_jobs_lock = threading.Lock()


class BackgroundJob:
    """Run ``target`` (``"module:function"``) in a low-priority process; ``line`` says the line's
    overrun count (None when no line runs) and is watched while the job runs.

    ``target`` is called as ``fn(*args, **kwargs, task=JobContext)``; its arguments and result
    travel by pickle. Read progress with :meth:`take`; when :attr:`finished` is set, :attr:`result`
    or :attr:`error` holds how it ended. ``on_finished`` runs (in a reader thread) once the
    process has ended, before :attr:`finished` is set.

    ``pause_for_line=False`` is for jobs that time something (a latency measurement): a pause in
    the middle of a timed call would be measured as latency, so such a job only goes below the
    line, it is not stopped by it.
    """

    def __init__(
        self,
        target: str,
        *args: Any,
        line: Callable[[], int | None] | None = None,
        threads: int | None = None,
        policy: LineYield | None = None,
        on_finished: Callable[[], None] | None = None,
        pause_for_line: bool = True,
        **kwargs: Any,
    ) -> None:
        self.target = target
        self.pause_for_line = pause_for_line
        self._on_finished = on_finished
        self.line = line or (lambda: None)
        self.policy = policy or LineYield()
        line_running = self._probe() is not None
        self._fixed_threads = threads
        self.threads = threads or background_threads(line_running)
        self._cancelled, self._stopping, self._running = CTX.Event(), CTX.Event(), CTX.Event()
        self._running.set()
        self._low = CTX.Event()  # set: a line runs (or ran) beside the job
        if line_running:
            self._low.set()
        self._paused_total = CTX.Value("d", 0.0, lock=False)
        self._threads = CTX.Value("i", self.threads, lock=False)
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
        flags = (self._cancelled, self._stopping, self._running, self._paused_total, self._low, self._threads)
        self._process = CTX.Process(
            target=_job_main,
            args=(
                target,
                args,
                kwargs,
                sender,
                flags,
            ),
            name=f"inspector-job-{target.rpartition(':')[2]}",
            daemon=True,
        )
        with _jobs_lock:
            _jobs.add(self)
        self._process.start()
        sender.close()
        if self._low.is_set():
            self.priority = lower_priority(self._process.pid)  # Linux: at once, from here
        threading.Thread(target=self._read, name="job-reader", daemon=True).start()
        threading.Thread(target=self._watch, name="job-line-watch", daemon=True).start()

    # -- control ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def cancelled(self) -> Any:
        return self._cancelled

    def cancel(self) -> None:
        """End the job now and discard what it did (its files go with the caller's staging)."""
        self._cancelled.set()
        if self._process.is_alive():
            self._process.terminate()
            self._signal(getattr(signal, "SIGCONT", None))  # a stopped process only dies once it runs

    def stop(self) -> None:
        """Stop at the next step and keep what the job has (a fine-tune keeps its best epoch)."""
        self._stopping.set()
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
            self._running.clear()
            self._signal(getattr(signal, "SIGSTOP", None))

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is None:
                return
            self._signal(getattr(signal, "SIGCONT", None))
            self._running.set()
            self._paused_total.value += time.monotonic() - self._paused_at
            self._paused_at = None

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def paused_seconds(self) -> float:
        with self._lock:
            extra = time.monotonic() - self._paused_at if self._paused_at is not None else 0.0
            return self._paused_total.value + extra

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
        self._low.set()
        if not self._fixed_threads:
            self._threads.value = background_threads(True)
            self.threads = self._threads.value
        if self._process.pid is not None and self.priority != "starting":
            lowered = lower_priority(self._process.pid)
            if lowered != NORMAL:
                self.priority = lowered

    def _watch(self) -> None:
        """Apply :class:`LineYield` to the line's overrun counter while the job runs."""
        while not self.finished.wait(PROBE_INTERVAL_S):
            overruns = self._probe()
            self.line_running = overruns is not None
            if self.line_running and not self._low.is_set():
                self._yield_to_line()
            if not self.pause_for_line:
                continue
            action = self.policy.update(overruns, time.monotonic())
            if action == "pause" and not (self._cancelled.is_set() or self._stopping.is_set()):
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
                if self._low.is_set() and self.priority == NORMAL:
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
            why = "cancelled" if self._cancelled.is_set() else f"the job's process ended (exit code {code})"
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
