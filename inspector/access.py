"""Who may do what: the one place where permissions are decided, for the CLI, the app and jobs.

Three roles, named by the people who use the product (DESIGN §3): operators run the line and start
shifts; QA also reviews, changes classes (with a reason) and exports; engineers do everything. With
no accounts in the ledger the product runs as it always did, as one local user who may do
everything (an :class:`Actor` whose ``role`` is None). Once one account exists, every action
needs a logged-in person, and the actions in :data:`SIGNED_ACTIONS` need a signature: the person
re-enters their password for that very record (21 CFR Part 11's "identity plus a secret").
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from inspector import passwords
from inspector.errors import InspectorError
from inspector.store import Ledger, database

OPERATOR_UP = ("operator", "qa", "engineer")
QA_UP = ("qa", "engineer")
ENGINEER = ("engineer",)

ACTIONS: dict[str, tuple[str, ...]] = {
    # the line: run it, stop it, start a shift, set its lot and operator fields
    "run_line": OPERATOR_UP,
    "start_shift": OPERATOR_UP,
    "set_run_fields": OPERATOR_UP,
    # QA: review (confirm), change a class with a reason, export results, write reports
    "review": QA_UP,
    "change_class": QA_UP,
    "export": QA_UP,
    "report": QA_UP,
    # engineers: models, roll-out, settings and accounts
    "train": ENGINEER,
    "finetune": ENGINEER,
    "deploy": ENGINEER,
    "rollback": ENGINEER,
    "override_gate": ENGINEER,
    "shadow_promote": ENGINEER,
    "shadow_discard": ENGINEER,
    "settings": ENGINEER,
    "thresholds": ENGINEER,
    "users": ENGINEER,
}
"""Action name → the roles allowed to do it (pinned action by action in tests/inspector/test_access.py)."""

SIGNED_ACTIONS: dict[str, str] = {
    "change_class": "class changed by QA",
    "override_gate": "gate overridden",
    "deploy": "approved for deploy",
    "rollback": "approved for rollback",
}
"""Actions that are signed once accounts exist → the meaning recorded with the signature."""

DOING: dict[str, str] = {
    "run_line": "running the line",
    "start_shift": "starting a shift",
    "set_run_fields": "setting the lot and operator",
    "review": "reviewing results",
    "change_class": "changing a class",
    "export": "exporting results",
    "report": "writing a report",
    "train": "training a model",
    "finetune": "fine-tuning a model",
    "deploy": "deploying a model",
    "rollback": "rolling back a model",
    "override_gate": "overriding the offline gate",
    "shadow_promote": "promoting a shadow candidate",
    "shadow_discard": "discarding a shadow candidate",
    "settings": "changing settings",
    "thresholds": "changing thresholds",
    "users": "administering users",
}
"""How a refusal names each action ("deploying a model needs the engineer role (ana is qa)")."""

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=5)
USER_ENV, PASSWORD_ENV = "INSPECTOR_USER", "INSPECTOR_PASSWORD"
WRONG = "wrong user name or password"


@dataclass(frozen=True)
class Actor:
    """The person doing an action.

    ``role`` None: no accounts are configured, and this is the local user of old, allowed
    everything. ``signed``: the password was (re-)entered for this very action.
    """

    name: str
    role: str | None
    signed: bool = False


class AccessDenied(InspectorError):
    """Not logged in, a wrong password, a locked or disabled account, or a role that may not."""


def accounts_exist(ledger_url: str) -> bool:
    """Whether the ledger holds any account (a missing SQLite file holds none and is not made)."""
    path = database.sqlite_path(database.parse_url(ledger_url))
    if path is not None and not path.exists():
        return False
    with Ledger(ledger_url) as ledger:
        return ledger.account_count() > 0


def local_user() -> str:
    """The login name of whoever runs the program (what "who" meant before accounts)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def local_actor(name: str | None = None) -> Actor:
    """Today's behaviour without accounts: ``name`` (--by, the settings' operator), else the login."""
    return Actor(name.strip() if name and name.strip() else local_user(), None)


def as_actor(who: Actor | str | None) -> Actor:
    """An :class:`Actor` as it is, or a bare name (what callers passed before accounts) as the local
    user; :func:`authorise` still refuses the latter once the ledger has accounts."""
    return who if isinstance(who, Actor) else local_actor(who)


def _roles(roles: tuple[str, ...]) -> str:
    return roles[0] if len(roles) == 1 else f"{', '.join(roles[:-1])} or {roles[-1]}"


