"""What the fine-tune wizard's pages share: colours, the texts for presets and trainable
parts, and a few small widgets (hints, status lines, matplotlib canvases, a fitted image)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy

PREVIEW_DRAWS = 4
PREVIEW_TILE = 132
ERROR_COLOUR, WARN_COLOUR, GOOD_COLOUR = "#c62828", "#8a6d00", "#1b873f"
ERROR_STYLE = f"color: {ERROR_COLOUR};"
WARN_STYLE = f"color: {WARN_COLOUR};"
GOOD_STYLE = f"color: {GOOD_COLOUR};"

PRESET_TEXT = {
    "lighting": ("Lighting", "brightness, contrast, gamma, uneven illumination and shadows"),
    "angle": ("Camera angle", "small rotations, perspective tilt, scale and shift"),
    "optics": ("Optics", "defocus, motion blur, sensor noise and JPEG compression"),
}
# What each choice trains, and what it recovered in BENCHMARKS.md ("Adaptation on the pretrained
# hybrid"): on the pretrained hybrid, every choice starts by re-estimating the stem's lighting
# statistics; figures are the share of what a lamp change cost that came back (ELPV lamp change,
# magnetic_tile's real one). The from-scratch figures are the "Station adaptation" section's.
TRAINABLE_TEXT = [
    (
        "merge",
        "Merge modules only",
        "Re-learns which image regions the model keeps in detail and which it merges (8,000–16,000 "
        "parameters; the model cannot forget its classes). In our lamp-change benchmarks it won back "
        "nothing beyond what re-calibrating the lighting statistics wins on its own.",
    ),
    (
        "merge+norm",
        "Merge modules + normalisation layers",
        "Also re-centres the transformer's features for the new lighting and sensor. Won back about "
        "what re-calibration alone does (29 % of the ELPV lamp change, 52 % of magnetic_tile's).",
    ),
    (
        "merge+head",
        "Merge modules + classifier head",
        "Also re-weighs the final decision between classes (a few hundred parameters more). Best for a model "
        "trained from scratch (up to 40 % of the ELPV lamp change won back); on a pretrained model it "
        "won back less than re-calibration alone (17 %, 22 %). The only choice besides the whole "
        "network for a model without merge modules.",
    ),
    (
        "all",
        "Whole network",
        "Every weight adapts, starting from the station's own lighting statistics where they score "
        "better. On a pretrained model it wins back the most: about half of an ELPV lamp change, "
        "two thirds of a moved camera and all of magnetic_tile's real lamp change (3 seeds), in 3–6 "
        "minutes on 2 cores. The old station can lose points: page 5 shows it, and the old version "
        "stays in the registry for the old station.",
    ),
]
# Ways to keep the station the base was trained on (issue 26; BENCHMARKS.md, "Adaptation that keeps
# the old station", "Which default keeps the old station"); the keys are Recipe fields. Replay, judging
# on both stations and the blend need the base's reference sample; the pull toward the base does not.
# Kept to two lines each: the page must fit 1366x768.
KEEP_TEXT = [
    (
        "l2sp",
        "Hold the weights near the base model's",
        "Each weight pays for moving away from the base's (L2-SP). It kept the old station no better "
        "in our benchmarks.",
    ),
    (
        "replay",
        "Replay the stations the base model served",
        "Trains on up to 120 images of each, beside the new ones. With the next box (the default), "
        "a moved camera cost the old station 5.5 points, not 23.",
    ),
    (
        "judge_both",
        "Judge each epoch on both stations",
        "Keeps the epoch, or the base model, that scores best on the new and the old stations' "
        "validation images together.",
    ),
    (
        "wise",
        "Blend back toward the base model",
        "Tries five blends of the base's and the new weights; keeps the best on both stations.",
    ),
]
NEEDS_REFERENCE = ("replay", "wise", "judge_both")
RECOMMENDED = " — recommended for this model"


def hint_label(text: str) -> QLabel:
    """A grey, wrapped explanation under a choice."""
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def set_status(label: QLabel, text: str, style: str = "") -> None:
    """Say ``text`` in ``label`` with the style for its kind (error, warning, good, plain)."""
    label.setText(text)
    label.setStyleSheet(style)


def new_canvas(width: float, height: float) -> FigureCanvasQTAgg:
    """A matplotlib canvas that takes the space the page gives it."""
    canvas = FigureCanvasQTAgg(Figure(figsize=(width, height), layout="constrained"))
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    canvas.setMinimumHeight(200)
    return canvas


class FittedImage(QLabel):
    """A picture that grows and shrinks with the space it gets (the preview on any screen size)."""

    def __init__(self, max_scale: float = 2.5) -> None:
        super().__init__()
        self.source: QPixmap | None = None
        self.max_scale = max_scale
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Ignored: the pixmap must not push the layout (which would resize it again, and so on).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, pixmap: QPixmap) -> None:
        self.source = pixmap
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.source is None or self.source.isNull():
            return
        width = min(self.width(), int(self.source.width() * self.max_scale))
        height = min(self.height(), int(self.source.height() * self.max_scale))
        self.setPixmap(
            self.source.scaled(
                max(1, width),
                max(1, height),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )


def draw_confusion(ax: Any, confusion: list[list[int]], classes: list[str], title: str) -> None:
    """Counts with row-normalised shading, like the eval report's PNG (QA reads rows as recall)."""
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{int(count)}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black"
        )
