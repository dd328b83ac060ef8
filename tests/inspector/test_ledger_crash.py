"""Crash safety on SQLite: ``kill -9`` while the writer is busy leaves a sound database that holds
every committed batch and no partial one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from inspector.store import Ledger, default_url

BATCH = 50
WRITER = f"""
import sys
from datetime import datetime, timezone
from inspector.store import Ledger, ResultRecord

ledger = Ledger(sys.argv[1])
station = ledger.ensure_station("line-1")
model = ledger.ensure_model_version("a" * 64, "m", {{}}, {{}})
run = ledger.start_run(station, model, "crash-test")
print("run", run, flush=True)
frame = 0
while True:
    now = datetime.now(timezone.utc)
    ledger.add_results([
        ResultRecord(run, frame + i, now, "OK", "ok", 0.9, {{"ok": 0.9, "ng": 0.1}}, 0.1, 1.0, 2.0, 3.0)
        for i in range({BATCH})
    ])
    frame += {BATCH}
    print("committed", frame, flush=True)
"""


def _write_then_kill(url: str, at_least: int) -> tuple[int, int]:
    """Start a writer process, SIGKILL it once ``at_least`` rows are committed; (run id, committed)."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    run, committed, deadline = 0, 0, time.monotonic() + 60
    try:
        for line in writer.stdout:
            word, number = line.split()
            if word == "run":
                run = int(number)
            else:
                committed = int(number)
            if committed >= at_least or time.monotonic() > deadline:
                break
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
    assert run and committed >= at_least, "the writer did not get going"
    return run, committed


def test_kill_9_during_writes_keeps_every_committed_batch(tmp_path):
    url = default_url(tmp_path)
    Ledger(url).close()
    killed = []
    for round_ in range(3):
        killed.append(_write_then_kill(url, at_least=BATCH * (10 + 7 * round_)))

        with sqlite3.connect(tmp_path / "inspector.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            for run, committed in killed:
                frames = [
                    f for (f,) in db.execute("SELECT frame_index FROM results WHERE run_id = ?", (run,))
                ]
                assert len(frames) >= committed and len(frames) % BATCH == 0
                assert sorted(frames) == list(range(len(frames)))  # no partial batch, no gap
            assert db.execute("SELECT count(*) FROM results WHERE captured_at IS NULL").fetchone() == (0,)

    with Ledger(url) as ledger:
        assert ledger.mark_interrupted_runs() == [run for run, _ in killed]
        assert {run["status"] for run in ledger.runs()} == {"interrupted"}
