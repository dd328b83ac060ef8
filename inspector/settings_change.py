"""Saving the station's settings as someone allowed to: the permission check below the Settings
screen, and a row in the audit trail naming which fields changed.

Which action a field needs: the operator's name is a run field (any role sets it at the start of a
shift); verdict and gate thresholds are ``thresholds``; everything else is ``settings``. Both of the
latter are an engineer's. The audit row names the fields, never their values: a database URL or a
line output's URL may carry a password.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from inspector.access import Actor, authorise
from inspector.settings import Settings, load_settings, save_settings
from inspector.store import Ledger

RUN_FIELDS = frozenset({"operator"})
THRESHOLD_FIELDS = frozenset(
    {"unsure_below", "ood_energy_above", "gate_recall_drop", "gate_unsure_rise", "gate_latency_ratio"}
)


def changed_fields(before: Settings, after: Settings) -> list[str]:
    """The names of the fields whose values differ, in the settings' own order."""
    old, new = asdict(before), asdict(after)
    return [name for name in new if new[name] != old.get(name)]


def action_for(name: str) -> str:
    """The access action that changing field ``name`` needs."""
    if name in RUN_FIELDS:
        return "set_run_fields"
    return "thresholds" if name in THRESHOLD_FIELDS else "settings"


def change_settings(home: Path, ledger_url: str, actor: Actor, settings: Settings) -> list[str]:
    """Save ``settings`` if ``actor`` may change every field that differs; returns those fields.

    Nothing is written, and nothing audited, when nothing changed or the actor may not.
    """
    changed = changed_fields(load_settings(home), settings)
    if not changed:
        return []
    with Ledger(ledger_url) as ledger:
        for action in dict.fromkeys(action_for(name) for name in changed):
            authorise(ledger, actor, action)
        settings.validate()  # a refused value is said before the audit row is written
        ledger.append_audit(
            "settings",
            actor.name,
            f"settings of {settings.station}",
            signed=actor.signed,
            meaning="settings changed",
            detail={"changed": changed},
        )
        try:
            save_settings(home, settings)
        except BaseException as exc:  # audited first (as a deploy is): say it did not happen after all
            reason = str(exc) or type(exc).__name__
            subject = f"settings of {settings.station}"
            ledger.append_audit("settings", actor.name, subject, reason, meaning="not saved after all")
            raise
    return changed
