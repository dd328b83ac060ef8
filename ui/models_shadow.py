"""The Models screen's shadow panel: a version's record beside the deployed model (agreement,
per-class confusion, verdict changes) with Promote and Discard. The screen wires the buttons and
decides what they may do; this panel only shows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from inspector.shadow_review import ShadowSummary
from ui.models_versions import DEPLOYED_BACKGROUND


class ShadowBox(QGroupBox):
    """Hidden until a version with shadow data is selected."""

    def __init__(self) -> None:
        super().__init__("Shadow: the selected version beside the deployed model")
        self.title = QLabel("")
        self.title.setStyleSheet("font-weight: 700;")
        self.note = QLabel("")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.confusion.setMaximumHeight(170)
        self.confusion.setToolTip(
            "Parts both models judged: the deployed model's class down, the candidate's across; "
            "'agree' is how often the candidate gave the deployed model's class"
        )
        self.promote_button = QPushButton("Promote…")
        self.promote_button.setToolTip(
            "Deploy this version through the offline gate (audited, the shadow record in the reason)"
        )
        self.discard_button = QPushButton("Discard…")
        self.discard_button.setToolTip("Give up on this candidate (audited); it stops shadowing new lines")
        actions = QHBoxLayout()
        actions.addWidget(self.promote_button)
        actions.addWidget(self.discard_button)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.confusion)
        layout.addWidget(self.note)
        layout.addLayout(actions)
        self.hide()

    def show_summary(self, summary: ShadowSummary, may_promote: bool, may_discard: bool) -> None:
        """Fill the panel from ``summary`` (which has data) and show it."""
        beside = ", ".join(sorted(set(summary.deployed.values())))
        runs = f"{summary.runs} run{'s' if summary.runs != 1 else ''}"
        self.title.setText(f"{summary.line()}  ·  beside {beside}, {runs}")
        names = summary.classes()
        rows = summary.per_class()
        self.confusion.clear()
        self.confusion.setRowCount(len(rows))
        self.confusion.setColumnCount(1 + len(names))
        self.confusion.setHorizontalHeaderLabels(["agree", *(f"→ {n}" for n in names)])
        self.confusion.setVerticalHeaderLabels([f"{r.name} ({r.parts:,})" for r in rows])
        for i, row in enumerate(rows):
            pct = "–" if row.agreement_pct is None else f"{row.agreement_pct:.1f} %"
            cells = [pct, *(f"{row.candidate.get(n, 0):,}" for n in names)]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column and names[column - 1] == row.name:
                    item.setBackground(QColor(DEPLOYED_BACKGROUND))
                self.confusion.setItem(i, column, item)
        changes = ", ".join(
            f"{d}→{c} {n:,}" for d, row in summary.verdicts.items() for c, n in row.items() if d != c
        )
        note = f"Verdict changes: {changes or 'none'}. Disagreements are in Review (Shadow filter)."
        if summary.decision:
            note += f" Decided: {summary.decision}"
        self.note.setText(note)
        self.promote_button.setText(f"Promote {summary.candidate}…")
        self.promote_button.setEnabled(may_promote)
        self.discard_button.setEnabled(may_discard)
        self.show()
