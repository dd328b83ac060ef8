"""The Qt binding must not drop references to None: on CPython 3.11 that aborts the app mid-shift.

PySide6 6.12.0 released one reference to None on every call that returns nothing; the Live screen's
drift sparklines make thousands of such calls a second, so `make demo` died with "none_dealloc"
about a minute into painting. pyproject.toml pins the binding below 6.12 on CPython < 3.12; this
test catches a binding that brings the leak back.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath

CALLS = 2000

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None is immortal from CPython 3.12: its count cannot drop"
)


def test_calls_that_return_nothing_keep_none_alive(qapp):
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    path = QPainterPath()
    calls = {
        "QPainterPath.moveTo": lambda i: path.moveTo(QPointF(i % 64, 1)),
        "QPainterPath.lineTo": lambda i: path.lineTo(QPointF(i % 64, i % 7)),
        "QPainter.drawLine": lambda i: painter.drawLine(QPointF(0, 0), QPointF(i % 64, 9)),
        "QPainter.fillRect": lambda i: painter.fillRect(QRectF(0, 0, 3, 3), QColor(1, 2, 3)),
        "QPainter.drawText": lambda i: painter.drawText(
            QRectF(0, 0, 30, 12), Qt.AlignmentFlag.AlignLeft, "x"
        ),
    }
    lost = {}
    try:
        for name, call in calls.items():
            before = sys.getrefcount(None)
            for i in range(CALLS):
                call(i)
            lost[name] = before - sys.getrefcount(None)
            if lost[name] >= CALLS // 2:
                break  # more calls would bring None's count to zero and abort the test run
    finally:
        painter.end()
    leaking = {name: n for name, n in lost.items() if n >= CALLS // 2}
    assert not leaking, f"references to None lost per {CALLS} calls: {leaking}"
