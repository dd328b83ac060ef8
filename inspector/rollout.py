"""Staged roll-out: an offline gate before a version goes live, and an audit of every change.

Before a version is deployed it is scored beside the model the line runs now, on the same held-out
images of the station: per-class recall, the UNSURE rate each model's own thresholds give, and
batch-1 latency (interleaved). A regression beyond the margins blocks the deploy unless someone
overrides it with a reason. Every deploy and rollback, gated or not, is an event in the results
ledger with who, why and the gate's numbers, so a plant sees who changed the line and when, and a
row in the hash-chained audit trail (the gate's verdict too, kind ``gate``), signed where accounts
exist: who may deploy, roll back or override is decided by :mod:`inspector.access`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from data.errors import DataError
from data.station import NAMED_DATASETS, load_station
from inspector.access import SIGNED_ACTIONS, Actor, authorise, local_user
from inspector.class_sets import ClassSetCheck, class_set_check
from inspector.classification_report import classification_report
from inspector.errors import InspectorError
from inspector.line.line_timing import backend_name, line_engines, time_per_part
from inspector.line.resolve import resolve_model
from inspector.line.verdicts import Verdict, VerdictRules
from inspector.registry import Registry, Version, is_version_id
from inspector.settings import Settings
from inspector.stations import StationScore, station_name, validated_stations
from inspector.store import Ledger
from inspector.training.predict import predict_logits
from inspector.training.workflows import check_classes, load_split, open_station, split_seed
from models.bundle import load_bundle, read_meta
from models.scoring import energy, softmax

if TYPE_CHECKING:
    from data.station import Station

Log = Callable[[str], None]
LATENCY_ROUNDS = 3
AUDIT_KINDS = ("deploy", "rollback", "shadow")  # shadow: a candidate promoted or discarded
# Other stations the deployed model serves that the gate scores as well (each costs a load, a
# fingerprint and two models' predictions on its held-out split); the rest are named, unchecked.
MAX_OTHER_STATIONS = 3


class GateBlocked(InspectorError):
    """The candidate regressed beyond the margins and nobody overrode the gate."""

    def __init__(self, result: GateResult) -> None:
        failed = "; ".join(check.text() for check in result.checks if not check.passed)
        super().__init__(
            f"{result.candidate.name} not deployed, the offline gate blocked it: {failed} "
            "(deploy anyway with --override-gate and a --reason)"
        )
        self.result = result


@dataclass(frozen=True)
class GateMargins:
    """How much worse than the deployed model a candidate may be (Settings → rollout gate)."""

    recall_drop: float = 0.02  # per class, absolute
    unsure_rise: float = 0.05  # share of the held-out parts, absolute
    latency_ratio: float = 1.25  # candidate p50 over deployed p50

    @classmethod
    def of(cls, settings: Settings) -> GateMargins:
        """The station's margins (``settings.json``: gate_recall_drop, gate_unsure_rise, …)."""
        return cls(settings.gate_recall_drop, settings.gate_unsure_rise, settings.gate_latency_ratio)


@dataclass
class ModelScore:
    name: str
    recall: dict[str, float]
    unsure_rate: float
    latency_ms: float
    macro_f1: float
    n: int


@dataclass
class GateCheck:
    what: str
    deployed: float
    candidate: float
    limit: float
    higher_is_better: bool
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.candidate >= self.limit if self.higher_is_better else self.candidate <= self.limit

    def text(self) -> str:
        bound = "≥" if self.higher_is_better else "≤"
        return (
            f"{self.what} {self.candidate:.3g}{self.unit} (deployed {self.deployed:.3g}{self.unit}, "
            f"needs {bound} {self.limit:.3g}{self.unit})"
        )


@dataclass
class OtherStation:
    """A station the deployed model also serves, as the gate saw it: scored on ``n`` held-out
    images (its checks are in the result, named after it), or not checked and why."""

    name: str
    n: int = 0
    why_not: str = ""

    def text(self) -> str:
        return (
            f"{self.n} of {self.name}" if not self.why_not else f"not checked on {self.name}: {self.why_not}"
        )


