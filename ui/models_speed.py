"""The Models screen's *Speed on this PC*: the selected version timed on each runtime of this PC
(the rows of ``inspector models bench``), shown as a small table and a note under it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

# The rows of ``inspector models bench`` (spelled here: ui imports no torch).
SPEED_COLUMNS = ["Runtime", "p50 ms", "p95 ms", "vs ONNX Runtime"]
SPEED_NAMES = {
    "torch": "PyTorch",
    "onnx": "ONNX Runtime",
    "int8": "ONNX Runtime int8",
    "openvino": "OpenVINO",
    "openvino-int8": "OpenVINO int8",
}


def speed_table() -> QTableWidget:
    """The empty, hidden table (shown once a version has been timed)."""
    table = QTableWidget(0, len(SPEED_COLUMNS))
    table.setHorizontalHeaderLabels(SPEED_COLUMNS)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setMaximumHeight(170)
    table.hide()
    return table


def fill_speed(table: QTableWidget, rows: list[dict[str, Any]]) -> None:
    """One row per runtime: p50, p95 and p50 relative to ONNX Runtime's."""
    onnx = next((row["p50_ms"] for row in rows if row["backend"] == "onnx"), None)
    table.setRowCount(len(rows))
    for index, row in enumerate(rows):
        ratio = f"{row['p50_ms'] / onnx:.2f}×" if onnx else "–"
        cells = (SPEED_NAMES.get(row["backend"], row["backend"]), f"{row['p50_ms']:.2f}",
                 f"{row['p95_ms']:.2f}", ratio)  # fmt: skip
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if column:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(index, column, item)


def speed_note(result: dict[str, Any], line_running: bool) -> str:
    """Under the table: the model, threads, the int8 gate's verdicts and what was not timed."""
    name = SPEED_NAMES.get
    notes = [f"{name(backend, backend)}: {why}" for backend, why in result["gates"].items()]
    notes += [f"{name(backend, backend)} not timed: {why}" for backend, why in result["skipped"].items()]
    if line_running:
        notes.append("Timed while the line runs: slower than on a quiet PC.")
    return (
        f"{result['model']} on this PC, batch 1, {result['threads']} thread(s); compare rows of one "
        "run only.<br>" + "<br>".join(notes)
    )
