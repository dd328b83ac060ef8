"""Plain dataclasses the pipeline and the CLI hand to the ledger; no SQLAlchemy in sight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

VERDICTS = ("OK", "NG", "UNSURE", "ERROR")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
EVENT_LEVELS = ("info", "warning", "alarm")
# Who may do what (inspector/access.py): the three kinds of people who use the product.
ROLES = ("operator", "qa", "engineer")


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
class ShadowRecord:
    """A part on which a shadow candidate disagreed with the deployed model: both answers."""

    frame_index: int
    captured_at: datetime
    deployed_verdict: str
    deployed_label: str | None
    deployed_confidence: float | None
    verdict: str
    label: str | None
    confidence: float | None
    error: str | None = None


@dataclass
class ShadowUpdate:
    """What a run's writer hands the ledger for its shadow candidate at one commit.

    The counts are the run's totals so far (they replace the stored ones: one writer per run);
    ``disagreements`` are the new ones since the last commit. ``confusion`` is
    ``{"labels": {deployed: {candidate: n}}, "verdicts": {deployed: {candidate: n}}}`` over the
    parts both models judged.
    """

    shadow_run_id: int
    judged: int
    agreed: int
    shed: int
    confusion: dict
    disagreements: list[ShadowRecord] = field(default_factory=list)


@dataclass
class ResultFilter:
    """What QA asks for: a time range (``since`` inclusive, ``until`` exclusive) and narrowing terms.

    Naive datetimes are read as UTC. ``labels`` match the predicted label.
    ``shadow_disagreements``: only parts on which a shadow candidate disagreed with the deployed
    model (that candidate only, when ``shadow_model_version_id`` is given).
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
    shadow_disagreements: bool = False
    shadow_model_version_id: int | None = None
