"""Putting a bundle into the registry as a version: the wizard's *Save* (and deploy) and the
Models screen's *Add bundle*. Jobs below the line, because registering measures latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector import rollout
from inspector.errors import InspectorError
from inspector.registry import Registry, Version
from inspector.store import default_url


def save_version(
    home: Path,
    bundle: Path,
    note: str,
    deploy: bool,
    ledger_url: str | None = None,
    who: str | None = None,
    *,
    task: Any,
) -> tuple[Version, str]:
    """Register the staged bundle (a copy: the staging folder may go right after), then deploy it,
    audited like any deploy (the wizard's before/after on the station's held-out images was its gate).

    Returns the version and, when deploying failed after the version was saved, why (the version
    stays: it can be deployed from the Models screen).
    """
    registry = Registry(home)
    version = registry.add(bundle, note)
    if deploy:
        try:
            rollout.deploy(
                home,
                ledger_url or default_url(home),
                version.id,
                who=who or rollout.who_default(),
                reason="fine-tune wizard" + (f": {note}" if note else ""),
                data=None,
                gate_note="the wizard's before/after on the station's held-out images",
            )
        except InspectorError as exc:
            return version, str(exc)
    return version, ""


def add_version(home: Path, bundle: Path, *, task: Any) -> Version:
    """Check, copy and measure a bundle into the registry."""
    return Registry(home).add(bundle)
