"""Golden parts: a small reference set the running model re-judges, to catch a model that changed.

The set is a station dataset folder (one sub-folder per class, read with the project's own station
loader). The first check of a model version records that version's answers as its *baseline*
(``<home>/golden-baselines/<model sha256[:16]>.json``, beside the set rather than in it, so the
folder stays a plain dataset). Every later check compares: a part whose verdict or class differs
from the baseline, or newly differs from its folder's label, is listed in an alarm.

A part is known by its path in the set and its bytes: a file replaced by another image under the
same name is a new part, whose answer is recorded as its baseline (said so in the report).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.errors import DataError
from data.images import read_image
from data.station import load_station
from inspector.errors import InspectorError
from inspector.line.inference import InferenceEngine
from inspector.line.resolve import resolve_model
from models.bundle import load_bundle
from models.files import atomic_write_text, read_json

if TYPE_CHECKING:
    from inspector.settings import Settings
    from inspector.store import Ledger

BASELINES = "golden-baselines"
GOLDEN = "golden"
VERDICT_LABELS = ("OK", "NG")


@dataclass(frozen=True)
class GoldenPart:
    name: str  # path inside the set, e.g. "crack/p3.png"
    label: str  # its folder
    digest: str
    image: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class GoldenAnswer:
    name: str
    label: str
    digest: str
    verdict: str
    cls: str | None
    confidence: float | None

    def brief(self) -> str:
        return f"{self.verdict} {self.cls or '–'}"


@dataclass
class GoldenReport:
    model: str  # the version's name (bundle folder)
    sha256: str
    answers: list[GoldenAnswer]
    changed: list[tuple[GoldenAnswer, GoldenAnswer]] = field(default_factory=list)  # (baseline, now)
    new: list[GoldenAnswer] = field(default_factory=list)  # baseline recorded by this check
    off_label: list[GoldenAnswer] = field(default_factory=list)  # newly disagreeing with the folder
    off_label_known: int = 0  # disagreed with the folder at baseline already (not alarmed again)
    baseline_recorded: bool = False  # this check was the version's first
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def alarm(self) -> bool:
        return bool(self.changed or self.off_label)

    @property
    def level(self) -> str:
        return "alarm" if self.alarm else "info"

    def message(self) -> str:
        """One event line: what changed, against what, and which parts."""
        total = len(self.answers)
        head = f"golden parts ({self.model}): "
        if self.baseline_recorded and not self.alarm:
            return head + f"baseline recorded for {total} part(s), all as their folders say" + self._known()
        bits = []
        if self.changed:
            listed = "; ".join(f"{b.name}: {b.brief()} → {a.brief()}" for b, a in self.changed[:8])
            more = f"; … {len(self.changed) - 8} more" if len(self.changed) > 8 else ""
            bits.append(f"{len(self.changed)} of {total} changed against the baseline ({listed}{more})")
        if self.off_label:
            listed = "; ".join(f"{a.name}: folder {a.label}, model {a.brief()}" for a in self.off_label[:8])
            more = f"; … {len(self.off_label) - 8} more" if len(self.off_label) > 8 else ""
            bits.append(f"{len(self.off_label)} disagree with their folder label ({listed}{more})")
        if not bits:
            bits.append(f"{total} of {total} as the baseline")
        if self.new and not self.baseline_recorded:
            bits.append(f"baseline recorded for {len(self.new)} new part(s)")
        if self.baseline_recorded:
            bits.append(f"baseline recorded for {total} part(s)")
        return head + "; ".join(bits) + self._known()

    def _known(self) -> str:
        return (
            f" ({self.off_label_known} disagreed with their folder already at baseline)"
            if self.off_label_known
            else ""
        )

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "sha256": self.sha256,
            "at": self.at.isoformat(timespec="seconds"),
            "alarm": self.alarm,
            "baseline_recorded": self.baseline_recorded,
            "parts": len(self.answers),
            "changed": [{"part": b.name, "baseline": b.brief(), "now": a.brief()} for b, a in self.changed],
            "off_label": [{"part": a.name, "folder": a.label, "now": a.brief()} for a in self.off_label],
            "new": [a.name for a in self.new],
            "message": self.message(),
        }


def default_golden_dir(home: Path, configured: str = "") -> Path:
    return Path(configured).expanduser() if configured else home / GOLDEN


def load_golden(folder: Path) -> list[GoldenPart]:
    """The set's images, in memory (a golden set is small); :class:`InspectorError` naming the folder."""
    if not folder.is_dir():
        raise InspectorError(f"{folder}: no golden parts folder (one sub-folder per class, e.g. ok/, crack/)")
    try:
        station = load_station(folder)
        parts = []
        for sample in sorted(station.samples, key=lambda s: str(s.path)):
            data = sample.path.read_bytes()
            name = sample.path.relative_to(station.root).as_posix()
            parts.append(
                GoldenPart(name, sample.label, hashlib.sha1(data).hexdigest(), read_image(sample.path))
            )
    except (DataError, OSError) as exc:
        raise InspectorError(f"golden parts: {exc}") from None
    return parts


