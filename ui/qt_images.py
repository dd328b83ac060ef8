"""numpy images to Qt pixmaps (RGB or gray, 8 or 16 bit)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from inspector.line.overlay import as_rgb8


def to_qimage(image: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(as_rgb8(image))
    height, width = rgb.shape[:2]
    # QImage does not own numpy memory: copy so the array may go away.
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def to_pixmap(image: np.ndarray, width: int | None = None, height: int | None = None) -> QPixmap:
    pixmap = QPixmap.fromImage(to_qimage(image))
    if width and height:
        return pixmap.scaled(
            width, height, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return pixmap
