"""`inspector audit verify` on a real headless run with QA reviews and a deploy: it passes, then names
the row after an edit made directly in the database file (SQLite here; PostgreSQL in test_audit_chain)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli import app
from inspector.store import Ledger, ResultFilter

runner = CliRunner()
DEMO_MODEL = Path(__file__).resolve().parents[2] / "inspector" / "demo_model"


@pytest.fixture
def home(tmp_path):
    try:
        from data.elpv import elpv_root

        elpv_root()
    except Exception:
        pytest.skip("elpv-dataset not installed")
    home = tmp_path / "home"
    ran = runner.invoke(app, ["demo", "--headless", "--frames", "6", "--fps", "0", "--home", str(home)])
    assert ran.exit_code == 0, ran.output
    url = f"sqlite:///{home / 'inspector.db'}"
    with Ledger(url) as ledger:
        first, second, *_ = ledger.query_results(ResultFilter(), newest_first=False)
        ledger.review(first["id"], first["label"], "qa1")
        other = next(name for name in ("functional", "defective") if name != second["label"])
        ledger.review(second["id"], other, "qa1", "crack hidden under the busbar")
    deployed = runner.invoke(
        app,
        ["models", "deploy", str(DEMO_MODEL), "--reason", "first model", "--by", "eng1", "--home", str(home)],
    )
    assert deployed.exit_code == 0, deployed.output
    return home


def _verify(home: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--home", str(home)])
    return result.exit_code, result.output


def test_verify_passes_on_a_real_run_and_names_the_row_edited_behind_its_back(home):
    code, output = _verify(home)
    assert code == 0, output
    assert "chain intact" in output
    listed = runner.invoke(app, ["audit", "list", "--home", str(home)])
    assert listed.exit_code == 0 and "crack hidden under the busbar" in listed.output
    assert "by qa1" in listed.output
    deploys = runner.invoke(app, ["audit", "list", "--kind", "deploy", "--home", str(home)])
    assert deploys.exit_code == 0 and "first model" in deploys.output  # the deploy is a chain row too

    with sqlite3.connect(home / "inspector.db") as connection:
        (row_id,) = connection.execute("SELECT id FROM audit_log WHERE reason LIKE 'crack%'").fetchone()
        connection.execute("UPDATE audit_log SET reason = 'looked fine' WHERE id = ?", (row_id,))
    code, output = _verify(home)
    assert code == 1
    assert f"BROKEN at row {row_id}" in " ".join(output.split())

    as_json = runner.invoke(app, ["audit", "verify", "--json", "--home", str(home)])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["bad_row"] == row_id


def test_verify_refuses_a_missing_database_without_creating_it(tmp_path):
    result = runner.invoke(app, ["audit", "verify", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert not (tmp_path / "inspector.db").exists()
