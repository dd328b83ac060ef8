"""The Models screen's *Deploy*, *Promote* and *Roll back*, as jobs below the line (the gate
scores two models on held-out images: seconds to minutes of CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.access import Actor, as_actor
from inspector.rollout import GateBlocked, GateMargins, GateResult, deploy, rollback
from inspector.shadow_review import promote


def deploy_job(
    home: Path,
    ledger_url: str,
    ref: str,
    who: Actor | str | None,
    reason: str,
    data: str | None,
    margins: GateMargins,
    override: bool,
    from_shadow: bool = False,
    *,
    task: Any,
) -> dict[str, Any]:
    """Deploy ``ref``, or promote it from shadow (``from_shadow``: its record goes into the audit
    and shadowing ends).

    ``who``: the signed-in (and, with accounts, signed) person; a bare name or None (the login
    name) is the local user of a ledger without accounts.
    A blocked gate is an answer, not a failure: the screen shows the checks and may ask to override.
    """
    action = promote if from_shadow else deploy
    try:
        version, result, *_ = action(
            home,
            ledger_url,
            ref,
            who=as_actor(who),
            reason=reason,
            data=data,
            margins=margins,
            override=override,
            log=task.report,
        )
    except GateBlocked as blocked:
        result = blocked.result
        return {
            "blocked": True,
            "version": ref,
            "checks": _check_lines(result),
            "notes": _not_checked(result),
        }
    return {
        "blocked": False,
        "version": version.id,
        "gate": "no offline gate (no held-out data)" if result is None else result.summary(),
        "checks": [] if result is None else _check_lines(result),
    }


def rollback_job(home: Path, ledger_url: str, who: Actor | str | None, reason: str, *, task: Any) -> str:
    """The version now deployed after rolling back (``who`` as for :func:`deploy_job`)."""
    return rollback(home, ledger_url, who=as_actor(who), reason=reason).id


def _check_lines(result: GateResult) -> list[str]:
    return [("✓ " if check.passed else "✗ ") + check.text() for check in result.checks]


def _not_checked(result: GateResult) -> list[str]:
    """What the gate could not judge (a station the model serves without held-out images, a class
    set the two models do not share): an override should be decided knowing it."""
    return [o.text() for o in result.others if o.why_not] + ([result.note] if result.note else [])
