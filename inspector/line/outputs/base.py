"""The line-output plug-in interface: what every output (MQTT, OPC UA, Modbus, …) is given and owes.

An output receives one :class:`PartReport` per judged part and the line's :class:`LineState`
(running or stopped); it must never block the caller. Each output owns its thread (and its
queue): ``submit`` only hands the part over, so a slow or dead broker, PLC or network is that
output's problem, counted in its :class:`Health`, and never the line's.

To add an output: subclass :class:`ThreadedOutput` (or :class:`Output`), and register its URL
scheme in :mod:`inspector.line.outputs.registry`.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar

from inspector.output_urls import OutputSpec

log = logging.getLogger(__name__)

# Health states, as the Live screen shows them.
STARTING = "starting"
CONNECTED = "connected"  # delivering (a server: listening)
BUFFERING = "buffering"  # cannot deliver now, keeps what it owes (``pending``)
FAILING = "failing"  # cannot deliver, and what comes is lost or refused
STOPPED = "stopped"
DOWN_STATES = (BUFFERING, FAILING)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class LineInfo:
    """What stays the same for a whole run."""

    station: str
    run_id: int | None
    model_name: str
    model_sha256: str
    classes: tuple[str, ...] = ()
    source: str = ""
    lot: str = ""


@dataclass(frozen=True)
class PartReport:
    """One judged part, as every output sees it (times are timezone-aware UTC)."""

    part: int  # 1, 2, 3 … within the run, ERROR parts included
    frame: int  # the source's frame index (the ledger's ``frame_index``)
    verdict: str  # OK | NG | UNSURE | ERROR
    label: str | None
    confidence: float | None
    reason: str
    captured_at: datetime
    judged_at: datetime
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class LineState:
    running: bool
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True)
class Health:
    state: str = STARTING
    pending: int = 0  # parts kept, not yet delivered
    sent: int = 0  # parts delivered (MQTT: acknowledged by the broker)
    dropped: int = 0  # parts lost to this output (full queue or spool, errors)
    detail: str = ""

    def describe(self) -> str:
        text = f"{self.state} {self.pending}" if self.state == BUFFERING else self.state
        return f"{text}: {self.detail}" if self.detail else text


HealthListener = Callable[["Output", Health, Health], None]


class Output:
    """The base protocol. ``feed`` says when parts arrive: ``judged`` (as soon as the verdict
    exists: outputs that drive a reject gate) or ``recorded`` (after the ledger committed it:
    outputs that keep records, such as the MES)."""

    scheme: ClassVar[str] = ""
    feed: ClassVar[str] = "recorded"

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.name = spec.redacted()
        self._health = Health()
        self._health_lock = threading.Lock()
        self._listener: HealthListener | None = None

    # -- called by the pipeline (must return at once) -------------------------------------------

    def start(self, line: LineInfo, listener: HealthListener | None = None) -> None:
        self._listener = listener

    def submit(self, part: PartReport) -> None:
        raise NotImplementedError

    def line_state(self, state: LineState) -> None:
        """The line started or stopped (default: ignored)."""

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, then stop."""

    def ready(self) -> bool:
        """Done starting (up, or known to be down): the line waits for this, briefly, at start."""
        return True

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> Health:
        with self._health_lock:
            return self._health

    def _update(self, **changes: Any) -> None:
        with self._health_lock:
            old = self._health
            new = replace(old, **changes)
            self._health = new
        if new.state != old.state and self._listener is not None:
            try:
                self._listener(self, old, new)
            except Exception as exc:  # reporting must not kill the output
                log.warning("%s: health listener failed: %s", self.name, exc)

    def _count(self, name: str, n: int = 1) -> None:
        with self._health_lock:
            self._health = replace(self._health, **{name: getattr(self._health, name) + n})


_STOP = object()


class ThreadedOutput(Output):
    """An output with its own thread and a bounded in-memory queue.

    Subclasses implement ``serve()`` (run on the output's thread until ``self.stopping`` is set
    and the queue is drained or ``self.deadline`` passed), taking items with ``next_item``.
    """

    queue_size: ClassVar[int] = 10_000

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__(spec)
        self.items: queue.Queue[Any] = queue.Queue(self.queue_size)
        self.stopping = threading.Event()
        self.deadline: float | None = None
        self.line: LineInfo | None = None
        self._thread: threading.Thread | None = None

    def start(self, line: LineInfo, listener: HealthListener | None = None) -> None:
        super().start(line, listener)
        self.line = line
        self._thread = threading.Thread(target=self._thread_main, name=f"output-{self.scheme}", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        return self.health().state != STARTING or self._thread is None or not self._thread.is_alive()

    def _thread_main(self) -> None:
        try:
            self.serve()
        except Exception as exc:  # a broken output is counted, never the line's end
            log.warning("%s stopped: %s", self.name, exc, exc_info=True)
            self._update(state=FAILING, detail=_one_line(exc))
            while True:  # what still comes is lost to this output: count it
                try:
                    item = self.items.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, PartReport):
                    self._count("dropped")

    def submit(self, part: PartReport) -> None:
        self._put(part)

    def line_state(self, state: LineState) -> None:
        self._put(state)

    def _put(self, item: Any) -> None:
        if self._thread is not None and not self._thread.is_alive():
            if isinstance(item, PartReport):
                self._count("dropped")
            return
        try:
            self.items.put_nowait(item)
        except queue.Full:
            if isinstance(item, PartReport):
                self._count("dropped")

    def next_item(self, timeout: float) -> Any:
        """The next part or state, or None after ``timeout`` seconds."""
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if item is _STOP else item

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self.deadline = time.monotonic() + timeout
        self.stopping.set()
        try:
            self.items.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(timeout + 1.0)  # a hung output holds the stop up a second, no more
        if self.health().state != FAILING:
            self._update(state=STOPPED)

    def serve(self) -> None:
        raise NotImplementedError


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_port_free(host: str, port: int) -> str | None:
    """Why nothing can listen on host:port (None: it can), in words."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            hint = " (ports below 1024 need privileges; use e.g. :5020)" if port < 1024 else ""
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"
    return None
