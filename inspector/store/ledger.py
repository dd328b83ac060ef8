"""The results ledger: every frame's outcome, runs, QA reviews and line events, in one database.

Thread-safe (one engine, a short session per call): the pipeline's writer thread and the UI may
share one ``Ledger``. Every public method either does all of its work or none of it, and reports
database trouble as a one-line :class:`LedgerError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from sqlalchemy import Select, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from inspector.store import audit_chain, database, shadow_tables
from inspector.store.accounts_table import AccountsTable
from inspector.store.audit_table import AuditTable
from inspector.store.errors import LedgerError
from inspector.store.export import write_csv
from inspector.store.records import (
    EVENT_LEVELS,
    VERDICTS,
    ResultFilter,
    ResultRecord,
    ShadowUpdate,
)
from inspector.store.schema import (
    Event,
    ModelVersion,
    Result,
    Review,
    Run,
    ShadowResult,
    ShadowRun,
    Station,
    runs_with_names,
)
from inspector.store.summary import LedgerSummary, summarize
from inspector.store.table import guarded, now

RECORD_FIELDS = tuple(field.name for field in fields(ResultRecord))
RESULT_COLUMNS = tuple(Result.__table__.c)
MAX_PAGE = 10_000


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Ledger(AccountsTable, AuditTable):
    """Open (and by default migrate) the ledger at ``url``; see ``database.default_url``.

    ``create=False`` is for commands that only read: a new SQLite file is refused, not made.
    Account methods (``account``, ``create_account``, ...) come from ``AccountsTable``, the audit
    trail's (``append_audit``, ``audit_rows``, ``verify_audit``) from ``AuditTable``.
    """

    def __init__(self, url: str, migrate: bool = True, create: bool = True) -> None:
        self.url = url
        self._engine = database.make_engine(url, create)
        try:
            if migrate:
                database.migrate(self._engine, url)
            else:
                database.require_head(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.where!r})"

    @property
    def where(self) -> str:
        """The database as a person may see it (no password)."""
        return database.describe(self._engine.url)

    def close(self) -> None:
        """Release connections; on SQLite, let it refresh its planner statistics first."""
        if self._engine.url.get_backend_name() == "sqlite":
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA optimize")
            except SQLAlchemyError:
                pass  # statistics are an optimisation; closing must not fail over them
        self._engine.dispose()

    # -- sessions -----------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed on success, else rolled back."""
        with Session(self._engine, expire_on_commit=False) as session:
            session.connection(execution_options={database.WRITE: True})
            yield session
            session.commit()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with Session(self._engine) as session:
            yield session

    # -- stations, models, runs ---------------------------------------------------------------

    @guarded
    def ensure_station(self, name: str, profile: dict | None = None) -> int:
        """The station's id, creating it if new; a given profile replaces the stored one."""
        if not name or not name.strip():
            raise LedgerError("a station needs a name")
        try:
            with self._writing() as session:
                station = session.scalar(select(Station).where(Station.name == name))
                if station is None:
                    station = Station(name=name, profile=profile, created_at=now())
                    session.add(station)
                elif profile is not None and profile != station.profile:
                    station.profile = profile
                session.flush()
                return station.id
        except IntegrityError:  # another process created it between our select and insert
            with self._reading() as session:
                return session.scalars(select(Station.id).where(Station.name == name)).one()

    @guarded
    def ensure_model_version(self, sha256: str, name: str, config: dict, metrics: dict) -> int:
        """The id of the model version with this weights hash, registering it if new."""
        if not sha256 or not sha256.strip():
            raise LedgerError("a model version needs its sha256")
        try:
            with self._writing() as session:
                found = session.scalar(select(ModelVersion.id).where(ModelVersion.sha256 == sha256))
                if found is not None:
                    return found
                version = ModelVersion(
                    sha256=sha256, name=name, config=config, metrics=metrics, created_at=now()
                )
                session.add(version)
                session.flush()
                return version.id
        except IntegrityError:
            with self._reading() as session:
                return session.scalars(select(ModelVersion.id).where(ModelVersion.sha256 == sha256)).one()

    @guarded
    def start_run(
        self, station_id: int, model_version_id: int, source: str, operator: str = "", lot: str = ""
    ) -> int:
        with self._writing() as session:
            if session.get(Station, station_id) is None:
                raise LedgerError(f"no station with id {station_id}")
            if session.get(ModelVersion, model_version_id) is None:
                raise LedgerError(f"no model version with id {model_version_id}")
            run = Run(
                station_id=station_id,
                model_version_id=model_version_id,
                operator=operator,
                lot=lot,
                source=source,
                started_at=now(),
                status="running",
                stats={},
            )
            session.add(run)
            session.flush()
            return run.id

    @guarded
    def finish_run(self, run_id: int, stats: dict, status: str = "finished") -> None:
        if status not in ("finished", "interrupted", "failed"):
            raise LedgerError(f"a run finishes as 'finished', 'interrupted' or 'failed', not {status!r}")
        with self._writing() as session:
            run = session.get(Run, run_id, with_for_update=True)
            if run is None:
                raise LedgerError(f"no run with id {run_id}")
            if run.status != "running":
                raise LedgerError(f"run {run_id} is already {run.status}")
            run.status, run.stats, run.stopped_at = status, stats, now()

    @guarded
    def mark_interrupted_runs(self, station_id: int | None = None) -> list[int]:
        """Runs left 'running' by a process that died become 'interrupted', with a warning event.

        Pass ``station_id`` on a shared (PostgreSQL) ledger, or one station's start would mark the
        other stations' live runs. ``stopped_at`` becomes the last result's time (else the start).
        """
        with self._writing() as session:
            stmt = select(Run).where(Run.status == "running").order_by(Run.id).with_for_update()
            if station_id is not None:
                stmt = stmt.where(Run.station_id == station_id)
            marked = []
            for run in session.scalars(stmt).all():
                last, count = session.execute(
                    select(func.max(Result.captured_at), func.count()).where(Result.run_id == run.id)
                ).one()
                run.status, run.stopped_at = "interrupted", last or run.started_at
                session.add(
                    Event(
                        at=now(),
                        level="warning",
                        kind="interrupted",
                        message=f"run {run.id} ({run.source}) ended without finishing; {count} results kept",
                        run_id=run.id,
                        station_id=run.station_id,
                    )
                )
                marked.append(run.id)
            return marked

    # -- results ------------------------------------------------------------------------------

    @guarded
    def add_results(self, records: Sequence[ResultRecord], shadow: ShadowUpdate | None = None) -> None:
        """Write a batch in one transaction (Core bulk insert): all of it, or none of it.

        ``shadow``: the run's shadow candidate's totals and new disagreements, in the same
        transaction (one writer, one commit: the shadow adds no transaction to the hot path).
        """
        if not records and shadow is None:
            return
        rows = []
        for number, record in enumerate(records):
            if record.verdict not in VERDICTS:
                raise LedgerError(
                    f"result {number} (frame {record.frame_index}): verdict {record.verdict!r} "
                    f"is not one of {', '.join(VERDICTS)}"
                )
            if record.captured_at.tzinfo is None:
                raise LedgerError(
                    f"result {number} (frame {record.frame_index}): captured_at has no time zone"
                )
            row = {name: getattr(record, name) for name in RECORD_FIELDS}
            row["reviewed"] = False
            rows.append(row)
        with self._writing() as session:
            run_ids = {row["run_id"] for row in rows}
            if run_ids:
                known = set(session.scalars(select(Run.id).where(Run.id.in_(run_ids))))
                if run_ids - known:
                    raise LedgerError(f"no run with id {min(run_ids - known)}")
                session.execute(insert(Result.__table__), rows)  # Core executemany: no ORM bookkeeping
            if shadow is not None:
                shadow_tables.write_shadow(session, shadow, now())

    @guarded
    def start_shadow(self, run_id: int, model_version_id: int) -> int:
        """Register a shadow candidate beside a run; returns the id its writer updates."""
        with self._writing() as session:
            return shadow_tables.new_shadow_run(session, run_id, model_version_id, now())

    @guarded
    def model_version_id(self, sha256: str) -> int | None:
        """The ledger's id of the model with these weights (None: it never ran here)."""
        with self._reading() as session:
            return session.scalar(select(ModelVersion.id).where(ModelVersion.sha256 == sha256))

    @guarded
    def shadow_totals(self, model_version_id: int) -> dict:
        """Everything shadow candidate ``model_version_id`` judged: see ``shadow_tables.shadow_totals``."""
        with self._reading() as session:
            return shadow_tables.shadow_totals(session, model_version_id)

    @guarded
    def shadow_candidates(self) -> list[dict]:
        """Model versions that have judged in shadow, newest activity first: id, name, sha256, last."""
        with self._reading() as session:
            return shadow_tables.shadow_candidates(session)

    def _filtered(self, stmt: Select, filt: ResultFilter) -> Select:
        bad = [verdict for verdict in filt.verdicts if verdict not in VERDICTS]
        if bad:
            raise LedgerError(f"unknown verdict {bad[0]!r} (expected {', '.join(VERDICTS)})")
        if filt.since is not None:
            stmt = stmt.where(Result.captured_at >= _utc(filt.since))
        if filt.until is not None:
            stmt = stmt.where(Result.captured_at < _utc(filt.until))
        if filt.verdicts:
            stmt = stmt.where(Result.verdict.in_(filt.verdicts))
        if filt.labels:
            stmt = stmt.where(Result.label.in_(filt.labels))
        if filt.reviewed is not None:
            stmt = stmt.where(Result.reviewed == filt.reviewed)
        if filt.run_id is not None:
            stmt = stmt.where(Result.run_id == filt.run_id)
        # Run terms as an IN-subquery rather than a join: the planner then always drives from
        # the results indexes, never from the (small) runs table.
        if filt.lot is not None:
            stmt = stmt.where(Result.run_id.in_(select(Run.id).where(Run.lot == filt.lot)))
        if filt.station is not None:
            at_station = select(Run.id).join(Station, Station.id == Run.station_id)
            stmt = stmt.where(Result.run_id.in_(at_station.where(Station.name == filt.station)))
        if filt.model_version_id is not None:
            stmt = stmt.where(
                Result.run_id.in_(select(Run.id).where(Run.model_version_id == filt.model_version_id))
            )
        if filt.shadow_disagreements or filt.shadow_model_version_id is not None:
            # Runs with a shadow first (an IN on the results' run index), then the part's own row.
            shadow_runs = select(ShadowRun.run_id)
            disagreed = select(ShadowResult.id).where(
                ShadowResult.run_id == Result.run_id, ShadowResult.frame_index == Result.frame_index
            )
            if filt.shadow_model_version_id is not None:
                shadow_runs = shadow_runs.where(ShadowRun.model_version_id == filt.shadow_model_version_id)
                disagreed = disagreed.where(ShadowResult.model_version_id == filt.shadow_model_version_id)
            stmt = stmt.where(Result.run_id.in_(shadow_runs))
            if filt.shadow_disagreements:
                stmt = stmt.where(disagreed.exists())
        return stmt

    @guarded
    def count_results(self, filt: ResultFilter) -> int:
        with self._reading() as session:
            return session.scalar(self._filtered(select(func.count()).select_from(Result), filt)) or 0

    @guarded
    def query_results(
        self, filt: ResultFilter, offset: int = 0, limit: int = 100, newest_first: bool = True
    ) -> list[dict]:
        """One page of results as plain dicts: every result column plus the run's lot and model."""
        if offset < 0 or not 0 <= limit <= MAX_PAGE:
            raise LedgerError(f"a page needs offset >= 0 and 0 <= limit <= {MAX_PAGE}")
        order = (
            (Result.captured_at.desc(), Result.id.desc()) if newest_first else (Result.captured_at, Result.id)
        )
        stmt = self._filtered(select(*RESULT_COLUMNS), filt).order_by(*order).offset(offset).limit(limit)
        with self._reading() as session:
            rows = [dict(row._mapping) for row in session.execute(stmt)]
            return self._with_run_terms(session, rows)

    @staticmethod
    def _with_run_terms(session: Session, rows: list[dict]) -> list[dict]:
        run_ids = {row["run_id"] for row in rows}
        if not run_ids:
            return rows
        runs = {
            run_id: (lot, model)
            for run_id, lot, model in session.execute(
                select(Run.id, Run.lot, Run.model_version_id).where(Run.id.in_(run_ids))
            )
        }
        for row in rows:
            row["lot"], row["model_version_id"] = runs.get(row["run_id"], (None, None))
            row["shadow"] = None
        shadowed = set(session.scalars(select(ShadowRun.run_id).where(ShadowRun.run_id.in_(run_ids))))
        if shadowed:  # the candidate's answer on the parts where it disagreed (one query per page)
            frames = [row["frame_index"] for row in rows if row["run_id"] in shadowed]
            answers = session.execute(
                select(*ShadowResult.__table__.c, ModelVersion.name.label("model_name"))
                .join(ModelVersion, ModelVersion.id == ShadowResult.model_version_id)
                .where(
                    ShadowResult.run_id.in_(shadowed),
                    ShadowResult.frame_index.between(min(frames), max(frames)),
                )
                .order_by(ShadowResult.id)
            )
            by_part = {(a.run_id, a.frame_index): dict(a._mapping) for a in answers}
            for row in rows:
                row["shadow"] = by_part.get((row["run_id"], row["frame_index"]))
        return rows

    @guarded
    def get_result(self, result_id: int) -> dict:
        with self._reading() as session:
            row = session.execute(select(*RESULT_COLUMNS).where(Result.id == result_id)).first()
            if row is None:
                raise LedgerError(f"no result with id {result_id}")
            return self._with_run_terms(session, [dict(row._mapping)])[0]

    # -- reviews ------------------------------------------------------------------------------

    @guarded
    def review(
        self,
        result_id: int,
        new_label: str,
        reviewer: str,
        reason: str = "",
        *,
        signed: bool = False,
        meaning: str | None = None,
    ) -> None:
        """QA confirms or overrides a result; the review and its hash-chained audit row commit together.

        Overriding the predicted label needs a reason; confirming it does not. ``signed`` says the
        reviewer re-entered their password for this record (a class change, once accounts exist).
        """
        if not reviewer or not reviewer.strip():
            raise LedgerError("a review needs the reviewer's name")
        if not new_label or not new_label.strip():
            raise LedgerError("a review needs a label")
        with self._writing() as session:
            result = session.get(Result, result_id, with_for_update=True)
            if result is None:
                raise LedgerError(f"no result with id {result_id}")
            if new_label != result.label and not (reason and reason.strip()):
                was = result.label or "no label"
                raise LedgerError(f"result {result_id}: changing {was} to {new_label} needs a reason")
            old = result.reviewed_label if result.reviewed else result.label
            session.add(
                Review(
                    result_id=result_id,
                    reviewer=reviewer.strip(),
                    reviewed_at=now(),
                    old_label=old,
                    new_label=new_label,
                    reason=reason.strip(),
                )
            )
            result.reviewed, result.reviewed_label = True, new_label
            audit_chain.append(
                session,
                kind="review",
                actor=reviewer,
                subject=f"result {result_id}",
                reason=reason.strip(),
                signed=signed,
                meaning=meaning or ("confirmed" if new_label == old else "class changed"),
                detail={"old_label": old, "new_label": new_label},
            )

    @guarded
    def history(self, result_id: int) -> list[dict]:
        """The result's reviews, oldest first."""
        with self._reading() as session:
            if session.get(Result, result_id) is None:
                raise LedgerError(f"no result with id {result_id}")
            stmt = (
                select(*Review.__table__.c)
                .where(Review.result_id == result_id)
                .order_by(Review.reviewed_at, Review.id)
            )
            return [dict(row._mapping) for row in session.execute(stmt)]

    # -- events, runs -------------------------------------------------------------------------

    @guarded
    def add_event(
        self,
        kind: str,
        message: str,
        level: str = "info",
        run_id: int | None = None,
        station_id: int | None = None,
    ) -> None:
        if level not in EVENT_LEVELS:
            raise LedgerError(f"event level {level!r} is not one of {', '.join(EVENT_LEVELS)}")
        if not kind:
            raise LedgerError("an event needs a kind")
        with self._writing() as session:
            session.add(
                Event(at=now(), level=level, kind=kind, message=message, run_id=run_id, station_id=station_id)
            )

    @guarded
    def events(self, limit: int = 100, run_id: int | None = None, kinds: Sequence[str] = ()) -> list[dict]:
        """Recent events, newest first (of these ``kinds`` only, when given)."""
        stmt = select(*Event.__table__.c).order_by(Event.at.desc(), Event.id.desc()).limit(limit)
        if run_id is not None:
            stmt = stmt.where(Event.run_id == run_id)
        if kinds:
            stmt = stmt.where(Event.kind.in_(kinds))
        with self._reading() as session:
            return [dict(row._mapping) for row in session.execute(stmt)]

    @guarded
    def classes(self) -> list[str]:
        """Every class any registered model can predict, in model order (QA's class filter), without
        scanning the results."""
        names: dict[str, None] = {}
        with self._reading() as session:
            for config in session.scalars(select(ModelVersion.config).order_by(ModelVersion.id)):
                for name in (config or {}).get("classes", []):
                    names.setdefault(str(name), None)
        return list(names)

    @guarded
    def runs(self, limit: int = 50) -> list[dict]:
        """Recent runs, newest first, with the station's name and the model's name and hash."""
        stmt = runs_with_names().order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
        with self._reading() as session:
            return [dict(row._mapping) for row in session.execute(stmt)]

    @guarded
    def summary(self, filt: ResultFilter) -> LedgerSummary:
        """Counts, trend buckets, latencies, runs and model versions of the filtered results (for the
        shift/lot report), in one read transaction so the numbers agree with each other."""
        with self._engine.connect() as connection:
            with connection.begin():
                since, until = (None if t is None else _utc(t) for t in (filt.since, filt.until))
                return summarize(connection, self._filtered(select(Result.id), filt), since, until)

    # -- export -------------------------------------------------------------------------------

    @guarded
    def export_csv(self, target: Path | TextIO, filt: ResultFilter) -> int:
        """Write the filtered results as CSV (oldest first); returns the number of rows written."""
        stmt = self._filtered(select(*RESULT_COLUMNS), filt)
        try:
            with self._engine.connect() as connection:
                with connection.begin():
                    return write_csv(connection, stmt, target)
        except OSError as exc:
            raise LedgerError(
                f"{getattr(exc, 'filename', None) or target}: cannot write: {exc.strerror}"
            ) from exc
