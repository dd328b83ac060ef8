"""When a job holds for the line: the pause/resume policy, and what the wizard shows of it.

Pure bookkeeping on the line's overrun counter and the clock (no process, no Qt), so the policy
is tested on numbers alone and the UI can import :class:`YieldState` without the runner.
"""

from __future__ import annotations

from dataclasses import dataclass


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
