"""``inspector models deploy / rollback / audit / shadow-*``: the staged roll-out's gate, shadow
mode's summary and decision, and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inspector.cli.common import HomeOption, console, progress, user_errors, visible
from inspector.cli.line import DbOption, db_url

if TYPE_CHECKING:
    from inspector.access import Actor

ByOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who makes the change (default: the settings' operator, else your login). With accounts: "
        "the logged-in user (INSPECTOR_USER), whose password signs the change.",
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]


def _who(by: str | None, home: Path, url: str, action: str) -> Actor | str:
    """Without accounts, today's free text; with them, the logged-in person, allowed to do ``action``
    and (for a deploy or rollback) signed by the password just given."""
    from inspector.access import accounts_exist
    from inspector.cli.login import actor_for
    from inspector.rollout import who_default
    from inspector.settings import load_settings

    if accounts_exist(url):
        return actor_for(url, action, by)
    return by or load_settings(home).operator or who_default()


def _through_gate(
    action: Callable[..., tuple],
    ref: str,
    data: Path | None,
    override_gate: bool,
    by: str | None,
    reason: str,
    db: str | None,
    home: Path | None,
) -> tuple:
    """Deploy or promote ``ref`` through the offline gate with the station's settings and margins."""
    from inspector.home import app_home
    from inspector.rollout import GateMargins
    from inspector.settings import load_settings

    root = app_home(home)
    settings = load_settings(root)
    url = db_url(db, root)
    return action(
        root,
        url,
        ref,
        who=_who(by, root, url, "deploy"),  # promoting deploys too: signed alike
        reason=reason,
        data=str(data) if data else (settings.gate_data or None),
        margins=GateMargins.of(settings),
        override=override_gate,
        log=progress,
    )


def models_deploy(
    ref: Annotated[str, typer.Argument(help="A version (v3) or a bundle folder to register and deploy.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="The station's dataset: the offline gate scores the candidate and the deployed model on "
            "its held-out split (default: settings gate_data).",
        ),
    ] = None,
    override_gate: Annotated[
        bool,
        typer.Option("--override-gate", help="Deploy although the gate failed (needs --reason; audited)."),
    ] = False,
    by: ByOption = None,
    reason: ReasonOption = "",
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Gate, deploy (atomic switch) and audit a model version; a bundle folder is registered first.

    The gate blocks a candidate whose per-class recall drops, UNSURE rate rises or latency grows
    beyond the settings' margins, against the model the line runs now. Without held-out data the
    gate cannot run and the deploy needs a --reason.
    """
    from inspector.rollout import deploy

    with user_errors():
        version, _ = _through_gate(deploy, ref, data, override_gate, by, reason, db, home)
    console.print(f"deployed {version.id} ({version.source})")


def models_rollback(
    by: ByOption = None, reason: ReasonOption = "", db: DbOption = None, home: HomeOption = None
) -> None:
    """Undo the last deployment (audited): the version deployed before it becomes current again."""
    from inspector.home import app_home
    from inspector.rollout import rollback

    with user_errors():
        root = app_home(home)
        url = db_url(db, root)
        version = rollback(root, url, who=_who(by, root, url, "rollback"), reason=reason)
    console.print(f"rolled back: {version.id} is deployed again")


CandidateArgument = Annotated[
    str, typer.Argument(help="The shadow candidate: a model version (v3) or a bundle folder.")
]


def models_shadow_summary(
    ref: CandidateArgument,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON to this file.")
    ] = None,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """What a shadow candidate said beside the deployed model: agreement over every part both judged,
    per-class confusion (deployed class down, candidate's across), disagreements kept, frames shed."""
    import json

    from inspector.home import app_home
    from inspector.shadow_review import confusion_text, shadow_summary

    with user_errors():
        root = app_home(home)
        summary = shadow_summary(root, db_url(db, root), ref)
        if json_out is not None:
            from models.files import atomic_write_text

            atomic_write_text(json_out, json.dumps(summary.to_json(), indent=2) + "\n")
    if not summary.has_data:
        console.print(f"{ref} has not run in shadow on this ledger (start a line with --shadow {ref})")
        return
    beside = ", ".join(sorted(set(summary.deployed.values())))
    print_line = lambda text: console.print(text, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
    print_line(summary.line())
    print_line(f"beside {beside}, {summary.runs} run{'s' if summary.runs != 1 else ''}")
    for text in confusion_text(summary):
        print_line(text)
    verdicts = ", ".join(
        f"{d}→{c} {n}" for d, row in summary.verdicts.items() for c, n in row.items() if d != c
    )
    print_line(f"verdict changes: {verdicts or 'none'}")
    if summary.decision:
        print_line(f"decided: {summary.decision}")


def models_shadow_promote(
    ref: Annotated[str, typer.Argument(help="The shadow candidate's model version (v3).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="The station's dataset for the offline gate (default: settings gate_data)."
        ),
    ] = None,
    override_gate: Annotated[
        bool,
        typer.Option("--override-gate", help="Deploy although the gate failed (needs --reason; audited)."),
    ] = False,
    by: ByOption = None,
    reason: ReasonOption = "",
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Deploy a shadow candidate through the offline gate (audited, its shadow summary in the reason)."""
    from inspector.shadow_review import promote

    with user_errors():
        version, _, summary = _through_gate(promote, ref, data, override_gate, by, reason, db, home)
    console.print(f"promoted {version.id} from shadow ({summary.line()})", highlight=False)


def models_shadow_discard(
    ref: CandidateArgument,
    by: ByOption = None,
    reason: ReasonOption = "",
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Give up on a shadow candidate (audited, needs --reason); its disagreements stay for Review."""
    from inspector.home import app_home
    from inspector.shadow_review import discard

    with user_errors():
        root = app_home(home)
        url = db_url(db, root)
        summary = discard(root, url, ref, who=_who(by, root, url, "shadow_discard"), reason=reason)
    console.print(f"discarded {ref} ({summary.line()})", highlight=False)


def models_audit(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many, newest first.")] = 50,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Every deploy, rollback and shadow decision with who, why and the gate's verdict, newest first."""
    from inspector.home import app_home
    from inspector.rollout import audit_trail

    with user_errors():
        root = app_home(home)
        events = audit_trail(db_url(db, root), limit)
    if not events:
        console.print("no deploys, rollbacks or shadow decisions recorded yet")
    for event in events:
        when = event["at"].astimezone()
        line = f"{when:%Y-%m-%d %H:%M}  {event['kind']:<8} {visible(event['message'])}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)  # one event, one line
