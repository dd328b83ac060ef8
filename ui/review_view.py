"""Review: QA walks the ledger's NG and UNSURE parts, confirms or corrects them, and exports.

The ledger may hold millions of results, so nothing here ever loads or sorts them all: the table
is a paged, lazy model whose pages (200 rows) and total count are fetched by worker threads; a
generation counter drops the answers of queries that a newer filter has replaced, and every query
is pinned to the moment it started (``until`` = now) so that a line writing meanwhile cannot shift
the pages under the reader. Sorting is by capture time, done by the database.

A review is one key press (Enter/Space/C confirms, 1..K changes the class, a reason being
required for a change), written by a worker; the selection moves on at once so QA never waits.
The selected part shows its archived image (optionally with a merge map recomputed by the
deployed model), class probabilities, facts and audit history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDateTime,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QKeyEvent, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from data.images import fit_within, read_image
from inspector.line.overlay import overlay_importance
from inspector.store import ResultFilter
from ui.context import AppContext
from ui.qt_images import to_qimage
from ui.style import VERDICT_COLORS, verdict_style
from ui.workers import JOB_ERRORS, run_task

PAGE = 200
STALE_S = 60.0  # coming back to the tab re-queries when the table is older than this
DETAIL_DELAY_MS = 80  # holding ↓ must not start one image load per row flown past
IMAGE_SIDE = 1400  # archived images are shrunk to this in the worker, never on the UI thread
MAX_CLASS_KEYS = 9

TIME_RANGES = [
    ("Last 8 h", timedelta(hours=8)),
    ("Last 24 h", timedelta(hours=24)),
    ("Last 7 days", timedelta(days=7)),
    ("All time", None),
    ("Custom range", "custom"),
]
VERDICT_CHOICES = [
    ("All verdicts", ()),
    ("NG + UNSURE", ("NG", "UNSURE")),
    ("NG", ("NG",)),
    ("UNSURE", ("UNSURE",)),
    ("OK", ("OK",)),
    ("ERROR", ("ERROR",)),
]
REVIEW_CHOICES = [("Not reviewed", False), ("Reviewed", True), ("Any review state", None)]
DEFAULTS = {"time": "All time", "verdict": "NG + UNSURE", "review": "Not reviewed"}

# (key, header, width): most telling first, so a narrow window scrolls away only the least needed.
COLUMN_SPEC = [
    ("reviewed", "✓", 32),
    ("captured", "Captured", 166),
    ("verdict", "Verdict", 82),
    ("label", "Class", 96),
    ("confidence", "Conf.", 62),
    ("qa", "QA label", 96),
    ("truth", "Truth", 84),
    ("lot", "Lot", 100),
    ("ood", "OOD", 58),
    ("where", "Run · frame", 90),
]
KEYS = [key for key, _, _ in COLUMN_SPEC]
COLUMNS = [header for _, header, _ in COLUMN_SPEC]
COLUMN_WIDTHS = [width for _, _, width in COLUMN_SPEC]
CAPTURED = KEYS.index("captured")
VERDICT = KEYS.index("verdict")
QA_LABEL = KEYS.index("qa")
CENTERED = {KEYS.index("reviewed"), VERDICT}
NUMBERS = {KEYS.index("confidence"), KEYS.index("ood")}
OVERRIDE_COLOR = "#b35c00"

REVIEW_STYLE = """
QLabel#hint { color: #5f6b7a; }
QLabel#resultCount { font-size: 20px; font-weight: 700; }
QLabel#reviewVerdict { font-size: 26px; font-weight: 800; color: white; border-radius: 8px;
    padding: 2px 14px; }
