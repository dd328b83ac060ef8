"""What a shift or lot report needs from the ledger, read in one streamed pass.

A station at 25 fps writes ~720,000 results a shift. SQL dialects disagree on time buckets and
percentiles, so the few compact columns are streamed in pages and folded here (counts per bucket,
labels, reviews) while the latencies are kept as float32 arrays for exact percentiles: about 12 MB
for a full shift. Runs and model versions come back as plain dicts, no SQLAlchemy outside.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import Connection, Select, func, select

from inspector.store.errors import LedgerError
from inspector.store.schema import Result, Run, runs_with_names

PAGE = 20_000
MAX_ROWS = 20_000_000  # a month of one station at 7 fps: beyond it, ask for a narrower window
BUCKET_CHOICES_MIN = (1, 2, 5, 15, 30, 60, 120, 240, 720, 1440)
MAX_BUCKETS = 48
STAGES = ("queue", "infer", "total")


@dataclass
class Bucket:
    start: datetime
    verdicts: Counter = field(default_factory=Counter)

    @property
    def parts(self) -> int:
        return sum(self.verdicts.values())


@dataclass
class LedgerSummary:
    """Counts and distributions of the results in one window (UTC datetimes throughout)."""

    parts: int = 0
    first: datetime | None = None
    last: datetime | None = None
    verdicts: Counter = field(default_factory=Counter)
    defects: Counter = field(default_factory=Counter)  # predicted class of NG parts
    unsure: Counter = field(default_factory=Counter)  # best guess of UNSURE parts
    reviewed: int = 0
    overrides: int = 0  # reviewed parts whose label QA changed
    bucket_minutes: int = 60
    buckets: list[Bucket] = field(default_factory=list)
    latency_ms: dict[str, np.ndarray] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    parts_by_run: Counter = field(default_factory=Counter)

    def versions(self) -> list[dict]:
        """Model versions that judged parts in the window, most parts first."""
        seen: dict[str, dict] = {}
        for run in self.runs:
            entry = seen.setdefault(
                run["model_sha256"],
                {"name": run["model_name"], "sha256": run["model_sha256"], "parts": 0, "runs": 0},
            )
            entry["parts"] += self.parts_by_run.get(run["id"], 0)
            entry["runs"] += 1
        return sorted(seen.values(), key=lambda v: -v["parts"])


def bucket_minutes(span: timedelta) -> int:
    """The smallest round bucket that splits the window into at most ``MAX_BUCKETS`` bars."""
    minutes = span.total_seconds() / 60
    for choice in BUCKET_CHOICES_MIN:
        if minutes / choice <= MAX_BUCKETS:
            return choice
    return int(np.ceil(minutes / MAX_BUCKETS / 1440)) * 1440


def _utc(value: datetime) -> datetime:
    """Aggregates skip the column type's processing: SQLite hands back naive UTC text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _bucket_start(moment: datetime, origin: datetime, minutes: int) -> datetime:
    step = timedelta(minutes=minutes)
    return origin + step * ((moment - origin) // step)


def summarize(
    connection: Connection, where: Select, origin: datetime | None, until: datetime | None
) -> LedgerSummary:
    """Fold the results that ``where`` selects (a ``select(Result.id)``-shaped filter).

    ``origin``/``until`` fix the trend's buckets to the requested window (a shift's bars start at
    its first minute); without them the data's own first and last part do.
    """
    count, first, last = connection.execute(
        select(func.count(), func.min(Result.captured_at), func.max(Result.captured_at)).where(
            Result.id.in_(where)
        )
    ).one()
    if count > MAX_ROWS:
        raise LedgerError(f"{count:,} results in this window (at most {MAX_ROWS:,}): ask for a shorter one")
    summary = LedgerSummary()
    if not count:
        return summary
    origin = origin or _utc(first)
    end = until or _utc(last)
    summary.bucket_minutes = bucket_minutes(max(end - origin, timedelta(minutes=1)))
    stmt = (
        select(
            Result.run_id,
            Result.captured_at,
            Result.verdict,
            Result.label,
            Result.reviewed,
            Result.reviewed_label,
            Result.latency_queue_ms,
            Result.latency_infer_ms,
            Result.latency_total_ms,
        )
        .where(Result.id.in_(where))
        .order_by(Result.captured_at, Result.id)
        .execution_options(yield_per=PAGE)
    )
    latencies = {stage: np.full(count, np.nan, np.float32) for stage in STAGES}
    buckets: dict[datetime, Bucket] = {}
    index = -1
    for index, row in enumerate(connection.execute(stmt)):
        if index >= count:  # rows written since the count: the report covers what it counted
            index -= 1
            break
        summary.first = summary.first or row.captured_at
        summary.last = row.captured_at
        start = _bucket_start(row.captured_at, origin, summary.bucket_minutes)
        buckets.setdefault(start, Bucket(start)).verdicts[row.verdict] += 1
        summary.parts_by_run[row.run_id] += 1
        summary.verdicts[row.verdict] += 1
        if row.verdict == "NG" and row.label:
            summary.defects[row.label] += 1
        elif row.verdict == "UNSURE" and row.label:
            summary.unsure[row.label] += 1
        if row.reviewed:
            summary.reviewed += 1
            if row.reviewed_label is not None and row.reviewed_label != row.label:
                summary.overrides += 1
        for stage, value in zip(
            STAGES, (row.latency_queue_ms, row.latency_infer_ms, row.latency_total_ms), strict=True
        ):
            if value is not None:
                latencies[stage][index] = value
    summary.parts = index + 1
    summary.latency_ms = {stage: values[~np.isnan(values)] for stage, values in latencies.items()}
    summary.buckets = _with_empty_buckets(buckets, origin, end, summary.bucket_minutes)
    summary.runs = _runs(connection, set(summary.parts_by_run))
    return summary


def _with_empty_buckets(
    buckets: dict[datetime, Bucket], origin: datetime, end: datetime, minutes: int
) -> list[Bucket]:
    """Every bar of the window, empty ones too: a stopped line must show as a gap, not vanish."""
    step = timedelta(minutes=minutes)
    moment = origin
    while moment <= end and len(buckets) < 10 * MAX_BUCKETS:
        buckets.setdefault(moment, Bucket(moment))
        moment += step
    return [buckets[key] for key in sorted(buckets)]


def _runs(connection: Connection, run_ids: set[int]) -> list[dict]:
    if not run_ids:
        return []
    stmt = runs_with_names().where(Run.id.in_(run_ids)).order_by(Run.started_at, Run.id)
    return [dict(row._mapping) for row in connection.execute(stmt)]
