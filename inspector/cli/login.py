"""Who runs a command: no accounts, the local user (``--by``); else a login from the environment
(``INSPECTOR_USER``, ``INSPECTOR_PASSWORD``, for scripts) or typed at a prompt, checked by
:func:`inspector.access.acting`. Passwords are read with the echo off and never printed."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from inspector.access import USER_ENV, AccessDenied, Actor, acting
from inspector.cli.common import db_url
from inspector.home import home_path

NEW_PASSWORD_ENV = "INSPECTOR_NEW_PASSWORD"


def ask(label: str) -> str:
    """Ask on the terminal (hidden when it is a password); end of input is a refusal, not a crash."""
    try:
        return typer.prompt(label, hide_input="password" in label, err=True)
    except (typer.Abort, EOFError):
        raise AccessDenied(
            f"log in: set {USER_ENV} and INSPECTOR_PASSWORD (no answer to '{label}')"
        ) from None


def actor_for(ledger_url: str, action: str, by: str | None = None) -> Actor:
    """The person doing ``action``, allowed to (a signed action signed by the password given)."""
    return acting(ledger_url, action, by=by, prompt=ask)


def actor_at(home: Path | None, db: str | None, action: str, by: str | None = None) -> Actor:
    """:func:`actor_for` on the ledger a command with ``--home`` and ``--db`` uses.

    Asking makes neither the home folder nor a database (train and finetune write no ledger).
    """
    return actor_for(db_url(db, home_path(home)), action, by)


def new_password(whose: str) -> str:
    """``INSPECTOR_NEW_PASSWORD``, else typed twice (both must match): nothing is echoed."""
    given = os.environ.get(NEW_PASSWORD_ENV)
    if given is not None:
        return given
    first = ask(f"new password for {whose}")
    if ask(f"new password for {whose} again") != first:
        raise AccessDenied("the two passwords typed differ: nothing changed")
    return first
