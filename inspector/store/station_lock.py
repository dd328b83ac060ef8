"""One running line per station and ledger, held by a lock that dies with its process.

A line's start marks the station's runs still 'running' as interrupted (a crash or a power loss
left them so). Two lines started at once on one station used to do that to each other: the
second marked the first's live run interrupted, and the first ended with exit 2 and a false
"crash or power loss" warning. So a line holds its station's lock from before that sweep until its
run is finished, and a second line on the same station and ledger is refused in one line.

The lock must vanish with a ``kill -9`` or a power loss, or a dead line would block its station
forever, and then the sweep's "had not finished" is true again:

- SQLite: an OS file lock (flock / LockFileEx, through ``filelock``) on a hidden file beside the
  database, one per station; the OS drops it when the process dies.
- PostgreSQL (stations sharing a server): a session advisory lock on a connection kept open for
  the run; the server drops it when that session ends.

An in-memory SQLite ledger belongs to one process and is not locked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from inspector.store import database
from inspector.store.errors import LedgerError


class StationBusy(LedgerError):
    """Another line is running on this station of this ledger."""


def _digest(station: str) -> bytes:
    return hashlib.sha256(b"inspector-line\0" + station.encode("utf-8", "surrogatepass")).digest()


def lock_file(db: Path, station: str) -> Path:
    """The SQLite database's lock file for ``station`` (hidden, beside it; names are hashed)."""
    return db.parent / f".{db.name}.line-{_digest(station).hex()[:16]}.lock"


def advisory_key(station: str) -> int:
    """The station's PostgreSQL advisory lock key (a signed 64-bit number)."""
    return int.from_bytes(_digest(station)[:8], "big", signed=True)


class StationLock:
    """Held while a line runs on ``station`` of the ledger at ``url``; :meth:`acquire` never waits."""

    def __init__(self, url: str, station: str) -> None:
        self.url, self.station = url, station
        self._file: FileLock | None = None
        self._engine: Any = None
        self._connection: Any = None

    def busy(self) -> StationBusy:
        where = database.describe(database.parse_url(self.url))
        return StationBusy(
            f"a line is already running on station {self.station!r} of {where} "
            "(another inspector run, demo or the app); stop it first or use another --station"
        )

    def acquire(self) -> StationLock:
        """Take the lock or raise :class:`StationBusy` (another line holds it) / :class:`LedgerError`."""
        parsed = database.parse_url(self.url)
        if parsed.get_backend_name() == "postgresql":
            self._acquire_advisory()
            return self
        path = database.sqlite_path(parsed)
        if path is None:
            return self  # in memory (or a URI database): one process, nothing to share
        lock = FileLock(lock_file(path, self.station), timeout=0, thread_local=False, fallback_to_soft=False)
        try:
            lock.acquire()
        except Timeout:
            raise self.busy() from None
        except OSError as exc:
            raise LedgerError(
                f"{path}: cannot lock station {self.station!r} ({exc.strerror or exc})"
            ) from exc
        self._file = lock
        return self

    def _acquire_advisory(self) -> None:
        engine = database.make_engine(self.url)
        try:
            # Autocommit: the session holds the lock, never an open transaction (which would keep
            # vacuum waiting for the whole run, and could be ended by idle-in-transaction limits).
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                held = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(self.station)}
                ).scalar()
            except BaseException:
                connection.close()
                raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise database.db_error(exc, engine.url, "lock the station") from exc
        except BaseException:
            engine.dispose()
            raise
        if not held:
            connection.close()
            engine.dispose()
            raise self.busy()
        self._engine, self._connection = engine, connection

    def release(self) -> None:
        """Let the station go (idempotent; a lost connection has let it go already)."""
        if self._file is not None:
            self._file.release()
            self._file = None
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self.station)}
                )
            except SQLAlchemyError:
                pass  # the session is gone, and its lock with it
            finally:
                self._connection.close()
                self._engine.dispose()
                self._connection = self._engine = None

    @property
    def held(self) -> bool:
        return self._file is not None or self._connection is not None

    def __enter__(self) -> StationLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()
