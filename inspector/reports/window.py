"""Which parts a report covers: a shift (by the station's local shift times), a lot, or a time range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from inspector.errors import InspectorError

SHIFT_CHOICES = ("current", "last")


@dataclass(frozen=True)
class ReportWindow:
    title: str  # what the report's header says it covers
    since: datetime | None = None  # UTC, inclusive
    until: datetime | None = None  # UTC, exclusive
    lot: str | None = None
    station: str | None = None


def _starts(shift_starts: list[str]) -> list[time]:
    return sorted(time.fromisoformat(text) for text in shift_starts)


def shift_window(which: str, shift_starts: list[str], now: datetime) -> tuple[datetime, datetime, int]:
    """The current or the last complete shift around ``now`` (aware, local): start, end, number.

    Shifts are numbered 1… in the order of ``shift_starts`` within a day; a shift that starts
    before midnight and ends after it belongs to the day it starts.
    """
    if which not in SHIFT_CHOICES:
        raise InspectorError(f"--shift {which!r}: choose current or last")
    starts = _starts(shift_starts)
    boundaries = [
        (datetime.combine(now.date() + timedelta(days=day), start, now.tzinfo), number)
        for day in (-2, -1, 0, 1)
        for number, start in enumerate(starts, 1)
    ]
    begun = [index for index, (moment, _) in enumerate(boundaries) if moment <= now]
    index = begun[-1] - (1 if which == "last" else 0)
    start, number = boundaries[index]
    return start, boundaries[index + 1][0], number


def resolve(
    *,
    shift: str | None,
    lot: str | None,
    since: datetime | None,
    until: datetime | None,
    station: str | None,
    shift_starts: list[str],
    now: datetime | None = None,
) -> ReportWindow:
    """One window from the CLI's choices: exactly one of --shift, --lot, --since."""
    chosen = [name for name, value in (("--shift", shift), ("--lot", lot), ("--since", since)) if value]
    if len(chosen) != 1:
        raise InspectorError("say what the report covers: one of --shift current|last, --lot LOT, --since …")
    if until is not None and since is None:
        raise InspectorError("--until needs --since")
    if shift:
        local_now = (now or datetime.now(timezone.utc)).astimezone()
        start, end, number = shift_window(shift, shift_starts, local_now)
        title = f"Shift {number}, {start:%Y-%m-%d %H:%M} – {end:%H:%M}" + (
            " (in progress)" if shift == "current" else ""
        )
        return ReportWindow(
            title, start.astimezone(timezone.utc), end.astimezone(timezone.utc), None, station
        )
    if lot:
        return ReportWindow(f"Lot {lot}", lot=lot, station=station)
    assert since is not None
    if until is not None and until <= since:
        raise InspectorError("--until must be later than --since")
    local = since.astimezone()
    title = f"{local:%Y-%m-%d %H:%M} – " + (f"{until.astimezone():%Y-%m-%d %H:%M}" if until else "now")
    return ReportWindow(title, since, until, None, station)
