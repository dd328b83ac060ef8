"""Line outputs: verdicts out of the process, to the MES (MQTT) and the PLC (OPC UA, Modbus TCP).

``OutputSet`` is what the pipeline holds: it fans each part out to every output without waiting
on any of them, and turns their health changes into line events (a failing output raises an
alarm; the line goes on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from inspector.line.outputs.base import (
    BUFFERING,
    CONNECTED,
    DOWN_STATES,
    FAILING,
    STARTING,
    STOPPED,
    Health,
    LineInfo,
    LineState,
    Output,
    PartReport,
)
from inspector.line.outputs.registry import build_output, register_scheme
from inspector.output_urls import SCHEMES, OutputError, OutputSpec, check_output_urls, parse_output_url

log = logging.getLogger(__name__)

__all__ = [
    "BUFFERING",
    "CONNECTED",
    "FAILING",
    "SCHEMES",
    "STARTING",
    "STOPPED",
    "Health",
    "LineInfo",
    "LineState",
    "Output",
    "OutputError",
    "OutputSet",
    "OutputSpec",
    "PartReport",
    "build_outputs",
    "check_output_urls",
    "parse_output_url",
    "register_scheme",
]

EventSink = Callable[[str, str, str], None]  # level, kind, message


class OutputSet:
    """Every output of one line. All methods return at once (each output has its own thread)."""

    def __init__(self, outputs: Iterable[Output]) -> None:
        self.outputs = list(outputs)
        self._event: EventSink | None = None
        self._dropped_seen: dict[str, int] = {}
        self._reported_at = 0.0

    def __bool__(self) -> bool:
        return bool(self.outputs)

    def __iter__(self):
        return iter(self.outputs)

    def start(self, line: LineInfo, event: EventSink | None = None, ready_s: float = 0.0) -> None:
        """Start every output; wait up to ``ready_s`` seconds until none is still starting (an OPC UA
        server builds its address space for seconds of CPU: better before the first frame than
        during the first hundred)."""
        self._event = event
        for output in self.outputs:
            try:
                output.start(line, self._health_changed)
            except Exception as exc:  # an output that cannot start is an alarm, not a stop
                log.warning("%s did not start: %s", output.name, exc)
                output._update(
                    state=FAILING, detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                )
            output.line_state(LineState(running=True))
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline and not all(output.ready() for output in self.outputs):
            time.sleep(0.02)

    def judged(self, part: PartReport) -> None:
        self._feed("judged", part)

    def recorded(self, part: PartReport) -> None:
        self._feed("recorded", part)

    def _feed(self, feed: str, part: PartReport) -> None:
        for output in self.outputs:
            if output.feed == feed:
                try:
                    output.submit(part)
                except Exception as exc:  # never the line's problem
                    output._count("dropped")
                    log.warning("%s: part %s not handed over: %s", output.name, part.part, exc)

    def close(self, timeout: float = 5.0) -> None:
        """Tell every output the line stopped, give them ``timeout`` seconds to deliver, stop them."""
        for output in self.outputs:
            output.line_state(LineState(running=False))
        for output in self.outputs:
            try:
                output.close(timeout)
            except Exception as exc:
                log.warning("%s did not close cleanly: %s", output.name, exc)
        self.report_drops(0.0)

    def discard(self) -> None:
        """Release outputs that were built but will never start (the line failed to start)."""
        for output in self.outputs:
            try:
                output.close(0.0)
            except Exception as exc:  # a release must not hide why the line did not start
                log.warning("%s not released: %s", output.name, exc)

    def health(self) -> list[tuple[str, Health]]:
        return [(output.name, output.health()) for output in self.outputs]

    def report_drops(self, every_s: float = 10.0) -> None:
        """A warning event for parts newly lost to an output since the last report (at most one
        report per ``every_s`` seconds, so a full queue does not flood the ledger)."""
        if time.monotonic() - self._reported_at < every_s:
            return
        self._reported_at = time.monotonic()
        for output in self.outputs:
            dropped = output.health().dropped
            before = self._dropped_seen.get(output.name, 0)
            if dropped > before and self._event is not None:
                self._dropped_seen[output.name] = dropped
                self._event(
                    "warning", "output_dropped", f"{output.name}: {dropped - before} parts not delivered"
                )

    def _health_changed(self, output: Output, old: Health, new: Health) -> None:
        if self._event is None:
            return
        if new.state in DOWN_STATES and old.state not in DOWN_STATES:
            what = "buffering" if new.state == BUFFERING else "failing"
            self._event("alarm", "output_down", f"{output.name} {what}: {new.detail or 'not delivering'}")
        elif new.state == CONNECTED and old.state in DOWN_STATES:
            self._event("info", "output_up", f"{output.name} connected again")
        elif new.state == CONNECTED and old.state == STARTING:
            self._event("info", "output_ready", f"{output.name} {new.detail or 'connected'}")


def build_outputs(urls: Iterable[object], home: Path | None = None, station: str = "") -> OutputSet:
    """Check every URL first (nothing is opened if one is bad), then build the outputs."""
    specs = check_output_urls(urls)
    built: list[Output] = []
    try:
        for spec in specs:
            built.append(build_output(spec, home=home, station=station))
    except BaseException:
        OutputSet(built).discard()
        raise
    return OutputSet(built)
