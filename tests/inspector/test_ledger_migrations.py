"""The ledger's schema: migrations build what the ORM declares, upgrades back up first, and bad
databases or URLs give one-line errors."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from ledger_support import BACKENDS, database_url, free_port
from sqlalchemy import create_engine, text

from inspector.store import Ledger, LedgerError, ResultFilter, default_url, upgrade
from inspector.store import database as store_database

HEAD = "0003"


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    with database_url(request.param, tmp_path) as made:
        yield made


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_migration_from_empty_matches_the_orm(url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inspector.store.schema import Base

    upgrade(url)
    assert _revision(url) == HEAD
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
    upgrade(url)  # at head: nothing to do
    assert _revision(url) == HEAD


def test_database_newer_than_the_app_is_refused(url):
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    with pytest.raises(LedgerError, match="revision ffff, newer than this version"):
        Ledger(url)


def test_migrate_false_needs_a_database_at_head(url):
    with pytest.raises(LedgerError, match="open it with migration enabled"):
        Ledger(url, migrate=False)
    Ledger(url).close()
    with Ledger(url, migrate=False) as ledger:
        assert ledger.count_results(ResultFilter()) == 0


def test_sqlite_connections_get_the_ledger_pragmas(tmp_path):
    url = default_url(tmp_path)
    assert url == f"sqlite:///{tmp_path / 'inspector.db'}"
    Ledger(url).close()
    engine = store_database.make_engine(url)
    with engine.connect() as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    engine.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_in_memory_sqlite_works():
    with Ledger("sqlite://") as ledger:
        station = ledger.ensure_station("mem")
        assert ledger.ensure_station("mem") == station


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def _with_revision(tmp_path: Path, monkeypatch, body: str) -> None:
    """Make the app's migrations this test's copy plus a revision 9999 with ``body`` as upgrade()."""
    scripts = tmp_path / "migrations"
    shutil.copytree(store_database.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_test.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = '9999'\ndown_revision = '{HEAD}'\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{body}\n\n\ndef downgrade():\n    pass\n"
    )
    monkeypatch.setattr(store_database, "MIGRATIONS_DIR", scripts)


def test_no_backup_at_head_and_a_backup_when_behind(tmp_path, monkeypatch):
    db = tmp_path / "home" / "inspector.db"
    url = default_url(db.parent)
    with Ledger(url) as ledger:  # a new file: nothing to back up
        ledger.ensure_station("line-1")
    Ledger(url).close()  # at head: nothing to back up
    assert _backups(db) == []

    _with_revision(
        tmp_path, monkeypatch, "    op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True))"
    )
    with Ledger(url) as ledger:
        assert ledger.ensure_station("line-1") == 1
    assert _revision(url) == "9999"
    [backup] = _backups(db)
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
        assert copy.execute("SELECT name FROM stations").fetchall() == [("line-1",)]
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_failed_sqlite_migration_changes_nothing(tmp_path, monkeypatch):
    url = default_url(tmp_path)
    Ledger(url).close()
    _with_revision(
        tmp_path,
        monkeypatch,
        "    op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    op.execute('THIS IS NOT SQL')",
    )
    with pytest.raises(LedgerError, match=r"migration failed \(backup: .*inspector\.db\.bak-"):
        upgrade(url)
    assert _revision(url) == HEAD
    with sqlite3.connect(tmp_path / "inspector.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'notes'").fetchone() == (0,)


def test_an_unrelated_sqlite_file_is_backed_up_and_one_with_stray_ledger_tables_refused(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x)")
    Ledger(f"sqlite:///{other}").close()
    assert len(_backups(other)) == 1

    stray = tmp_path / "stray.db"
    with sqlite3.connect(stray) as db:
        db.execute("CREATE TABLE results (x)")
    with pytest.raises(LedgerError, match="no migration history"):
        Ledger(f"sqlite:///{stray}")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "inspector.db"
    bogus.write_text("id,verdict\n1,OK\n" * 100)
    for attempt in (lambda: Ledger(f"sqlite:///{bogus}"), lambda: upgrade(f"sqlite:///{bogus}")):
        with pytest.raises(LedgerError) as exc:
            attempt()
        assert _one_line(exc) == f"{bogus}: not an SQLite database"
    with pytest.raises(LedgerError, match="is a folder"):
        Ledger(f"sqlite:///{tmp_path}")


def test_an_unreachable_postgresql_server():
    url = f"postgresql+psycopg://inspector:s3cret@127.0.0.1:{free_port()}/ledger"
    with pytest.raises(LedgerError) as exc:
        Ledger(url)
    message = _one_line(exc)
    assert "127.0.0.1" in message and "s3cret" not in message


@pytest.mark.parametrize(
    "template",
    [
        "postgresql+psycopg://inspector:top@secret@127.0.0.1:{port}/ledger",  # SQLAlchemy: host 'secret@…'
        "postgresql+psycopg://inspector:topsecret@127.0.0.1:{port}x/ledger",  # not readable at all
    ],
)
def test_a_refused_database_url_never_shows_its_password(template):
    with pytest.raises(LedgerError) as exc:
        Ledger(template.format(port=free_port()))
    message = _one_line(exc)
    assert "secret" not in message and "inspector:***@" in message, message


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdb://host/x", "unsupported database"),
        ("", "not a database URL"),
    ],
)
def test_bad_urls(url, match):
    with pytest.raises(LedgerError, match=match) as exc:
        Ledger(url)
    _one_line(exc)


def test_stations_starting_together_migrate_once(url):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: upgrade(url), range(3)))
    assert _revision(url) == HEAD


def test_connections_switching_a_new_sqlite_file_to_wal_together_all_succeed(tmp_path):
    """SQLite refuses a concurrent switch to WAL at once (no busy wait); stations must not fail on it.

    Six open connections race on each of 40 new files: a bare PRAGMA fails on about one in five.
    """
    import threading

    for trial in range(40):
        path = tmp_path / f"race{trial}.db"
        connections = [sqlite3.connect(path, isolation_level=None, check_same_thread=False) for _ in range(6)]
        start = threading.Barrier(len(connections))
        errors: list[Exception] = []

        def switch(connection: sqlite3.Connection, start=start, errors=errors) -> None:
            start.wait()
            try:
                store_database.enable_wal(connection.cursor())
            except sqlite3.Error as exc:
                errors.append(exc)

        threads = [threading.Thread(target=switch, args=(c,)) for c in connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        modes = [c.execute("PRAGMA journal_mode").fetchone()[0] for c in connections]
        for connection in connections:
            connection.close()
        assert errors == [] and modes == ["wal"] * 6, f"trial {trial}: {errors[:1]}"


def test_a_0001_ledger_with_results_upgrades_to_shadow_tables_and_keeps_its_rows(url):
    """0002 adds the shadow tables beside ``results`` (which it leaves as it was)."""
    from alembic import command
    from ledger_support import record

    from inspector.store import ShadowRecord, ShadowUpdate

    command.upgrade(store_database.alembic_config(url), "0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO stations (id, name, created_at) VALUES (1, 's', '2024-03-01')"))
        connection.execute(
            text(
                "INSERT INTO model_versions (id, sha256, name, created_at)"
                " VALUES (1, 'a', 'v1', '2024-03-01'), (2, 'b', 'v2', '2024-03-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, station_id, model_version_id, operator, lot, source, started_at,"
                " status) VALUES (1, 1, 1, '', 'L', 'sim', '2024-03-01', 'finished')"
            )
        )
    engine.dispose()
    with Ledger(url) as ledger:  # migrates 0001 -> head
        assert _revision(url) == HEAD
        ledger.add_results([record(1, 0, 0), record(1, 1, 1, "NG", "scratch")])
        shadow = ledger.start_shadow(1, 2)
        one = record(1, 1, 1)
        ledger.add_results(
            [],
            ShadowUpdate(
                shadow,
                judged=2,
                agreed=1,
                shed=3,
                confusion={"labels": {"ok": {"ok": 1}, "scratch": {"ok": 1}}},
                disagreements=[ShadowRecord(1, one.captured_at, "NG", "scratch", 0.7, "OK", "ok", 0.8)],
            ),
        )
        rows = ledger.query_results(ResultFilter(shadow_disagreements=True))
        assert [(r["frame_index"], r["shadow"]["verdict"], r["shadow"]["model_name"]) for r in rows] == [
            (1, "OK", "v2")
        ]
        totals = ledger.shadow_totals(2)
        assert (totals["judged"], totals["agreed"], totals["shed"], totals["disagreements"]) == (2, 1, 3, 1)
        assert totals["deployed"] == {1: "v1"}
        assert ledger.count_results(ResultFilter(shadow_model_version_id=1)) == 0
        assert [c["name"] for c in ledger.shadow_candidates()] == ["v2"]


def test_threads_opening_new_ledgers_at_once_all_migrate(tmp_path):
    """Alembic keeps an upgrade's state in module globals: the app's screens opening new ledgers
    from worker threads at once broke each other's migration ("KeyError: 'config'")."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_new(index: int) -> None:
        try:
            start.wait()
            for round_index in range(3):
                Ledger(f"sqlite:///{tmp_path / f'{index}-{round_index}.db'}").close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_new, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
