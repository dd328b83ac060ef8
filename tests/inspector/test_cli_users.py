"""`inspector users add / list / disable / passwd`: the first account, logins from the environment or
a prompt, a new password typed twice, and refusals as one line."""

from __future__ import annotations

import pytest
from access_support import PASSWORDS, cheap_hashing  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from inspector.access import AccessDenied, login
from inspector.cli import app
from inspector.cli.users import ROLE_CHOICES
from inspector.store.records import ROLES

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch, cheap_hashing):  # noqa: F811
    for name in ("INSPECTOR_USER", "INSPECTOR_PASSWORD", "INSPECTOR_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def _url(home) -> str:
    return f"sqlite:///{home / 'inspector.db'}"


def users(home, *args, env=None, input=None):
    return runner.invoke(app, ["users", *args, "--home", str(home)], env=env or {}, input=input)


def as_user(name: str, **extra) -> dict:
    return {"INSPECTOR_USER": name, "INSPECTOR_PASSWORD": PASSWORDS[name], **extra}


def _first(home) -> None:
    added = users(home, "add", "ana", "--role", "engineer", env={"INSPECTOR_NEW_PASSWORD": PASSWORDS["ana"]})
    assert added.exit_code == 0, added.output
    assert "the first account" in added.output


def test_role_choices_are_the_ledgers():
    assert ROLE_CHOICES == ROLES


def test_the_first_account_is_an_engineer_and_needs_no_login(home):
    refused = users(home, "add", "bo", "--role", "qa", env={"INSPECTOR_NEW_PASSWORD": PASSWORDS["bo"]})
    assert refused.exit_code == 2
    assert "first account must be an engineer" in refused.output
    _first(home)
    assert login(_url(home), "ana", PASSWORDS["ana"]).role == "engineer"


def test_after_the_first_an_engineer_logs_in(home):
    _first(home)
    anonymous = users(home, "add", "bo", "--role", "qa", env={"INSPECTOR_NEW_PASSWORD": PASSWORDS["bo"]})
    assert anonymous.exit_code == 2
    assert "log in: set INSPECTOR_USER and INSPECTOR_PASSWORD" in anonymous.output
    added = users(
        home, "add", "bo", "--role", "qa", env=as_user("ana", INSPECTOR_NEW_PASSWORD=PASSWORDS["bo"])
    )
    assert added.exit_code == 0, added.output
    as_qa = users(
        home, "add", "cy", "--role", "operator", env=as_user("bo", INSPECTOR_NEW_PASSWORD="whatever-1")
    )
    assert as_qa.exit_code == 2
    assert "administering users needs the engineer role (bo is qa)" in as_qa.output


def test_a_login_can_be_typed(home):
    _first(home)
    typed = f"ana\n{PASSWORDS['ana']}\n"
    added = users(
        home, "add", "bo", "--role", "qa", env={"INSPECTOR_NEW_PASSWORD": PASSWORDS["bo"]}, input=typed
    )
    assert added.exit_code == 0, added.output
    assert PASSWORDS["ana"] not in added.output  # typed with the echo off


def test_a_new_password_typed_twice_must_match(home):
    _first(home)
    differ = users(home, "add", "bo", "--role", "qa", env=as_user("ana"), input="first-try-1\nsecond-try-2\n")
    assert differ.exit_code == 2
    assert "the two passwords typed differ: nothing changed" in differ.output
    assert "first-try-1" not in differ.output and "second-try-2" not in differ.output
    with pytest.raises(AccessDenied):
        login(_url(home), "bo", "first-try-1")
    same = users(home, "add", "bo", "--role", "qa", env=as_user("ana"), input="same-pass-1\nsame-pass-1\n")
    assert same.exit_code == 0, same.output
    assert login(_url(home), "bo", "same-pass-1").role == "qa"


def test_bad_input_is_one_line(home):
    _first(home)
    for args, why in [
        (("add", "bo", "--role", "admin"), "--role must be one of operator, qa, engineer"),
        (("add", "b\x1bo", "--role", "qa"), "printable"),
        (("add", "bo", "--role", "qa"), "at least 8"),
    ]:
        result = users(home, *args, env=as_user("ana", INSPECTOR_NEW_PASSWORD="short"))
        assert result.exit_code == 2, result.output
        assert why in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_list_disable_and_passwd(home):
    _first(home)
    for name, role in (("bo", "qa"), ("cy", "operator")):
        added = users(
            home, "add", name, "--role", role, env=as_user("ana", INSPECTOR_NEW_PASSWORD=PASSWORDS[name])
        )
        assert added.exit_code == 0, added.output
    listed = users(home, "list", env=as_user("ana"))
    assert listed.exit_code == 0, listed.output
    assert [line.split()[:3] for line in listed.output.splitlines()[1:]] == [
        ["ana", "engineer", "active"],
        ["bo", "qa", "active"],
        ["cy", "operator", "active"],
    ]
    assert users(home, "list", env=as_user("cy")).exit_code == 2
    disabled = users(home, "disable", "cy", env=as_user("ana"))
    assert disabled.exit_code == 0, disabled.output
    rows = users(home, "list", env=as_user("ana")).output.splitlines()[1:]
    assert [row.split()[:3] for row in rows][-1] == ["cy", "operator", "disabled"]
    # own password: the login is the old one
    own = users(home, "passwd", "bo", env=as_user("bo", INSPECTOR_NEW_PASSWORD="bo-new-pass-1"))
    assert own.exit_code == 0, own.output
    assert login(_url(home), "bo", "bo-new-pass-1").name == "bo"
    wrong_old = users(
        home,
        "passwd",
        "bo",
        env={"INSPECTOR_USER": "bo", "INSPECTOR_PASSWORD": "nope-nope", "INSPECTOR_NEW_PASSWORD": "x" * 9},
    )
    assert wrong_old.exit_code == 2 and "wrong user name or password" in wrong_old.output
    # someone else's: an engineer's job
    others = users(
        home,
        "passwd",
        "ana",
        env={
            "INSPECTOR_USER": "bo",
            "INSPECTOR_PASSWORD": "bo-new-pass-1",
            "INSPECTOR_NEW_PASSWORD": "x" * 9,
        },
    )
    assert others.exit_code == 2 and "engineer role (bo is qa)" in others.output
    reset = users(home, "passwd", "bo", env=as_user("ana", INSPECTOR_NEW_PASSWORD="bo-reset-pass-1"))
    assert reset.exit_code == 0, reset.output
    assert login(_url(home), "bo", "bo-reset-pass-1").name == "bo"


def test_without_accounts(home):
    listed = users(home, "list")
    assert listed.exit_code == 0 and "no accounts" in listed.output
    assert users(home, "passwd", "ana").exit_code == 2
