"""The tamper-evident audit trail: each row's sha256 covers its fields and the previous row's hash.

An edit made directly in the database (a changed reason, a deleted deploy, a row slipped in
between) breaks the chain at that row, and :func:`verify` names it. This does not stop someone
who can rewrite the whole table and recompute every hash after the edit; it makes a quiet edit of
one record impossible, which is what an audit trail in the spirit of 21 CFR Part 11 asks for.
Rows are appended under a lock (SQLite: the writer's BEGIN IMMEDIATE; PostgreSQL: a transaction
advisory lock), so two stations appending at once still form one chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from inspector.store.schema import AuditEntry

GENESIS = "0" * 64
# Any 64-bit number will do; it names "the audit chain" among PostgreSQL's advisory locks.
_PG_LOCK_KEY = 0x4C544D5F41554454  # "LTM_AUDT"
_BATCH = 1000


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`verify` found: ``bad_id`` is the first row that does not match, else None."""

    rows: int
    bad_id: int | None = None
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_id is None

    def text(self) -> str:
        if self.ok:
            return f"audit trail verified: {self.rows} rows, chain intact"
        return f"audit trail BROKEN at row {self.bad_id}: {self.why} ({self.rows} rows checked before it)"


def _stamp(at: datetime) -> str:
    # Microseconds survive both SQLite (text) and PostgreSQL (timestamptz); the zone is always UTC.
    utc = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(prev_hash: str, entry: AuditEntry) -> str:
    """sha256 of the previous hash and every field but the row's own id and hash."""
    body = {
        "prev": prev_hash,
        "at": _stamp(entry.at),
        "kind": entry.kind,
        "actor": entry.actor,
        "signed": bool(entry.signed),
        "meaning": entry.meaning,
        "subject": entry.subject,
        "reason": entry.reason,
        "detail": entry.detail,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def append(
    session: Session,
    *,
    kind: str,
    actor: str,
    subject: str,
    reason: str = "",
    signed: bool = False,
    meaning: str | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one row to the chain inside the caller's write transaction (so the record it audits and
    its audit row commit together, or neither does)."""
    if not kind or not actor or not actor.strip():
        raise ValueError("an audit row needs a kind and an actor")
    _lock(session)
    last = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    entry = AuditEntry(
        at=at or datetime.now(timezone.utc),
        kind=kind,
        actor=actor.strip(),
        signed=signed,
        meaning=meaning,
        subject=subject,
        reason=reason,
        detail=detail,
        prev_hash=last or GENESIS,
    )
    entry.hash = row_hash(entry.prev_hash, entry)
    session.add(entry)
    session.flush()
    return entry


def verify(session: Session) -> ChainCheck:
    """Walk the chain oldest first, in batches (a trail of years fits in memory one batch at a time)."""
    expected_prev, rows, after = GENESIS, 0, None
    while True:
        stmt = select(AuditEntry).order_by(AuditEntry.id).limit(_BATCH)
        if after is not None:
            stmt = stmt.where(AuditEntry.id > after)
        batch = session.scalars(stmt).all()
        if not batch:
            return ChainCheck(rows)
        for entry in batch:
            if entry.prev_hash != expected_prev:
                why = "it does not follow the row before it (a row was deleted, inserted or reordered)"
                return ChainCheck(rows, entry.id, why)
            try:
                recomputed = row_hash(entry.prev_hash, entry)
            except (TypeError, ValueError):
                recomputed = ""
            if recomputed != entry.hash:
                return ChainCheck(rows, entry.id, "its contents were changed after it was written")
            expected_prev, rows, after = entry.hash, rows + 1, entry.id
        session.expunge_all()
