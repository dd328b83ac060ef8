"""The fine-tune wizard's shell: adapt the deployed model to a new station's lighting and camera angle.

Six pages, in the order an engineer thinks: which images (checked before anything trains), how
to vary them (a live preview, so the choice is made by eye), what may change in the model and
for how long, the training itself (curves, log, stop or cancel), before/after on the station's
held-out images, and saving the result as a new registry version (optionally deployed).

Nothing touches the registry before the last page: the new bundle is written into a private
folder under ``<home>/staging/``, and Cancel at any step removes that folder, so the deployed
model stays exactly what it was (DESIGN §3, "a cancelled or failed run changes nothing").

The pages live in their own modules; this one holds the flow, the workers and the staging folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import QWidget, QWizard

from inspector.registry import Version
from inspector.training.adaptation import Staging
from ui.context import AppContext
from ui.finetune.augment import AugmentPage
from ui.finetune.common import ERROR_STYLE, set_status
from ui.finetune.compare import ComparePage
from ui.finetune.recipe import RecipePage
from ui.finetune.save import SavePage
from ui.finetune.station import StationPage
from ui.finetune.train import TrainPage
from ui.workers import JobTask, Task, run_job, run_task


class FinetuneWizard(QWizard):
    """The whole flow; ``model_added`` carries the new version's id once it is in the registry."""

    model_added = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.staging: Staging | None = None
        self.saving: JobTask | None = None
        self.saved: Version | None = None
        self.tasks: list[Task | JobTask] = []
        Staging.sweep(context.home)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.discard_run)  # quitting mid-run must not leave files behind
        self.setWindowTitle("Fine-tune the model for a station")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save version")
        self.station_page = StationPage(self)
        self.augment_page = AugmentPage(self)
        self.recipe_page = RecipePage(self)
        self.train_page = TrainPage(self)
        self.compare_page = ComparePage(self)
        self.save_page = SavePage(self)
        for page in (
            self.station_page,
            self.augment_page,
            self.recipe_page,
            self.train_page,
            self.compare_page,
            self.save_page,
        ):
            self.addPage(page)
        self.resize(1180, 740)

    # -- workers -------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """``run_task``, remembered: the wizard is only deleted once its workers have answered."""
        task = run_task(fn, *args, **kwargs)
        self.tasks = [t for t in self.tasks if not t.finished.is_set()] + [task]
        return task

    def run_job(self, target: str, *args: Any, **kwargs: Any) -> JobTask:
        """Training, evaluation and registering: in a background process below the line
        (``ui.workers.run_job``), remembered like :meth:`run`."""
        task = run_job(target, *args, line=self.context.line_overruns, **kwargs)
        self.tasks = [t for t in self.tasks if not t.finished.is_set()] + [task]
        return task

    def idle(self) -> bool:
        return all(task.finished.is_set() for task in self.tasks)

    # -- the staging folder ------------------------------------------------------------------

    def new_staging(self) -> Staging:
        self.discard_run()
        self.staging = Staging(self.context.home)
        return self.staging

    def discard_run(self) -> None:
        """Stop any training and throw away its files (they go as soon as no worker holds them)."""
        self.train_page.cancel()
        if self.staging is not None:
            self.staging.discard()
            self.staging = None

    # -- finish / cancel ---------------------------------------------------------------------

    def accept(self) -> None:
        """Finish: register (and maybe deploy) in a worker; the dialog closes once it is saved."""
        if self.saved is not None:
            super().accept()
            return
        if self.saving is not None or self.staging is None:
            return
        page = self.save_page
        self._lock_buttons(True)
        set_status(page.status, "Saving into the model registry (copying, measuring latency) …")
        self.saving = self.run_job(
            "inspector.training.adaptation:save_version",
            self.context.home,
            self.staging.bundle,
            page.note.text().strip(),
            page.deploy.isChecked(),
            self.context.db_url,
            self.context.settings.operator or None,
            hold=self.staging.in_use(),
            pause_for_line=False,  # registering measures the model's latency
            on_done=self._saved,
            on_failed=self._save_failed,
        )

    def _saved(self, result: tuple[Version, str]) -> None:
        version, deploy_error = result
        self.saving, self.saved = None, version
        if self.staging is not None:
            self.staging.discard()
            self.staging = None
        self._lock_buttons(False)
        self.model_added.emit(version.id)
        if deploy_error:
            # Saved but not deployed: say so and let the engineer close the wizard themselves.
            self.setButtonText(QWizard.WizardButton.FinishButton, "Close")
            self.button(QWizard.WizardButton.CancelButton).setEnabled(False)
            set_status(
                self.save_page.status, f"Saved as {version.id}, but not deployed: {deploy_error}", ERROR_STYLE
            )
            return
        super().accept()

    def _save_failed(self, message: str) -> None:
        self.saving = None
        self._lock_buttons(False)
        set_status(self.save_page.status, f"Not saved: {message}", ERROR_STYLE)

    def _lock_buttons(self, locked: bool) -> None:
        for which in (
            QWizard.WizardButton.FinishButton,
            QWizard.WizardButton.CancelButton,
            QWizard.WizardButton.BackButton,
        ):
            self.button(which).setEnabled(not locked)

    def reject(self) -> None:
        """Cancel at any step: stop the work, remove the staging folder; the registry is untouched."""
        if self.saving is not None:
            return  # the copy into the registry is short and must not be cut in half
        self.discard_run()
        super().reject()
