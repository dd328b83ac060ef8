"""The fine-tune wizard: adapt the deployed model to a new station's lighting and camera angle.

Six pages, in the order an engineer thinks: which images (checked before anything trains), how
to vary them (a live preview, so the choice is made by eye), what may change in the model and
for how long, the training itself (curves, log, stop or cancel), before/after on the station's
held-out images, and saving the result as a new registry version (optionally deployed).

Nothing touches the registry before the last page: the new bundle is written into a private
folder under ``<home>/staging/``, and Cancel at any step removes that folder, so the deployed
model stays exactly what it was (DESIGN §3, "a cancelled or failed run changes nothing").
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from data.augment import PRESETS, preview_grid
from data.station import SPLITS
from inspector.registry import Version
from inspector.training.adaptation import (  # noqa: F401 - Staging and check_station are also used by name from here
    MIN_TRAIN_PER_CLASS,
    Staging,
    StationCheck,
    base_model_choices,
    check_station,
)
from inspector.training.background import YieldState
from inspector.training.loop import EpochRecord, Recipe
from inspector.training.workflows import FINETUNE_RECIPE, FinetuneSummary
from ui.context import AppContext
from ui.qt_images import to_pixmap
from ui.workers import JobTask, Latest, Task, run_job, run_task

PREVIEW_DRAWS = 4
PREVIEW_TILE = 132
ERROR_COLOUR, WARN_COLOUR, GOOD_COLOUR = "#c62828", "#8a6d00", "#1b873f"
ERROR_STYLE = f"color: {ERROR_COLOUR};"
WARN_STYLE = f"color: {WARN_COLOUR};"
GOOD_STYLE = f"color: {GOOD_COLOUR};"

PRESET_TEXT = {
    "lighting": ("Lighting", "brightness, contrast, gamma, uneven illumination and shadows"),
    "angle": ("Camera angle", "small rotations, perspective tilt, scale and shift"),
    "optics": ("Optics", "defocus, motion blur, sensor noise and JPEG compression"),
}
TRAINABLE_TEXT = [
    (
        "merge",
        "Merge modules only (recommended)",
        "Re-learns which image regions the model keeps in detail and which it merges. Few "
        "parameters: fast, and the model cannot forget its classes.",
    ),
    (
        "merge+norm",
        "Merge modules + normalisation layers",
        "Also re-centres the features for the new lighting and sensor. A good second try "
        "when the station's images look clearly different.",
    ),
    (
        "merge+head",
        "Merge modules + classifier head",
        "Also re-weighs the final decision between classes. Needs more images per class; "
        "the only choice for a model without merge modules.",
    ),
]


# ---------------------------------------------------------------------------------------------
# small widgets


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def _status(label: QLabel, text: str, style: str = "") -> None:
    label.setText(text)
    label.setStyleSheet(style)


def _canvas(width: float, height: float) -> FigureCanvasQTAgg:
    canvas = FigureCanvasQTAgg(Figure(figsize=(width, height), layout="constrained"))
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    canvas.setMinimumHeight(200)
    return canvas


class FittedImage(QLabel):
    """A picture that grows and shrinks with the space it gets (the preview on any screen size)."""

    def __init__(self, max_scale: float = 2.5) -> None:
        super().__init__()
        self.source: QPixmap | None = None
        self.max_scale = max_scale
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Ignored: the pixmap must not push the layout (which would resize it again, and so on).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, pixmap: QPixmap) -> None:
        self.source = pixmap
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.source is None or self.source.isNull():
            return
        width = min(self.width(), int(self.source.width() * self.max_scale))
        height = min(self.height(), int(self.source.height() * self.max_scale))
        self.setPixmap(
            self.source.scaled(
                max(1, width),
                max(1, height),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )


def draw_confusion(ax: Any, confusion: list[list[int]], classes: list[str], title: str) -> None:
    """Counts with row-normalised shading, like the eval report's PNG (QA reads rows as recall)."""
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{int(count)}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black"
        )


