"""User administration (issue 27 item 1) on SQLite and PostgreSQL: the first-account rule, who may
add, disable and reset, and that every change is a row in the audit chain."""

from __future__ import annotations

import pytest
from access_support import PASSWORDS, add_three, cheap_hashing  # noqa: F401 (a fixture)
from ledger_support import BACKENDS, database_url

from inspector.access import AccessDenied, Actor, login
from inspector.accounts import add_user, change_password, disable_user, list_users
from inspector.errors import InspectorError
from inspector.store import Ledger, LedgerError


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path, cheap_hashing):  # noqa: F811
    with database_url(request.param, tmp_path) as value:
        yield value


def _ana(url: str) -> Actor:
    return login(url, "ana", PASSWORDS["ana"])


def test_the_first_account_must_be_an_engineer(url):
    with pytest.raises(AccessDenied, match="first account must be an engineer"):
        add_user(url, None, "bo", "qa", PASSWORDS["bo"])
    assert list_users(url) == []
    add_user(url, None, "ana", "engineer", PASSWORDS["ana"])
    assert [(u["name"], u["role"]) for u in list_users(url)] == [("ana", "engineer")]


def test_after_the_first_only_an_engineer_adds_users(url):
    add_three(url)
    with pytest.raises(AccessDenied, match="log in as an engineer"):
        add_user(url, None, "dee", "engineer", "long-enough-1")
    bo = login(url, "bo", PASSWORDS["bo"])
    with pytest.raises(AccessDenied, match=r"administering users needs the engineer role \(bo is qa\)"):
        add_user(url, bo, "dee", "qa", "long-enough-1")
    with pytest.raises(AccessDenied, match="needs a login"):  # the account-less local user
        add_user(url, Actor("root", None), "dee", "qa", "long-enough-1")
    with pytest.raises(LedgerError, match="a user called bo exists already"):
        add_user(url, _ana(url), "bo", "qa", "long-enough-1")
    assert [u["name"] for u in list_users(url)] == ["ana", "bo", "cy"]


def test_the_store_refuses_a_second_first_account(url):
    add_three(url)
    with Ledger(url) as ledger, pytest.raises(LedgerError, match="accounts exist already"):
        ledger.create_account("eve", "engineer", "not-a-hash", by=None)  # a race lost to another station
    assert "eve" not in [u["name"] for u in list_users(url)]


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "needs a name"),
        ("a\nb", "printable"),
        ("\x1b[31mred", "printable"),
        ("evil\u202eadmin", "printable"),
        ("x" * 65, "at most 64"),
        (" ana", "start or end with a space"),
    ],
)
def test_bad_names_are_refused(url, name, why):
    with pytest.raises(InspectorError, match=why):
        add_user(url, None, name, "engineer", "long-enough-1")
    assert list_users(url) == []


@pytest.mark.parametrize("password, why", [("short", "at least 8"), ("x" * 1025, "at most 1024")])
def test_bad_passwords_are_refused_without_quoting_them(url, password, why):
    with pytest.raises(InspectorError, match=why) as refused:
        add_user(url, None, "ana", "engineer", password)
    assert password not in str(refused.value)


def test_an_unknown_role_is_refused(url):
    with pytest.raises(InspectorError, match="role must be one of operator, qa, engineer"):
        add_user(url, None, "ana", "admin", "long-enough-1")


def test_the_listing_never_holds_a_hash(url):
    add_three(url)
    for user in list_users(url):
        assert set(user) == {"name", "role", "disabled", "locked_until", "created_at", "password_changed_at"}
        assert not any("argon2" in str(value) for value in user.values())


def test_disable(url):
    add_three(url)
    bo = login(url, "bo", PASSWORDS["bo"])
    with pytest.raises(AccessDenied, match="engineer role"):
        disable_user(url, bo, "cy")
    disable_user(url, _ana(url), "cy")
    assert {u["name"]: u["disabled"] for u in list_users(url)} == {"ana": False, "bo": False, "cy": True}
    with pytest.raises(AccessDenied, match="cy is disabled"):
        login(url, "cy", PASSWORDS["cy"])
    with pytest.raises(LedgerError, match="cy is disabled already"):
        disable_user(url, _ana(url), "cy")
    with pytest.raises(LedgerError, match="no user called dee"):
        disable_user(url, _ana(url), "dee")


def test_the_last_engineer_stays(url):
    add_three(url)
    with pytest.raises(LedgerError, match="last enabled engineer"):
        disable_user(url, _ana(url), "ana")
    add_user(url, _ana(url), "eli", "engineer", "long-enough-1")
    disable_user(url, _ana(url), "ana")
    with pytest.raises(AccessDenied, match="ana is disabled"):
        _ana(url)


def test_a_changed_password_needs_the_old_one(url):
    add_three(url)
    bo = login(url, "bo", PASSWORDS["bo"])
    with pytest.raises(AccessDenied, match="needs the old one"):
        change_password(url, bo, "bo", None, "new-password-1")
    with pytest.raises(AccessDenied, match="wrong user name or password"):
        change_password(url, bo, "bo", "not-the-old-one", "new-password-1")
    change_password(url, bo, "bo", PASSWORDS["bo"], "new-password-1")
    with pytest.raises(AccessDenied):
        login(url, "bo", PASSWORDS["bo"])
    assert login(url, "bo", "new-password-1").name == "bo"


def test_only_an_engineer_resets_another_users_password(url):
    add_three(url)
    bo = login(url, "bo", PASSWORDS["bo"])
    with pytest.raises(AccessDenied, match=r"needs the engineer role \(bo is qa\)"):
        change_password(url, bo, "cy", None, "new-password-1")
    for _ in range(5):  # locked out: a reset unlocks
        with pytest.raises(AccessDenied):
            login(url, "cy", "guess")
    change_password(url, _ana(url), "cy", None, "new-password-1")
    assert login(url, "cy", "new-password-1").role == "operator"
    with pytest.raises(InspectorError, match="no user called dee"):
        change_password(url, _ana(url), "dee", None, "new-password-1")


def test_every_change_is_an_audit_row_and_the_chain_holds(url):
    add_three(url)
    disable_user(url, _ana(url), "cy")
    change_password(url, _ana(url), "bo", None, "new-password-1")
    with Ledger(url) as ledger:
        rows = ledger.audit_rows(kinds=("user",))
        check = ledger.verify_audit()
    assert [(r["actor"], r["subject"], r["meaning"]) for r in reversed(rows)] == [
        ("ana", "user ana", "first account added"),
        ("ana", "user bo", "account added"),
        ("ana", "user cy", "account added"),
        ("ana", "user cy", "disabled"),
        ("ana", "user bo", "password reset"),
    ]
    assert check.ok, check.text()
