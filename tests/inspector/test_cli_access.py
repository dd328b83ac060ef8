"""The CLI asks inspector.access before it works: with accounts in the home's ledger each command
needs a login with a role that may (issue 27 item 2); without accounts nothing changes."""

from __future__ import annotations

import pytest
from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from inspector.cli import app
from inspector.errors import InspectorError

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch, cheap_hashing):  # noqa: F811
    for name in ("INSPECTOR_USER", "INSPECTOR_PASSWORD", "INSPECTOR_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("INSPECTOR_HOME", str(home))
    return home


@pytest.fixture
def built(monkeypatch) -> list[dict]:
    """Stop ``run`` where the line would be built, keeping what it was asked to build."""
    asked: list[dict] = []

    def build(**fields):
        asked.append(fields)
        raise InspectorError("line not started in this test")

    monkeypatch.setattr("inspector.cli.line._build_pipeline", build)
    return asked


def _as(name: str) -> dict:
    return {"INSPECTOR_USER": name, "INSPECTOR_PASSWORD": PASSWORDS[name]}


def invoke(home, args, user: str | None = None):
    if args[-1] == "--out":
        args = [*args, str(home / "report.pdf")]
    return runner.invoke(app, [*args, "--home", str(home)], env=_as(user) if user else {})


RUN = ["run", "--source", "sim", "--model", "demo", "--frames", "1"]
EXPORT = ["results", "export"]
REPORT = ["report", "--lot", "x", "--no-twin", "--out"]  # the PDF's path follows (in the home)


@pytest.mark.parametrize(
    "args, allowed",
    [
        (RUN, ("cy", "bo", "ana")),
        (EXPORT, ("bo", "ana")),
        (REPORT, ("bo", "ana")),
        (["train", "no-such-station", "--out", "m"], ("ana",)),
    ],
)
def test_each_command_needs_a_role_that_may(home, built, args, allowed):
    add_three(f"sqlite:///{home / 'inspector.db'}")
    anonymous = invoke(home, args)
    assert anonymous.exit_code == 2
    assert "log in: set INSPECTOR_USER and INSPECTOR_PASSWORD" in anonymous.output
    for user in ("cy", "bo", "ana"):
        result = invoke(home, args, user)
        refused = "role (" in result.output
        assert refused == (user not in allowed), (user, result.output)
        assert "Traceback" not in result.output


def test_finetune_is_an_engineers_job(home):
    add_three(f"sqlite:///{home / 'inspector.db'}")
    result = runner.invoke(app, ["finetune", "m", "d", "--out", "o"], env=_as("bo"))
    assert result.exit_code == 2
    assert "fine-tuning a model needs the engineer role (bo is qa)" in result.output


def test_run_records_the_logged_in_operator(home, built):
    add_three(f"sqlite:///{home / 'inspector.db'}")
    invoke(home, RUN, "cy")
    invoke(home, [*RUN, "--operator", "relief-op"], "cy")
    assert [fields["operator"] for fields in built] == ["cy", "relief-op"]


def test_without_accounts_nobody_logs_in(home, built):
    result = invoke(home, RUN)
    assert "line not started in this test" in result.output
    assert built[0]["operator"] == ""


def test_asking_makes_no_home_and_no_ledger(tmp_path, monkeypatch):
    fresh = tmp_path / "not-yet"
    monkeypatch.setenv("INSPECTOR_HOME", str(fresh))
    for name in ("INSPECTOR_USER", "INSPECTOR_PASSWORD", "INSPECTOR_DB"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["finetune", str(tmp_path / "no-model"), "d", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert not fresh.exists()
