"""The suite's cache on disk: JSON written atomically (``models.files``), read back when there,
and the generated quick-profile station, written once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.files import atomic_write_text


def make_synthetic_station(root: Path, per_class: int = 24, size: int = 40, seed: int = 0) -> Path:
    """The tests' tiny, learnable station (``data.synthetic``), written once."""
    from data.synthetic import write_synthetic_station

    if (root / ".complete").is_file():
        return root
    write_synthetic_station(root, per_class=per_class, size=size, seed=seed)
    (root / ".complete").write_text("")
    return root


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None
