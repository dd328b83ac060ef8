"""No password and no password hash anywhere a person or a program reads (issue 27): after the
account flows and a signed deploy through the CLI, every file under the home, the ledger's events
and audit trail, the commands' output and the log records are searched for each password typed and
for "$argon2". The ledger's own file holds hashes in its users table, and is searched for the
passwords only."""

from __future__ import annotations

import logging

from access_support import cheap_hashing  # noqa: F401 (a fixture)
from tests_support import always_bundle
from typer.testing import CliRunner

from inspector.cli import app
from inspector.registry import Registry
from inspector.store import Ledger

runner = CliRunner()
ANA, BO, BO_RESET, BO_OWN, GUESS = (
    "ana-Secret-41",
    "bo-Secret-52",
    "bo-Reset-63",
    "bo-Own-74",
    "guess-Wrong-85",
)
SECRETS = (ANA, BO, BO_RESET, BO_OWN, GUESS)
HASH_MARK = "$argon2"


def test_no_password_or_hash_leaks(tmp_path, tiny_vit_spec, cheap_hashing, monkeypatch, caplog):  # noqa: F811
    for name in ("INSPECTOR_USER", "INSPECTOR_PASSWORD", "INSPECTOR_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    registry = Registry(home)
    for name, favourite in (("a", "ok"), ("b", "spot")):
        registry.add(always_bundle(tmp_path / name, tiny_vit_spec, ["ok", "scratch", "spot"], favourite))
    registry.deploy("v1")
    ana = {"INSPECTOR_USER": "ana", "INSPECTOR_PASSWORD": ANA}
    steps = [
        (["users", "add", "ana", "--role", "engineer"], {"INSPECTOR_NEW_PASSWORD": ANA}, None, 0),
        (["users", "add", "bo", "--role", "qa"], ana, f"{BO}\n{BO}\n", 0),
        *[(["users", "list"], {"INSPECTOR_USER": "bo", "INSPECTOR_PASSWORD": GUESS}, None, 2)] * 5,
        (["users", "passwd", "bo"], {**ana, "INSPECTOR_NEW_PASSWORD": BO_RESET}, None, 0),
        (
            ["users", "passwd", "bo"],
            {"INSPECTOR_USER": "bo", "INSPECTOR_PASSWORD": BO_RESET},
            f"{BO_OWN}\n{BO_OWN}\n",
            0,
        ),
        (["users", "list"], ana, None, 0),
        (["models", "deploy", "v2", "--reason", "hotfix"], ana, None, 0),
        (
            ["results", "export", "-o", str(home / "results.csv")],
            {"INSPECTOR_USER": "bo", "INSPECTOR_PASSWORD": BO_OWN},
            None,
            0,
        ),
        (
            ["models", "rollback", "--reason", "undo"],
            {"INSPECTOR_USER": "bo", "INSPECTOR_PASSWORD": BO_OWN},
            None,
            2,
        ),
        (["models", "audit"], {}, None, 0),
        (["users", "disable", "bo"], ana, None, 0),
        (["users", "list"], {"INSPECTOR_USER": "ana"}, f"{ANA}\n", 0),  # the password typed at a prompt
    ]
    outputs = []
    for args, env, typed, code in steps:
        result = runner.invoke(app, [*args, "--home", str(home)], env=env, input=typed)
        assert result.exit_code == code, (args, result.output)
        outputs.append(result.output)
    assert "locked" in outputs[6]  # the fifth wrong password locked bo

    def leaks(text: str, secrets=(*SECRETS, HASH_MARK)) -> list[str]:
        return [secret for secret in secrets if secret in text]

    for output in outputs:
        assert not leaks(output), output
    assert not leaks("\n".join(record.getMessage() for record in caplog.records))
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.name == "results.csv" for path in files)
    ledger_text = ""
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        if path.name.startswith("inspector.db"):  # the ledger: hashes live in its users table
            assert not leaks(text, SECRETS), path
            ledger_text += text
        else:
            assert not leaks(text), path
    assert HASH_MARK in ledger_text  # the search does read what is stored
    with Ledger(f"sqlite:///{home / 'inspector.db'}") as ledger:
        rows = ledger.audit_rows(limit=1000) + ledger.events(limit=1000)
        assert len(ledger.audit_rows(limit=1000, kinds=("user",))) >= 5
    assert not leaks(repr(rows))
