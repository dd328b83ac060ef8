"""What the fine-tune wizard's pages hand each other, and the work they share.

The wizard owns one :class:`FinetuneState` and gives it to every page. A page reads what the
pages before it chose and writes what it produced; it never reaches into a sibling page or the
wizard, so the pages import this module and ``common`` only, and the wizard imports the pages.

Who writes what:

====================  ==========================================  =========================
field                 written by                                  read by
====================  ==========================================  =========================
``check``             1 · station (each check, ``None`` while     2, 3, 4, 6
                      one runs)
``presets``           2 · augmentation (each change of choice)    4, 6
``recipe``,           3 · what trains (on Next)                   4, 6
``budget_seconds``
``staging``           4 · training (a fresh folder per run)       5, the wizard (save)
``summary``           4 · training (``None`` until a run ends)    5, 6
``speed``             5 · before/after (``None`` while measured)  6
====================  ==========================================  =========================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inspector.training.adaptation import Staging, StationCheck
from inspector.training.finetune import FINETUNE_RECIPE, FinetuneSummary
from inspector.training.loop import Recipe
from ui.context import AppContext
from ui.workers import JobTask, Task, run_job, run_task


class FinetuneState:
    """One wizard run: the choices and results the pages pass on, the staging folder, the workers."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.check: StationCheck | None = None
        self.presets: list[str] = []
        self.recipe: Recipe = FINETUNE_RECIPE
        self.budget_seconds: float | None = None
        self.staging: Staging | None = None
        self.summary: FinetuneSummary | None = None
        self.speed: dict[str, dict[str, Any]] | None = None
        self.tasks: list[Task | JobTask] = []

    # -- workers -------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """``run_task``, remembered: the wizard is only deleted once its workers have answered."""
        task = run_task(fn, *args, **kwargs)
        self.tasks = [t for t in self.tasks if not t.finished.is_set()] + [task]
        return task

    def run_job(self, *args: Any, **kwargs: Any) -> JobTask:
        """Training, evaluation and registering: ``ui.workers.run_job`` (a background process
        below the line), remembered like :meth:`run`."""
        task = run_job(*args, line=self.context.line_overruns, **kwargs)
        self.tasks = [t for t in self.tasks if not t.finished.is_set()] + [task]
        return task

    def idle(self) -> bool:
        return all(task.finished.is_set() for task in self.tasks)

    # -- the staging folder ------------------------------------------------------------------

    def new_staging(self) -> Staging:
        """A fresh private folder for the next run's bundle (the previous one is thrown away)."""
        self.discard_staging()
        self.staging = Staging(self.context.home)
        return self.staging

    def discard_staging(self) -> None:
        """Throw the run's files away (they go as soon as no worker holds them)."""
        if self.staging is not None:
            self.staging.discard()
            self.staging = None
