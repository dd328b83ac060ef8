"""Plain dataclasses the pipeline and the CLI hand to the ledger; no SQLAlchemy in sight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

VERDICTS = ("OK", "NG", "UNSURE", "ERROR")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
EVENT_LEVELS = ("info", "warning", "alarm")


@dataclass
class ResultRecord:
    """One frame's outcome, built by the pipeline (``captured_at`` must be timezone-aware)."""

    run_id: int
    frame_index: int
    captured_at: datetime
    verdict: str
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    ood_score: float | None
    latency_queue_ms: float | None
    latency_infer_ms: float | None
    latency_total_ms: float | None
    image_ref: str | None = None
    truth: str | None = None
    error: str | None = None


@dataclass
class ResultFilter:
    """What QA asks for: a time range (``since`` inclusive, ``until`` exclusive) and narrowing terms.

    Naive datetimes are read as UTC. ``labels`` match the predicted label.
    """

    since: datetime | None = None
    until: datetime | None = None
    verdicts: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    reviewed: bool | None = None
    run_id: int | None = None
    lot: str | None = None
    model_version_id: int | None = None
    station: str | None = None
