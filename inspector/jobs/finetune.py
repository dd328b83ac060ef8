"""The fine-tune wizard's training job: a new bundle in the staging folder, reported as it goes."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.errors import InspectorError, StoppedBeforeFirstEpoch
from inspector.training.finetune import FinetuneSummary, finetune_model
from inspector.training.hooks import Hooks

if TYPE_CHECKING:
    from data.station import Station
    from inspector.training.loop import Recipe


def run_finetune(
    base: Path,
    station: Station,
    bundle: Path,
    presets: list[str],
    recipe: Recipe,
    budget_s: float | None,
    *,
    task: Any,
) -> FinetuneSummary:
    """Reports ("log", line) and ("epoch", EpochRecord) as it goes and writes the new bundle to
    ``bundle`` (inside the staging folder, which the wizard owns: a cancel discards it there).

    Cancel (``task.cancelled``) and "stop now" (``task.stopping``) both stop between steps; the
    budget stops the same way when it runs out (time the line held the job does not count). In
    every case training hands back its best epoch so far.
    """
    started = time.monotonic()
    ran_out = threading.Event()

    def should_stop() -> bool:
        if task.should_stop():
            return True
        if budget_s and time.monotonic() - started - task.paused_seconds() > budget_s:
            ran_out.set()
            return True
        return False

    try:
        summary = finetune_model(
            base,
            station,
            bundle,
            augment=presets,
            recipe=recipe,
            hooks=Hooks(
                log=lambda line: task.report(("log", line)),
                progress=False,
                should_stop=should_stop,
                on_epoch=lambda record: task.report(("epoch", record)),
            ),
        )
    except StoppedBeforeFirstEpoch as exc:
        if ran_out.is_set():
            minutes = (budget_s or 0) / 60
            raise InspectorError(
                f"the time budget ({minutes:g} min) ran out before the first epoch finished; "
                "nothing was trained — raise the budget"
            ) from exc
        if task.stopping.is_set():
            raise InspectorError("stopped before the first epoch finished; nothing was trained") from exc
        raise
    if ran_out.is_set():
        task.report(("log", f"time budget reached: kept the best of {len(summary.outcome.history)} epoch(s)"))
    # The network stays behind: the bundle is on disk, and the wizard needs only the figures.
    return replace(summary, outcome=replace(summary.outcome, net=None))
