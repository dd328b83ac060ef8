"""Deploys, rollbacks, gate verdicts and shadow decisions as rows of the audit chain, signed where
accounts exist, refused to a role that may not (issue 27 items 2-3)."""

from __future__ import annotations

import pytest
from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 (a fixture)
from tests_support import always_bundle
from typer.testing import CliRunner

from inspector.access import AccessDenied, Actor, login, sign
from inspector.cli import app
from inspector.registry import Registry
from inspector.rollout import GateBlocked, GateMargins, deploy, rollback
from inspector.shadow_review import discard, promote
from inspector.store import Ledger

CLASSES = ["ok", "scratch", "spot"]
LOOSE_LATENCY = GateMargins(latency_ratio=1000.0)
runner = CliRunner()


@pytest.fixture
def home(tmp_path, tiny_vit_spec, cheap_hashing, monkeypatch):  # noqa: F811
    """A registry with v1 (always ok, deployed) and v2 (always spot: loses ok's recall)."""
    for name in ("INSPECTOR_USER", "INSPECTOR_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "home"
    registry = Registry(root)
    for name, favourite in (("a", "ok"), ("b", "spot")):
        registry.add(always_bundle(tmp_path / name, tiny_vit_spec, CLASSES, favourite))
    registry.deploy("v1")
    return root


def _url(home) -> str:
    return f"sqlite:///{home / 'inspector.db'}"


def _rows(home, *kinds) -> list[dict]:
    with Ledger(_url(home)) as ledger:
        assert ledger.verify_audit().ok
        return list(reversed(ledger.audit_rows(kinds=kinds)))


def _signed_as(home, name: str, action: str) -> Actor:
    return sign(_url(home), login(_url(home), name, PASSWORDS[name]), PASSWORDS[name], action)


def test_without_accounts_a_name_deploys_and_the_rows_are_unsigned(home):
    deploy(home, _url(home), "v2", who="ann", reason="hotfix", data=None)
    rollback(home, _url(home), who="ann", reason="false rejects")
    deployed, rolled = _rows(home, "deploy", "rollback")
    assert (deployed["actor"], deployed["signed"], deployed["meaning"]) == (
        "ann",
        False,
        "approved for deploy",
    )
    assert (deployed["subject"], deployed["reason"]) == ("model v2", "hotfix")
    assert deployed["detail"] == {"from": "v1", "gate": "gate skipped (no held-out data)"}
    assert (rolled["subject"], rolled["meaning"], rolled["reason"]) == (
        "model v1",
        "approved for rollback",
        "false rejects",
    )
    assert rolled["detail"] == {"from": "v2", "to": "v1"}


def test_with_accounts_only_a_signed_engineer_deploys_and_rolls_back(home):
    add_three(_url(home))
    for who, refusal in [
        ("ann", "needs a login"),  # a bare name is the account-less local user
        (Actor("bo", "qa", signed=True), r"engineer role \(bo is qa\)"),
        (login(_url(home), "ana", PASSWORDS["ana"]), "signature"),
    ]:
        with pytest.raises(AccessDenied, match=refusal):
            deploy(home, _url(home), "v2", who=who, reason="hotfix", data=None)
    assert Registry(home).deployed().id == "v1" and _rows(home, "deploy") == []
    deploy(home, _url(home), "v2", who=_signed_as(home, "ana", "deploy"), reason="hotfix", data=None)
    with pytest.raises(AccessDenied, match="signature"):
        rollback(home, _url(home), who=login(_url(home), "ana", PASSWORDS["ana"]), reason="undo")
    assert Registry(home).deployed().id == "v2"
    rollback(home, _url(home), who=_signed_as(home, "ana", "rollback"), reason="undo")
    assert [
        (r["kind"], r["actor"], r["signed"], r["meaning"]) for r in _rows(home, "deploy", "rollback")
    ] == [
        ("deploy", "ana", True, "approved for deploy"),
        ("rollback", "ana", True, "approved for rollback"),
    ]


def test_gate_verdicts_and_an_override_are_rows(home, tiny_station):
    with pytest.raises(GateBlocked):
        deploy(home, _url(home), "v2", who="ann", reason="", data=str(tiny_station), margins=LOOSE_LATENCY)
    (failed,) = _rows(home, "gate")
    assert (failed["actor"], failed["subject"], failed["meaning"]) == ("ann", "model v2", "gate failed")
    assert any(line.startswith("FAIL recall ok") for line in failed["detail"]["checks"])
    deploy(
        home,
        _url(home),
        "v2",
        who="ann",
        reason="night shift trial",
        data=str(tiny_station),
        margins=LOOSE_LATENCY,
        override=True,
    )
    rows = [(r["kind"], r["meaning"], r["reason"]) for r in _rows(home, "gate", "deploy")]
    assert rows == [
        ("gate", "gate failed", ""),
        ("gate", "gate failed", ""),
        ("gate", "gate overridden", "night shift trial"),
        ("deploy", "approved for deploy", "night shift trial"),
    ]


def test_shadow_decisions_are_an_engineers_and_are_rows(home):
    add_three(_url(home))
    qa = Actor("bo", "qa", signed=True)
    with pytest.raises(AccessDenied, match=r"discarding a shadow candidate needs the engineer role"):
        discard(home, _url(home), "v2", who=qa, reason="too many UNSURE")
    with pytest.raises(AccessDenied, match=r"promoting a shadow candidate needs the engineer role"):
        promote(home, _url(home), "v2", who=qa, reason="agrees", data=None)
    ana = login(_url(home), "ana", PASSWORDS["ana"])
    discard(home, _url(home), "v2", who=ana, reason="too many UNSURE")
    (row,) = _rows(home, "shadow")
    assert (row["actor"], row["subject"], row["meaning"]) == (
        "ana",
        "model v2",
        "discarded as shadow candidate",
    )
    assert row["reason"] == "too many UNSURE" and row["detail"]["judged"] == 0


def _cli(home, *args, user=None, password=None):
    env = {} if user is None else {"INSPECTOR_USER": user, "INSPECTOR_PASSWORD": password or PASSWORDS[user]}
    return runner.invoke(app, ["models", *args, "--home", str(home)], env=env)


def test_the_cli_signs_with_the_login(home):
    add_three(_url(home))
    assert "log in: set INSPECTOR_USER" in _cli(home, "deploy", "v2", "--reason", "hotfix").output
    as_qa = _cli(home, "deploy", "v2", "--reason", "hotfix", user="bo")
    assert as_qa.exit_code == 2 and "deploying a model needs the engineer role (bo is qa)" in as_qa.output
    other = _cli(home, "deploy", "v2", "--reason", "hotfix", "--by", "kim", user="ana")
    assert other.exit_code == 2 and "--by 'kim' is not the logged-in user ana" in other.output
    wrong = _cli(home, "deploy", "v2", "--reason", "hotfix", user="ana", password="not-hers-1")
    assert wrong.exit_code == 2 and "wrong user name or password" in wrong.output
    assert Registry(home).deployed().id == "v1"
    done = _cli(home, "deploy", "v2", "--reason", "hotfix", "--by", "ana", user="ana")
    assert done.exit_code == 0, done.output
    back = _cli(home, "rollback", "--reason", "undo", user="ana")
    assert back.exit_code == 0, back.output
    signed = [(r["kind"], r["actor"], r["signed"]) for r in _rows(home, "deploy", "rollback")]
    assert signed == [("deploy", "ana", True), ("rollback", "ana", True)]
