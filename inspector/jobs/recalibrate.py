"""The Fine-tune screen's *Re-calibrate to a new lamp*, as a job below the line."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from inspector.line.resolve import resolve_model
from inspector.registry import Registry, Version
from inspector.training.recalibrate import recalibrate_model


def recalibrate_version(home: Path, frames: Path, *, task: Any) -> tuple[Version, dict]:
    """The model the line runs now with its BatchNorm statistics re-estimated on a folder of live
    frames (no labels), saved as a new version.

    Nothing is deployed: the Models screen compares and deploys it through the gate.
    """
    registry = Registry(home)
    base = resolve_model(None, home)
    deployed = registry.deployed()
    with tempfile.TemporaryDirectory(prefix=".recalibrate-", dir=registry.root) as work:
        out = Path(work) / "bundle"
        task.report(f"re-estimating the normalisation statistics on {frames} …")
        moved = recalibrate_model(base, frames, out, progress=False, log=task.report)
        name = deployed.id if deployed else "the demo model"
        note = f"{name} re-calibrated to the lamp of {frames.name} ({moved['images']} frames, no labels)"
        version = registry.add(out, note)
    return version, moved
