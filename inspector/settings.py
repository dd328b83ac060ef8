"""The app's settings, kept as ``settings.json`` in the home folder (what the Settings screen edits).

Only what a plant engineer changes per installation lives here: the results database, the image
archive policy, verdict threshold overrides, the station's defaults and its line outputs. Saved atomically; a
broken file is reported with its path and never silently replaced.
"""

from __future__ import annotations

import json
import math
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from inspector.errors import InspectorError
from inspector.output_urls import check_output_urls
from models.files import atomic_write_text, read_json

FILE = "settings.json"
DEFAULT_SHIFT_STARTS = ("06:00", "14:00", "22:00")
SHIFT_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_SHIFTS = 6


@dataclass
class Settings:
    db_url: str = ""  # empty: SQLite in the home folder
    station: str = "station-1"
    operator: str = ""
    source: str = "sim"
    archive_ok_every: int = 50
    archive_cap_gib: float = 2.0
    unsure_below: float | None = None  # None: the bundle's calibrated value
    ood_energy_above: float | None = None
    cycle_budget_ms: float | None = None
    # Line outputs (MQTT to the MES, OPC UA / Modbus TCP for the PLC), one URL each; see README.
    outputs: list[str] = field(default_factory=list)
    # Local clock times at which shifts begin (the shift report's --shift current / last).
    shift_starts: list[str] = field(default_factory=lambda: list(DEFAULT_SHIFT_STARTS))
    # The offline roll-out gate: the station dataset whose held-out split candidates are scored on,
    # and how much worse than the deployed model a candidate may be before the deploy is blocked.
    gate_data: str = ""
    gate_recall_drop: float = 0.02
    gate_unsure_rise: float = 0.05
    gate_latency_ratio: float = 1.25
    # Shadow mode: a registry version (v3) that judges beside the deployed model on lines started
    # in the app, never driving a verdict; empty: none.
    shadow: str = ""
    # Drift watch (README "Drift watch"): golden parts re-judged every N minutes while a line runs
    # (0: only on request) from a folder of class folders (empty: <home>/golden); input statistics
    # and rates over a rolling window of parts, alarms past these limits.
    golden_dir: str = ""
    golden_every_min: float = 0.0
    drift_window: int = 200
    drift_reference_frames: int = 200
    drift_input_k: float = 0.5
    drift_ood_rate: float = 0.1
    drift_confidence_drop: float = 0.1
    # With accounts (issue 27): the app covers itself with the login after this many minutes
    # without input (0: never); the line keeps running underneath.
    idle_lock_minutes: int = 15

    def validate(self) -> Settings:
        """Types first (a hand-edited file may say ``"db_url": 5`` or ``NaN``), then ranges."""
        for name in ("db_url", "station", "operator", "source", "gate_data", "shadow", "golden_dir"):
            if not isinstance(getattr(self, name), str):
                raise InspectorError(f"{name} must be a text, got {getattr(self, name)!r}")
        for name in ("archive_ok_every", "drift_window", "drift_reference_frames", "idle_lock_minutes"):
            if not _is_int(getattr(self, name)):
                raise InspectorError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        for name in NUMBERS:
            value = getattr(self, name)
            if (value is not None or name in REQUIRED_NUMBERS) and not _is_number(value):
                raise InspectorError(f"{name} must be a finite number, got {value!r}")
        if self.archive_ok_every < 0:
            raise InspectorError("archive_ok_every must be 0 (no OK images) or more")
        if not 0 <= self.idle_lock_minutes <= 24 * 60:
            raise InspectorError("idle_lock_minutes must be between 0 (never) and 1440")
        if self.archive_cap_gib <= 0:
            raise InspectorError("archive_cap_gib must be positive")
        if self.unsure_below is not None and not 0.0 <= self.unsure_below <= 1.0:
            raise InspectorError("unsure_below must be between 0 and 1")
        if self.cycle_budget_ms is not None and self.cycle_budget_ms <= 0:
            raise InspectorError("cycle_budget_ms must be positive")
        if not isinstance(self.outputs, list):
            raise InspectorError(f"outputs must be a list of URLs, got {self.outputs!r}")
        check_output_urls(self.outputs)
        if not (0 <= self.gate_recall_drop <= 1 and 0 <= self.gate_unsure_rise <= 1):
            raise InspectorError("gate_recall_drop and gate_unsure_rise must be between 0 and 1")
        if self.gate_latency_ratio < 1:
            raise InspectorError(
                "gate_latency_ratio must be 1 or more (1: no slower than the deployed model)"
            )
        if self.shadow and not re.fullmatch(r"v[1-9][0-9]*", self.shadow):
            raise InspectorError(f"shadow must be a model version like v3 (or empty), got {self.shadow!r}")
        _check_shift_starts(self.shift_starts)
        self._check_drift()
        return self

    def _check_drift(self) -> None:
        if self.golden_every_min < 0:
            raise InspectorError("golden_every_min must be 0 (only on request) or more")
        if not 10 <= self.drift_window <= 100_000:
            raise InspectorError("drift_window must be between 10 and 100000 parts")
        if not 10 <= self.drift_reference_frames <= 100_000:
            raise InspectorError("drift_reference_frames must be between 10 and 100000 frames")
        if self.drift_input_k <= 0:
            raise InspectorError("drift_input_k must be positive (standard deviations)")
        if not 0 < self.drift_ood_rate <= 1:
            raise InspectorError("drift_ood_rate must be above 0 and at most 1")
        if not 0 < self.drift_confidence_drop <= 1:
            raise InspectorError("drift_confidence_drop must be above 0 and at most 1")

    def thresholds(self, bundle_thresholds: dict) -> dict:
        """The bundle's calibrated thresholds with this station's overrides on top."""
        merged = dict(bundle_thresholds)
        if self.unsure_below is not None:
            merged["unsure_below"] = self.unsure_below
        if self.ood_energy_above is not None:
            merged["ood_energy_above"] = self.ood_energy_above
        return merged


