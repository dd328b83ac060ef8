"""User administration: add, list, disable, change a password.

Every change is a row in the ledger's hash-chained audit trail (kind ``user``) naming who made it,
committed with the change itself. The first account needs no login and must be an engineer
(someone has to be able to administer the others); after that only an engineer adds users. A
password is changed by its owner, who gives the old one, or reset by an engineer.
"""

from __future__ import annotations

from inspector import passwords
from inspector.access import AccessDenied, Actor, authorise, login
from inspector.errors import InspectorError
from inspector.store import Ledger
from inspector.store.records import ROLES


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InspectorError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def add_user(ledger_url: str, actor: Actor | None, name: str, role: str, password: str) -> None:
    """Add an account. With no accounts yet this is the first one: an engineer, no login needed."""
    passwords.check_name(name)
    _check_role(role)
    passwords.check_password(password)
    with Ledger(ledger_url) as ledger:
        first = ledger.account_count() == 0
        if first:
            if role != "engineer":
                raise AccessDenied("the first account must be an engineer (it administers the others)")
            by = None
        else:
            if actor is None:
                raise AccessDenied("accounts exist: log in as an engineer to add users")
            authorise(ledger, actor, "users")
            by = actor.name
        ledger.create_account(name, role, passwords.hash_password(password), by=by)


def list_users(ledger_url: str) -> list[dict]:
    """Every account by name: name, role, disabled, locked_until, created_at, password_changed_at.

    Never the hash, nor how many wrong passwords were typed.
    """
    with Ledger(ledger_url) as ledger:
        return ledger.accounts()


def disable_user(ledger_url: str, actor: Actor, name: str) -> None:
    """Disable an account (an engineer's job); its name stays on every record it made."""
    passwords.check_name(name)
    with Ledger(ledger_url) as ledger:
        authorise(ledger, actor, "users")
        ledger.disable_account(name, by=actor.name)


def change_password(ledger_url: str, actor: Actor, name: str, old: str | None, new: str) -> None:
    """Change ``name``'s password: its owner gives the ``old`` one; an engineer may reset anyone's."""
    passwords.check_name(name)
    passwords.check_password(new)
    own = actor.role is not None and actor.name == name
    if own:
        if old is None:
            raise AccessDenied("changing your own password needs the old one")
        login(ledger_url, name, old)  # a wrong old password counts towards the lock-out
    with Ledger(ledger_url) as ledger:
        if not own:
            if actor.role is not None and actor.role != "engineer":
                raise AccessDenied(
                    f"changing another user's password needs the engineer role ({actor.name} is {actor.role})"
                )
            authorise(ledger, actor, "users")
        if ledger.account(name) is None:
            raise InspectorError(f"no user called {name}")
        ledger.set_account_password(name, passwords.hash_password(new), by=actor.name)