# ---------------------------------------------------------------------------------------------
# pages


class StationPage(QWizardPage):
    """1 · Which images: checked in a worker, with counts per class and split, before Next."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Station data")
        self.setSubTitle(
            "Point to the new station's images: a folder with one sub-folder per class, a manifest "
            "CSV (path,label[,split][,group]), or a folder exported from the Review screen "
            "(QA-confirmed parts from the results ledger — it is a station folder like any other)."
        )
        self.result: StationCheck | None = None
        self.busy = False
        self._requests = Latest()  # a later request makes earlier answers stale

        self.base = QComboBox()
        choices, problem = base_model_choices(wiz.context.home)
        for label, path in choices:
            self.base.addItem(label, str(path))
            self.base.setItemData(self.base.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        self.base.currentIndexChanged.connect(lambda _i: self.check())
        self.path = QLineEdit()
        self.path.setPlaceholderText("Folder of class folders, or manifest .csv")
        self.path.textChanged.connect(lambda _t: self._debounce.start())
        self.path.returnPressed.connect(self.check)
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._browse_folder)
        manifest = QPushButton("Manifest…")
        manifest.clicked.connect(self._browse_manifest)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(600)
        self._debounce.timeout.connect(self.check)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Class", "Train", "Val", "Test", "Total", "Base model"])
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.notes = QListWidget()
        self.notes.setWordWrap(True)
        self.notes.setSpacing(4)
        self.notes.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.notes.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

        source = QHBoxLayout()
        source.addWidget(self.path, 1)
        source.addWidget(folder)
        source.addWidget(manifest)
        form = QFormLayout()
        form.addRow("Base model", self.base)
        form.addRow("Station images", source)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        notes = QVBoxLayout()
        notes.addWidget(QLabel("Checks"))
        notes.addWidget(self.notes, 1)
        body.addLayout(notes, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(body, 1)
        if problem:
            _status(self.status, f"Model registry: {problem}", ERROR_STYLE)
        else:
            _status(self.status, "Choose the station's images to check them.", "")

    @property
    def base_model(self) -> Path:
        return Path(self.base.currentData())

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Station folder (one sub-folder per class)")
        if path:
            self.path.setText(path)
            self.check()

    def _browse_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Station manifest", "", "Manifest (*.csv)")
        if path:
            self.path.setText(path)
            self.check()

    def check(self) -> None:
        """Validate the current choice in a worker; a later request makes earlier answers stale."""
        self._debounce.stop()
        request, path = self._requests.next(), self.path.text().strip()
        self.result = None
        self.table.setRowCount(0)
        self.notes.clear()
        if not path:
            self.busy = False
            _status(self.status, "Choose the station's images to check them.")
            self.completeChanged.emit()
            return
        self.busy = True
        _status(self.status, f"Checking {path} …")
        self.completeChanged.emit()
        self.wiz.run(
            check_station,
            path,
            self.base_model,
            on_done=lambda result: self._checked(request, result),
            on_failed=lambda message: self._check_failed(request, message),
        )

    def _checked(self, request: int, result: StationCheck) -> None:
        if not self._requests.is_current(request):
            return
        self.busy, self.result = False, result
        counts, station = result.counts, result.station
        classes = station.classes + sorted(set(result.meta.classes) - set(station.classes))
        self.table.setRowCount(len(classes))
        for row, name in enumerate(classes):
            values = [counts[split][name] for split in SPLITS]
            if name not in result.meta.classes:
                known, colour = "unknown to the model", ERROR_COLOUR
            elif name not in station.classes:
                known, colour = "known, no images here", WARN_COLOUR
            else:
                known, colour = "known", ""
            cells = [name, *map(str, values), str(sum(values)), known]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if 1 <= column <= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 1 and values[0] < MIN_TRAIN_PER_CLASS and name in station.classes:
                    item.setForeground(QColor(WARN_COLOUR))
                if column == 5 and colour:
                    item.setForeground(QColor(colour))
                self.table.setItem(row, column, item)
        for text in result.errors:
            self._note(text, ERROR_COLOUR, "✖")
        for text in result.warnings:
            self._note(text, WARN_COLOUR, "⚠")
        total = len(station.samples)
        where = f"{len(station.classes)} classes, {total} images ({station.source})"
        if result.errors:
            _status(self.status, f"{where} — cannot fine-tune on this data, see the checks.", ERROR_STYLE)
        elif result.warnings:
            _status(self.status, f"{where} — usable, with the warnings listed.", WARN_STYLE)
        else:
            _status(self.status, f"{where} — ready.", GOOD_STYLE)
            self._note("No problems found.", GOOD_COLOUR, "✔")
        self.completeChanged.emit()

    def _note(self, text: str, colour: str, mark: str) -> None:
        item = QListWidgetItem(f"{mark} {text}")
        item.setForeground(QColor(colour))
        self.notes.addItem(item)

    def _check_failed(self, request: int, message: str) -> None:
        if not self._requests.is_current(request):
            return
        self.busy, self.result = False, None
        _status(self.status, message, ERROR_STYLE)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return (
            not self.busy
            and self.result is not None
            and not self.result.errors
            and self.result.path == self.path.text().strip()
            and self.result.base == self.base_model
        )


class AugmentPage(QWizardPage):
    """2 · How to vary the images: presets with a live preview on three station images."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Augmentation")
        self.setSubTitle(
            "Training shows the model each image changed at random, so it stops relying on this "
            "station's exact lighting and angle. Pick what varies on the line; the preview shows real "
            "draws on three of the station's images (first column: the original)."
        )
        self.boxes: dict[str, QCheckBox] = {}
        self._seed = 0
        self._requests = Latest()  # a later request makes earlier answers stale
        self.rendered = False
        choices = QVBoxLayout()
        for name in PRESETS:
            title, text = PRESET_TEXT.get(name, (name.title(), ""))
            box = QCheckBox(title)
            box.setChecked(name in ("lighting", "angle"))
            box.toggled.connect(lambda _on: self.render())
            self.boxes[name] = box
            choices.addWidget(box)
            choices.addWidget(_hint(text))
            choices.addSpacing(6)
        again = QPushButton("New random draws")
        again.clicked.connect(self._redraw)
        choices.addWidget(again)
        choices.addWidget(
            _hint(
                "Every image also gets light flips, small pose and exposure changes (always on). "
                "With nothing ticked the preview shows those."
            )
        )
        choices.addStretch(1)
        self.preview = FittedImage()
        self.preview.setMinimumSize(400, 260)
        self.status = QLabel("")
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(choices, 1)
        layout.addLayout(right, 3)

    @property
    def presets(self) -> list[str]:
        return [name for name, box in self.boxes.items() if box.isChecked()]

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.render()

    def _redraw(self) -> None:
        self._seed += 1
        self.render()

    def render(self) -> None:
        check = self.wiz.station_page.result
        if check is None or not check.samples:
            self.preview.setText("No readable images to preview.")
            return
        request = self._requests.next()
        self.rendered = False
        _status(self.status, "Rendering the preview …")
        self.wiz.run(
            preview_grid,
            check.samples,
            self.presets,
            PREVIEW_DRAWS,
            self._seed,
            PREVIEW_TILE,
            on_done=lambda grid: self._show(request, grid),
            on_failed=lambda message: self._show_failed(request, message),
        )

    def _show(self, request: int, grid: np.ndarray) -> None:
        if not self._requests.is_current(request):
            return
        self.preview.set_image(to_pixmap(grid))
        names = ", ".join(PRESET_TEXT[n][0].lower() for n in self.presets) or "the default variation only"
        _status(self.status, f"Preview: {names}.", "")
        self.rendered = True

    def _show_failed(self, request: int, message: str) -> None:
        if self._requests.is_current(request):
            _status(self.status, f"No preview: {message}", ERROR_STYLE)
            self.rendered = True


