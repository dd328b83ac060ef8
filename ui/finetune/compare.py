"""Page 5 of the fine-tune wizard: before / after on the station's held-out images and on the
base's own station, and speed."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from inspector.jobs import speed as jobs_speed
from ui.finetune.common import (
    ERROR_COLOUR,
    ERROR_STYLE,
    GOOD_COLOUR,
    GOOD_STYLE,
    WARN_STYLE,
    draw_confusion,
    new_canvas,
    set_status,
)
from ui.finetune.state import FinetuneState
from ui.workers import Latest


def fewer_defects_caught(before: dict[str, Any], after: dict[str, Any], normal: str | None) -> str:
    """What a better macro-F1 can hide: a defect class recalled less after the fine-tune, so more of
    those parts would pass as good ("" when none fell by more than 2 points, or no class is normal)."""
    if normal is None:
        return ""
    fell = [
        f"{name} recall {before['per_class'][name]['recall']:.3f} → {row['recall']:.3f}"
        for name, row in after["per_class"].items()
        if name != normal
        and row["support"]
        and name in before["per_class"]
        and row["recall"] < before["per_class"][name]["recall"] - 0.02
    ]
    return f"fewer defects caught ({', '.join(fell)})" if fell else ""


class ComparePage(QWizardPage):
    """5 · Before / after on the station's held-out test images, and what the model costs."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Before and after")
        self.setSubTitle(
            "Both models judged the station's held-out test images, which training never saw, and "
            "every station the base model served (the samples it keeps of them). Recall: the share of "
            "each class's parts the model recognised."
        )
        self._requests = Latest()  # a later request makes earlier answers stale
        self.headline = QLabel("")
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setWordWrap(True)
        self.old_line = QLabel("")
        self.old_line.setFont(font)
        self.old_line.setWordWrap(True)
        self.old_line.setTextFormat(Qt.TextFormat.RichText)  # each station's line in its own colour
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
        self.canvas = new_canvas(8.0, 3.0)
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.speed_label)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addWidget(self.canvas, 5)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.old_line)
        layout.addLayout(body, 1)

    @property
    def speed(self) -> dict[str, dict[str, Any]] | None:
        """Both models' compute and latency (``None`` while measuring, empty if that failed)."""
        return self.state.speed

    def initializePage(self) -> None:  # Qt's name
        state = self.state
        summary, check = state.summary, state.check
        assert summary is not None and check is not None
        before, after = summary.before, summary.after
        delta = after["macro_f1"] - before["macro_f1"]
        verdict = "better" if delta > 0.005 else "worse" if delta < -0.005 else "about the same"
        escapes = fewer_defects_caught(before, after, check.meta.normal_class)
        self.headline.setText(
            f"New station: macro-F1 {before['macro_f1']:.3f} → {after['macro_f1']:.3f} ({delta:+.3f}, "
            f"{verdict}) on {after['n']} held-out images" + (f" — but {escapes}" if escapes else "")
        )
        good = GOOD_STYLE if not escapes else WARN_STYLE
        self.headline.setStyleSheet(good if delta > 0.005 else ERROR_STYLE if delta < -0.005 else "")
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
        rows += self._say_old_station(summary)
        self.table.setRowCount(len(rows))
        for row, (name, old, new) in enumerate(rows):
            change = new - old
            for column, text in enumerate((name, f"{old:.3f}", f"{new:.3f}", f"{change:+.3f}")):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setToolTip(text)  # a long station name is cut in the column
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 3 and abs(change) > 0.005:
                    item.setForeground(QColor(GOOD_COLOUR if change > 0 else ERROR_COLOUR))
                self.table.setItem(row, column, item)
        self._draw(before, after)
        state.speed = None
        self.speed_label.setText("Measuring GMACs and latency of both models …")
        request = self._requests.next()
        staging = state.staging
        assert staging is not None
        state.run_job(
            jobs_speed.measure_speed,
            check.base,
            staging.bundle,
            hold=staging.in_use(),
            pause_for_line=False,  # a pause inside a timed call would read as latency
            on_done=lambda figures: self._speed_done(request, figures),
            on_failed=lambda message: self._speed_failed(request, message),
        )

    def _say_old_station(self, summary: Any) -> list[tuple[str, float, float]]:
        """Every station the base already served, before and after (their reference samples):
        adapting must not silently cost the parts the line already judged well."""
        checked = [s for s in summary.old if s.before is not None and s.after is not None]
        if not checked:
            set_status(
                self.old_line,
                "Old station: not checked — the base model keeps no sample of its own station, or "
                "that folder is not reachable from this computer.",
                WARN_STYLE,
            )
            return []
        lines, rows = [], []
        for score in checked:
            before, after = score.before, score.after
            delta = after["macro_f1"] - before["macro_f1"]
            text = (
                f"Old station ({score.name}): macro-F1 {before['macro_f1']:.3f} → {after['macro_f1']:.3f} "
                f"({delta:+.3f}, {'kept' if delta >= -0.01 else 'lost'}) on {after['n']} of its images"
            )
            colour = GOOD_COLOUR if delta >= -0.01 else ERROR_COLOUR
            lines.append(f'<span style="color: {colour};">{html.escape(text)}</span>')
            if len(checked) == 1:
                rows.append((f"Old station macro-F1 (n={after['n']})", before["macro_f1"], after["macro_f1"]))
                rows.append(("Old station accuracy", before["accuracy"], after["accuracy"]))
            else:  # one pair per station, short enough for the table's first column
                rows.append((f"Old {score.name} macro-F1", before["macro_f1"], after["macro_f1"]))
                rows.append((f"Old {score.name} accuracy", before["accuracy"], after["accuracy"]))
        blend = f"; {summary.blend.alpha:.2f} of the new weights blended in" if summary.blend else ""
        set_status(self.old_line, "<br>".join(lines) + html.escape(blend))
        return rows

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

    def _speed_done(self, request: int, figures: dict[str, dict[str, Any]]) -> None:
        if not self._requests.is_current(request):
            return
        self.state.speed = figures
        old, new = figures["before"], figures["after"]
        ratio = new["p50"] / old["p50"] if old["p50"] else float("nan")
        where = "this computer"
        if self.state.context.line_overruns() is not None:
            where = "this computer, below the running line: slower than on a quiet PC"
        backends = dict.fromkeys((old.get("backend", "PyTorch"), new.get("backend", "PyTorch")))
        self.speed_label.setText(
            f"<b>Speed</b> (batch 1, {' → '.join(backends)} as the line runs it, {where})<br>"
            f"Compute: {old['gmacs']:.3f} → {new['gmacs']:.3f} GMACs<br>"
            f"Latency p50: {old['p50']:.1f} → {new['p50']:.1f} ms (×{ratio:.2f}), "
            f"p95 {new['p95']:.1f} ms<br>Parameters: {new['params'] / 1e6:.2f} M"
        )

    def _speed_failed(self, request: int, message: str) -> None:
        if self._requests.is_current(request):
            self.state.speed = {}
            set_status(self.speed_label, f"Speed not measured: {message}", ERROR_STYLE)