def require(actor: Actor, action: str) -> None:
    """Refuse, in one line naming the role it needs, what ``actor`` may not do.

    The local user of a ledger without accounts (``role`` None) may do everything. A signed
    action (:data:`SIGNED_ACTIONS`) also needs ``actor.signed`` once accounts exist.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")  # a bug in the caller, not a person's mistake
    if actor.role is None:
        return
    allowed = ACTIONS[action]
    if actor.role not in allowed:
        raise AccessDenied(f"{DOING[action]} needs the {_roles(allowed)} role ({actor.name} is {actor.role})")
    if action in SIGNED_ACTIONS and not actor.signed:
        raise AccessDenied(f"{DOING[action]} needs {actor.name}'s signature: re-enter the password")


def authorise(ledger: Ledger, actor: Actor, action: str) -> None:
    """:func:`require`, and refuse the account-less local user once the ledger has accounts.

    Inspector-layer functions that change the line call this with the ledger they write to, so that
    a caller cannot slip past a login by handing in a :func:`local_actor`.
    """
    if actor.role is None and ledger.account_count() > 0:
        raise AccessDenied(f"{DOING.get(action, action)} needs a login: accounts exist on {ledger.where}")
    require(actor, action)


def _until(when: datetime) -> str:
    return when.astimezone().strftime("%H:%M:%S")


def login(ledger_url: str, name: str, password: str) -> Actor:
    """The account ``name`` if ``password`` is its own; else :class:`AccessDenied`.

    Wrong passwords are counted: :data:`MAX_FAILED_LOGINS` in a row lock the account for
    :data:`LOCKOUT` (audited). An unknown name and a wrong password read the same, and take as long.
    """
    with Ledger(ledger_url) as ledger:
        row = ledger.account(name)
        if row is None:
            passwords.waste_time(password)
            raise AccessDenied(WRONG)
        if row.disabled:
            raise AccessDenied(f"{name} is disabled")
        now = datetime.now(timezone.utc)
        if row.locked_until is not None and row.locked_until > now:
            raise AccessDenied(
                f"{name} is locked until {_until(row.locked_until)} after {MAX_FAILED_LOGINS} wrong passwords"
            )
        if not passwords.matches(row.password_hash, password):
            locked = ledger.login_failed(name, MAX_FAILED_LOGINS, LOCKOUT)
            if locked is not None:
                raise AccessDenied(f"{WRONG}; {name} is now locked until {_until(locked)}")
            raise AccessDenied(WRONG)
        rehashed = passwords.hasher.hash(password) if passwords.needs_rehash(row.password_hash) else None
        ledger.login_succeeded(name, rehashed)
        return Actor(row.name, row.role)


def sign(ledger_url: str, actor: Actor, password: str, action: str) -> Actor:
    """A signed copy of ``actor`` for ``action``, once its password was re-entered and checked.

    Without accounts there is nothing to sign with: the local actor comes back as it is.
    """
    if actor.role is None:
        require(actor, action)
        return actor
    checked = login(ledger_url, actor.name, password)
    signed = replace(checked, signed=True)
    require(signed, action)
    return signed


def acting(
    ledger_url: str,
    action: str,
    *,
    by: str | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Actor:
    """Who does ``action`` from the CLI or a job, allowed to do it.

    No accounts: :func:`local_actor` (``by``). Else the person in ``INSPECTOR_USER`` and
    ``INSPECTOR_PASSWORD``, or asked through ``prompt(label)`` (the label says "password" where the
    typing should be hidden); a ``by`` naming someone else is refused. For a signed action the
    password entered is the signature.
    """
    if not accounts_exist(ledger_url):
        actor = local_actor(by)
        require(actor, action)
        return actor
    name = os.environ.get(USER_ENV) or ""
    password = os.environ.get(PASSWORD_ENV)
    if not name and prompt is not None:
        name = prompt("user").strip()
    if not name:
        raise AccessDenied(f"log in: set {USER_ENV} and {PASSWORD_ENV}")
    if password is None:
        if prompt is None:
            raise AccessDenied(f"log in: set {USER_ENV} and {PASSWORD_ENV}")
        password = prompt(f"password for {name}")
    actor = login(ledger_url, name, password)
    if by and by.strip() and by.strip() != actor.name:
        raise AccessDenied(f"--by {by.strip()!r} is not the logged-in user {actor.name}")
    if action in SIGNED_ACTIONS:
        actor = replace(actor, signed=True)
    require(actor, action)
    return actor