QLabel#factName { color: #5f6b7a; }
QLabel#sectionTitle { font-weight: 700; color: #2b3440; margin-top: 4px; }
QLabel#statusError { color: #c62828; font-weight: 600; }
QLabel#imageView { background: #101418; color: #c9d1d9; border-radius: 6px; }
QPushButton#classKey { font-weight: 700; min-width: 30px; max-width: 30px; padding: 3px; }
QProgressBar { border: 1px solid #c8cfd8; border-radius: 4px; text-align: center; min-height: 20px; }
QProgressBar::chunk { background: #4a78b0; border-radius: 3px; }
QLineEdit#missing { border: 2px solid #c62828; }
"""


# -- worker side: plain functions, no widgets ------------------------------------------------------


@dataclass
class Reply:
    """A worker's answer, tagged so the UI can drop it when a newer request has replaced it."""

    key: int
    value: Any = None
    error: str | None = None


def _tagged(key: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Reply:
    """User-facing failures come back tagged too (a stale failure must not disturb a newer query)."""
    try:
        return Reply(key, fn(*args, **kwargs))
    except JOB_ERRORS as exc:
        text = str(exc).strip()
        return Reply(key, error=text.splitlines()[0] if text else type(exc).__name__)


class Generation:
    """The newest query's number: bumped by the UI, read by workers, so that a query still queued
    behind a slow one is skipped once a newer filter has replaced it (an int read is atomic)."""

    def __init__(self) -> None:
        self.value = 0


def _if_current(latest: Generation, key: int, fn: Callable[..., Any], *args: Any) -> Reply:
    if latest.value != key:
        return Reply(key, error="superseded")
    return _tagged(key, fn, *args)


def _count(context: AppContext, filt: ResultFilter) -> int:
    return context.ledger().count_results(filt)


def _page(context: AppContext, filt: ResultFilter, offset: int, newest_first: bool) -> tuple[int, list[dict]]:
    return offset, context.ledger().query_results(filt, offset=offset, limit=PAGE, newest_first=newest_first)


def _filter_options(context: AppContext) -> tuple[list[dict], list[str]]:
    ledger = context.ledger()
    return ledger.runs(limit=500), ledger.classes()


def archive_path(home: Path, image_ref: str | None) -> tuple[Path | None, str]:
    """The archived file for a ledger reference, or None with the reason QA should read."""
    if not image_ref:
        return None, "No image archived for this part (the archive keeps NG/UNSURE and a sample of OK)"
    root = (home / "archive").resolve()
    path = (root / image_ref).resolve()
    if not path.is_relative_to(root):
        return None, f"Image reference points outside the archive: {image_ref}"
    if not path.is_file():
        return None, f"Archived image is missing:\n{path}"
    return path, ""


def _detail(context: AppContext, result_id: int, image_ref: str | None) -> tuple[QImage | None, str, list]:
    path, note = archive_path(context.home, image_ref)
    image = None
    if path is not None:
        image = to_qimage(fit_within(read_image(path), IMAGE_SIDE))  # QImage is fine off the UI thread
    return image, note, context.ledger().history(result_id)


def _review(context: AppContext, result_id: int, label: str, reviewer: str, reason: str) -> tuple[dict, list]:
    ledger = context.ledger()
    ledger.review(result_id, label, reviewer, reason)
    return ledger.get_result(result_id), ledger.history(result_id)


def _export_csv(context: AppContext, filt: ResultFilter, path: Path) -> int:
    from models.files import atomic_write

    ledger = context.ledger()
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            count = ledger.export_csv(handle, filt)

    atomic_write(path, write)
    return count


def _export_station(
    context: AppContext, filt: ResultFilter, out_dir: Path, task: Any = None
) -> tuple[int, list[str], Path]:
    from inspector.store.station_export import export_station_dataset

    progress = (lambda done, total: task.report((done, total))) if task is not None else None
    count, warnings = export_station_dataset(
        context.ledger(), filt, context.home / "archive", out_dir, progress=progress
    )
    return count, warnings, out_dir


class MergeMapper:
    """The deployed model, loaded once (in a worker) to recompute merge maps for archived images.

    The ledger does not keep merge maps, and loading the exact model version that judged a part
    is not always possible (it may be gone from the registry), so the map is recomputed with the
    deployed model, and QA is told when that is not the model that judged the part.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._engine: Any = None

    def overlay(self, image_ref: str | None, judged_by: str | None) -> tuple[QImage | None, str]:
        path, note = archive_path(self.home, image_ref)
        if path is None:
            return None, note
        image = fit_within(read_image(path), IMAGE_SIDE)
        with self._lock:  # one model load, one inference at a time
            if self._engine is None:
                from inspector.line.build import resolve_model
                from inspector.line.inference import InferenceEngine

                self._engine = InferenceEngine.load(resolve_model(None, self.home))
            engine = self._engine
            out = engine.infer([image], track_maps=True)
        if not out.maps:
            return None, "The deployed model merges no tokens: it has no merge map to show"
        name = engine.bundle.path.name if engine.bundle.path else "the deployed model"
        note = f"Merge map from {name} (warm: detail kept, cool: merged)"
        if judged_by and judged_by != engine.sha256:
            note += " — not the model version that judged this part"
        return to_qimage(overlay_importance(image, out.maps[0])), note


# -- the table model ---------------------------------------------------------------------------


def _local(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


class ResultsModel(QAbstractTableModel):
    """Pages of ledger rows (plain dicts); asks for the next page through ``fetch_requested``."""

    fetch_requested = Signal(int)  # offset

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict] = []
        self.index_of: dict[int, int] = {}
        self.total: int | None = None
        self.exhausted = False
        self.loading = False
        self.active = False
        self.pending: set[int] = set()  # result ids whose review is being written

    # Qt's model API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {
                0: "✓ reviewed, … being saved",
                CAPTURED: "Capture time (local). Click to sort newest/oldest first",
                QA_LABEL: "The class QA decided; orange where it differs from the model",
            }.get(section)
        return None

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.UserRole:
            return row
        if column == VERDICT:
            if role == Qt.ItemDataRole.BackgroundRole:
                return QColor(VERDICT_COLORS.get(row["verdict"], VERDICT_COLORS[""]))
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor("white")
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column in CENTERED:
                return Qt.AlignmentFlag.AlignCenter
            if column in NUMBERS:
                return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if column == QA_LABEL and role == Qt.ItemDataRole.ForegroundRole:
            if row.get("reviewed") and row.get("reviewed_label") != row.get("label"):
                return QColor(OVERRIDE_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole and row.get("error"):
            return row["error"]
        return None

    def _text(self, row: dict, column: int) -> str:
        key = KEYS[column]
        if key == "reviewed":
            return "…" if row["id"] in self.pending else ("✓" if row.get("reviewed") else "")
        if key == "captured":
            return _local(row.get("captured_at"))
        if key == "verdict":
            return row["verdict"]
        if key == "label":
            return row.get("label") or "–"
        if key == "confidence":
            return _percent(row.get("confidence"))
        if key == "qa":
            return (row.get("reviewed_label") or "") if row.get("reviewed") else ""
        if key == "truth":
            return row.get("truth") or ""
        if key == "ood":
            return "" if row.get("ood_score") is None else f"{row['ood_score']:.2f}"
        if key == "lot":
            return row.get("lot") or ""
        return f"{row['run_id']} · {row['frame_index']}"

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        if parent.isValid() or not self.active or self.loading or self.exhausted:
            return False
        return self.total is None or len(self.rows) < self.total

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if self.canFetchMore(parent):
            self.loading = True
            self.fetch_requested.emit(len(self.rows))

    # ours
    def reset(self) -> None:
        self.beginResetModel()
        self.rows, self.index_of, self.total = [], {}, None
        self.exhausted, self.loading, self.active = False, False, True
        self.pending.clear()
        self.endResetModel()

    def append(self, rows: list[dict], last_page: bool) -> None:
        """Add a page; rows already shown are skipped (a late write can shift an offset by one)."""
        fresh = [row for row in rows if row["id"] not in self.index_of]
        self.loading = False
        self.exhausted = last_page
        if not fresh:
            return
        start = len(self.rows)
        self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
        for offset, row in enumerate(fresh):
            self.index_of[row["id"]] = start + offset
        self.rows.extend(fresh)
        self.endInsertRows()

    def row_at(self, number: int) -> dict | None:
        return self.rows[number] if 0 <= number < len(self.rows) else None

    def update_row(self, new: dict) -> None:
        number = self.index_of.get(new["id"])
        if number is None:
            return
        self.rows[number] = {**self.rows[number], **new}
        self.changed(new["id"])

    def changed(self, result_id: int) -> None:
        number = self.index_of.get(result_id)
        if number is not None:
            self.dataChanged.emit(self.index(number, 0), self.index(number, len(COLUMNS) - 1))


def _restyle(widget: QWidget, name: str) -> None:
    """Switch a widget's object name and re-apply the style sheet rules that select on it."""
    if widget.objectName() != name:
        widget.setObjectName(name)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


# -- widgets -----------------------------------------------------------------------------------


class ImageView(QLabel):
    """An image that fills its space at any window size, or a sentence saying why there is none."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("imageView")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(220, 180)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)  # no resize feedback
        self.image: QImage | None = None

    def show_image(self, image: QImage | None, note: str = "") -> None:
        self.image = image
        if image is None:
            self.setPixmap(QPixmap())
            self.setText(note)
        else:
            self.setText("")
            self._scale()

    def _scale(self) -> None:
        if self.image is None:
            return
        pixmap = QPixmap.fromImage(self.image)
        self.setPixmap(
            pixmap.scaled(
                max(1, self.width() - 8),
                max(1, self.height() - 8),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._scale()


class DetailPanel(QFrame):
    """The selected part's panel: image beside the decision column, or above it, whichever shows
    the image larger (side by side on a 1366×768 laptop, stacked on a tall, narrow panel)."""

    DECIDING_HEIGHT = 520  # verdict, probabilities, confirm, keys and history stacked under the image
    DECIDING_WIDTH = (300, 400)  # the decision column beside the image: enough for names and bars
    HEAD_HEIGHT = 100
    UNLIMITED = 16777215

    def __init__(self) -> None:
        super().__init__()
        self.body: QBoxLayout | None = None
        self.deciding: QWidget | None = None
        self.history: QListWidget | None = None

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.body is None or self.deciding is None or self.history is None:
            return
        width, height = event.size().width(), event.size().height() - self.HEAD_HEIGHT
        narrow, wide = self.DECIDING_WIDTH
        stacked = min(width, height - self.DECIDING_HEIGHT)
        side_by_side = min(width - max(narrow, min(wide, width // 2)), height - 40)
        vertical = stacked >= side_by_side
        direction = QBoxLayout.Direction.TopToBottom if vertical else QBoxLayout.Direction.LeftToRight
        if self.body.direction() != direction:
            self.body.setDirection(direction)
        self.deciding.setMinimumWidth(0 if vertical else narrow)
        self.deciding.setMaximumWidth(self.UNLIMITED if vertical else max(narrow, min(wide, width // 2)))
        self.history.setMaximumHeight(120 if vertical else self.UNLIMITED)


class ReasonDialog(QDialog):
    """Asks why QA changes the model's class; refuses to close on an empty reason."""

    def __init__(self, row: dict, label: str, recent: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row, self.label = row, label
        was = row.get("reviewed_label") if row.get("reviewed") else row.get("label")
        self.setWindowTitle(f"Change result {row['id']} to {label}")
        question = QLabel(
            f"Result {row['id']}: <b>{was or 'no class'}</b> → <b>{label}</b><br>Why? (required)"
        )
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("e.g. scratch visible at top edge; model called it ok")
        self.reason.setMinimumWidth(420)
        if recent:
            completer = QCompleter(recent, self)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            self.reason.setCompleter(completer)
        self.problem = QLabel("")
        self.problem.setObjectName("statusError")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(f"Change to {label}")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._text_changed)
        self._text_changed("")
        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addWidget(self.reason)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def _text_changed(self, text: str) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(text.strip()))
        if text.strip():
            self.problem.setText("")

    def accept(self) -> None:
        if not self.reason.text().strip():
            self.problem.setText("A change of class needs a reason for the audit trail.")
            return
        super().accept()


class ReviewView(QWidget):
    """The QA screen; ``shown()`` (called by the main window) loads or refreshes it lazily."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setStyleSheet(REVIEW_STYLE)
        self.model = ResultsModel(self)
        self.model.fetch_requested.connect(self._fetch_page)
        self.mapper = MergeMapper(context.home)
        self.latest = Generation()
        self.detail_generation = 0
        self.snapshot: ResultFilter | None = None  # the filter of the shown query, ``until`` pinned
        self.newest_first = True
        self.loaded_at: float | None = None
        self.classes: dict[str, None] = {}  # every class seen, in class order
        self.models: dict[int, dict] = {}  # model_version_id -> a run row naming it
        self.options_loaded = False
        self.recent_reasons: list[str] = []
        self.reason_dialog: ReasonDialog | None = None
        self.last_message = ""
        self._reselect: int | None = None
        self._advance_to: int | None = None
        self._busy_exports = 0
        self._sized = False
        self._build()
        self._filter_timer = QTimer(self, singleShot=True, interval=350)
        self._filter_timer.timeout.connect(self.refresh)
        self._detail_timer = QTimer(self, singleShot=True, interval=DETAIL_DELAY_MS)
        self._detail_timer.timeout.connect(self._load_detail)

    # -- layout ------------------------------------------------------------------------------

    def _combo(self, choices: list[tuple[str, Any]], default: str | None = None) -> QComboBox:
        combo = QComboBox()
        for text, data in choices:
            combo.addItem(text, data)
        if default:
            combo.setCurrentText(default)
        combo.currentIndexChanged.connect(self._filters_changed)
        return combo

    def _build(self) -> None:
        self.time_range = self._combo(TIME_RANGES, DEFAULTS["time"])
        self.time_range.setToolTip("Capture time of the parts to show")
        now = QDateTime.currentDateTime()
        self.date_from = QDateTimeEdit(now.addDays(-1))
        self.date_to = QDateTimeEdit(now)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.dateTimeChanged.connect(self._typed)
            edit.setVisible(False)
        self.date_to_label = QLabel("to")
        self.date_to_label.setVisible(False)
        self.verdict = self._combo(VERDICT_CHOICES, DEFAULTS["verdict"])
        self.class_filter = self._combo([("All classes", None)])
        self.class_filter.setToolTip("The class the model predicted")
        self.class_filter.setMinimumContentsLength(10)
        self.review_state = self._combo(REVIEW_CHOICES, DEFAULTS["review"])
        self.lot = QComboBox()
        self.lot.setEditable(True)
        self.lot.addItem("All lots", None)
        self.lot.setMinimumContentsLength(10)
        self.lot.setToolTip("Type a lot or pick one of the recent runs' lots")
        self.lot.currentTextChanged.connect(self._typed)
        self.model_filter = self._combo([("All models", None)])
        self.model_filter.setMinimumContentsLength(12)
        refresh = QPushButton("⟳ Refresh")
        refresh.setToolTip("Query again (F5): shows results written since")
        refresh.setShortcut("F5")
        refresh.clicked.connect(self.refresh)

        filters = QHBoxLayout()
        filters.setSpacing(6)
        for text, widget in (
            ("Time", self.time_range),
            (None, self.date_from),
            (self.date_to_label, self.date_to),
            ("Verdict", self.verdict),
            ("Class", self.class_filter),
            ("Review", self.review_state),
            ("Lot", self.lot),
            ("Model", self.model_filter),
        ):
            if isinstance(text, str):
                filters.addSpacing(6)
                filters.addWidget(QLabel(text))
            elif text is not None:
                filters.addWidget(text)
            filters.addWidget(widget)
        filters.addStretch(1)
        filters.addWidget(refresh)

        self.count_label = QLabel("–")
        self.count_label.setObjectName("resultCount")
        self.loaded_label = QLabel("")
        self.loaded_label.setObjectName("hint")
        self.order = self._combo([("Newest first", True), ("Oldest first", False)])
        self.order.setToolTip("Sort by capture time (the database sorts; click the Captured header too)")
        self.reviewer = QLineEdit(self.context.settings.operator)
        self.reviewer.setPlaceholderText("Your name")
        self.reviewer.setToolTip("Required: every review is signed with this name")
        self.reviewer.setMinimumWidth(150)
        self.reviewer.setMaximumWidth(220)
        self.reviewer.textChanged.connect(lambda _text: _restyle(self.reviewer, ""))
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("Every result matching the filters, with class probabilities")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.station_button = QPushButton("Export reviewed as dataset…")
        self.station_button.setToolTip(
            "The reviewed results matching the filters, with their archived images, as a station dataset "
            "(folder per class + manifest.csv) for the fine-tune wizard"
        )
        self.station_button.clicked.connect(lambda: self.export_station())
        second = QHBoxLayout()
        second.addWidget(self.count_label)
        second.addSpacing(10)
        second.addWidget(self.loaded_label)
        second.addStretch(1)
        second.addWidget(self.order)
        second.addSpacing(12)
        second.addWidget(QLabel("Reviewer"))
        second.addWidget(self.reviewer)
        second.addSpacing(12)
        second.addWidget(self.csv_button)
        second.addWidget(self.station_button)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(CAPTURED, Qt.SortOrder.DescendingOrder)
        header.sectionClicked.connect(self._header_clicked)
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.installEventFilter(self)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self._build_detail())
        splitter.setStretchFactor(0, 11)
        splitter.setStretchFactor(1, 9)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(second)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

    def _build_detail(self) -> QWidget:
        panel = DetailPanel()
        panel.setMinimumWidth(430)
        self.detail_verdict = QLabel("–")
        self.detail_verdict.setObjectName("reviewVerdict")
        self.detail_verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_verdict.setStyleSheet(verdict_style(""))
        self.detail_verdict.setMinimumHeight(52)
        self.facts: dict[str, QLabel] = {}
        facts = QGridLayout()
        facts.setHorizontalSpacing(10)
        facts.setVerticalSpacing(2)
        names = ["Result", "Captured", "Class", "OOD score", "Truth", "Latency", "Lot", "QA"]
        for i, name in enumerate(names):
            caption = QLabel(name)
            caption.setObjectName("factName")
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            facts.addWidget(caption, i // 2, (i % 2) * 2)
            facts.addWidget(value, i // 2, (i % 2) * 2 + 1)
            self.facts[name] = value
        facts.setColumnStretch(1, 1)
        facts.setColumnStretch(3, 1)

        self.image = ImageView()
        self.image.show_image(None, "Select a result")
        self.overlay = QCheckBox("Merge map")
        self.overlay.setToolTip(
            "Recompute the merge map with the deployed model and colour it over the image: "
            "warm where the model kept detail, cool where it merged tokens"
        )
        self.overlay.toggled.connect(self._overlay_toggled)
        self.image_note = QLabel("")
        self.image_note.setObjectName("hint")
        self.image_note.setWordWrap(True)
        under_image = QHBoxLayout()
        under_image.addWidget(self.overlay)
        under_image.addWidget(self.image_note, 1)
        picture = QVBoxLayout()
        picture.addWidget(self.image, 1)
        picture.addLayout(under_image)

        self.probabilities_title = probabilities_title = QLabel("Class probabilities")
        probabilities_title.setObjectName("sectionTitle")
        probabilities_title.setWordWrap(True)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        grid.setColumnStretch(2, 1)
        self.class_rows: list[tuple[QPushButton, QLabel, QProgressBar]] = []
        for number in range(MAX_CLASS_KEYS):  # a fixed pool, shown as needed: no widget churn per row
            key = QPushButton(str(number + 1))
            key.setObjectName("classKey")
            key.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the table
            key.clicked.connect(self._class_key_clicked)
            caption = QLabel()
            bar = QProgressBar()
            bar.setRange(0, 1000)
            for column, widget in enumerate((key, caption, bar)):
                grid.addWidget(widget, number, column)
                widget.hide()
            self.class_rows.append((key, caption, bar))
        self.confirm_button = QPushButton("✓ Confirm class  (Enter)")
        self.confirm_button.setObjectName("primary")
        self.confirm_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.confirm_button.clicked.connect(self.confirm)
        keys = QLabel(
            "Enter / Space / C: confirm · number key: change class (asks why) · N / ↓ next · P / ↑ back"
        )
        keys.setObjectName("hint")
        keys.setWordWrap(True)
        history_title = QLabel("Review history")
        history_title.setObjectName("sectionTitle")
        self.history = QListWidget()
        self.history.setWordWrap(True)
        self.history.setMinimumHeight(60)
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        deciding_widget = QWidget()
        deciding = QVBoxLayout(deciding_widget)
        deciding.setContentsMargins(0, 0, 0, 0)
        deciding.addWidget(self.detail_verdict)
        deciding.addWidget(probabilities_title)
        deciding.addLayout(grid)
        deciding.addWidget(self.confirm_button)
        deciding.addWidget(keys)
        deciding.addWidget(history_title)
        deciding.addWidget(self.history, 1)

        body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        body.addLayout(picture, 1)
        body.addWidget(deciding_widget, 0)
        panel.body, panel.deciding, panel.history = body, deciding_widget, self.history
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addLayout(facts)
        layout.addLayout(body, 1)
        return panel

    @property
    def generation(self) -> int:
        return self.latest.value

    # -- querying ----------------------------------------------------------------------------

    def shown(self) -> None:
        """Called when the tab becomes visible: load on first sight, refresh a stale table."""
        if not self.options_loaded:
            self.options_loaded = True
            run_task(_tagged, 0, _filter_options, self.context, on_done=self._on_options)
        if self.loaded_at is None or time.monotonic() - self.loaded_at > STALE_S:
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            # The table gets what its columns need, within 45-50 % of the width; the part gets the rest.
            width = self.splitter.width()
            table = min(max(sum(COLUMN_WIDTHS) + 24, int(width * 0.45)), int(width * 0.5))
            self.splitter.setSizes([table, width - table])
        self.shown()

    def current_filter(self) -> ResultFilter:
        """The filter the widgets describe; relative time ranges are taken from now."""
        now = datetime.now(timezone.utc)
        span = self.time_range.currentData()
        since = until = None
        if span == "custom":
            since = self.date_from.dateTime().toPython().astimezone(timezone.utc)
            until = self.date_to.dateTime().toPython().astimezone(timezone.utc)
        elif span is not None:
            since = now - span
        label = self.class_filter.currentData()
        lot = self.lot.currentText().strip()
        return ResultFilter(
            since=since,
            until=until,
            verdicts=tuple(self.verdict.currentData()),
            labels=(label,) if label else (),
            reviewed=self.review_state.currentData(),
            lot=None if not lot or lot == self.lot.itemText(0) else lot,
            model_version_id=self.model_filter.currentData(),
        )

    def refresh(self) -> None:
        """Start a new query (new generation): count and first page, both in workers."""
        self._filter_timer.stop()
        try:
            filt = self.current_filter()
        except ValueError as exc:
            self.say(str(exc), error=True)
            return
        now = datetime.now(timezone.utc)
        # Pin the end so a running line cannot shift the pages while QA scrolls.
        self.snapshot = replace(filt, until=min(filt.until, now) if filt.until else now)
        self.latest.value += 1
        self.loaded_at = time.monotonic()
        selected = self.selected_row()
        self._reselect = selected["id"] if selected else None
        self._advance_to = None
        self.model.reset()
        self._clear_detail()
        self.count_label.setText("Counting…")
        self.loaded_label.setText("")
        run_task(
            _if_current,
            self.latest,
            self.generation,
            _count,
            self.context,
            self.snapshot,
            on_done=self._on_count,
        )
        self.model.loading = True
        self._fetch_page(0)

    def _fetch_page(self, offset: int) -> None:
        if self.snapshot is None:
            return
        self.loaded_label.setText("loading…")
        run_task(
            _if_current,
            self.latest,
            self.generation,
            _page,
            self.context,
            self.snapshot,
            offset,
            self.newest_first,
            on_done=self._on_page,
        )

    def _on_count(self, reply: Reply) -> None:
        if reply.key != self.generation:
            return
        if reply.error:
            self.count_label.setText("? results")
            self.say(reply.error, error=True)
            return
        self.model.total = reply.value
        self.count_label.setText(f"{reply.value:,} result{'s' if reply.value != 1 else ''}")
        self._show_loaded()

    def _on_page(self, reply: Reply) -> None:
        if reply.key != self.generation:
            return  # a newer filter replaced this query
        if reply.error:
            self.model.loading = False
            self.model.exhausted = True
            self.loaded_label.setText("")
            self.say(reply.error, error=True)
            return
        offset, rows = reply.value
        for row in rows:
            for name in row.get("probabilities") or {}:
                if name not in self.classes:
                    self.classes[name] = None
                    self.class_filter.addItem(name, name)
        self.model.append(rows, last_page=len(rows) < PAGE)
        self._show_loaded()
        if offset == 0 and self.model.rows:
            wanted = self.model.index_of.get(self._reselect, 0) if self._reselect is not None else 0
            self.select(wanted)
            self._focus_table()
        elif self._advance_to is not None and self._advance_to < self.model.rowCount():
            self.select(self._advance_to)
        self._advance_to = None

    def _focus_table(self) -> None:
        """Review keys go to the table: after a filter was picked, ↓ must move the selection, not
        change the filter. Someone typing (a lot, their name, a date) keeps their focus."""
        focus = QApplication.focusWidget()
        if not self.isVisible() or isinstance(focus, (QLineEdit, QDateTimeEdit)):
            return
        if focus is None or self.isAncestorOf(focus):
            self.table.setFocus()

    def _show_loaded(self) -> None:
        shown = self.model.rowCount()
        total = self.model.total
        if total is not None and shown < total:
            self.loaded_label.setText(f"{shown:,} loaded · scroll for more")
        elif total is not None and total == 0:
            self.loaded_label.setText("nothing matches these filters")
        else:
            self.loaded_label.setText("")

    def _on_options(self, reply: Reply) -> None:
        if reply.error:
            self.say(reply.error, error=True)
            return
        runs, classes = reply.value
        self.class_filter.blockSignals(True)
        for name in classes:
            if name not in self.classes:
                self.classes[name] = None
                self.class_filter.addItem(name, name)
        self.class_filter.blockSignals(False)
        lots = sorted({run["lot"] for run in runs if run.get("lot")})
        self.lot.blockSignals(True)
        for lot in lots:
            if self.lot.findText(lot) < 0:
                self.lot.addItem(lot, lot)
        self.lot.blockSignals(False)
        self.model_filter.blockSignals(True)
        for run in runs:
            version = run["model_version_id"]
            if version not in self.models:
                self.models[version] = run
                self.model_filter.addItem(f"v{version} · {run.get('model_name') or '?'}", version)
        self.model_filter.blockSignals(False)

    def _filters_changed(self, *_: Any) -> None:
        custom = self.time_range.currentData() == "custom"
        for widget in (self.date_from, self.date_to, self.date_to_label):
            widget.setVisible(custom)
        self.newest_first = bool(self.order.currentData())
        self.table.horizontalHeader().setSortIndicator(
            CAPTURED, Qt.SortOrder.DescendingOrder if self.newest_first else Qt.SortOrder.AscendingOrder
        )
        self.refresh()

    def _typed(self, *_: Any) -> None:
        self._filter_timer.start()  # a lot or a date being typed: query once the typing pauses

    def _header_clicked(self, column: int) -> None:
        if column == CAPTURED:
            self.order.setCurrentIndex(1 if self.newest_first else 0)  # toggles, and re-queries
            return
        order = Qt.SortOrder.DescendingOrder if self.newest_first else Qt.SortOrder.AscendingOrder
        self.table.horizontalHeader().setSortIndicator(CAPTURED, order)
        self.say("The table sorts by capture time (the database does it); narrow with the filters above.")

    # -- selection and detail ----------------------------------------------------------------

    def selected_row(self) -> dict | None:
        index = self.table.currentIndex()
        return self.model.row_at(index.row()) if index.isValid() else None

    def select(self, number: int) -> None:
        index = self.model.index(number, CAPTURED)
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)

    def move(self, step: int) -> None:
        """Next / previous part; past the last loaded row, fetch the next page and go on there."""
        current = self.table.currentIndex().row() if self.table.currentIndex().isValid() else -1
        target = current + step
        if target < 0:
            return
        if target >= self.model.rowCount():
            if self.model.canFetchMore():
                self._advance_to = target
                self.model.fetchMore()
            elif not self.model.loading:
                self.say("End of the list.")
            return
        self.select(target)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row())
        if row is None:
            self._clear_detail()
            return
        self._show_facts(row)
        self.image.show_image(None, "Loading image…")
        self.image_note.setText("")
        self.history.clear()
        self._detail_timer.start()

    def _clear_detail(self) -> None:
        self.detail_generation += 1
        self.detail_verdict.setText("–")
        self.detail_verdict.setStyleSheet(verdict_style(""))
        for value in self.facts.values():
            value.setText("–")
        self.image.show_image(None, "Select a result")
        self.image_note.setText("")
        self.history.clear()
        self._fill_probabilities(None)

    def _show_facts(self, row: dict) -> None:
        self.detail_verdict.setText(row["verdict"])
        self.detail_verdict.setStyleSheet(verdict_style(row["verdict"]))
        latency = row.get("latency_total_ms")
        infer = row.get("latency_infer_ms")
        qa = "not reviewed"
        if row.get("reviewed"):
            qa = f"✓ {row.get('reviewed_label')}"
        values = {
            "Result": f"#{row['id']} · run {row['run_id']} · frame {row['frame_index']}",
            "Captured": _local(row.get("captured_at")),
            "Class": f"{row.get('label') or '–'}  {_percent(row.get('confidence'))}",
            "OOD score": "–" if row.get("ood_score") is None else f"{row['ood_score']:.2f}",
            "Truth": row.get("truth") or "unknown",
            "Latency": "–"
            if latency is None
            else f"{latency:.1f} ms" + (f" (model {infer:.1f})" if infer is not None else ""),
            "Lot": row.get("lot") or "–",
            "QA": qa,
        }
        for name, text in values.items():
            self.facts[name].setText(text)
        if row.get("error"):
            self.facts["Class"].setText(f"error: {row['error']}")
        self._fill_probabilities(row)

    def classes_for(self, row: dict) -> list[str]:
        """The classes keys 1..K stand for: the row's own classes, else every class seen so far."""
        names = list(row.get("probabilities") or {}) or list(self.classes)
        return names[:MAX_CLASS_KEYS]

    def _fill_probabilities(self, row: dict | None) -> None:
        self.confirm_button.setEnabled(bool(row and row.get("label")))
        names = self.classes_for(row) if row is not None else []
        keys = f"press 1–{len(names)} to change the class" if len(names) > 1 else ""
        self.probabilities_title.setText("Class probabilities" + (f" · {keys}" if keys else ""))
        probabilities = (row or {}).get("probabilities") or {}
        predicted = (row or {}).get("label")
        reviewed = row.get("reviewed_label") if row and row.get("reviewed") else None
        for number, (key, caption, bar) in enumerate(self.class_rows):
            if number >= len(names):
                for widget in (key, caption, bar):
                    widget.hide()
                continue
            name = names[number]
            key.setToolTip(f"Change the class to {name} (key {number + 1})")
            marks = ("  ◀ model" if name == predicted else "") + ("  ✓ QA" if name == reviewed else "")
            caption.setText(f"{name}{marks}")
            caption.setStyleSheet("font-weight: 700;" if name == predicted else "")
            p = probabilities.get(name)
            bar.setValue(int(round((p or 0.0) * 1000)))
            bar.setFormat(_percent(p))
            for widget in (key, caption, bar):
                widget.show()

    def _class_key_clicked(self) -> None:
        sender = self.sender()
        for number, (key, _, _) in enumerate(self.class_rows):
            if key is sender:
                self.override(number)
                return

    def _load_detail(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.detail_generation += 1
        run_task(
            _tagged,
            self.detail_generation,
            _detail,
            self.context,
            row["id"],
            row.get("image_ref"),
            on_done=self._on_detail,
        )
        if self.overlay.isChecked():
            self._load_overlay(row)

    def _load_overlay(self, row: dict) -> None:
        judged_by = self.models.get(row.get("model_version_id") or -1, {}).get("model_sha256")
        self.image_note.setText("Computing the merge map…")
        run_task(
            _tagged,
            self.detail_generation,
            self.mapper.overlay,
            row.get("image_ref"),
            judged_by,
            on_done=self._on_overlay,
        )

    def _on_detail(self, reply: Reply) -> None:
        if reply.key != self.detail_generation:
            return
        if reply.error:
            self.image.show_image(None, reply.error)
            return
        image, note, history = reply.value
        if not (self.overlay.isChecked() and self.image.image is not None):
            self.image.show_image(image, note)  # an overlay that arrived first stays
        self._fill_history(history)

    def _on_overlay(self, reply: Reply) -> None:
        if reply.key != self.detail_generation or not self.overlay.isChecked():
            return
        if reply.error:
            self.image_note.setText(f"No merge map: {reply.error}")
            return
        image, note = reply.value
        if image is not None:
            self.image.show_image(image)
        self.image_note.setText(note)

    def _overlay_toggled(self, on: bool) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.detail_generation += 1
        self.image_note.setText("")
        if on:
            self._load_overlay(row)
        else:
            run_task(
                _tagged,
                self.detail_generation,
                _detail,
                self.context,
                row["id"],
                row.get("image_ref"),
                on_done=self._on_detail,
            )

    def _fill_history(self, history: list[dict]) -> None:
        self.history.clear()
        if not history:
            self.history.addItem("No reviews yet")
            return
        for entry in reversed(history):  # newest on top
            change = (
                f"confirmed {entry['new_label']}"
                if entry["old_label"] == entry["new_label"]
                else f"{entry['old_label'] or '–'} → {entry['new_label']}"
            )
            text = f"{_local(entry['reviewed_at'])}  {entry['reviewer']}: {change}"
            if entry.get("reason"):
                text += f" — “{entry['reason']}”"
            self.history.addItem(text)

    # -- reviewing ---------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if self.handle_key(event):
                return True
        return super().eventFilter(watched, event)

    def handle_key(self, event: QKeyEvent) -> bool:
        """The review keys; True when the key was one of them."""
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if modifiers not in (Qt.KeyboardModifier.NoModifier,):
            return False
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_C):
            self.confirm()
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.override(key - Qt.Key.Key_1)
        elif key in (Qt.Key.Key_N, Qt.Key.Key_Down):
            self.move(1)
        elif key in (Qt.Key.Key_P, Qt.Key.Key_Up):
            self.move(-1)
        else:
            return False
        return True

    def _reviewer(self) -> str | None:
        name = self.reviewer.text().strip()
        if not name:
            _restyle(self.reviewer, "missing")
            self.reviewer.setFocus()
            self.say("Enter your name as reviewer first: every review is signed.", error=True)
            return None
        return name

    def confirm(self) -> bool:
        """Confirm the model's class for the selected part."""
        row = self.selected_row()
        if row is None:
            return False
        if not row.get("label"):
            self.say("This part has no predicted class to confirm: choose one with 1..K.", error=True)
            return False
        return self._submit(row, row["label"], "")

    def override(self, number: int, reason: str | None = None) -> bool:
        """Change the selected part to class ``number`` (0-based). Without a reason, ask for one."""
        row = self.selected_row()
        if row is None:
            return False
        classes = self.classes_for(row)
        if not 0 <= number < len(classes):
            self.say(f"There is no class {number + 1} for this part (1..{len(classes)}).", error=True)
            return False
        label = classes[number]
        if label == row.get("label"):
            return self._submit(row, label, reason or "")
        if reason is None:
            if self._reviewer() is None:
                return False
            self.reason_dialog = ReasonDialog(row, label, self.recent_reasons, self)
            self.reason_dialog.accepted.connect(self._reason_given)
            self.reason_dialog.open()
            return False
        if not reason.strip():
            self.say(
                f"Changing {row.get('label') or 'no class'} to {label} needs a reason: not saved.", error=True
            )
            return False
        return self._submit(row, label, reason.strip())

    def _reason_given(self) -> None:
        dialog = self.reason_dialog
        if dialog is None:
            return
        reason = dialog.reason.text().strip()
        if reason and reason not in self.recent_reasons:
            self.recent_reasons.insert(0, reason)
            del self.recent_reasons[20:]
        current = self.selected_row()
        moved_on = current is None or current["id"] != dialog.row["id"]
        self._submit(dialog.row, dialog.label, reason, advance=not moved_on)
        self.table.setFocus()

    def _submit(self, row: dict, label: str, reason: str, advance: bool = True) -> bool:
        reviewer = self._reviewer()
        if reviewer is None:
            return False
        self.model.pending.add(row["id"])
        self.model.changed(row["id"])
        run_task(
            _tagged,
            row["id"],
            _review,
            self.context,
            row["id"],
            label,
            reviewer,
            reason,
            on_done=self._on_reviewed,
        )
        if advance:
            self.move(1)
        return True

    def _on_reviewed(self, reply: Reply) -> None:
        self.model.pending.discard(reply.key)
        self.model.changed(reply.key)
        if reply.error:
            self.say(f"Review of #{reply.key} not saved: {reply.error}", error=True)
            return
        result, history = reply.value
        self.model.update_row(result)
        last = history[-1] if history else {}
        if last.get("old_label") == last.get("new_label"):
            self.say(f"#{reply.key}: {last.get('new_label')} confirmed by {last.get('reviewer')}.")
        else:
            old, new = last.get("old_label") or "–", last.get("new_label")
            self.say(f"#{reply.key}: {old} → {new} ({last.get('reason')}).")
        current = self.selected_row()
        if current is not None and current["id"] == reply.key:
            self._show_facts(self.model.row_at(self.model.index_of[reply.key]) or current)
            self._fill_history(history)

    # -- export ------------------------------------------------------------------------------

    def _export_filter(self) -> ResultFilter:
        if self.snapshot is not None:
            return self.snapshot
        filt = self.current_filter()
        return replace(filt, until=filt.until or datetime.now(timezone.utc))

    def _exporting(self, busy: bool) -> None:
        self._busy_exports += 1 if busy else -1
        for button in (self.csv_button, self.station_button):
            button.setEnabled(self._busy_exports == 0)

    def export_csv(self, path: Path | None = None) -> None:
        """The results matching the filters (as shown) to a CSV file, written atomically by a worker."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export results as CSV", str(Path.home() / "results.csv"), "CSV files (*.csv)"
            )
            if not chosen:
                return
            path = Path(chosen)
        self._exporting(True)
        self.say(f"Exporting to {path} …")
        run_task(
            _tagged, 0, _export_csv, self.context, self._export_filter(), Path(path), on_done=self._on_csv
        )

    def _on_csv(self, reply: Reply) -> None:
        self._exporting(False)
        if reply.error:
            self.say(f"CSV export failed: {reply.error}", error=True)
        else:
            self.say(f"Exported {reply.value:,} results as CSV.")

    def export_station(self, out_dir: Path | None = None) -> None:
        """Reviewed results with their images as a station dataset for fine-tuning."""
        if out_dir is None:
            chosen = QFileDialog.getExistingDirectory(
                self, "Choose or create an empty folder for the station dataset", str(Path.home())
            )
            if not chosen:
                return
            out_dir = Path(chosen)
        self._exporting(True)
        self.say(f"Exporting reviewed results to {out_dir} …")
        run_task(
            _tagged,
            0,
            _export_station,
            self.context,
            self._export_filter(),
            Path(out_dir),
            on_done=self._on_station,
            on_progress=self._on_station_progress,
            wants_task=True,
        )

    def _on_station_progress(self, value: tuple[int, int]) -> None:
        done, total = value
        self.say(f"Copying images into the dataset: {done:,} / {total:,} …")

    def _on_station(self, reply: Reply) -> None:
        self._exporting(False)
        if reply.error:
            self.say(f"Dataset export failed: {reply.error}", error=True)
            return
        count, warnings, out_dir = reply.value
        text = f"Station dataset written: {count:,} images in {out_dir} (open it in the Fine-tune wizard)."
        if warnings:
            text += "  Note: " + "; ".join(warnings)
        self.say(text)

    # -- messages ----------------------------------------------------------------------------

    def say(self, text: str, error: bool = False) -> None:
        self.last_message = text
        _restyle(self.status, "statusError" if error else "hint")
        self.status.setText(text)
