"""Page 2 of the fine-tune wizard: how to vary the images, with a live preview to choose by eye."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWizardPage

from data.augment import PRESETS, preview_grid
from ui.finetune.common import (
    ERROR_STYLE,
    PRESET_TEXT,
    PREVIEW_DRAWS,
    PREVIEW_TILE,
    FittedImage,
    hint_label,
    set_status,
)
from ui.finetune.state import FinetuneState
from ui.qt_images import to_pixmap
from ui.workers import Latest


class AugmentPage(QWizardPage):
    """2 · How to vary the images: presets with a live preview on three station images."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
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
            box.toggled.connect(lambda _on: self._choose())
            self.boxes[name] = box
            choices.addWidget(box)
            choices.addWidget(hint_label(text))
            choices.addSpacing(6)
        again = QPushButton("New random draws")
        again.clicked.connect(self._redraw)
        choices.addWidget(again)
        choices.addWidget(
            hint_label(
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
        self.state.presets = self.presets

    @property
    def presets(self) -> list[str]:
        return [name for name, box in self.boxes.items() if box.isChecked()]

    def initializePage(self) -> None:  # Qt's name
        self.render()

    def _choose(self) -> None:
        self.state.presets = self.presets
        self.render()

    def _redraw(self) -> None:
        self._seed += 1
        self.render()

    def render(self) -> None:
        check = self.state.check
        if check is None or not check.samples:
            self.preview.setText("No readable images to preview.")
            return
        request = self._requests.next()
        self.rendered = False
        set_status(self.status, "Rendering the preview …")
        self.state.run(
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
        set_status(self.status, f"Preview: {names}.", "")
        self.rendered = True

    def _show_failed(self, request: int, message: str) -> None:
        if self._requests.is_current(request):
            set_status(self.status, f"No preview: {message}", ERROR_STYLE)
            self.rendered = True
