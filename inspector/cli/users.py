"""``inspector users add / list / disable / passwd``: accounts and roles (issue 27).

The first account needs no login and must be an engineer; from then on every command that changes
the line needs a login, and these commands need an engineer's (changing one's own password needs
only the old one).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.table import Table

from inspector.cli.common import HomeOption, choice, console, user_errors
from inspector.cli.line import DbOption, db_url

# inspector.store.records.ROLES, spelled here so that --help opens no database code (tests check it).
ROLE_CHOICES = ("operator", "qa", "engineer")

users_app = typer.Typer(help="Accounts and roles: operator, qa, engineer.", no_args_is_help=True)
NameArgument = Annotated[str, typer.Argument(help="The account's name.")]


def _url(db: str | None, home) -> str:
    from inspector.home import app_home

    return db_url(db, app_home(home))


@users_app.command("add")
def users_add(
    name: NameArgument,
    role: Annotated[str, choice("--role", ROLE_CHOICES, "What the person may do.")],
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Add an account; its password comes from INSPECTOR_NEW_PASSWORD or is typed twice.

    The first account must be an engineer and needs no login; after it, an engineer logs in
    (INSPECTOR_USER and INSPECTOR_PASSWORD, or a prompt).
    """
    from inspector import passwords
    from inspector.access import accounts_exist
    from inspector.accounts import add_user
    from inspector.cli.login import actor_for, new_password

    with user_errors():
        url = _url(db, home)
        passwords.check_name(name)
        first = not accounts_exist(url)
        actor = None if first else actor_for(url, "users")
        add_user(url, actor, name, role, new_password(name))
    console.print(f"added {name} ({role})", highlight=False)
    if first:
        console.print(
            "the first account: from now on commands that change the line need a login "
            "(INSPECTOR_USER and INSPECTOR_PASSWORD, or a prompt)",
            highlight=False,
        )


def _state(user: dict, now: datetime) -> str:
    if user["disabled"]:
        return "disabled"
    locked = user["locked_until"]
    if locked is not None and locked > now:
        return f"locked until {locked.astimezone():%H:%M:%S}"
    return "active"


@users_app.command("list")
def users_list(db: DbOption = None, home: HomeOption = None) -> None:
    """Every account: name, role, state, created, password last changed (never a hash)."""
    from inspector.access import accounts_exist
    from inspector.accounts import list_users
    from inspector.cli.login import actor_for

    with user_errors():
        url = _url(db, home)
        if not accounts_exist(url):
            console.print(
                "no accounts: the product runs as one local user (add one with 'inspector users add')"
            )
            return
        actor_for(url, "users")
        users = list_users(url)
    now = datetime.now(timezone.utc)
    table = Table("name", "role", "state", "created", "password changed", box=None, pad_edge=False)
    for user in users:
        table.add_row(
            user["name"],
            user["role"],
            _state(user, now),
            f"{user['created_at'].astimezone():%Y-%m-%d %H:%M}",
            f"{user['password_changed_at'].astimezone():%Y-%m-%d %H:%M}",
        )
    console.print(table)


@users_app.command("disable")
def users_disable(name: NameArgument, db: DbOption = None, home: HomeOption = None) -> None:
    """Disable an account (an engineer's job): it can no longer log in; its records keep its name."""
    from inspector.accounts import disable_user
    from inspector.cli.login import actor_for

    with user_errors():
        url = _url(db, home)
        disable_user(url, actor_for(url, "users"), name)
    console.print(f"disabled {name}", highlight=False)


@users_app.command("passwd")
def users_passwd(name: NameArgument, db: DbOption = None, home: HomeOption = None) -> None:
    """Change a password: your own (log in as NAME with the old one), or anyone's as an engineer.

    The new one comes from INSPECTOR_NEW_PASSWORD or is typed twice.
    """
    from inspector.access import PASSWORD_ENV, USER_ENV, AccessDenied, accounts_exist, login
    from inspector.accounts import change_password
    from inspector.cli.login import actor_for, ask, new_password

    with user_errors():
        url = _url(db, home)
        if not accounts_exist(url):
            raise AccessDenied("no accounts: add one with 'inspector users add NAME --role engineer'")
        who = os.environ.get(USER_ENV) or ask("user").strip()
        if who == name:
            old = os.environ.get(PASSWORD_ENV)
            if old is None:
                old = ask(f"password for {who}")
            actor = login(url, who, old)
        else:
            old, actor = None, actor_for(url, "users")
        change_password(url, actor, name, old, new_password(name))
    console.print(f"password of {name} changed", highlight=False)