# The float settings, in field order, and those that may not be left empty (None) in the file. Read
# off the annotations (``float`` / ``float | None``) so a new number is checked without a second list.
_HINTS = typing.get_type_hints(Settings)
NUMBERS = tuple(f.name for f in fields(Settings) if _HINTS[f.name] in (float, float | None))
REQUIRED_NUMBERS = tuple(name for name in NUMBERS if _HINTS[name] is float)


def _check_shift_starts(starts: object) -> None:
    if (
        not isinstance(starts, list)
        or not 1 <= len(starts) <= MAX_SHIFTS
        or not all(isinstance(t, str) and SHIFT_TIME.fullmatch(t) for t in starts)
    ):
        raise InspectorError(
            f'shift_starts must be a list of 1 to {MAX_SHIFTS} local times like ["06:00", "14:00", "22:00"]'
        )
    if len(set(starts)) != len(starts):
        raise InspectorError("shift_starts lists the same time twice")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_settings(home: Path) -> Settings:
    path = home / FILE
    if not path.is_file():
        return Settings()
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise InspectorError(f"{path}: unreadable settings ({exc})") from exc
    known = {f.name for f in fields(Settings)}
    if not isinstance(data, dict):
        raise InspectorError(f"{path}: settings must be a JSON object")
    try:
        return Settings(**{k: v for k, v in data.items() if k in known}).validate()
    except (TypeError, InspectorError) as exc:
        raise InspectorError(f"{path}: {exc}") from exc


def save_settings(home: Path, settings: Settings) -> Path:
    """Validate and write ``settings.json`` owner-only (0600, or an existing file's stricter mode):
    output URLs and the database URL may carry a broker's or a database's password."""
    settings.validate()
    return atomic_write_text(home / FILE, json.dumps(asdict(settings), indent=2) + "\n", private=True)
