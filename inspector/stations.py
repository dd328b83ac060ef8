"""Which stations a model version was validated on, with its score on each (DESIGN §3, Adapt).

A fine-tuned model serves its new station *and* the ones it was trained or fine-tuned on before;
the registry, ``inspector models list``, the Models screen and the roll-out gate all need that
list. The bundle records it in ``provenance["stations"]``; bundles written before that (the demo
model included) are read from the older keys (``data``/``data_fingerprint``/``val`` for the
station trained on, ``station_data``/``station_fingerprint``/``after`` for a fine-tune's new one).

A bundle is untrusted input (anyone can hand-edit ``model.json``), so everything here is read
defensively: an entry of the wrong shape is skipped, never a crash, and the list is capped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data.station import NAMED_DATASETS

MAX_STATIONS = 32
MAX_NAME = 200
MAX_TEXT = 4096  # a data path or fingerprint longer than this is not a real one
ROLES = ("trained", "adapted", "kept", "carried")
SPLITS = ("val", "test", "reference")


@dataclass(frozen=True)
class StationScore:
    """One station a version was scored on: what it was opened from, its fingerprint, the score."""

    name: str
    data: str
    fingerprint: str
    split: str
    n: int
    macro_f1: float
    accuracy: float
    role: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def short(self) -> str:
        """``lamp2 0.818 (test)``: what a table cell has room for."""
        return f"{self.name} {self.macro_f1:.3f} ({self.split})"


def station_name(data: str) -> str:
    """The name people know a station by: its folder (a manifest's folder), or the dataset name."""
    if data in NAMED_DATASETS:
        return data
    path = Path(data)
    if path.suffix.lower() == ".csv":
        path = path.parent
    return (path.name or data)[:MAX_NAME]


def _number(value: Any) -> float | None:
    """A finite number (a bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    return value if isinstance(value, str) and len(value) <= limit else None


def parse_entry(entry: Any) -> StationScore | None:
    """One recorded station, or None when any field has the wrong type or an unknown value."""
    if not isinstance(entry, dict):
        return None
    name, data = entry.get("name"), _text(entry.get("data"))
    fingerprint = _text(entry.get("fingerprint", ""))
    split, role, n = entry.get("split"), entry.get("role"), entry.get("n")
    f1, accuracy = _number(entry.get("macro_f1")), _number(entry.get("accuracy"))
    if not isinstance(name, str) or not name.strip() or data is None or fingerprint is None:
        return None
    if split not in SPLITS or role not in ROLES or f1 is None or accuracy is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return None
    return StationScore(name.strip()[:MAX_NAME], data, fingerprint, split, n, f1, accuracy, role)


def parse_entries(entries: Any) -> list[StationScore]:
    """The valid entries of a recorded list (at most :data:`MAX_STATIONS`); anything else: none."""
    if not isinstance(entries, list):
        return []
    parsed = (parse_entry(entry) for entry in entries[: MAX_STATIONS * 4])
    return [score for score in parsed if score is not None][:MAX_STATIONS]


def _legacy(
    provenance: dict[str, Any], keys: tuple[str, str, str], n: Any, **kind: str
) -> StationScore | None:
    """One entry from a pre-``stations`` bundle's keys (data, fingerprint, score), or None when
    they are missing or malformed; ``n``: the image count where the score does not say it."""
    data_key, fp_key, score_key = keys
    data, score = _text(provenance.get(data_key)), provenance.get(score_key)
    if not data or not isinstance(score, dict):
        return None
    n = score.get("n", n)
    return parse_entry(
        {
            "name": station_name(data),
            "data": data,
            "fingerprint": provenance.get(fp_key, ""),
            "n": n if isinstance(n, int) and not isinstance(n, bool) else 0,
            "macro_f1": score.get("macro_f1"),
            "accuracy": score.get("accuracy"),
            **kind,
        }
    )


def validated_stations(provenance: Any) -> list[StationScore]:
    """Every station a bundle says it was validated on (its ``model.json`` provenance).

    ``provenance["stations"]`` when the bundle records it; otherwise derived from the keys older
    bundles wrote, so a registry of legacy versions still shows (and gates on) what they knew.
    """
    if not isinstance(provenance, dict):
        return []
    if isinstance(provenance.get("stations"), list):
        return parse_entries(provenance["stations"])
    keys = ("data", "data_fingerprint", "val")
    trained = _legacy(provenance, keys, provenance.get("val_images", 0), role="trained", split="val")
    adapted = None
    if "finetuned_from" in provenance:
        keys = ("station_data", "station_fingerprint", "after")
        adapted = _legacy(provenance, keys, 0, role="adapted", split="test")
    return [s for s in (trained, adapted) if s is not None]


def stations_text(stations: list[StationScore]) -> str:
    """``elpv 0.884 (val), lamp2 0.818 (test)`` (``–`` when none is known)."""
    return ", ".join(s.short() for s in stations) or "–"
