"""How a registry version reads on screen: when it was made, its merge (and how far its learned
merges moved from pooling), its key metric, its source. Shared by the Models and Fine-tune screens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from inspector.registry import Registry, Version
from inspector.stations import StationScore, stations_text

ROLE_TEXT = {
    "trained": "trained on it",
    "adapted": "fine-tuned for it",
    "kept": "re-scored after a fine-tune",
    "carried": "from its base, not re-scored",
}


def created_text(stamp: str) -> str:
    """The registry stores UTC ISO times; people read local time to the minute."""
    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def merge_text(version: Version) -> str:
    if version.merge == "none":
        return "none"
    ratio = f" @ {version.gmacs_ratio:g}" if version.gmacs_ratio else ""
    moved = mean_moved(version)
    learned = f" · {100 * moved:.0f}% moved" if moved is not None else ""
    return f"{version.merge.upper()}{ratio}{learned}"


def movement_rows(version: Version) -> list[dict]:
    """The bundle's per-merge record of how far its masks moved from pooling (validation images)."""
    rows = version.metrics.get("merge_movement")
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("moved"), (int, float))]


def mean_moved(version: Version) -> float | None:
    """Mean share of token mass the merges send elsewhere than local pooling would (0: pooling)."""
    rows = movement_rows(version)
    return sum(float(r["moved"]) for r in rows) / len(rows) if rows else None


def key_metrics(version: Version) -> str:
    """Held-out macro-F1 on the adapted station when the version was fine-tuned, else validation."""
    metrics = version.metrics
    after, before, val = metrics.get("after"), metrics.get("before"), metrics.get("val")
    if isinstance(after, dict) and "macro_f1" in after:
        was = f"{before['macro_f1']:.3f} → " if isinstance(before, dict) and "macro_f1" in before else ""
        return f"station test macro-F1 {was}{after['macro_f1']:.3f}"
    if isinstance(val, dict) and "macro_f1" in val:
        return f"val macro-F1 {val['macro_f1']:.3f}"
    return "–"


def stations_cell(version: Version) -> str:
    """``elpv 0.884 (val), lamp2 0.818 (test)``: macro-F1 on every station the version serves."""
    return stations_text(version.station_scores())


def station_line(station: StationScore) -> str:
    """One station in full, for a tooltip or the details line: what, how, on how many images."""
    fingerprint = f", fingerprint {station.fingerprint[:8]}" if station.fingerprint else ""
    return (
        f"{station.name}: macro-F1 {station.macro_f1:.3f}, accuracy {station.accuracy:.3f} on "
        f"{station.n} {station.split} images ({ROLE_TEXT.get(station.role, station.role)}; "
        f"from {station.data}{fingerprint})"
    )


def source_text(version: Version, home: Path) -> str:
    """Where the bundle came from; the wizard's staging folder is gone by now, so name the wizard."""
    source = Path(version.source)
    if (home / "staging") in source.parents:
        return "fine-tune wizard"
    return source.name or str(source)


def read_registry(home: Path) -> tuple[list[Version], str | None]:
    """The versions (stations filled in: an old index entry's are read from its bundle, so this
    runs in a worker) and the deployed one's id."""
    registry = Registry(home)
    deployed = registry.deployed()
    return registry.with_stations(registry.versions()), deployed.id if deployed else None
