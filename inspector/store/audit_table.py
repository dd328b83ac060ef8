"""The hash-chained audit trail's SQL, as methods the :class:`~inspector.store.Ledger` inherits.

Records that live in their own table (a review, an account change) append their audit row inside
their own transaction via ``audit_chain.append`` instead, so the record and its row commit together;
these methods are for what has no other table (a sign-off, a roll-out step) and for reading.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from inspector.store import audit_chain
from inspector.store.schema import AuditEntry
from inspector.store.table import Table, guarded


class AuditTable(Table):
    """Audit-trail methods of the ledger (mixed into :class:`~inspector.store.Ledger`)."""

    @guarded
    def append_audit(
        self,
        kind: str,
        actor: str,
        subject: str,
        reason: str = "",
        *,
        signed: bool = False,
        meaning: str | None = None,
        detail: dict | None = None,
    ) -> int:
        """Add a row to the trail in its own transaction; returns its id."""
        with self._writing() as session:
            entry = audit_chain.append(
                session,
                kind=kind,
                actor=actor,
                subject=subject,
                reason=reason,
                signed=signed,
                meaning=meaning,
                detail=detail,
            )
            return entry.id

    @guarded
    def audit_rows(
        self, limit: int = 100, kinds: Sequence[str] = (), subject: str | None = None
    ) -> list[dict]:
        """Recent audit rows, newest first (of these ``kinds`` only, when given; about ``subject``
        only, e.g. ``"result 42"``, when given: the Review screen's signers of one part)."""
        stmt = select(*AuditEntry.__table__.c).order_by(AuditEntry.id.desc()).limit(limit)
        if kinds:
            stmt = stmt.where(AuditEntry.kind.in_(kinds))
        if subject is not None:
            stmt = stmt.where(AuditEntry.subject == subject)
        with self._reading() as session:
            return [dict(row._mapping) for row in session.execute(stmt)]

    @guarded
    def verify_audit(self) -> audit_chain.ChainCheck:
        """Walk the whole trail; names the first row whose hash or link does not match."""
        with self._reading() as session:
            return audit_chain.verify(session)
