"""The shadow candidate's SQL: its run row, its running totals and the frames where it disagreed.

Kept apart from :mod:`inspector.store.ledger`, which owns sessions, transactions and error
wrapping; every function here works inside a session the ledger opened, so a shadow update
commits (or rolls back) together with the batch of results it belongs to.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from inspector.store.errors import LedgerError
from inspector.store.records import VERDICTS, ShadowRecord, ShadowUpdate
from inspector.store.schema import ModelVersion, Run, ShadowResult, ShadowRun

SHADOW_FIELDS = tuple(field.name for field in fields(ShadowRecord))


def new_shadow_run(session: Session, run_id: int, model_version_id: int, now: datetime) -> int:
    """Register a shadow candidate beside a run; returns the id its writer updates."""
    if session.get(Run, run_id) is None:
        raise LedgerError(f"no run with id {run_id}")
    if session.get(ModelVersion, model_version_id) is None:
        raise LedgerError(f"no model version with id {model_version_id}")
    shadow = ShadowRun(
        run_id=run_id,
        model_version_id=model_version_id,
        judged=0,
        agreed=0,
        shed=0,
        confusion={},
        updated_at=now,
    )
    session.add(shadow)
    session.flush()
    return shadow.id


def write_shadow(session: Session, shadow: ShadowUpdate, now: datetime) -> None:
    """The candidate's new totals and disagreements (validated first: a bad verdict writes nothing)."""
    found = session.execute(
        select(ShadowRun.run_id, ShadowRun.model_version_id).where(ShadowRun.id == shadow.shadow_run_id)
    ).first()
    if found is None:
        raise LedgerError(f"no shadow run with id {shadow.shadow_run_id}")
    run_id, model_version_id = found
    rows = []
    for record in shadow.disagreements:
        for verdict in (record.verdict, record.deployed_verdict):
            if verdict not in VERDICTS:
                raise LedgerError(f"shadow frame {record.frame_index}: verdict {verdict!r} is unknown")
        row = {name: getattr(record, name) for name in SHADOW_FIELDS}
        row.update(shadow_run_id=shadow.shadow_run_id, run_id=run_id, model_version_id=model_version_id)
        rows.append(row)
    session.execute(
        update(ShadowRun)
        .where(ShadowRun.id == shadow.shadow_run_id)
        .values(
            judged=shadow.judged,
            agreed=shadow.agreed,
            shed=shadow.shed,
            confusion=shadow.confusion,
            updated_at=now,
        )
    )
    if rows:
        session.execute(insert(ShadowResult.__table__), rows)


def _merge_confusion(into: dict, confusion: dict | None) -> None:
    """Add one run's {kind: {deployed: {candidate: n}}} tables into the running total."""
    for kind, table in (confusion or {}).items():
        merged = into.setdefault(kind, {})
        for deployed, row in table.items():
            cells = merged.setdefault(deployed, {})
            for candidate, count in row.items():
                cells[candidate] = cells.get(candidate, 0) + int(count)


def shadow_totals(session: Session, model_version_id: int) -> dict:
    """Everything the shadow candidate ``model_version_id`` judged, over all its runs.

    ``judged``, ``agreed``, ``shed``, ``disagreements`` (rows kept), ``runs``, the merged
    ``confusion`` ({"labels"|"verdicts": {deployed: {candidate: n}}}), ``deployed`` (the
    models it ran beside: id → name) and ``last`` (when it last judged).
    """
    totals: dict = {
        "judged": 0,
        "agreed": 0,
        "shed": 0,
        "runs": 0,
        "disagreements": 0,
        "confusion": {"labels": {}, "verdicts": {}},
        "deployed": {},
        "last": None,
    }
    stmt = (
        select(ShadowRun, Run.model_version_id, ModelVersion.name)
        .join(Run, Run.id == ShadowRun.run_id)
        .join(ModelVersion, ModelVersion.id == Run.model_version_id)
        .where(ShadowRun.model_version_id == model_version_id)
        .order_by(ShadowRun.id)
    )
    for shadow, deployed_id, deployed_name in session.execute(stmt):
        totals["runs"] += 1
        for name in ("judged", "agreed", "shed"):
            totals[name] += getattr(shadow, name)
        _merge_confusion(totals["confusion"], shadow.confusion)
        totals["deployed"][deployed_id] = deployed_name
        if totals["last"] is None or shadow.updated_at > totals["last"]:
            totals["last"] = shadow.updated_at
    totals["disagreements"] = (
        session.scalar(
            select(func.count())
            .select_from(ShadowResult)
            .where(ShadowResult.model_version_id == model_version_id)
        )
        or 0
    )
    return totals


def shadow_candidates(session: Session) -> list[dict]:
    """Model versions that have judged in shadow, newest activity first: id, name, sha256, last."""
    stmt = (
        select(ModelVersion.id, ModelVersion.name, ModelVersion.sha256, func.max(ShadowRun.updated_at))
        .join(ShadowRun, ShadowRun.model_version_id == ModelVersion.id)
        .group_by(ModelVersion.id, ModelVersion.name, ModelVersion.sha256)
        .order_by(func.max(ShadowRun.updated_at).desc())
    )
    return [
        {"id": id_, "name": name, "sha256": sha, "last": last}
        for id_, name, sha, last in session.execute(stmt)
    ]
