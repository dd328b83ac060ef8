"""Shadow review, after the line: what a candidate said beside the deployed model, and the decision.

The line (:mod:`inspector.line.shadow`) counts and stores; here the ledger's numbers become a
summary an engineer decides on — agreement over every part both models judged, per-class
confusion between the deployed model's class and the candidate's, disagreements kept, frames shed
— and the decision is taken in one action: **promote** (a deploy through the audited roll-out
gate, :func:`inspector.rollout.deploy`, the summary in its reason) or **discard** (an audited
``shadow`` event). Either way the candidate stops shadowing in the app's settings, and the
decision is a row in the hash-chained audit trail (kind ``shadow``), taken by someone whose role
may (:mod:`inspector.access`: engineers).

A promote is a deploy, so this module builds on :mod:`inspector.rollout`; roll-out knows nothing
of shadow mode (the Models screen's job that does either is :mod:`inspector.jobs.deploy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from inspector.access import Actor, authorise
from inspector.errors import InspectorError
from inspector.registry import Registry, Version, is_version_id
from inspector.rollout import GateMargins, GateResult, acting_as, deploy
from inspector.store import Ledger

Log = Callable[[str], None]
EVENT_KIND = "shadow"


@dataclass
class ClassRow:
    """One class the deployed model gave: how often, and how often the candidate said the same."""

    name: str
    parts: int
    agreed: int
    candidate: dict[str, int]

    @property
    def agreement_pct(self) -> float | None:
        return 100.0 * self.agreed / self.parts if self.parts else None


@dataclass
class ShadowSummary:
    candidate: str
    model_version_id: int | None
    judged: int = 0
    agreed: int = 0
    shed: int = 0
    disagreements: int = 0
    runs: int = 0
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    deployed: dict[int, str] = field(default_factory=dict)
    last: datetime | None = None
    decision: str = ""  # the last promote/discard event's message, if any

    @property
    def has_data(self) -> bool:
        return self.runs > 0

    @property
    def agreement_pct(self) -> float | None:
        return 100.0 * self.agreed / self.judged if self.judged else None

    def line(self) -> str:
        from inspector.line.shadow import shadow_line

        return shadow_line(self.candidate, self.judged, self.agreed, self.shed)

    def classes(self) -> list[str]:
        """Every class either model named, deployed's first, in the order first seen."""
        names = dict.fromkeys(self.labels)
        for row in self.labels.values():
            names.update(dict.fromkeys(row))
        return list(names)

    def per_class(self) -> list[ClassRow]:
        return [
            ClassRow(name, sum(row.values()), row.get(name, 0), dict(row))
            for name, row in self.labels.items()
        ]

    def to_json(self) -> dict:
        return {
            "candidate": self.candidate,
            "judged": self.judged,
            "agreed": self.agreed,
            "agreement_pct": None if self.agreement_pct is None else round(self.agreement_pct, 2),
            "disagreements": self.disagreements,
            "shed": self.shed,
            "runs": self.runs,
            "labels": self.labels,
            "verdicts": self.verdicts,
            "deployed": {str(k): v for k, v in self.deployed.items()},
            "decision": self.decision,
        }


def candidate_sha256(home: Path, ref: str) -> str:
    """The weights hash of a registry version (v3) or a bundle folder (how the ledger knows it)."""
    from inspector.line.resolve import resolve_shadow
    from models.bundle import read_meta
    from models.errors import ModelError

    path, _ = resolve_shadow(ref, home)
    try:
        return read_meta(path)[1]
    except ModelError as exc:
        raise InspectorError(str(exc)) from None


def _summarize(ledger: Ledger, home: Path, ref: str) -> ShadowSummary:
    model_id = ledger.model_version_id(candidate_sha256(home, ref))
    summary = ShadowSummary(ref, model_id)
    if model_id is None:
        return summary
    totals = ledger.shadow_totals(model_id)
    confusion = totals["confusion"]
    summary.judged, summary.agreed, summary.shed = totals["judged"], totals["agreed"], totals["shed"]
    summary.disagreements, summary.runs = totals["disagreements"], totals["runs"]
    summary.labels, summary.verdicts = confusion.get("labels", {}), confusion.get("verdicts", {})
    summary.deployed, summary.last = totals["deployed"], totals["last"]
    for event in ledger.events(limit=200, kinds=(EVENT_KIND,)):
        if event["message"].startswith(f"{ref} "):
            summary.decision = event["message"]
            break
    return summary


def shadow_summary(home: Path, ledger_url: str, ref: str) -> ShadowSummary:
    """Everything the candidate ``ref`` judged in shadow, over all its runs in this ledger."""
    with Ledger(ledger_url) as ledger:
        return _summarize(ledger, home, ref)


