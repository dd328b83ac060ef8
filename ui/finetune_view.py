"""Fine-tune: the engineer's starting point for adapting the model to a new station.

It says in plain words what fine-tuning does and does not do, which model it would start from
(the deployed one), opens the wizard, and lists the versions earlier runs produced with their
before → after figures, so an engineer sees at a glance whether adapting has paid off before.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.access import AccessDenied, Actor, require
from inspector.jobs import recalibrate as jobs_recalibrate
from inspector.registry import Version
from ui.context import AppContext
from ui.finetune import FinetuneWizard
from ui.session import may
from ui.version_text import created_text, key_metrics, merge_text, read_registry
from ui.workers import run_job, run_task

EXPLANATION = (
    "A new station sees parts under its own lighting, camera angle and optics. Fine-tuning adapts the "
    "deployed model to it in a few minutes on this computer: it re-trains the small token-merging "
    "modules (optionally the normalisation layers or the classifier head) on the station's images, "
    "varied by augmentation, and keeps the rest of the model frozen."
    "<br><br>"
    "You need a few dozen images per class from the new station — a folder per class, a manifest, "
    "or QA-confirmed parts exported from the Review screen. The wizard checks them, shows before and "
    "after on held-out images, and saves the result as a new model version. Nothing changes on the "
    "line until you deploy it; Cancel at any step leaves everything as it was."
    "<br><br>"
    "Only the lamp or the camera changed? <b>Re-calibrate to a new lamp</b> needs no labels: a folder of "
    "a few hundred frames from the line is enough to re-estimate the model's normalisation statistics "
    "in seconds (models with BatchNorm layers: the pretrained Lite0 and hybrid backbones, and the stem "
    "of vit-cpu)."
)


def _is_finetuned(version: Version) -> bool:
    return "after" in version.metrics or "recalibration" in version.metrics


class FinetuneView(QWidget):
    """Explanation, the deployed model, the wizard button, and the fine-tuned versions so far."""

    model_added = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.wizard: FinetuneWizard | None = None

        title = QLabel("Adapt the model to a station")
        title.setStyleSheet("font-size: 22px; font-weight: 700;")
        text = QLabel(EXPLANATION)
        text.setWordWrap(True)
        text.setMaximumWidth(900)
        self.deployed = QLabel("Reading the model registry …")
        self.deployed.setWordWrap(True)
        self.start_button = QPushButton("Start fine-tune wizard…")
        self.start_button.setObjectName("primary")
        self.start_button.setMinimumHeight(56)
        self.start_button.setStyleSheet("font-size: 18px; padding: 10px 32px;")
        self.start_button.clicked.connect(self.open_wizard)
        self.recalibrate_button = QPushButton("Re-calibrate to a new lamp…")
        self.recalibrate_button.setMinimumHeight(56)
        self.recalibrate_button.setToolTip(
            "No labels needed: pick a folder of a few hundred frames from the line under the new lamp or "
            "camera. The deployed model's normalisation statistics are re-estimated on them (seconds) and "
            "saved as a new version; weights, classes and thresholds stay. Models compares and deploys it."
        )
        self.recalibrate_button.clicked.connect(lambda: self.recalibrate())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Version", "Created", "Held-out result", "Merge", "Note"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)

        button_row = QHBoxLayout()
        button_row.addWidget(self.start_button)
        button_row.addWidget(self.recalibrate_button)
        button_row.addWidget(self.message, 1)
        previous = QLabel("Fine-tuned versions")
        previous.setStyleSheet("font-size: 16px; font-weight: 700;")
        self.empty = QLabel(
            "None yet: versions saved by the wizard (with their before → after) or re-calibrated appear here."
        )
        self.empty.setObjectName("hint")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.setSpacing(12)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addWidget(self.deployed)
        layout.addLayout(button_row)
        layout.addSpacing(8)
        layout.addWidget(previous)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addStretch()
        self.refresh()

    def shown(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        run_task(read_registry, self.context.home, on_done=self._loaded, on_failed=self._failed)

    def _loaded(self, result: tuple[list[Version], str | None]) -> None:
        versions, deployed_id = result
        current = next((v for v in versions if v.id == deployed_id), None)
        if current is None:
            self.deployed.setText(
                "<b>Starting point:</b> nothing is deployed, so the wizard starts from the bundled demo "
                "model (ELPV solar cells). You can pick another registered version on its first page."
            )
        else:
            metric = key_metrics(current)
            self.deployed.setText(
                f"<b>Starting point:</b> the deployed model <b>{current.id}</b> — {merge_text(current)}, "
                f"classes {', '.join(current.classes)}{'' if metric == '–' else ', ' + metric}."
            )
        rows = [v for v in reversed(versions) if _is_finetuned(v)]
        self.table.setRowCount(len(rows))
        for row, version in enumerate(rows):
            marker = " (deployed)" if version.id == deployed_id else ""
            cells = [
                version.id + marker,
                created_text(version.created),
                key_metrics(version).replace("station test ", ""),
                merge_text(version),
                version.note,
            ]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.empty.setVisible(not rows)
        self.table.setVisible(bool(rows))

    def _failed(self, message: str) -> None:
        self.deployed.setText(f"Model registry: {message}")
        self.deployed.setStyleSheet("color: #c62828;")

    def set_actor(self, actor: Actor) -> None:
        """Fine-tuning and re-calibrating are an engineer's: offered only to a role that may."""
        allowed = may(actor, "finetune")
        for button in (self.start_button, self.recalibrate_button):
            button.setEnabled(allowed)
        if not allowed:
            self._refused(f"{actor.name} ({actor.role}) may look; fine-tuning is an engineer's.")
        elif self.message.styleSheet():  # a refusal shown to the person before
            self.message.setText("")
            self.message.setStyleSheet("")

    def _allowed(self) -> bool:
        """access.require decides (the job processes below get no password to check with)."""
        try:
            require(self.context.actor, "finetune")
        except AccessDenied as exc:
            self._refused(str(exc))
            return False
        return True

    def _refused(self, text: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c62828;")

    def open_wizard(self) -> FinetuneWizard | None:
        """Open the wizard window-modal; it reports a saved version through ``model_added``."""
        if not self._allowed():
            return None
        wizard = FinetuneWizard(self.context, self)
        wizard.model_added.connect(self._added)
        wizard.finished.connect(lambda _result: self._closed(wizard))
        self.wizard = wizard
        wizard.open()
        return wizard

    def _closed(self, wizard: FinetuneWizard) -> None:
        """Delete the closed wizard once no worker will call back into it (a cancelled run can
        take a training step to notice)."""
        if self.wizard is wizard:
            self.wizard = None
        if wizard.idle():
            wizard.deleteLater()
        else:
            # The wizard is the timer's context: if Qt deletes it first (its parent view closed),
            # the retry is dropped instead of touching a deleted object.
            QTimer.singleShot(500, wizard, lambda: self._closed(wizard))

    def recalibrate(self, frames: Path | None = None) -> None:
        """One click (and a folder): the deployed model re-calibrated to the station's new lamp."""
        if not self._allowed():
            return
        if frames is None:
            chosen = QFileDialog.getExistingDirectory(
                self, "A folder of frames from the line under the new lamp (no labels needed)"
            )
            if not chosen:
                return
            frames = Path(chosen)
        self.recalibrate_button.setEnabled(False)
        self.message.setStyleSheet("")
        self.message.setText(f"Re-calibrating on {frames} …")

        def done(result: tuple[Version, dict]) -> None:
            version, moved = result
            self.recalibrate_button.setEnabled(True)
            self._added(version.id, f"re-calibrated on {moved['images']} frames")

        def failed(message: str) -> None:
            self.recalibrate_button.setEnabled(True)
            self.message.setText(f"Re-calibration failed: {message}")
            self.message.setStyleSheet("color: #c62828;")

        run_job(
            jobs_recalibrate.recalibrate_version,
            self.context.home,
            frames,
            line=self.context.line_overruns,
            owner=self,
            on_done=done,
            on_failed=failed,
            on_progress=lambda text: self.message.setText(str(text)),
        )

    def _added(self, version_id: str, what: str = "") -> None:
        done = f"Saved as {version_id}" + (f" ({what})" if what else "")
        self.message.setStyleSheet("")
        self.message.setText(f"{done}: see the Models screen to compare, deploy or roll back.")
        self.model_added.emit(version_id)
        self.refresh()
