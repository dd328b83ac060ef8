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

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import QWidget, QWizard

from inspector.jobs import register as jobs_register
from inspector.registry import Version
from inspector.training.adaptation import Staging
from ui.context import AppContext
from ui.finetune.augment import AugmentPage
from ui.finetune.common import ERROR_STYLE, set_status
from ui.finetune.compare import ComparePage
from ui.finetune.recipe import RecipePage
from ui.finetune.save import SavePage
from ui.finetune.state import FinetuneState
from ui.finetune.station import StationPage
from ui.finetune.train import TrainPage
from ui.workers import JobTask


class FinetuneWizard(QWizard):
    """The whole flow; ``model_added`` carries the new version's id once it is in the registry."""

    model_added = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.state = FinetuneState(context)  # what the pages hand each other
        self.saving: JobTask | None = None
        self.saved: Version | None = None
        Staging.sweep(context.home)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.discard_run)  # quitting mid-run must not leave files behind
        self.setWindowTitle("Fine-tune the model for a station")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save version")
        self.station_page = StationPage(self.state)
        self.augment_page = AugmentPage(self.state)
        self.recipe_page = RecipePage(self.state)
        self.train_page = TrainPage(self.state)
        self.compare_page = ComparePage(self.state)
        self.save_page = SavePage(self.state)
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

    # -- workers and the staging folder (kept in the pages' shared state) -------------------

    @property
    def staging(self) -> Staging | None:
        return self.state.staging

    def idle(self) -> bool:
        """True once every worker the pages started has answered (the wizard may then be deleted)."""
        return self.state.idle()

    def discard_run(self) -> None:
        """Stop any training and throw away its files (they go as soon as no worker holds them)."""
        self.train_page.cancel()
        self.state.discard_staging()

    # -- finish / cancel ---------------------------------------------------------------------

    def accept(self) -> None:
        """Finish: register (and maybe deploy) in a worker; the dialog closes once it is saved."""
        if self.saved is not None:
            super().accept()
            return
        staging = self.state.staging
        if self.saving is not None or staging is None:
            return
        page = self.save_page
        self._lock_buttons(True)
        set_status(page.status, "Saving into the model registry (copying, measuring latency) …")
        self.saving = self.state.run_job(
            jobs_register.save_version,
            self.context.home,
            staging.bundle,
            page.note.text().strip(),
            page.deploy.isChecked(),
            self.context.db_url,
            self.context.settings.operator or None,
            hold=staging.in_use(),
            pause_for_line=False,  # registering measures the model's latency
            on_done=self._saved,
            on_failed=self._save_failed,
        )

    def _saved(self, result: tuple[Version, str]) -> None:
        version, deploy_error = result
        self.saving, self.saved = None, version
        self.state.discard_staging()
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
