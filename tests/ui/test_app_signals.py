"""Logout or shutdown sends SIGTERM: the app stops its line, writes what is queued, finishes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from inspector.store import Ledger, ResultFilter

WAIT_S = 180
APP = "import sys; from pathlib import Path; from ui.app import run_demo; run_demo(Path(sys.argv[1]))"


@pytest.fixture
def elpv() -> None:
    try:
        from data.elpv import elpv_root

        elpv_root()
    except Exception:
        pytest.skip("elpv-dataset not installed")


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_line_and_finishes_the_run(elpv, tmp_path, signum):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("INSPECTOR_DB", "INSPECTOR_HOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    app = subprocess.Popen(
        [sys.executable, "-c", APP, str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run = _wait_for_results(app, home / "inspector.db", 5)
        app.send_signal(signum)
        output, _ = app.communicate(timeout=WAIT_S)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert app.returncode == 0, output
    with Ledger(f"sqlite:///{home / 'inspector.db'}") as ledger:
        (after,) = [r for r in ledger.runs() if r["id"] == run]
        assert after["status"] == "finished", output
        stats = after["stats"]
        written = ledger.count_results(ResultFilter(run_id=run))
    assert written == stats["written"] and stats["entered"] == written + sum(stats["drops"].values())


def _wait_for_results(app: subprocess.Popen, db: Path, count: int) -> int:
    """The demo's run id once it has ``count`` results in the ledger."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert app.poll() is None, app.stdout.read() if app.stdout else ""
        if db.exists():
            try:
                with Ledger(f"sqlite:///{db}", migrate=False) as ledger:
                    runs = [r for r in ledger.runs() if r["status"] == "running"]
                    if runs and ledger.count_results(ResultFilter(run_id=runs[0]["id"])) >= count:
                        return runs[0]["id"]
            except Exception:  # the app may still be creating or migrating it
                pass
        time.sleep(0.5)
    raise AssertionError("the demo line did not write results")
