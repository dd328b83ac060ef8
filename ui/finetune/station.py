"""Page 1 of the fine-tune wizard: which images, checked in a worker before anything trains."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from data.station import SPLITS
from inspector.training.adaptation import MIN_TRAIN_PER_CLASS, StationCheck, base_model_choices, check_station
from ui.finetune.common import (
    ERROR_COLOUR,
    ERROR_STYLE,
    GOOD_COLOUR,
    GOOD_STYLE,
    WARN_COLOUR,
    WARN_STYLE,
    set_status,
)
from ui.finetune.state import FinetuneState
from ui.workers import Latest


class StationPage(QWizardPage):
    """1 · Which images: checked in a worker, with counts per class and split, before Next."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Station data")
        self.setSubTitle(
            "Point to the new station's images: a folder with one sub-folder per class, a manifest "
            "CSV (path,label[,split][,group]), or a folder exported from the Review screen "
            "(QA-confirmed parts from the results ledger — it is a station folder like any other)."
        )
        self.busy = False
        self._requests = Latest()  # a later request makes earlier answers stale

        self.base = QComboBox()
        choices, problem = base_model_choices(state.context.home)
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
            set_status(self.status, f"Model registry: {problem}", ERROR_STYLE)
        else:
            set_status(self.status, "Choose the station's images to check them.", "")

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
        self.state.check = None
        self.table.setRowCount(0)
        self.notes.clear()
        if not path:
            self.busy = False
            set_status(self.status, "Choose the station's images to check them.")
            self.completeChanged.emit()
            return
        self.busy = True
        set_status(self.status, f"Checking {path} …")
        self.completeChanged.emit()
        self.state.run(
            check_station,
            path,
            self.base_model,
            on_done=lambda result: self._checked(request, result),
            on_failed=lambda message: self._check_failed(request, message),
        )

    def _checked(self, request: int, result: StationCheck) -> None:
        if not self._requests.is_current(request):
            return
        self.busy, self.state.check = False, result
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
            set_status(self.status, f"{where} — cannot fine-tune on this data, see the checks.", ERROR_STYLE)
        elif result.warnings:
            set_status(self.status, f"{where} — usable, with the warnings listed.", WARN_STYLE)
        else:
            set_status(self.status, f"{where} — ready.", GOOD_STYLE)
            self._note("No problems found.", GOOD_COLOUR, "✔")
        self.completeChanged.emit()

    def _note(self, text: str, colour: str, mark: str) -> None:
        item = QListWidgetItem(f"{mark} {text}")
        item.setForeground(QColor(colour))
        self.notes.addItem(item)

    def _check_failed(self, request: int, message: str) -> None:
        if not self._requests.is_current(request):
            return
        self.busy, self.state.check = False, None
        set_status(self.status, message, ERROR_STYLE)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # Qt's name
        result = self.state.check
        return (
            not self.busy
            and result is not None
            and not result.errors
            and result.path == self.path.text().strip()
            and result.base == self.base_model
        )