def judge(engine: InferenceEngine, part: GoldenPart) -> GoldenAnswer:
    """One golden part through the running model's own preprocessing, model and verdict rules."""
    out = engine.infer([part.image])
    energies = None if out.energies is None else out.energies[0]
    decision = engine.rules.decide(out.probabilities[0], energies)
    confidence = None if decision.confidence is None else round(decision.confidence, 4)
    return GoldenAnswer(
        part.name, part.label, part.digest, decision.verdict.value, decision.label, confidence
    )


def agrees_with_label(answer: GoldenAnswer, classes: Sequence[str]) -> bool | None:
    """Whether the answer matches the folder it sits in (None: the folder names no class or verdict)."""
    if answer.label in classes:
        return answer.cls == answer.label
    if answer.label.upper() in VERDICT_LABELS:
        return answer.verdict == answer.label.upper()
    return None


class Baselines:
    """Each model version's first answers, one JSON file per version in the home folder."""

    def __init__(self, home: Path) -> None:
        self.folder = home / BASELINES

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256[:16]}.json"

    def load(self, sha256: str) -> dict[str, GoldenAnswer]:
        path = self.path(sha256)
        if not path.is_file():
            return {}
        try:
            data = read_json(path)
            return {a["name"]: GoldenAnswer(**a) for a in data["answers"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InspectorError(
                f"{path}: unreadable golden baseline ({exc}); move it away to record a new one"
            ) from None

    def save(self, sha256: str, model: str, answers: dict[str, GoldenAnswer]) -> Path:
        data = {
            "model": model,
            "sha256": sha256,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "answers": [asdict(a) for a in sorted(answers.values(), key=lambda a: a.name)],
        }
        return atomic_write_text(self.path(sha256), json.dumps(data, indent=1) + "\n")


def compare(
    answers: list[GoldenAnswer],
    baseline: dict[str, GoldenAnswer],
    classes: Sequence[str],
    model: str,
    sha256: str,
) -> tuple[GoldenReport, dict[str, GoldenAnswer]]:
    """The report, and the baseline to keep (the old one plus the answers of parts it lacked)."""
    report = GoldenReport(model, sha256, answers, baseline_recorded=not baseline)
    kept = dict(baseline)
    for answer in answers:
        before = baseline.get(answer.name)
        if before is None or before.digest != answer.digest:
            report.new.append(answer)
            kept[answer.name] = answer
            if agrees_with_label(answer, classes) is False:
                report.off_label.append(answer)
            continue
        if (before.verdict, before.cls) != (answer.verdict, answer.cls):
            report.changed.append((before, answer))
        elif agrees_with_label(answer, classes) is False:
            report.off_label_known += 1
    return report, kept


class GoldenCheck:
    """One pass over the set, a part at a time (the line judges one in each idle moment)."""

    def __init__(
        self, engine: InferenceEngine, parts: list[GoldenPart], baselines: Baselines, model: str, sha256: str
    ) -> None:
        self.engine, self.parts, self.baselines = engine, parts, baselines
        self.model, self.sha256 = model, sha256
        self.answers: list[GoldenAnswer] = []

    @property
    def done(self) -> bool:
        return len(self.answers) >= len(self.parts)

    def step(self) -> None:
        self.answers.append(judge(self.engine, self.parts[len(self.answers)]))

    def finish(self) -> GoldenReport:
        report, kept = compare(
            self.answers, self.baselines.load(self.sha256), self.engine.meta.classes, self.model, self.sha256
        )
        if report.new:
            self.baselines.save(self.sha256, self.model, kept)
        return report


def check_golden(
    engine: InferenceEngine, parts: list[GoldenPart], baselines: Baselines, model: str, sha256: str
) -> GoldenReport:
    """A whole check at once (the CLI, and the app when no line runs)."""
    if not parts:
        raise InspectorError("golden parts: the set is empty")
    check = GoldenCheck(engine, parts, baselines, model, sha256)
    while not check.done:
        check.step()
    return check.finish()


def check_model(
    home: Path, settings: Settings, model: str | None = None, folder: Path | None = None
) -> GoldenReport:
    """Load the golden set and the model (a bundle folder, ``demo``, or None: the deployed version)
    and check: ``inspector golden check`` and the Live button when no line runs."""
    parts = load_golden(folder or default_golden_dir(home, settings.golden_dir))
    path = resolve_model(model, home)
    bundle = load_bundle(path)
    engine = InferenceEngine(bundle, "torch", thresholds=settings.thresholds(bundle.meta.thresholds))
    return check_golden(engine, parts, Baselines(home), path.name, engine.sha256)


def log_report(ledger: Ledger, report: GoldenReport, station: str, run_id: int | None = None) -> None:
    """The check as a ``drift_golden`` event of ``station`` in the ledger."""
    ledger.add_event("drift_golden", report.message(), report.level, run_id, ledger.ensure_station(station))
