"""Engines, SQLite pragmas, and schema migrations (Alembic, driven from code, no alembic.ini).

SQLite is the default (one file in the home folder, WAL mode); any SQLAlchemy URL works otherwise,
PostgreSQL (psycopg 3) for plants where several stations share one ledger.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from inspector.redact import redact_url
from inspector.store.errors import LedgerError
from inspector.store.schema import Base

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DB_NAME = "inspector.db"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 5.0
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
WRITE = "ledger_write"  # execution option: this transaction will write (SQLite: BEGIN IMMEDIATE)
MIGRATION_LOCK = 0x4C544D5F4C4544  # "LTM_LED": PostgreSQL advisory lock key around migrations
EXAMPLES = "e.g. sqlite:///path/to/inspector.db or postgresql+psycopg://user@host:5432/db"


def default_url(home: Path) -> str:
    """The home folder's SQLite ledger."""
    return f"sqlite:///{(Path(home) / DB_NAME).absolute()}"


def describe(url: URL) -> str:
    """The URL as it may appear in messages and logs: never with its password."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str) -> URL:
    """``url`` read by SQLAlchemy; a refusal names it by :func:`redact_url`, never with its password.

    SQLAlchemy ends the password at its *first* ``@``: ``user:p@ss@host`` reads as password ``p`` on
    host ``ss@host``, and the rest of the password would then show in every message naming the host.
    A host never holds an ``@``, so such a URL is refused with the way to write it.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise LedgerError(f"{redact_url(str(url))!r}: not a database URL ({EXAMPLES})") from exc
    if "@" in (parsed.host or ""):
        raise LedgerError(
            f"{redact_url(str(url))!r}: an '@' in a database user name or password must be written %40"
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file behind an SQLite URL; None for in-memory and URI-style databases."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database)


def _check_sqlite_file(path: Path, create: bool = True) -> None:
    """Refuse what is not an SQLite file; a new one (and its folder) is made only when ``create``.

    A command that only reads (``results export``, ``report``) given a mistyped ``--db`` should say
    so, not leave an empty ledger, and the folders to it, behind.
    """
    if path.is_dir():
        raise LedgerError(f"{path}: is a folder, not an SQLite database")
    if not create and not path.exists():
        raise LedgerError(f"{path}: no such database (this command only reads, and creates none)")
    try:
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        else:
            header = SQLITE_HEADER
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    if header != SQLITE_HEADER:
        raise LedgerError(f"{path}: not an SQLite database")


def db_error(exc: BaseException, url: URL, doing: str = "") -> LedgerError:
    """A driver or SQLAlchemy exception as one line that names the database (without password)."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    detail = lines[0] if lines else type(original).__name__
    path = sqlite_path(url)
    if path is not None and "not a database" in detail:
        return LedgerError(f"{path}: not an SQLite database")
    where = str(path) if path is not None else describe(url)
    return LedgerError(f"{where}: {doing + ': ' if doing else ''}{detail}")


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine for ``url``; SQLite connections get the ledger's pragmas and real transactions.

    With ``create`` false, an SQLite file that does not exist is refused rather than made.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    path = sqlite_path(parsed)
    if backend == "sqlite":
        if path is not None:
            _check_sqlite_file(path, create)
        else:  # in memory: one shared connection, or every checkout would see an empty database
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif backend == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise LedgerError(f"{describe(parsed)}: unsupported database ({EXAMPLES})") from exc
    except ImportError as exc:
        extra = " (pip install 'ltm-inspector[postgres]')" if backend == "postgresql" else ""
        raise LedgerError(f"{describe(parsed)}: database driver missing: {exc.name}{extra}") from exc
    except (ArgumentError, TypeError, ValueError) as exc:
        raise LedgerError(f"{describe(parsed)}: {exc}") from exc
    if backend == "sqlite":
        _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: Engine) -> None:
    """Pragmas on every connection; BEGIN emitted by us, so transactions (and DDL) are real.

    pysqlite on its own starts transactions late and never for DDL; SQLAlchemy documents this
    recipe. Writers begin IMMEDIATE so that a read-then-write never fails with a stale snapshot.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def enable_wal(cursor: sqlite3.Cursor, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Switch the file to WAL, retrying while another connection holds the lock.

    SQLite answers "database is locked" at once, without consulting busy_timeout, when two
    connections to a new file both try to switch it (each holds a read lock and wants the other
    gone). Stations starting together hit exactly that, so we wait it out like busy_timeout would.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@contextmanager
def connected(engine: Engine, doing: str = "") -> Iterator[Connection]:
    """A connection whose failures surface as LedgerError (unreachable server, not a database)."""
    try:
        with engine.connect() as connection:
            yield connection
    except LedgerError:
        raise
    except (DBAPIError, SQLAlchemyError, sqlite3.Error) as exc:
        raise db_error(exc, engine.url, doing) from exc


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def schema_state(engine: Engine) -> tuple[set[str], set[str], set[str]]:
    """(current revisions, head revisions, table names) of the database behind ``engine``."""
    script = _script()
    with connected(engine, "cannot open") as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        tables = set(inspect(connection).get_table_names())
    known = {rev.revision for rev in script.walk_revisions()}
    newer = current - known
    if newer:
        raise LedgerError(
            f"{_where(engine)}: database schema is at revision {', '.join(sorted(newer))}, newer than "
            f"this version of LTM Inspector knows (head {', '.join(script.get_heads())}); update the app"
        )
    return current, set(script.get_heads()), tables


def _where(engine: Engine) -> str:
    path = sqlite_path(engine.url)
    return str(path) if path is not None else describe(engine.url)


def backup_sqlite(path: Path) -> Path:
    """A consistent copy next to the file (SQLite's online backup API), before we migrate it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target


_MIGRATING = threading.Lock()


def migrate(engine: Engine, url: str) -> Path | None:
    """Bring the schema to head; returns the backup made first, if any.

    An existing SQLite file with content that is behind head is backed up before anything changes.
    A database with ledger tables but no migration history is refused rather than guessed at.
    Alembic runs an upgrade through module-level state (its ``context`` proxy), so two threads of
    one process migrating at once (the app's screens opening a new ledger together) break each
    other ("KeyError: 'config'"): upgrades in one process take turns.
    """
    with _MIGRATING:
        return _migrate(engine, url)


def _migrate(engine: Engine, url: str) -> Path | None:
    current, heads, tables = schema_state(engine)
    if current == heads:
        return None
    ours = tables & set(Base.metadata.tables)
    if not current and ours:
        raise LedgerError(
            f"{_where(engine)}: has ledger tables ({', '.join(sorted(ours))}) but no migration history; "
            "refusing to migrate it"
        )
    backup = None
    path = sqlite_path(engine.url)
    if path is not None and (current or tables):
        backup = backup_sqlite(path)
    config = alembic_config(url)
    try:
        with engine.connect() as connection, connection.execution_options(**{WRITE: True}).begin():
            if engine.dialect.name == "postgresql":  # stations starting together: one migrates
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")  # re-reads the revision under the lock: may be a no-op
    except (SQLAlchemyError, CommandError, sqlite3.Error) as exc:
        kept = f" (backup: {backup})" if backup else ""
        raise db_error(exc, engine.url, f"migration failed{kept}") from exc
    return backup


def require_head(engine: Engine) -> None:
    """For ``migrate=False``: refuse a schema this code does not match, rather than fail later."""
    current, heads, _ = schema_state(engine)
    if current != heads:
        at = ", ".join(sorted(current)) or "empty"
        raise LedgerError(
            f"{_where(engine)}: database schema is at {at}, this app needs {', '.join(sorted(heads))}; "
            "open it with migration enabled"
        )


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to head (backing up an existing SQLite file first)."""
    engine = make_engine(url)
    try:
        migrate(engine, url)
    finally:
        engine.dispose()
