"""Review's table: a paged, lazy Qt model over ledger rows (plain dicts).

It never holds or sorts the whole ledger: it shows the pages the view has fetched and asks for
the next one through ``fetch_requested`` when Qt scrolls near the end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont

from ui.review.constants import (
    CAPTURED,
    CENTERED,
    COLUMNS,
    KEYS,
    NUMBERS,
    OVERRIDE_COLOR,
    QA_LABEL,
    VERDICT,
)
from ui.style import VERDICT_COLORS


def local_time(value: datetime | None) -> str:
    """A ledger time (UTC) as QA reads it: local, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def percent(value: float | None) -> str:
    """A probability as a percentage, or a dash where there is none."""
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
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
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
            return local_time(row.get("captured_at"))
        if key == "verdict":
            return row["verdict"]
        if key == "label":
            return row.get("label") or "–"
        if key == "confidence":
            return percent(row.get("confidence"))
        if key == "qa":
            return (row.get("reviewed_label") or "") if row.get("reviewed") else ""
        if key == "truth":
            return row.get("truth") or ""
        if key == "ood":
            return "" if row.get("ood_score") is None else f"{row['ood_score']:.2f}"
        if key == "lot":
            return row.get("lot") or ""
        return f"{row['run_id']} · {row['frame_index']}"

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        if parent.isValid() or not self.active or self.loading or self.exhausted:
            return False
        return self.total is None or len(self.rows) < self.total

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008
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
