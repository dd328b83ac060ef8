"""Helpers shared by tests (kept out of conftest so tests can import them by name)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_manifest(root: Path, rows, columns) -> Path:
    path = root / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path