def shadow_summaries(home: Path, ledger_url: str) -> dict[str, ShadowSummary]:
    """The registry's versions that have shadow data here: version id → summary."""
    registry = Registry(home)
    found: dict[str, ShadowSummary] = {}
    with Ledger(ledger_url) as ledger:
        shadowed = {c["sha256"] for c in ledger.shadow_candidates()}
        if not shadowed:
            return found
        for version in registry.versions():
            try:
                sha = candidate_sha256(home, version.id)
            except InspectorError:
                continue  # a damaged registry entry: the Models table says so already
            if sha in shadowed:
                found[version.id] = _summarize(ledger, home, version.id)
    return found


def _stop_shadowing(home: Path, ref: str) -> None:
    from inspector.settings import load_settings, save_settings

    settings = load_settings(home)
    if settings.shadow == ref:
        settings.shadow = ""
        save_settings(home, settings)


def promote(
    home: Path,
    ledger_url: str,
    ref: str,
    *,
    who: Actor | str,
    reason: str,
    data: str | None,
    margins: GateMargins | None = None,
    override: bool = False,
    log: Log = print,
) -> tuple[Version, GateResult | None, ShadowSummary]:
    """Deploy the candidate through the audited gate, its shadow record in the audit's reason.

    Returns the deployed version, the gate's result (None: no held-out data, no gate) and the
    shadow record it was promoted on. ``who`` as for :func:`inspector.rollout.deploy` (signed, once
    accounts exist: promoting is deploying).
    """
    actor = acting_as(who)
    if not is_version_id(ref):
        raise InspectorError(f"{ref}: promote a registry version (v1, v2, ...)")
    if (override or data is None) and not reason.strip():  # the shadow record is evidence, not a reason
        raise InspectorError(
            "promoting without the offline gate (no --data) or over it (--override-gate) needs a --reason"
        )
    with Ledger(ledger_url) as ledger:
        authorise(ledger, actor, "shadow_promote")
    summary = shadow_summary(home, ledger_url, ref)
    if not summary.has_data:
        raise InspectorError(f"{ref} has not run in shadow on this ledger: nothing to promote on")
    why = f"{reason.strip()} — " if reason.strip() else ""
    version, result = deploy(
        home,
        ledger_url,
        ref,
        who=actor,
        reason=f"{why}promoted from shadow ({summary.line()})",
        data=data,
        margins=margins or GateMargins(),
        override=override,
        log=log,
    )
    with Ledger(ledger_url) as ledger:
        ledger.add_event(EVENT_KIND, f"{ref} promoted from shadow by {actor.name} ({summary.line()})")
        ledger.append_audit(
            EVENT_KIND,
            actor.name,
            f"model {ref}",
            reason.strip(),
            signed=actor.signed,
            meaning="promoted from shadow",
            detail=_record(summary),
        )
    _stop_shadowing(home, ref)
    return version, result, summary


def discard(home: Path, ledger_url: str, ref: str, *, who: Actor | str, reason: str) -> ShadowSummary:
    """Give up on the candidate (audited); its shadow record stays in the ledger.

    ``who``: an engineer once accounts exist (a bare name: the local user of a ledger without them).
    """
    actor = acting_as(who)
    who = actor.name
    if not who.strip():
        raise InspectorError("say who discards (--by NAME)")
    if not reason.strip():
        raise InspectorError("discarding a shadow candidate needs a --reason (kept in the audit trail)")
    with Ledger(ledger_url) as ledger:
        authorise(ledger, actor, "shadow_discard")
    summary = shadow_summary(home, ledger_url, ref)
    with Ledger(ledger_url) as ledger:
        ledger.add_event(
            EVENT_KIND,
            f"{ref} discarded as shadow candidate by {who} ({summary.line()}); reason: {reason.strip()}",
            "info",
        )
        ledger.append_audit(
            EVENT_KIND,
            who,
            f"model {ref}",
            reason.strip(),
            signed=actor.signed,
            meaning="discarded as shadow candidate",
            detail=_record(summary),
        )
    _stop_shadowing(home, ref)
    return summary


def _record(summary: ShadowSummary) -> dict:
    """What the audit trail keeps of the shadow record a decision was taken on."""
    return {
        "shadow": summary.line(),
        "judged": summary.judged,
        "agreed": summary.agreed,
        "runs": summary.runs,
    }


def confusion_text(summary: ShadowSummary) -> list[str]:
    """The per-class confusion as aligned text rows: the deployed model's class down, the
    candidate's across, and how often the candidate agreed with each deployed class."""
    names = summary.classes()
    if not names:
        return []
    corner = f"deployed \\ {summary.candidate}"
    first = max(len(corner), *(len(n) for n in names)) + 2
    width = max(7, *(len(n) for n in names)) + 2
    lines = [f"{corner:<{first}}{'agree':>8}" + "".join(f"{n:>{width}}" for n in names)]
    for row in summary.per_class():
        pct = "–" if row.agreement_pct is None else f"{row.agreement_pct:.1f}%"
        cells = "".join(f"{row.candidate.get(n, 0):>{width},}" for n in names)
        lines.append(f"{row.name:<{first}}{pct:>8}" + cells)
    return lines
