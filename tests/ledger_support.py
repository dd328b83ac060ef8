"""Ledger test helpers: one database per test, on SQLite (a temp file) or on a real PostgreSQL.

PostgreSQL comes from ``INSPECTOR_TEST_PG_URL`` (``.ci/with-postgres`` starts a throwaway server
and sets it). Without it the PostgreSQL cases skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

PG_ENV = "INSPECTOR_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def pg_server_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set under CI: run the tests through .ci/run or .ci/with-postgres")
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} or run through .ci/with-postgres")
    return url


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL to a new, empty database of this kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'inspector.db'}"
        return
    from sqlalchemy import create_engine, make_url

    server = make_url(pg_server_url())
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def record(run_id: int, frame: int, minutes: float, verdict: str = "OK", label: str | None = "ok", **extra):
    """A small, plausible ResultRecord ``minutes`` after T0."""
    from inspector.store import ResultRecord

    probabilities = None if verdict == "ERROR" else {"ok": 0.7, "scratch": 0.2, "spot": 0.1}
    fields = dict(
        run_id=run_id,
        frame_index=frame,
        captured_at=T0 + timedelta(minutes=minutes),
        verdict=verdict,
        label=None if verdict == "ERROR" else label,
        confidence=None if verdict == "ERROR" else 0.7,
        probabilities=probabilities,
        ood_score=None if verdict == "ERROR" else 0.25,
        latency_queue_ms=1.5,
        latency_infer_ms=8.0,
        latency_total_ms=10.5,
        error="decode failed" if verdict == "ERROR" else None,
    )
    fields.update(extra)
    return ResultRecord(**fields)
