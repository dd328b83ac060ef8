"""``inspector audit``: the hash-chained trail of reviews, deploys, rollbacks, gate verdicts and user
changes — verify it, or list it with who signed what."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from inspector.cli.common import HomeOption, console, err, user_errors, visible
from inspector.cli.line import DbOption, db_url

audit_app = typer.Typer(help="The tamper-evident audit trail: verify, list.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as one JSON object.")] = False,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Walk the whole trail and recompute every row's hash; exit 1 naming the first row that does
    not match (edited, deleted or inserted behind the product's back)."""
    from inspector.home import app_home
    from inspector.store import Ledger

    with user_errors():
        root = app_home(home)
        with Ledger(db_url(db, root), create=False) as ledger:
            check = ledger.verify_audit()
    if as_json:
        print(json.dumps({"ok": check.ok, "rows": check.rows, "bad_row": check.bad_id, "why": check.why}))
    elif check.ok:
        console.print(check.text(), highlight=False)
    else:
        err.print(check.text(), style="bold red", highlight=False)
    if not check.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many, newest first.")] = 50,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only these kinds (review, deploy, gate, ...)."),
    ] = None,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """The trail's rows, newest first: when, what, who, whether signed and with what meaning, why."""
    from inspector.home import app_home
    from inspector.store import Ledger

    with user_errors():
        root = app_home(home)
        with Ledger(db_url(db, root), create=False) as ledger:
            rows = ledger.audit_rows(limit=limit, kinds=kind or ())
    if not rows:
        console.print("the audit trail is empty")
    for row in rows:
        when = row["at"].astimezone()
        signed = f"signed: {row['meaning']}" if row["signed"] else "not signed"
        line = (
            f"#{row['id']:<5} {when:%Y-%m-%d %H:%M}  {row['kind']:<8} {visible(row['subject'])}  "
            f"by {visible(row['actor'])} ({visible(signed)}); reason: {visible(row['reason'] or '–')}"
        )
        console.print(line, highlight=False, markup=False, soft_wrap=True)  # one row, one line
