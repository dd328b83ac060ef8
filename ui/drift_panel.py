"""Drift watch on the Live screen: six sparklines and the golden parts' state, one glance.

Each row is one rolling series of the running line (inspector.line.drift): brightness, contrast
and sharpness of the frames, UNSURE rate, OOD rate and mean confidence over the last parts. The
shaded band is what the series is held against (the training reference ± k std, or the rate
limits); a row in alarm turns red. Drawn with QPainter: no plotting library, cheap at 10 Hz.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from inspector.line.drift import Band, DriftSnapshot

ROWS = (
    ("brightness", "Brightness", "{:.0f}"),
    ("contrast", "Contrast", "{:.1f}"),
    ("sharpness", "Sharpness", "{:.0f}"),
    ("unsure_rate", "UNSURE rate", "{:.0%}"),
    ("ood_rate", "OOD rate", "{:.0%}"),
    ("confidence", "Confidence", "{:.0%}"),
)
ROW_HEIGHT = 15
NAME_WIDTH = 92
VALUE_WIDTH = 52
OK_COLOUR = QColor("#2f6db5")
ALARM_COLOUR = QColor("#c62828")
BAND_COLOUR = QColor(27, 135, 63, 38)


class Sparklines(QWidget):
    """The six series, one row each: name, latest value, line over the band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshot: DriftSnapshot | None = None
        self.setFixedHeight(ROW_HEIGHT * len(ROWS) + 4)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def show_snapshot(self, snapshot: DriftSnapshot | None) -> None:
        self.snapshot = snapshot
        self.update()

    def latest(self, name: str) -> float | None:
        points = self.snapshot.series.get(name) if self.snapshot else None
        return points[-1][1] if points else None

    def paintEvent(self, _event: object) -> None:  # Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        painter.setFont(font)
        width = self.width()
        for row, (name, title, fmt) in enumerate(ROWS):
            top = 2 + row * ROW_HEIGHT
            alarm = bool(self.snapshot and name in self.snapshot.alarms)
            colour = ALARM_COLOUR if alarm else OK_COLOUR
            painter.setPen(ALARM_COLOUR if alarm else QColor("#333333"))
            painter.drawText(QRectF(0, top, NAME_WIDTH, ROW_HEIGHT), Qt.AlignmentFlag.AlignVCenter, title)
            value = self.latest(name)
            text = "–" if value is None else fmt.format(value)
            painter.drawText(
                QRectF(NAME_WIDTH, top, VALUE_WIDTH - 6, ROW_HEIGHT),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                text,
            )
            chart = QRectF(
                NAME_WIDTH + VALUE_WIDTH,
                top + 2,
                max(10, width - NAME_WIDTH - VALUE_WIDTH - 2),
                ROW_HEIGHT - 4,
            )
            painter.setPen(QPen(QColor("#d5d9de"), 1))
            painter.drawRect(chart)
            if self.snapshot is None:
                continue
            points = self.snapshot.series.get(name) or []
            band = self.snapshot.bands.get(name) or Band()
            self._draw(painter, chart, points, band, colour)
        painter.end()

    @staticmethod
    def _draw(
        painter: QPainter, chart: QRectF, points: list[tuple[int, float]], band: Band, colour: QColor
    ) -> None:
        values = [v for _, v in points if v == v]  # NaN-free
        limits = [x for x in (band.centre, band.low, band.high) if x is not None]
        if not values:
            return
        low, high = min(values + limits), max(values + limits)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        pad = 0.08 * (high - low)
        low, high = low - pad, high + pad

        def y(value: float) -> float:
            return chart.bottom() - (value - low) / (high - low) * chart.height()

        if band.low is not None or band.high is not None:
            top = y(band.high) if band.high is not None else chart.top()
            bottom = y(band.low) if band.low is not None else chart.bottom()
            painter.fillRect(QRectF(chart.left(), top, chart.width(), bottom - top), BAND_COLOUR)
        if band.centre is not None:
            painter.setPen(QPen(QColor("#1b873f"), 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(chart.left(), y(band.centre)), QPointF(chart.right(), y(band.centre)))
        first, last = points[0][0], points[-1][0]
        span = max(1, last - first)
        path = QPainterPath()
        for i, (part, value) in enumerate(points):
            point = QPointF(chart.left() + (part - first) / span * chart.width(), y(value))
            if i == 0:
                path.moveTo(point)
            else:
                path.lineTo(point)
        painter.setPen(QPen(colour, 1.4))
        painter.drawPath(path)


class DriftPanel(QWidget):
    """Caption, sparklines, golden parts' state and the "Check golden parts" button."""

    check_golden = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("Drift watch")
        self.reference = QLabel("")
        self.reference.setObjectName("hint")
        self.reference.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.sparklines = Sparklines()
        self.golden = QLabel("Golden parts: not checked")
        self.golden.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.golden_button = QPushButton("Check golden parts")
        self.golden_button.setToolTip(
            "Re-judge the golden parts (Settings: golden parts folder) with the running model, "
            "between parts; without a running line, with the chosen model"
        )
        self.golden_button.clicked.connect(self.check_golden.emit)
        head = QHBoxLayout()
        head.addWidget(self.caption)
        head.addWidget(self.reference, 1)
        foot = QHBoxLayout()
        foot.addWidget(self.golden, 1)
        foot.addWidget(self.golden_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(self.sparklines)
        layout.addLayout(foot)

    def show_snapshot(self, snapshot: DriftSnapshot) -> None:
        self.sparklines.show_snapshot(snapshot)
        cost = f"; statistics {snapshot.stats_ms:.2f} ms per frame" if snapshot.stats_ms is not None else ""
        text = f"inputs {snapshot.reference}{cost}"
        if self.reference.toolTip() != text:
            self.reference.setToolTip(text)  # the whole line; the label shows what fits
            self.reference.setText(text)
        report = snapshot.golden
        state = "" if snapshot.golden_state == "idle" else f" ({snapshot.golden_state})"
        if report is None:
            self.show_golden(f"Golden parts: not checked this run{state}", False)
        else:
            self.show_golden(f"{report.at.astimezone():%H:%M} {report.message()}{state}", report.alarm)

    def show_golden(self, text: str, alarm: bool) -> None:
        if self.golden.text() != text:
            self.golden.setText(text)
            self.golden.setToolTip(text)  # the whole line; the label shows what fits
            self.golden.setStyleSheet("color: #c62828;" if alarm else "")
