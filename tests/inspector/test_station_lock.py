"""One line per station and ledger: a second is refused while the first runs, and the lock dies with
its process (kill -9), on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from ledger_support import BACKENDS, database_url
from typer.testing import CliRunner

from inspector.cli import app
from inspector.store import Ledger
from inspector.store.station_lock import StationBusy, StationLock

HOLDER = """
import sys
from inspector.store.station_lock import StationLock

lock = StationLock(sys.argv[1], "line-1").acquire()
print("held", flush=True)
sys.stdin.read()  # hold until killed
"""


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        Ledger(url).close()  # the database exists, as it does when a line starts
        yield url


def test_a_second_lock_on_a_station_is_refused_until_the_first_is_released(url):
    first = StationLock(url, "line-1").acquire()
    with pytest.raises(StationBusy, match="already running on station 'line-1'"):
        StationLock(url, "line-1").acquire()
    with StationLock(url, "line-2") as other:  # another station of the same ledger runs freely
        assert other.held
    first.release()
    first.release()  # idempotent
    with StationLock(url, "line-1") as again:
        assert again.held
    assert not again.held


def _acquire_within(url: str, seconds: float) -> StationLock:
    """The lock, once the killed holder's session is gone (PostgreSQL notices in a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return StationLock(url, "line-1").acquire()
        except StationBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_lock_dies_with_a_killed_process(url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StationBusy):
            StationLock(url, "line-1").acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdin.close()
        holder.stdout.close()
    _acquire_within(url, 60).release()


def test_in_memory_ledgers_are_not_locked():
    with StationLock("sqlite://", "line-1"), StationLock("sqlite://", "line-1") as second:
        assert not second.held


def _running_runs(db) -> int:
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_two_lines_on_one_station_the_second_is_refused_and_the_first_finishes(tiny_station, tmp_path):
    """Probe (issue 27): two lines started at once on one station — the second's start marked the
    first's live run interrupted, and the first ended with exit 2 and a false 'crash or power loss'."""
    db = tmp_path / "line.db"
    args = ["run", "--model", "demo", "--db", f"sqlite:///{db}", "--home", str(tmp_path / "home")]
    looping = ["--source", f"{tiny_station}?fps=5&loop=1", "--station", "s1"]
    first = subprocess.Popen(
        [sys.executable, "-m", "inspector", *args, *looping],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while _running_runs(db) == 0:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first line did not start"
            time.sleep(0.2)
        second = CliRunner().invoke(app, [*args, *looping, "--frames", "3"])
        assert second.exit_code == 2, second.output
        assert "a line is already running on station 's1'" in second.output.replace("\n", "")
        errors = [line for line in second.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and second.output.strip().endswith(errors[0]), second.output  # one line
        other = CliRunner().invoke(
            app, [*args, "--source", f"{tiny_station}?fps=0", "--station", "s2", "-n", "3"]
        )
        assert other.exit_code == 0, other.output
    finally:
        first.send_signal(signal.SIGTERM)
        _, errors = first.communicate(timeout=300)
    assert first.returncode == 0, errors
    assert "crash or power loss" not in errors and "had not finished" not in errors
    with Ledger(f"sqlite:///{db}") as ledger:
        assert sorted(run["status"] for run in ledger.runs()) == ["finished", "finished"]
        assert ledger.events(kinds=["interrupted"]) == []