class RecipePage(QWizardPage):
    """3 · What may change in the model, and for how long."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("What trains")
        self.setSubTitle(
            "Everything else in the model stays frozen. The best epoch on the station's validation "
            "images is kept — and if no epoch beats the base model there, the base weights are kept."
        )
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        which = QGroupBox("Trainable parts")
        which_layout = QVBoxLayout(which)
        for key, title, text in TRAINABLE_TEXT:
            radio = QRadioButton(title)
            self.radios[key] = radio
            self.group.addButton(radio)
            which_layout.addWidget(radio)
            hint = _hint(text)
            hint.setContentsMargins(24, 0, 0, 6)
            which_layout.addWidget(hint)
        self.radios[FINETUNE_RECIPE.trainable].setChecked(True)
        self.model_note = _hint("")
        which_layout.addWidget(self.model_note)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(FINETUNE_RECIPE.epochs)
        self.epochs.setSuffix(" epochs")
        self.budget = QSpinBox()
        self.budget.setRange(0, 24 * 60)
        self.budget.setValue(30)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no limit")
        how = QGroupBox("How long")
        form = QFormLayout(how)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time budget", self.budget)
        form.addRow(
            _hint(
                "When the budget runs out, training stops after the current step and keeps its best "
                "epoch so far. One epoch is one pass over the station's training images."
            )
        )
        self.estimate = _hint("")
        form.addRow(self.estimate)
        layout = QHBoxLayout(self)
        layout.addWidget(which, 3)
        layout.addWidget(how, 2)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        check = self.wiz.station_page.result
        has_merge = check is not None and check.meta.merge_mode != "none"
        for key in ("merge", "merge+norm"):
            self.radios[key].setEnabled(has_merge)
        if not has_merge:
            self.radios["merge+head"].setChecked(True)
            self.model_note.setText(
                "This base model has no merge modules (merge mode none): only the head and norms can adapt."
            )
        else:
            self.model_note.setText(f"Base model: {check.meta.merge_mode.upper()} merging." if check else "")
        if check is not None:
            train = sum(check.counts["train"].values())
            self.estimate.setText(f"{train} training images, {check.meta.preprocessing.size} px input.")

    @property
    def trainable(self) -> str:
        return next(key for key, radio in self.radios.items() if radio.isChecked())

    @property
    def budget_seconds(self) -> float | None:
        return self.budget.value() * 60.0 or None

    def recipe(self) -> Recipe:
        return replace(FINETUNE_RECIPE, epochs=self.epochs.value(), trainable=self.trainable)


class TrainPage(QWizardPage):
    """4 · Training: progress, live curves, the log; stop early (keep best) or Cancel (discard)."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Training")
        self.setSubTitle(
            "Runs on this computer, behind the line: the line keeps running on the deployed model "
            "and comes first. Cancel discards this run; Back stops it so you can change the settings."
        )
        self.task: JobTask | None = None
        self.summary: FinetuneSummary | None = None
        self.history: list[EpochRecord] = []
        self.failed = ""
        self._run = 0
        self._started = 0.0
        self._budget: float | None = None

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.line_note = QLabel("")
        self.line_note.setWordWrap(True)
        self.line_note.setMinimumHeight(2 * self.line_note.fontMetrics().lineSpacing() + 14)
        self.line_note.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("epoch %v of %m")
        self.clock = QLabel("")
        self.stop_button = QPushButton("Stop now — keep the best epoch")
        self.stop_button.setToolTip("Ends training after the current step; the best epoch so far is kept")
        self.stop_button.clicked.connect(self._stop_now)
        self.canvas = _canvas(7.0, 2.6)
        self.loss_ax, self.f1_ax = self.canvas.figure.subplots(1, 2)
        self.log = QListWidget()
        self.log.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.log.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log.setMinimumHeight(90)
        self.log.setMaximumHeight(160)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.clock)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.line_note)
        layout.addWidget(self.canvas, 3)
        layout.addWidget(self.log, 1)
        self._draw()

    @property
    def running(self) -> bool:
        return (
            self.task is not None
            and not self.task.finished.is_set()
            and self.summary is None
            and not self.failed
        )

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 - Qt's name
        """Back: stop this run and throw its files away (Next starts a fresh one)."""
        self.wiz.discard_run()

    def start(self) -> None:
        wiz = self.wiz
        check = wiz.station_page.result
        assert check is not None
        recipe = wiz.recipe_page.recipe()
        staging = wiz.new_staging()
        self._run += 1
        self.summary, self.history, self.failed = None, [], ""
        self._budget = wiz.recipe_page.budget_seconds
        self._started = time.monotonic()
        self.log.clear()
        self.progress.setRange(0, recipe.epochs)
        self.progress.setValue(0)
        self.stop_button.setEnabled(True)
        presets = wiz.augment_page.presets
        _status(
            self.status,
            f"Loading the station's images and measuring the base model … then {recipe.epochs} epoch(s), "
            f"training {recipe.trainable}, augmentation: {', '.join(presets) or 'default only'}.",
        )
        self._draw()
        self.task = self.wiz.run_job(
            "inspector.training.adaptation:run_finetune",
            check.base,
            check.station,
            staging.bundle,
            presets,
            recipe,
            self._budget,
            hold=staging.in_use(),
            # A run abandoned by Back may still answer: only the current run's answers count.
            on_done=lambda summary, run=self._run: self._done(summary) if run == self._run else None,
            on_failed=lambda message, run=self._run: self._failed(message) if run == self._run else None,
            on_progress=lambda item, run=self._run: self._progress(item) if run == self._run else None,
        )
        self._timer.start()
        self._tick()
        self.completeChanged.emit()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._timer.stop()

    def _stop_now(self) -> None:
        if self.task is not None:
            self.task.stop()
        self.stop_button.setEnabled(False)
        _status(self.status, "Stopping after the current step; the best epoch so far will be kept …")

    def _progress(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "log":
            self.log.addItem(str(value))
            self.log.scrollToBottom()
        elif kind == "epoch":
            self.history.append(value)
            self.progress.setValue(min(self.progress.maximum(), value.epoch + 1))
            best = max(self.history, key=lambda r: r.val_macro_f1)
            _status(
                self.status,
                f"Epoch {value.epoch + 1}: loss {value.loss:.3f}, "
                f"validation macro-F1 {value.val_macro_f1:.3f} "
                f"(best so far {best.val_macro_f1:.3f}, epoch {best.epoch + 1}).",
            )
            self._draw()

    def _done(self, summary: FinetuneSummary) -> None:
        self._timer.stop()
        self._tick()
        self.summary = summary
        self.stop_button.setEnabled(False)
        outcome = summary.outcome
        if outcome.best_epoch < 0:
            text = (
                f"Finished in {summary.seconds:.0f} s: no epoch beat the base model on validation, so the "
                "new version keeps the base weights (with thresholds recalibrated for this station)."
            )
            style = WARN_STYLE
        else:
            text = (
                f"Finished in {summary.seconds:.0f} s: kept epoch {outcome.best_epoch + 1} of "
                f"{len(outcome.history)} (validation macro-F1 {outcome.best_val['macro_f1']:.3f}). Next: "
                "before and after on the held-out images."
            )
            style = GOOD_STYLE
        _status(self.status, text, style)
        self.completeChanged.emit()

    def _failed(self, message: str) -> None:
        self._timer.stop()
        self.failed = message
        self.stop_button.setEnabled(False)
        _status(
            self.status, f"Training failed: {message}. Back to change the settings, or Cancel.", ERROR_STYLE
        )
        self.completeChanged.emit()

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        text = f"{_clock(elapsed)} elapsed"
        state = self.task.state() if self.task is not None else None
        if self._budget and self.running:
            held = state.paused_s if state is not None else 0.0
            text += f" · {_clock(max(0.0, self._budget - elapsed + held))} left of the budget"
        self.clock.setText(text)
        text = yield_text(state, self.running) if state is not None else ""
        self.line_note.setText(text)
        self.line_note.setVisible(bool(text))
        if state is not None:
            self.line_note.setStyleSheet(PAUSED_STYLE if state.paused and self.running else YIELDING_STYLE)

    def _draw(self) -> None:
        epochs = [r.epoch + 1 for r in self.history]
        for ax, values, title, colour in (
            (self.loss_ax, [r.loss for r in self.history], "Training loss", "#1f77b4"),
            (self.f1_ax, [r.val_macro_f1 for r in self.history], "Validation macro-F1", "#1b873f"),
        ):
            ax.clear()
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if values:
                ax.plot(epochs, values, "o-", color=colour)
                ax.set_xlim(0.5, max(self.progress.maximum(), 1) + 0.5)
            else:
                ax.text(
                    0.5, 0.5, "waiting for the first epoch", ha="center", va="center", transform=ax.transAxes
                )
        self.f1_ax.set_ylim(0, 1.02)
        self.canvas.draw_idle()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.summary is not None


def yield_text(state: YieldState, running: bool) -> str:
    """What the training page says about the training's place behind the line."""
    cores = f"{state.threads} core" + ("" if state.threads == 1 else "s")
    how = "low priority (starting up)" if state.priority == "starting" else state.priority
    held = f" Paused {state.pauses}× so far, {_clock(state.paused_s)} in all." if state.pauses else ""
    if not running:
        return f"The line held training {state.pauses}×, {_clock(state.paused_s)} in all." if held else ""
    if state.paused and state.line_overloaded:
        return (
            "Paused for the line: it overruns even while training waits (it is short of CPU, or its "
            "cycle budget is too tight). Training continues once the line keeps its cycle — it may "
            f"have to wait until the line stops.{held}"
        )
    if state.paused:
        return (
            "Paused for the line: it reported an overrun (a part judged later than its cycle). "
            f"Training continues in {_clock(state.resume_in_s)} if the line keeps its cycle.{held}"
        )
    if state.line_running:
        return (
            f"The line comes first: training runs in a background process at {how} on {cores}, "
            f"and pauses whenever the line reports an overrun.{held}"
        )
    return (
        f"Training runs in a background process on {cores}. If a line starts meanwhile, training drops "
        "below it and pauses at its overruns."
    )


NOTE_STYLE = "padding: 6px 10px; border-left: 4px solid {edge}; background: {fill}; color: {ink};"
YIELDING_STYLE = NOTE_STYLE.format(edge="#1f77b4", fill="#eef3f8", ink="#22313f")
PAUSED_STYLE = NOTE_STYLE.format(edge="#c79100", fill="#fff4ce", ink="#4d3900")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ComparePage(QWizardPage):
    """5 · Before / after on the station's held-out test images, and what the model costs."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Before and after")
        self.setSubTitle(
            "Both models judged the station's held-out test images, which training never saw. Recall: "
            "the share of each class's parts the model recognised."
        )
        self.speed: dict[str, dict[str, float]] | None = None
        self._requests = Latest()  # a later request makes earlier answers stale
        self.headline = QLabel("")
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "Before", "After", "Change"])
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.speed_label = QLabel("Measuring speed …")
        self.speed_label.setWordWrap(True)
        self.canvas = _canvas(8.0, 3.0)
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.speed_label)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addWidget(self.canvas, 5)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addLayout(body, 1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        summary = self.wiz.train_page.summary
        assert summary is not None
        before, after = summary.before, summary.after
        delta = after["macro_f1"] - before["macro_f1"]
        verdict = "better" if delta > 0.005 else "worse" if delta < -0.005 else "about the same"
        self.headline.setText(
            f"Macro-F1 {before['macro_f1']:.3f} → {after['macro_f1']:.3f} ({delta:+.3f}, {verdict}) "
            f"on {after['n']} held-out images"
        )
        self.headline.setStyleSheet(GOOD_STYLE if delta > 0.005 else ERROR_STYLE if delta < -0.005 else "")
        rows = [
            ("Macro-F1", before["macro_f1"], after["macro_f1"]),
            ("Accuracy", before["accuracy"], after["accuracy"]),
        ]
        for name in after["classes"]:
            support = after["per_class"][name]["support"]
            if support:
                rows.append(
                    (
                        f"Recall {name} (n={support})",
                        before["per_class"][name]["recall"],
                        after["per_class"][name]["recall"],
                    )
                )
        self.table.setRowCount(len(rows))
        for row, (name, old, new) in enumerate(rows):
            change = new - old
            for column, text in enumerate((name, f"{old:.3f}", f"{new:.3f}", f"{change:+.3f}")):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 3 and abs(change) > 0.005:
                    item.setForeground(QColor(GOOD_COLOUR if change > 0 else ERROR_COLOUR))
                self.table.setItem(row, column, item)
        self._draw(before, after)
        self.speed = None
        self.speed_label.setText("Measuring GMACs and latency of both models …")
        request = self._requests.next()
        staging = self.wiz.staging
        assert staging is not None
        self.wiz.run_job(
            "inspector.training.adaptation:measure_speed",
            self.wiz.station_page.base_model,
            staging.bundle,
            hold=staging.in_use(),
            pause_for_line=False,  # a pause inside a timed call would read as latency
            on_done=lambda figures: self._speed_done(request, figures),
            on_failed=lambda message: self._speed_failed(request, message),
        )

    def _draw(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        figure = self.canvas.figure
        figure.clear()
        classes = after["classes"]
        bars, conf_before, conf_after = figure.subplots(1, 3, width_ratios=[1.3, 1, 1])
        x = np.arange(len(classes))
        width = 0.38
        old = [before["per_class"][c]["recall"] for c in classes]
        new = [after["per_class"][c]["recall"] for c in classes]
        bars.bar(x - width / 2, old, width, label="before", color="#9aa5b1")
        bars.bar(x + width / 2, new, width, label="after", color="#1f77b4")
        bars.set_xticks(x, classes, rotation=30, ha="right")
        bars.set_ylim(0, 1.18)
        bars.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        bars.set_title("Recall per class")
        bars.legend(loc="upper center", ncol=2, fontsize="small", frameon=False)
        bars.grid(True, axis="y", alpha=0.3)
        draw_confusion(conf_before, before["confusion"], classes, "Before (base)")
        draw_confusion(conf_after, after["confusion"], classes, "After (fine-tuned)")
        self.canvas.draw_idle()

    def _speed_done(self, request: int, figures: dict[str, dict[str, float]]) -> None:
        if not self._requests.is_current(request):
            return
        self.speed = figures
        old, new = figures["before"], figures["after"]
        ratio = new["p50"] / old["p50"] if old["p50"] else float("nan")
        where = "this computer"
        if self.wiz.context.line_overruns() is not None:
            where = "this computer, below the running line: slower than on a quiet PC"
        self.speed_label.setText(
            f"<b>Speed</b> (batch 1, PyTorch, {where})<br>"
            f"Compute: {old['gmacs']:.3f} → {new['gmacs']:.3f} GMACs<br>"
            f"Latency p50: {old['p50']:.1f} → {new['p50']:.1f} ms (×{ratio:.2f}), "
            f"p95 {new['p95']:.1f} ms<br>Parameters: {new['params'] / 1e6:.2f} M"
        )

    def _speed_failed(self, request: int, message: str) -> None:
        if self._requests.is_current(request):
            self.speed = {}
            _status(self.speed_label, f"Speed not measured: {message}", ERROR_STYLE)


class SavePage(QWizardPage):
    """6 · Keep it: a new registry version, deployed now or later from the Models screen."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Save as a new model version")
        self.setSubTitle(
            "The model registry keeps every version; deploying one switches the line to it and Models › "
            "Roll back returns to the previous one. Cancel now discards the fine-tuned model."
        )
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.note = QLineEdit()
        self.note.setPlaceholderText("What this version is for (shown in the Models screen)")
        self.deploy = QCheckBox("Deploy it now")
        self.deploy_hint = _hint(
            "Lines started from now on use it. Leave unticked to compare it in the Models screen first."
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Note", self.note)
        form.addRow("", self.deploy)
        form.addRow("", self.deploy_hint)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        wiz = self.wiz
        summary, check = wiz.train_page.summary, wiz.station_page.result
        assert summary is not None and check is not None
        base = wiz.station_page.base_model
        base_name = (
            base.name if base.parent.name == "models" else "demo model" if "demo" in base.name else str(base)
        )
        station = check.station.root.name
        recipe = wiz.recipe_page.recipe()
        presets = wiz.augment_page.presets
        outcome = summary.outcome
        self.note.setText(
            f"fine-tuned from {base_name} on {station} ({recipe.trainable}, "
            f"{'+'.join(presets) or 'default aug'}, {len(outcome.history)} ep)"
        )
        kept = (
            "the base weights (no epoch beat them on validation)"
            if outcome.best_epoch < 0
            else f"epoch {outcome.best_epoch + 1} of {len(outcome.history)}"
        )
        trained = next(title for key, title, _text in TRAINABLE_TEXT if key == recipe.trainable)
        rows = [
            ("Base model", f"{base_name} <span style='color:#5f6b7a'>({html.escape(str(base))})</span>"),
            (
                "Station",
                f"{html.escape(str(check.station.root))} — {len(check.station.samples)} images, "
                f"{len(check.station.classes)} classes",
            ),
            (
                "Trained",
                f"{trained.replace(' (recommended)', '')}; augmentation: {', '.join(presets) or 'default'}",
            ),
            ("Kept", kept),
            (
                "Held-out macro-F1",
                f"{summary.before['macro_f1']:.3f} → <b>{summary.after['macro_f1']:.3f}</b> "
                f"(accuracy {summary.before['accuracy']:.3f} → {summary.after['accuracy']:.3f}, "
                f"n={summary.after['n']})",
            ),
        ]
        speed = wiz.compare_page.speed
        if speed:
            rows.append(
                (
                    "Speed",
                    f"{speed['after']['gmacs']:.3f} GMACs, {speed['after']['p50']:.1f} ms p50 at batch 1",
                )
            )
        rows.append(("Registry", html.escape(str(wiz.context.home / "models"))))
        cells = "".join(
            f"<tr><td style='padding:3px 16px 3px 0; color:#5f6b7a'>{name}</td>"
            f"<td style='padding:3px 0'>{value}</td></tr>"
            for name, value in rows
        )
        self.summary.setText(f"<table>{cells}</table>")
        self.status.setText("")


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
        _status(page.status, "Saving into the model registry (copying, measuring latency) …")
        self.saving = self.run_job(
            "inspector.training.adaptation:save_version",
            self.context.home,
            self.staging.bundle,
            page.note.text().strip(),
            page.deploy.isChecked(),
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
            _status(
                self.save_page.status, f"Saved as {version.id}, but not deployed: {deploy_error}", ERROR_STYLE
            )
            return
        super().accept()

    def _save_failed(self, message: str) -> None:
        self.saving = None
        self._lock_buttons(False)
        _status(self.save_page.status, f"Not saved: {message}", ERROR_STYLE)

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
