"""The ledger's tables as SQLAlchemy 2 ORM classes.

The Alembic migrations in ``migrations/versions`` must build exactly this schema; a test compares
them. Change both together: a new revision file, never an edit of a shipped one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    Text,
    false,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from inspector.store.records import EVENT_LEVELS, ROLES, RUN_STATUSES, VERDICTS

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Plain JSON (text) on every backend: it keeps key order, and probabilities are in class order.
JsonType = JSON()
# 64-bit ids where rows pile up for years; SQLite needs plain INTEGER for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps in, timestamps out, always timezone-aware UTC.

    SQLite keeps no zone, so values are stored as naive UTC there (which also keeps its string
    comparisons in time order); naive inputs are taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    profile: Mapped[dict | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    config: Mapped[dict | None] = mapped_column(JsonType)
    metrics: Mapped[dict | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        Index(None, "status"),
        Index(None, "started_at"),
        Index(None, "lot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    operator: Mapped[str] = mapped_column(Text)
    lot: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(Text)
    stats: Mapped[dict | None] = mapped_column(JsonType)


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (
        CheckConstraint(_one_of("verdict", VERDICTS), name="verdict"),
        # QA's review query: verdict × reviewed × time range, newest first.
        Index(None, "verdict", "reviewed", "captured_at"),
        Index(None, "captured_at"),
        Index(None, "run_id", "frame_index"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    frame_index: Mapped[int] = mapped_column(BigInteger)
    captured_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verdict: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    probabilities: Mapped[dict | None] = mapped_column(JsonType)
    ood_score: Mapped[float | None] = mapped_column(Float)
    latency_queue_ms: Mapped[float | None] = mapped_column(Float)
    latency_infer_ms: Mapped[float | None] = mapped_column(Float)
    latency_total_ms: Mapped[float | None] = mapped_column(Float)
    image_ref: Mapped[str | None] = mapped_column(Text)
    truth: Mapped[str | None] = mapped_column(Text)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reviewed_label: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class Review(Base):
    """Append-only: a review never edits or deletes an earlier one."""

    __tablename__ = "reviews"
    __table_args__ = (Index(None, "result_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    result_id: Mapped[int] = mapped_column(BigId, ForeignKey("results.id"))
    reviewer: Mapped[str] = mapped_column(Text)
    reviewed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    old_label: Mapped[str | None] = mapped_column(Text)
    new_label: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_one_of("level", EVENT_LEVELS), name="level"),
        Index(None, "at"),
        Index(None, "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    level: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))


class ShadowRun(Base):
    """A shadow candidate judging beside one run: the run's totals, rewritten at each commit.

    Agreements are only counted (here), never stored per part: the results hot path stays one
    insert per part, and a summary reads one row per run.
    """

    __tablename__ = "shadow_runs"
    __table_args__ = (Index(None, "model_version_id"), Index(None, "run_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    judged: Mapped[int] = mapped_column(BigInteger)
    agreed: Mapped[int] = mapped_column(BigInteger)
    shed: Mapped[int] = mapped_column(BigInteger)
    confusion: Mapped[dict | None] = mapped_column(JsonType)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ShadowResult(Base):
    """A part on which the shadow candidate disagreed with the deployed model: both answers.

    Linked to its result by (run, frame), as the result's own id is not known to the writer.
    """

    __tablename__ = "shadow_results"
    __table_args__ = (
        CheckConstraint(_one_of("verdict", VERDICTS), name="verdict"),
        CheckConstraint(_one_of("deployed_verdict", VERDICTS), name="deployed_verdict"),
        Index(None, "run_id", "frame_index"),
        Index(None, "model_version_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shadow_run_id: Mapped[int] = mapped_column(ForeignKey("shadow_runs.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    frame_index: Mapped[int] = mapped_column(BigInteger)
    captured_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deployed_verdict: Mapped[str] = mapped_column(Text)
    deployed_label: Mapped[str | None] = mapped_column(Text)
    deployed_confidence: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """An account: a name, a role and an argon2id hash (never the password).

    Kept in the ledger so that stations sharing a PostgreSQL ledger share their accounts.
    ``failed_logins`` and ``locked_until`` carry the lock-out after repeated wrong passwords.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """One row of the tamper-evident trail: who did what, signed or not, chained by sha256.

    ``hash`` covers every other column and the previous row's ``hash`` (``prev_hash``), so an edit,
    a deletion or an insertion in the middle breaks the chain at that row (``inspector audit verify``).
    Append-only: nothing in the product updates or deletes these rows.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"), Index(None, "kind"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    signed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    meaning: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text, unique=True)


def runs_with_names() -> Select:
    """Every run's columns with its station's name and its model's name and hash.

    The ledger's run list and the shift summary both show a run as these; one select keeps their
    columns (and labels) from drifting apart. Callers add their own filter, order and limit.
    """
    return (
        select(
            *Run.__table__.c,
            Station.name.label("station"),
            ModelVersion.name.label("model_name"),
            ModelVersion.sha256.label("model_sha256"),
        )
        .join(Station, Station.id == Run.station_id)
        .join(ModelVersion, ModelVersion.id == Run.model_version_id)
    )
