"""The Models screen's versions table: one row per registry version (newest first), the deployed
one marked, and the texts about a version the screen shows above and below it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from inspector.registry import Version
from ui.version_text import (
    created_text,
    key_metrics,
    merge_text,
    movement_rows,
    source_text,
    station_line,
    stations_cell,
)

COLUMNS = [
    "",
    "Version",
    "Created",
    "Source",
    "Classes",
    "Merge",
    "GMACs",
    "PyTorch ms",
    "Key metrics",
    "Stations (macro-F1)",
    "Note",
]
DEPLOYED_MARK = "● deployed"
DEPLOYED_BACKGROUND = "#e3f3e8"


def versions_table() -> QTableWidget:
    """The empty table: read-only, one row selected at a time, the Note column taking the rest."""
    table = QTableWidget(0, len(COLUMNS))
    table.setHorizontalHeaderLabels(COLUMNS)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(COLUMNS.index("Note"), QHeaderView.ResizeMode.Stretch)
    table.horizontalHeaderItem(COLUMNS.index("Merge")).setToolTip(
        "How the version merges tokens; “% moved” is the share of token mass its learned merges "
        "send elsewhere than plain local pooling would, on validation images (0%: it is pooling)"
    )
    table.horizontalHeaderItem(COLUMNS.index("Stations (macro-F1)")).setToolTip(
        "Every station the version was validated on, with its macro-F1 and the split it was "
        "scored on; the roll-out gate checks a candidate on each station the deployed one serves"
    )
    table.horizontalHeaderItem(COLUMNS.index("PyTorch ms")).setToolTip(
        "Batch-1 latency under PyTorch, measured when the version was added. The line may run a "
        "faster backend (ONNX Runtime, int8 behind its gate): “Speed on this PC” below times each"
    )
    header.setHighlightSections(False)
    return table


def fill_versions(table: QTableWidget, versions: list[Version], deployed_id: str | None, home: Path) -> None:
    """One row per version, newest first; every cell carries its version's id (UserRole)."""
    table.setRowCount(len(versions))
    bold = QFont(table.font())
    bold.setBold(True)
    for row, version in enumerate(reversed(versions)):  # newest first
        deployed = version.id == deployed_id
        cells = [
            DEPLOYED_MARK if deployed else "",
            version.id,
            created_text(version.created),
            source_text(version, home),
            ", ".join(version.classes),
            merge_text(version),
            f"{version.gmacs:.3f}",
            f"{version.latency_ms:.1f}",
            key_metrics(version),
            stations_cell(version),
            version.note,
        ]
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, version.id)
            if column in (COLUMNS.index("GMACs"), COLUMNS.index("PyTorch ms")):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if column == COLUMNS.index("Source"):
                item.setToolTip(version.source)
            if column == COLUMNS.index("Stations (macro-F1)"):
                item.setToolTip("\n".join(station_line(s) for s in version.station_scores()))
            if column == COLUMNS.index("Note"):
                item.setToolTip(version.note)
            if deployed:
                item.setFont(bold)
                item.setBackground(QColor(DEPLOYED_BACKGROUND))
                if column == 0:
                    item.setForeground(QColor("#1b873f"))
            table.setItem(row, column, item)


def deployed_text(versions: list[Version], deployed_id: str | None) -> str:
    """The line above the table: what the line runs, with its figures."""
    if deployed_id:
        current = next(v for v in versions if v.id == deployed_id)
        figures = [
            merge_text(current),
            f"{current.gmacs:.3f} GMACs",
            f"{current.latency_ms:.1f} ms on PyTorch",
        ]
        if key_metrics(current) != "–":
            figures.append(key_metrics(current))
        if current.station_scores():
            figures.append(f"serves {stations_cell(current)}")
        return f"Deployed: <b>{current.id}</b> — {', '.join(figures)}"
    if versions:
        return "Nothing deployed: lines run the bundled demo model."
    return (
        "The registry is empty: add a bundle, fine-tune one, or `inspector models deploy MODEL`. "
        "Lines run the bundled demo model meanwhile."
    )


def version_details(version: Version | None) -> str:
    """The line under the table: where the selected version came from."""
    if version is None:
        return "Select a version to see where it came from; double-click deploys it."
    merges = ", ".join(
        f"block {r.get('block', '?')} {r.get('grid', '')} {100 * float(r['moved']):.0f}%"
        for r in movement_rows(version)
    )
    recalibrated = version.metrics.get("recalibration")
    stations = "; ".join(station_line(s) for s in version.station_scores())
    return (
        f"{version.id}: {len(version.classes)} classes ({', '.join(version.classes)}) · "
        f"{version.params / 1e6:.2f} M parameters · added {created_text(version.created)} from "
        f"{version.source}"
        + (f" · validated on {stations}" if stations else "")
        + (f" · merges moved from local pooling: {merges}" if merges else "")
        + (
            f" · re-calibrated (no labels) on {recalibrated.get('images', '?')} images"
            if isinstance(recalibrated, dict)
            else ""
        )
    )
