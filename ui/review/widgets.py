"""Review's own widgets: the scaled image, the detail panel that turns with its shape, and the
dialog that asks QA why they change the model's class."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QLineEdit,
    QListWidget,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


def restyle(widget: QWidget, name: str) -> None:
    """Switch a widget's object name and re-apply the style sheet rules that select on it."""
    if widget.objectName() != name:
        widget.setObjectName(name)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


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

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt's name
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

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt's name
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
