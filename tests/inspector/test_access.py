"""Who may do what (issue 27 item 2): the action x role table, pinned; logins, lock-out, signatures."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 (a fixture)
from argon2 import PasswordHasher

from inspector import access, passwords
from inspector.access import AccessDenied, Actor, acting, login, require, sign
from inspector.store import Ledger

OP, Q, E = "operator", "qa", "engineer"
# The table the README shows, written out by hand: a change to access.ACTIONS must change it too.
TABLE = {
    "run_line": (OP, Q, E),
    "start_shift": (OP, Q, E),
    "set_run_fields": (OP, Q, E),
    "review": (Q, E),
    "change_class": (Q, E),
    "export": (Q, E),
    "report": (Q, E),
    "train": (E,),
    "finetune": (E,),
    "deploy": (E,),
    "rollback": (E,),
    "override_gate": (E,),
    "shadow_promote": (E,),
    "shadow_discard": (E,),
    "settings": (E,),
    "thresholds": (E,),
    "users": (E,),
}
SIGNED = {"change_class", "override_gate", "deploy", "rollback"}


def test_the_table_names_every_action():
    assert set(access.ACTIONS) == set(TABLE)
    assert set(access.SIGNED_ACTIONS) == SIGNED
    assert set(access.DOING) == set(TABLE)


@pytest.mark.parametrize("role", [OP, Q, E])
@pytest.mark.parametrize("action", sorted(TABLE))
def test_action_by_role(action, role):
    actor = Actor("someone", role, signed=True)
    if role in TABLE[action]:
        require(actor, action)
    else:
        with pytest.raises(AccessDenied) as refused:
            require(actor, action)
        message = str(refused.value)
        assert "\n" not in message
        assert f"(someone is {role})" in message
        assert " or ".join(TABLE[action][-2:]) in message or f"the {TABLE[action][0]} role" in message


def test_the_refusal_reads_as_one_line_naming_the_role():
    with pytest.raises(AccessDenied, match=r"^deploying a model needs the engineer role \(ana is qa\)$"):
        require(Actor("ana", Q, signed=True), "deploy")


@pytest.mark.parametrize("action", sorted(SIGNED))
def test_signed_actions_need_a_signature(action):
    with pytest.raises(AccessDenied, match="signature"):
        require(Actor("ana", E), action)
    require(Actor("ana", E, signed=True), action)


@pytest.mark.parametrize("action", sorted(TABLE))
def test_without_accounts_the_local_user_may_do_everything(action):
    require(access.local_actor("whoever"), action)


def test_an_unknown_action_is_a_bug():
    with pytest.raises(ValueError):
        require(Actor("ana", E), "launch")


def test_local_actor_is_todays_who(monkeypatch):
    monkeypatch.setattr(access, "local_user", lambda: "login-name")
    assert access.local_actor() == Actor("login-name", None)
    assert access.local_actor("  ") == Actor("login-name", None)
    assert access.local_actor("kim") == Actor("kim", None)


@pytest.fixture
def url(tmp_path, cheap_hashing):  # noqa: F811
    value = f"sqlite:///{tmp_path / 'inspector.db'}"
    add_three(value)
    return value


def test_accounts_exist(tmp_path, url):
    missing = tmp_path / "none" / "inspector.db"
    assert not access.accounts_exist(f"sqlite:///{missing}")
    assert not missing.parent.exists()  # asking made no database
    Ledger(f"sqlite:///{tmp_path / 'empty.db'}").close()
    assert not access.accounts_exist(f"sqlite:///{tmp_path / 'empty.db'}")
    assert access.accounts_exist(url)


def test_login_gives_the_accounts_role(url):
    assert login(url, "bo", PASSWORDS["bo"]) == Actor("bo", Q)


def test_a_wrong_password_and_an_unknown_name_read_the_same(url):
    with pytest.raises(AccessDenied) as wrong:
        login(url, "bo", "not-her-password")
    with pytest.raises(AccessDenied) as unknown:
        login(url, "nobody", "not-her-password")
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"


def test_five_wrong_passwords_lock_the_account(url, monkeypatch):
    for _ in range(access.MAX_FAILED_LOGINS - 1):
        with pytest.raises(AccessDenied, match="^wrong user name or password$"):
            login(url, "bo", "guess")
    with pytest.raises(AccessDenied, match="now locked until"):
        login(url, "bo", "guess")
    with pytest.raises(AccessDenied, match="bo is locked until .* after 5 wrong passwords"):
        login(url, "bo", PASSWORDS["bo"])  # the right password does not help while locked
    assert login(url, "ana", PASSWORDS["ana"]).role == E  # others are not locked
    with Ledger(url) as ledger:
        locked = [r for r in ledger.audit_rows(kinds=("user",)) if r["meaning"] == "locked out"]
        assert [r["subject"] for r in locked] == ["user bo"]


def test_a_good_login_resets_the_count(url):
    for _ in range(access.MAX_FAILED_LOGINS - 1):
        with pytest.raises(AccessDenied):
            login(url, "bo", "guess")
    login(url, "bo", PASSWORDS["bo"])
    for _ in range(access.MAX_FAILED_LOGINS - 1):
        with pytest.raises(AccessDenied, match="^wrong user name or password$"):
            login(url, "bo", "guess")
    login(url, "bo", PASSWORDS["bo"])


def test_the_lock_ends(url, monkeypatch):
    monkeypatch.setattr(access, "LOCKOUT", timedelta(0))  # a lock that has already run out
    for _ in range(access.MAX_FAILED_LOGINS):
        with pytest.raises(AccessDenied):
            login(url, "bo", "guess")
    assert login(url, "bo", PASSWORDS["bo"]).name == "bo"


def test_a_disabled_user_cannot_log_in(url):
    from inspector.accounts import disable_user

    disable_user(url, login(url, "ana", PASSWORDS["ana"]), "cy")
    with pytest.raises(AccessDenied, match="^cy is disabled$"):
        login(url, "cy", PASSWORDS["cy"])


def test_a_hash_with_old_parameters_is_replaced_at_login(url, monkeypatch):
    with Ledger(url) as ledger:
        before = ledger.account("bo").password_hash
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    monkeypatch.setattr(passwords, "hasher", stronger)
    login(url, "bo", PASSWORDS["bo"])
    with Ledger(url) as ledger:
        after = ledger.account("bo").password_hash
    assert after != before and "t=2" in after and not stronger.check_needs_rehash(after)
    assert login(url, "bo", PASSWORDS["bo"]).name == "bo"


def test_the_product_hashes_with_argon2id_at_least_rfc9106_low_memory():
    from argon2 import Type

    hasher = PasswordHasher()  # what passwords.hasher is outside these tests
    assert hasher.type is Type.ID and hasher.memory_cost >= 65536 and hasher.time_cost >= 3
    assert type(passwords.hasher) is PasswordHasher


def test_sign_checks_the_password_again(url):
    bo = login(url, "bo", PASSWORDS["bo"])
    with pytest.raises(AccessDenied, match="wrong"):
        sign(url, bo, "not-it", "change_class")
    signed = sign(url, bo, PASSWORDS["bo"], "change_class")
    assert signed == replace(bo, signed=True)
    with pytest.raises(AccessDenied, match="engineer role"):
        sign(url, bo, PASSWORDS["bo"], "deploy")


def test_sign_without_accounts_returns_the_local_user(tmp_path):
    local = access.local_actor("kim")
    assert sign(f"sqlite:///{tmp_path / 'x.db'}", local, "", "deploy") == local


def test_acting_without_accounts_is_todays_behaviour(tmp_path, monkeypatch):
    monkeypatch.delenv(access.USER_ENV, raising=False)
    assert acting(f"sqlite:///{tmp_path / 'x.db'}", "deploy", by="kim") == Actor("kim", None)


def test_acting_logs_in_from_the_environment(url, monkeypatch):
    monkeypatch.setenv(access.USER_ENV, "ana")
    monkeypatch.setenv(access.PASSWORD_ENV, PASSWORDS["ana"])
    assert acting(url, "deploy") == Actor("ana", E, signed=True)  # the password is the signature
    assert acting(url, "settings") == Actor("ana", E, signed=False)
    assert acting(url, "deploy", by="ana").name == "ana"
    with pytest.raises(AccessDenied, match="--by 'kim' is not the logged-in user ana"):
        acting(url, "deploy", by="kim")


def test_acting_refuses_a_role_that_may_not(url, monkeypatch):
    monkeypatch.setenv(access.USER_ENV, "cy")
    monkeypatch.setenv(access.PASSWORD_ENV, PASSWORDS["cy"])
    assert acting(url, "run_line").role == OP
    with pytest.raises(
        AccessDenied, match=r"^exporting results needs the qa or engineer role \(cy is operator\)$"
    ):
        acting(url, "export")


def test_acting_asks_or_says_how_to_log_in(url, monkeypatch):
    monkeypatch.delenv(access.USER_ENV, raising=False)
    monkeypatch.delenv(access.PASSWORD_ENV, raising=False)
    with pytest.raises(AccessDenied, match="^log in: set INSPECTOR_USER and INSPECTOR_PASSWORD$"):
        acting(url, "run_line")
    asked = []

    def prompt(label: str) -> str:
        asked.append(label)
        return "bo" if label == "user" else PASSWORDS["bo"]

    assert acting(url, "change_class", prompt=prompt) == Actor("bo", Q, signed=True)
    assert asked == ["user", "password for bo"]


def test_authorise_refuses_the_local_user_once_accounts_exist(url, tmp_path):
    with Ledger(url) as ledger, pytest.raises(AccessDenied, match="needs a login"):
        access.authorise(ledger, access.local_actor("kim"), "deploy")
    with Ledger(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        access.authorise(fresh, access.local_actor("kim"), "deploy")