@dataclass
class GateResult:
    candidate: ModelScore
    deployed: ModelScore | None
    data: str
    checks: list[GateCheck | ClassSetCheck] = field(default_factory=list)
    note: str = ""
    others: list[OtherStation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> str:
        if self.deployed is None:
            return f"gate: nothing to compare with ({self.note})"
        verdict = "passed" if self.passed else "FAILED"
        also = "".join(f", {o.text()}" for o in self.others if not o.why_not)
        notes = [o.text() for o in self.others if o.why_not] + ([self.note] if self.note else [])
        note = f" ({'; '.join(notes)})" if notes else ""
        return f"gate {verdict} on {self.candidate.n} held-out images of {self.data}{also}{note}"


def score_models(
    paths: dict[str, Path],
    data: str | Station,
    seed_from: Path,
    log: Log = print,
    classes: Sequence[str] | None = None,
    latency: bool = True,
) -> tuple[dict[str, ModelScore], dict[str, str]]:
    """Score each bundle on the same held-out split (the one ``seed_from`` did not train on).

    ``data``: a station to open (split as ``seed_from`` was), or one already opened and split.
    ``classes``: only the images of these classes (two models with different class sets are
    compared on the classes they share). ``latency``: time each model (False for a second station
    of the same gate: speed does not depend on the station; ``latency_ms`` is then 0). Returns the
    scores and, for bundles that cannot be scored on this station (other classes), why.
    """

    bundles = {name: load_bundle(path) for name, path in paths.items()}
    station = open_station(data, split_seed(bundles[_name_of(paths, seed_from)]))
    where = data if isinstance(data, str) else station_name(str(station.root))
    if classes is not None:
        station = station.where(label=classes)
        if not station.split("test"):
            raise InspectorError(
                f"{where} has no held-out images of the classes both models know ({', '.join(classes)})"
            )
    scores: dict[str, ModelScore] = {}
    skipped: dict[str, str] = {}
    usable = {}
    for name, bundle in bundles.items():
        try:
            check_classes(bundle, station)
        except InspectorError as exc:
            skipped[name] = str(exc)
            continue
        usable[name] = bundle
    # Timed on the backend the line would run each on (ONNX Runtime where it exports), not PyTorch
    # eager: the margin is about the line's speed. Interleaved: both see the same machine load.
    latencies: dict[str, float] = dict.fromkeys(usable, 0.0)
    if latency:
        with line_engines(usable) as engines:
            timed = time_per_part(engines, rounds=LATENCY_ROUNDS, runs=10, warmup=3)
            log(
                "latency timed on the line's backend: "
                + ", ".join(f"{n} {backend_name(e)}" for n, e in engines.items())
            )
        latencies = {name: timed[name].p50_ms for name in usable}
    for name, bundle in usable.items():
        meta = bundle.meta
        images = load_split(station, "test", meta.preprocessing.channels, None, False, log, False)
        logits = predict_logits(bundle.net, meta.preprocessing, images.images)
        labels = np.array([meta.classes.index(c) for c in images.labels])
        report = classification_report(labels, logits.argmax(1), meta.classes)
        rules = VerdictRules.from_bundle(meta.classes, meta.normal_class, meta.thresholds)
        probabilities, energies = softmax(logits), energy(logits)
        unsure = sum(
            rules.decide(p, float(e)).verdict == Verdict.UNSURE
            for p, e in zip(probabilities, energies, strict=True)
        )
        present = set(images.labels)
        scores[name] = ModelScore(
            name=name,
            recall={c: float(v["recall"]) for c, v in report["per_class"].items() if c in present},
            unsure_rate=unsure / len(images.images),
            latency_ms=latencies[name],
            macro_f1=float(report["macro_f1"]),
            n=len(images.images),
        )
    return scores, skipped


def _name_of(paths: dict[str, Path], path: Path) -> str:
    return next(name for name, p in paths.items() if p == path)


def compare(
    candidate: ModelScore, deployed: ModelScore, margins: GateMargins, latency: bool = True
) -> list[GateCheck]:
    """The gate's checks: recall of every class both models know, UNSURE rate, latency (not on a
    second station: speed is the model's, checked once)."""
    checks = [
        GateCheck(
            f"recall {name}", deployed.recall[name], recall, deployed.recall[name] - margins.recall_drop, True
        )
        for name, recall in candidate.recall.items()
        if name in deployed.recall
    ]
    checks.append(
        GateCheck(
            "UNSURE rate",
            deployed.unsure_rate,
            candidate.unsure_rate,
            deployed.unsure_rate + margins.unsure_rise,
            False,
        )
    )
    if not latency:
        return checks
    checks.append(
        GateCheck(
            "latency p50",
            deployed.latency_ms,
            candidate.latency_ms,
            deployed.latency_ms * margins.latency_ratio,
            False,
            " ms",
        )
    )
    return checks


def run_gate(home: Path, ref: str, data: str, margins: GateMargins, log: Log = print) -> GateResult:
    """Score the candidate ``ref`` (a registry version) against what the line runs now."""

    registry = Registry(home)
    candidate_path = registry.checked_path(ref)  # a version changed outside the product is not scored
    live_path = resolve_model(None, home)
    live = registry.deployed()
    live_name = live.id if live else "demo model"
    if live and live.id == ref:
        raise InspectorError(f"{ref} is already deployed")
    # A changed class set is never waved through: both are scored on the classes they share and
    # the change is a check that fails, so deploying needs --override-gate and a --reason.
    classes = class_set_check(read_meta(live_path)[0].classes, read_meta(candidate_path)[0].classes)
    if not classes.shared:
        raise InspectorError(f"{ref} shares no class with {live_name}: {classes.text()}")
    log(f"offline gate: scoring {ref} and {live_name} on the held-out images of {data}…")
    paths = {ref: candidate_path, live_name: live_path}
    shared = None if classes.passed else classes.shared
    scores, skipped = score_models(paths, data, candidate_path, log, shared)
    if ref in skipped:
        raise InspectorError(f"{ref} cannot be judged on {data}: {skipped[ref]}")
    result = GateResult(scores[ref], scores.get(live_name), data)
    if result.deployed is None:
        result.note = f"{live_name} cannot be scored on this station: {skipped.get(live_name, '')}"
    else:
        result.checks = compare(result.candidate, result.deployed, margins)
        live_meta, candidate_meta = read_meta(live_path)[0], read_meta(candidate_path)[0]
        seeds = _split_seeds(live_meta.provenance, candidate_meta.provenance)
        for station in other_stations(live_meta.provenance, data):
            result.others.append(
                _gate_other(result, station, paths, ref, live_name, seeds, shared, margins, log)
            )
    if not classes.passed:
        result.checks.insert(0, classes)
        result.note = f"class set changed: {classes.change()}"
    return result


def other_stations(provenance: Any, data: str) -> list[StationScore]:
    """The stations a bundle was validated on other than ``data``, each once (by data and
    fingerprint): the ones a candidate replacing it must not regress on either."""
    main, seen, found = _data_key(data), set(), []
    for station in validated_stations(provenance):
        key = (_data_key(station.data), station.fingerprint)
        if key[0] != main and key not in seen:
            seen.add(key)
            found.append(station)
    return found


def _data_key(data: str) -> str:
    """What a station was opened from, spelled one way (a folder holding manifest.csv is that
    manifest; a relative path is resolved): the same station typed two ways is one station."""
    if data in NAMED_DATASETS:
        return data
    try:
        path = Path(data).expanduser().resolve()
        if path.is_dir() and (path / "manifest.csv").is_file():
            path = path / "manifest.csv"
    except (OSError, RuntimeError, ValueError):
        return data
    return str(path)


def _split_seeds(*provenances: dict[str, Any]) -> list[int]:
    """The seeds a recorded station may have been split (and so fingerprinted) with: the deployed
    bundle's training and split seeds, then the candidate's split seed."""
    seeds = [p.get(key) for p in provenances for key in ("split_seed", "seed")]
    return list(dict.fromkeys(s for s in seeds if isinstance(s, int) and not isinstance(s, bool))) or [0]


def open_recorded(station: StationScore, seeds: Sequence[int]) -> tuple[Station | None, str]:
    """The station as it was when the model was scored on it, or why not: the gate must never
    judge on different images under the same name (a folder since re-filled reads "fingerprint
    changed")."""

    if station.data not in NAMED_DATASETS:
        try:
            found = Path(station.data).expanduser().exists()
        except (OSError, ValueError):
            found = False
        if not found:
            return None, "manifest not found" if station.data.lower().endswith(".csv") else "folder not found"
    if not station.fingerprint:
        return None, "no fingerprint recorded"
    for seed in seeds:
        try:
            opened = load_station(station.data, seed)
            if opened.fingerprint() == station.fingerprint:
                return opened, ""
        except (DataError, InspectorError, OSError, ValueError) as exc:
            return None, f"cannot be opened ({exc})"
    return None, "fingerprint changed"


def _gate_other(
    result: GateResult,
    station: StationScore,
    paths: dict[str, Path],
    ref: str,
    live_name: str,
    seeds: Sequence[int],
    shared: Sequence[str] | None,
    margins: GateMargins,
    log: Log,
) -> OtherStation:
    """Score both models on one more station the deployed model serves and add its checks to
    ``result``, each named after the station (the operator must see which station regressed).
    A station that cannot be checked is a note, not a block: the main station was checked."""
    if len(result.others) >= MAX_OTHER_STATIONS:
        return OtherStation(
            station.name, why_not=f"the gate checks at most {MAX_OTHER_STATIONS} other stations"
        )
    opened, why_not = open_recorded(station, seeds)
    if opened is None:
        log(f"offline gate: not checked on {station.name}: {why_not}")
        return OtherStation(station.name, why_not=why_not)
    log(f"offline gate: also scoring on {station.name}, a station {live_name} serves…")
    try:
        scores, skipped = score_models(paths, opened, paths[ref], log, shared, latency=False)
    except InspectorError as exc:
        return OtherStation(station.name, why_not=str(exc))
    if ref not in scores or live_name not in scores:
        return OtherStation(station.name, why_not=skipped.get(ref) or skipped.get(live_name, "not scored"))
    checks = compare(scores[ref], scores[live_name], margins, latency=False)
    result.checks += [replace(check, what=f"{station.name}: {check.what}") for check in checks]
    return OtherStation(station.name, n=scores[ref].n)


def who_default() -> str:
    """The login name (kept for callers from before accounts: see ``inspector.access.local_user``)."""
    return local_user()


def acting_as(who: Actor | str) -> Actor:
    """``who`` as an :class:`Actor`: a bare name is today's free text, the local user of a ledger
    without accounts (refused by :func:`inspector.access.authorise` once accounts exist)."""
    return who if isinstance(who, Actor) else Actor(who, None)


def gate_detail(result: GateResult | None, note: str) -> dict:
    """What the audit trail keeps of a gate: its summary and each check as text."""
    if result is None:
        return {"gate": note}
    detail = {
        "gate": result.summary(),
        "data": result.data,
        "checks": [("ok " if c.passed else "FAIL ") + c.text() for c in result.checks],
    }
    if result.others:
        detail["stations"] = [{"name": o.name, "n": o.n, "not_checked": o.why_not} for o in result.others]
    return detail


def _audit_gate(ledger: Ledger, actor: Actor, ref: str, result: GateResult) -> None:
    verdict = "gate passed" if result.passed else "gate failed"
    ledger.append_audit("gate", actor.name, f"model {ref}", meaning=verdict, detail=gate_detail(result, ""))


def deploy(
    home: Path,
    ledger_url: str,
    ref: str,
    *,
    who: Actor | str,
    reason: str,
    data: str | None,
    margins: GateMargins = GateMargins(),
    override: bool = False,
    gate_note: str | None = None,
    log: Log = print,
) -> tuple[Version, GateResult | None]:
    """Gate, deploy and audit. Without held-out data the gate cannot run: say why it is skipped.

    ``gate_note`` names the check a caller already made instead (the wizard's before/after).
    ``who`` must be allowed to deploy (and to override, with ``override``): once accounts exist,
    a signed :class:`~inspector.access.Actor` (:func:`inspector.access.sign`); without them a name.
    """
    registry = Registry(home)
    registry.check_ref(ref)  # an unknown version or a missing folder is the first thing to say
    actor = acting_as(who)
    who = actor.name
    if not who.strip():
        raise InspectorError("say who deploys (--by NAME)")
    if (override or data is None) and not reason.strip():
        raise InspectorError(
            "deploying without the offline gate (no --data) or over it (--override-gate) needs a --reason"
        )
    with Ledger(ledger_url) as ledger:  # no deploy that cannot be audited: the ledger is checked first
        authorise(ledger, actor, "deploy")
        if override:
            authorise(ledger, actor, "override_gate")
        if not is_version_id(ref):
            ref = registry.add(Path(ref)).id  # a bundle folder: registered, then gated like any version
        result = None
        if data is not None:
            result = run_gate(home, ref, data, margins, log)
            log(result.summary())
            for check in result.checks:
                log(("  ok   " if check.passed else "  FAIL ") + check.text())
            _audit_gate(ledger, actor, ref, result)
            if not result.passed and not override:
                ledger.add_event("deploy", f"{ref} blocked by the offline gate (asked by {who})", "warning")
                raise GateBlocked(result)
        previous = registry.deployed()
        skipped = f"checked by {gate_note}" if gate_note else "gate skipped (no held-out data)"
        gate_text = skipped if result is None else result.summary()
        overridden = result is not None and not result.passed
        if overridden:
            gate_text += " — overridden"
        message = (
            f"{ref} deployed by {who} (was {previous.id if previous else 'the demo model'}); "
            f"{gate_text}; reason: {reason or '–'}"
        )
        # The audit rows go first: a deploy that cannot be audited does not happen.
        unchecked = result is None and not gate_note
        ledger.add_event("deploy", message, "warning" if overridden or unchecked else "info")
        detail = {"from": previous.id if previous else None, **gate_detail(result, gate_text)}
        if overridden:
            signed, meaning = actor.signed, SIGNED_ACTIONS["override_gate"]
            ledger.append_audit("gate", who, f"model {ref}", reason, signed=signed, meaning=meaning)
        meaning = SIGNED_ACTIONS["deploy"]
        subject = f"model {ref}"
        ledger.append_audit(
            "deploy", who, subject, reason, signed=actor.signed, meaning=meaning, detail=detail
        )
        try:
            version = registry.deploy(ref)
        except BaseException as exc:
            ledger.add_event("deploy", f"{ref} NOT deployed after all: {exc}", "warning")
            ledger.append_audit("deploy", who, subject, str(exc), meaning="not deployed after all")
            raise
    return version, result


def rollback(home: Path, ledger_url: str, *, who: Actor | str, reason: str) -> Version:
    """Undo the last deployment (one action, no gate: the earlier model was live before) and audit it.

    ``who`` must be allowed to roll back (as for :func:`deploy`: signed, once accounts exist).
    """
    actor = acting_as(who)
    who = actor.name
    if not who.strip():
        raise InspectorError("say who rolls back (--by NAME)")
    registry = Registry(home)
    with Ledger(ledger_url) as ledger:
        authorise(ledger, actor, "rollback")
        before = registry.deployed()
        version = registry.rollback()  # refuses (changes nothing) when there is nothing to go back to
        was = before.id if before else "?"
        message = f"rolled back from {was} to {version.id} by {who}; reason: {reason or '–'}"
        try:
            ledger.add_event("rollback", message, "warning")
            ledger.append_audit(
                "rollback",
                who,
                f"model {version.id}",
                reason,
                signed=actor.signed,
                meaning=SIGNED_ACTIONS["rollback"],
                detail={"from": was, "to": version.id},
            )
        except BaseException:
            if before is not None:  # unaudited: put the line back as it was
                registry.deploy(before.id)
            raise
    return version


def audit_trail(ledger_url: str, limit: int = 50) -> list[dict]:
    """Deploys, rollbacks and shadow decisions, newest first."""
    with Ledger(ledger_url) as ledger:
        return ledger.events(limit=limit, kinds=AUDIT_KINDS)
