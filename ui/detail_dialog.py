"""One part in detail: the image (with the merge map when there is one) and its class probabilities."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from inspector.line.outcome import Outcome
from inspector.line.overlay import overlay_importance
from ui.qt_images import to_pixmap
from ui.style import verdict_style


class OutcomeDialog(QDialog):
    def __init__(self, outcome: Outcome, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        decision = outcome.decision
        self.setWindowTitle(f"Part {outcome.frame.index}: {decision.verdict.value}")
        image = outcome.frame.image
        if outcome.merge_map is not None:
            image = overlay_importance(image, outcome.merge_map)
        picture = QLabel()
        picture.setPixmap(to_pixmap(image, 480, 480))
        verdict = QLabel(decision.verdict.value)
        verdict.setObjectName("verdict")
        verdict.setStyleSheet(verdict_style(decision.verdict.value))
        lines = [
            f"captured {outcome.frame.captured_at:%Y-%m-%d %H:%M:%S}",
            f"class {decision.label or '–'} ({(decision.confidence or 0):.1%})",
        ]
        if decision.reason:
            lines.append(decision.reason)
        if decision.ood_score is not None:
            lines.append(f"energy score {decision.ood_score:.2f}")
        if outcome.frame.truth:
            lines.append(f"ground truth {outcome.frame.truth}")
        for name, p in sorted((outcome.probabilities or {}).items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name}: {p:.1%}")
        text = QLabel("\n".join(lines))
        side = QVBoxLayout()
        side.addWidget(verdict)
        side.addWidget(text)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(picture)
        body.addLayout(side)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(buttons)
