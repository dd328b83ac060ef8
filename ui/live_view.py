"""Live: what the operator watches all shift, readable from two metres.

A dominant verdict, the current part (optionally with the model's merge map over it), the
shift's counters, per-stage latency, the line outputs' health (PLC, MES), the last NG/UNSURE
parts, the drift watch (input statistics, rates, golden parts), and an alarm banner for a lost
camera, a full disk, drift or an output gone down. Start/stop, source, model, lot and operator sit on one bar.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.access import Actor
from inspector.line.build import LineRequest
from inspector.line.golden import GoldenReport, check_model, log_report
from inspector.line.live_stats import STAGES, StatsSnapshot
from inspector.line.outcome import Event, Outcome
from inspector.line.outputs import BUFFERING, CONNECTED, FAILING, Health
from inspector.line.overlay import overlay_importance
from inspector.line.shadow import ShadowRunner
from ui.context import AppContext
from ui.detail_dialog import OutcomeDialog
from ui.drift_panel import DriftPanel
from ui.line_controller import LineController
from ui.qt_images import to_pixmap
from ui.style import verdict_style
from ui.workers import run_task

SOURCES = [
    ("Simulated ELPV station", "sim"),
    ("Simulated station, lighting shift", "sim?profile=lighting&severity=3"),
    ("Simulated line-scan camera", "linescan"),
    ("Camera 0", "0"),
]
COUNTERS = [
    ("total", "Parts"),
    ("OK", "OK"),
    ("NG", "NG"),
    ("UNSURE", "Unsure"),
    ("yield", "Yield"),
    ("ppm", "Parts / min"),
    ("worst", "Worst cycle"),
    ("overruns", "Overruns"),
    ("drops", "Drops"),
]
STRIP = 24
CONDITIONS = [
    ("Station: as trained", None),
    ("Station: lamp changed", "lighting"),
    ("Station: camera moved", "angle"),
    ("Station: dirty optics", "optics"),
]
OUTPUT_COLOURS = {CONNECTED: "#1b873f", BUFFERING: "#b26a00", FAILING: "#c62828"}
STAGE_NAMES = {
    "queue": "waiting in queue",
    "infer": "inference",
    "archive": "image archive",
    "write": "ledger (batched)",
    "total": "frame → verdict",
}


class LiveView(QWidget):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.controller = LineController(context, self)
        self.controller.started.connect(self._on_started)
        self.controller.stopped.connect(self._on_stopped)
        self.controller.failed.connect(self._on_failed)
        self.base: StatsSnapshot | None = None
        self.last_outcome: Outcome | None = None
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        bar = QHBoxLayout()
        self.source = QComboBox()
        self.source.setEditable(True)
        for label, spec in SOURCES:
            self.source.addItem(label, spec)
        self.source.setToolTip("A camera index, video file, stream URL, image folder, sim or linescan")
        self.model = QComboBox()
        self.reload_models()
        self.lot = QLineEdit()
        self.lot.setPlaceholderText("Lot")
        self.operator = QLineEdit(self.context.settings.operator)
        self.operator.setPlaceholderText("Operator")
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self.toggle)
        self.overlay = QCheckBox("Merge map")
        self.overlay.setToolTip("Colour where the model kept detail (warm) and merged tokens (cool)")
        self.overlay.toggled.connect(self.controller.set_overlay)
        reset = QPushButton("New shift")
        reset.setToolTip("Reset the counters for a new shift (the line keeps running)")
        reset.clicked.connect(self.reset_counters)
        for text, widget, stretch in (
            ("Source", self.source, 3),
            ("Model", self.model, 2),
            (None, self.lot, 1),
            (None, self.operator, 1),
        ):
            if text:
                bar.addWidget(QLabel(text))
            bar.addWidget(widget, stretch)
        self.condition = QComboBox()
        for label, profile in CONDITIONS:
            self.condition.addItem(label, profile)
        self.condition.setToolTip("Simulated station only: change its lamp, camera angle or optics live")
        self.condition.setEnabled(False)
        self.condition.currentIndexChanged.connect(self._condition_changed)
        bar.addWidget(self.condition)
        bar.addWidget(self.overlay)
        bar.addWidget(reset)
        bar.addWidget(self.start_button)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.banner.mousePressEvent = lambda _event: self.banner.hide()
        self.banner.setToolTip("Click to dismiss")

        self.verdict = QLabel("READY")
        self.verdict.setObjectName("verdict")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setMinimumHeight(110)
        self.verdict.setStyleSheet(verdict_style(""))
        self.detail = QLabel("Press Start to inspect")
        self.detail.setObjectName("hint")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)  # an int8 refusal's reason is a long line; it must not widen the screen
        self.frame = QLabel()
        self.frame.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.frame.setMinimumSize(320, 240)
        self.frame.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.frame.setStyleSheet("background: #101418; border-radius: 6px;")
        left = QVBoxLayout()
        left.addWidget(self.verdict)
        left.addWidget(self.detail)
        left.addWidget(self.frame, 1)

        grid = QGridLayout()
        self.counter_labels: dict[str, QLabel] = {}
        for i, (key, name) in enumerate(COUNTERS):
            value = QLabel("0")
            value.setObjectName("counterValue")
            caption = QLabel(name)
            caption.setObjectName("counterName")
            grid.addWidget(value, (i // 3) * 2, i % 3)
            grid.addWidget(caption, (i // 3) * 2 + 1, i % 3)
            self.counter_labels[key] = value
        self.latency = QTableWidget(len(STAGES), 3)
        self.latency.setHorizontalHeaderLabels(["p50 ms", "p95 ms", "p99 ms"])
        self.latency.setVerticalHeaderLabels([STAGE_NAMES.get(s, s) for s in STAGES])
        self.latency.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.latency.horizontalHeader().setStretchLastSection(True)
        self.latency.verticalHeader().setDefaultSectionSize(26)
        self.latency.setFixedHeight(28 + 26 * len(STAGES) + 6)
        self.latency.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.events = QListWidget()
        self.events.setMaximumHeight(160)
        self.shadow = QLabel("")
        self.shadow.setObjectName("hint")
        self.shadow.setToolTip(
            "A candidate model judging the same parts beside the deployed one; it never drives a verdict "
            "and is shed first when the line falls behind. Compare, promote or discard it on Models."
        )
        self.shadow.hide()
        self.outputs_caption = QLabel("Outputs (PLC, MES)")
        self.outputs = QListWidget()
        self.outputs.setMaximumHeight(84)
        self.outputs.setToolTip(
            "Line outputs from Settings: connected, buffering n (kept until delivered), failing"
        )
        self.outputs_caption.hide()
        self.outputs.hide()
        right = QVBoxLayout()
        right.addLayout(grid)
        right.addWidget(self.shadow)
        right.addWidget(QLabel("Latency per stage"))
        right.addWidget(self.latency)
        right.addWidget(self.outputs_caption)
        right.addWidget(self.outputs)
        right.addWidget(QLabel("Events"))
        right.addWidget(self.events)
        right.addStretch(1)

        body = QHBoxLayout()
        body.addLayout(left, 3)
        body.addLayout(right, 2)

        self.strip = QListWidget()
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setIconSize(QSize(96, 96))
        self.strip.setFixedHeight(140)
        self.strip.itemClicked.connect(self._open_flagged)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.banner)
        layout.addLayout(body, 1)
        # The drift watch beside the strip of flagged parts: the same height, so the screen still
        # fits 768 lines.
        self.drift = DriftPanel()
        self.drift.check_golden.connect(self.check_golden)
        flagged = QVBoxLayout()
        flagged.addWidget(QLabel("Last NG and UNSURE parts (click for detail)"))
        flagged.addWidget(self.strip)
        bottom = QHBoxLayout()
        bottom.addLayout(flagged, 3)
        bottom.addWidget(self.drift, 2)
        layout.addLayout(bottom)

    def reload_models(self) -> None:
        self.model.clear()
        registry = self.context.registry
        deployed = registry.deployed()
        self.model.addItem(f"Deployed ({deployed.id})" if deployed else "Deployed (bundled demo)", None)
        self.model.addItem("Bundled demo model (ELPV)", "demo")
        for version in registry.versions():
            self.model.addItem(f"{version.id} — {version.merge}", str(registry.path_of(version.id)))

    # -- start / stop ------------------------------------------------------------------------

    def source_spec(self) -> str:
        text = self.source.currentText().strip()
        index = self.source.findText(text)
        return self.source.itemData(index) if index >= 0 and self.source.itemData(index) else text

    def toggle(self) -> None:
        if self.controller.running:
            self.start_button.setEnabled(False)
            self.start_button.setText("Stopping…")
            self.controller.stop()
        else:
            self.start()

    def start(self, source: str | None = None, model: str | None = None, station: str | None = None) -> None:
        settings = self.context.settings
        request = LineRequest(
            source=source or self.source_spec(),
            home=self.context.home,
            model=model if model is not None else self.model.currentData(),
            station=station or settings.station,
            lot=self.lot.text().strip(),
            operator=self.operator.text().strip(),
            track_maps=self.overlay.isChecked(),
            shadow=settings.shadow or None,
        )
        self.start_button.setEnabled(False)
        self.start_button.setText("Starting…")
        self.detail.setText(f"Opening {request.source} …")
        self.controller.start(request)

    def set_actor(self, actor: Actor) -> None:
        """With accounts the run is recorded as the signed-in person's (the field may still name
        another operator, as ``inspector run --operator`` may); without accounts nothing changes."""
        if actor.role is not None and not self.controller.running:
            self.operator.setText(actor.name)

    def _on_started(self, name: str) -> None:
        self.base = None
        self.start_button.setEnabled(True)
        self.start_button.setText("Stop")
        # Which runtime judges, and why not a faster one (an int8 graph its gate refused, say).
        self.detail.setText(f"Inspecting: {name} · {self.controller.pipeline.engine.backend_line()}")
        for widget in (self.source, self.model, self.lot, self.operator):
            widget.setEnabled(False)
        simulated = hasattr(self.controller.pipeline.source, "set_profile")
        self.condition.setEnabled(simulated)
        if simulated:
            self._condition_changed()

    def _condition_changed(self, *_: object) -> None:
        """The simulated station's condition, switched live: watch the model drift and the alarm."""
        pipeline = self.controller.pipeline
        if pipeline is None or not hasattr(pipeline.source, "set_profile"):
            return
        profile = self.condition.currentData()
        if profile != pipeline.source.profile:
            pipeline.source.set_profile(profile, 3 if profile else None)
            pipeline.event("info", "profile", f"simulated station: {self.condition.currentText().lower()}")

    def _on_stopped(self, snapshot: StatsSnapshot) -> None:
        self.refresh()
        self.start_button.setEnabled(True)
        self.start_button.setText("Start")
        self.detail.setText(f"Stopped after {snapshot.entered} parts; every result is saved")
        self.condition.setEnabled(False)
        for widget in (self.source, self.model, self.lot, self.operator):
            widget.setEnabled(True)

    def _on_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.start_button.setText("Start")
        self.detail.setText("Not running")
        self.show_alarm(message)

    def reset_counters(self) -> None:
        pipeline = self.controller.pipeline
        if pipeline is not None:
            self.base = pipeline.stats.snapshot()
            pipeline.stats.reset_extremes()
        self.strip.clear()
        self.refresh()

    def show_alarm(self, message: str) -> None:
        self.banner.setText(f"⚠ {message}")
        self.banner.show()

    # -- display -----------------------------------------------------------------------------

    def refresh(self) -> None:
        latest, flagged, events = self.controller.take()
        if latest is not None:
            self._show_outcome(latest)
        for outcome in flagged:
            self._add_flagged(outcome)
        for event in events:
            self._add_event(event)
        if self.controller.pipeline is not None:
            self._show_counters(self.controller.pipeline.stats.snapshot())
            self._show_shadow(self.controller.pipeline.shadow)
            self._show_outputs(self.controller.pipeline.outputs.health())
            self.drift.show_snapshot(self.controller.pipeline.watch.snapshot())

    # -- golden parts ------------------------------------------------------------------------

    def check_golden(self) -> None:
        """Golden parts now: by the running line between parts, else by the chosen model here."""
        if self.controller.running:
            message = self.controller.pipeline.watch.request_golden()
            self.drift.show_golden(f"Golden parts: {message}", False)
            return
        context = self.context
        self.drift.golden_button.setEnabled(False)
        self.drift.show_golden("Golden parts: checking …", False)
        run_task(
            _check_golden_offline,
            context.home,
            context.settings,
            self.model.currentData(),
            context.ledger(),
            on_done=self._golden_checked,
            on_failed=self._golden_failed,
            long_running=True,
        )

    def _golden_checked(self, report: GoldenReport) -> None:
        self.drift.golden_button.setEnabled(True)
        self.drift.show_golden(f"{report.at.astimezone():%H:%M} {report.message()}", report.alarm)
        if report.alarm:
            self.show_alarm(report.message())

    def _golden_failed(self, message: str) -> None:
        self.drift.golden_button.setEnabled(True)
        self.drift.show_golden(f"Golden parts: {message}", True)

    def _show_shadow(self, shadow: ShadowRunner | None) -> None:
        """``Shadow: v3 — agreement 97.2 % of 1,204, 12 disagreements, 3 shed``, or nothing."""
        if shadow is None:
            self.shadow.hide()
            return
        self.shadow.setText(shadow.snapshot().line())
        self.shadow.show()

    def _show_outputs(self, healths: list[tuple[str, Health]]) -> None:
        """One row per line output: its URL (no password) and connected / buffering n / failing."""
        self.outputs.setVisible(bool(healths))
        self.outputs_caption.setVisible(bool(healths))
        while self.outputs.count() > len(healths):
            self.outputs.takeItem(self.outputs.count() - 1)
        while self.outputs.count() < len(healths):
            self.outputs.addItem(QListWidgetItem())
        for row, (name, health) in enumerate(healths):
            counts = f"{health.sent} sent" + (f", {health.dropped} dropped" if health.dropped else "")
            state = f"{health.state} {health.pending}" if health.state == BUFFERING else health.state
            text = f"{state}  ·  {counts}  ·  {name}"
            item = self.outputs.item(row)
            if item.text() != text:
                item.setText(text)
                item.setToolTip(f"{name}\n{health.describe()}\n{counts}")
                item.setForeground(QColor(OUTPUT_COLOURS.get(health.state, "#555555")))

    def _show_outcome(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        decision = outcome.decision
        verdict = decision.verdict.value
        self.verdict.setText(verdict)
        self.verdict.setStyleSheet(verdict_style(verdict))
        parts = [f"part {outcome.frame.index}"]
        if decision.label:
            parts.append(f"{decision.label} {decision.confidence:.0%}")
        if decision.reason:
            parts.append(decision.reason)
        if outcome.frame.truth:
            parts.append(f"truth: {outcome.frame.truth}")
        self.detail.setText("  ·  ".join(parts))
        image = outcome.frame.image
        if self.overlay.isChecked() and outcome.merge_map is not None:
            image = overlay_importance(image, outcome.merge_map)
        self.frame.setPixmap(to_pixmap(image, self.frame.width() - 4, self.frame.height() - 4))

    def _add_flagged(self, outcome: Outcome) -> None:
        decision = outcome.decision
        item = QListWidgetItem(
            QIcon(to_pixmap(outcome.frame.image, 96, 96)), f"{decision.verdict.value} #{outcome.frame.index}"
        )
        item.setData(Qt.ItemDataRole.UserRole, outcome)
        item.setToolTip(f"{decision.label or ''} {decision.confidence or 0:.0%} {decision.reason}")
        self.strip.insertItem(0, item)
        while self.strip.count() > STRIP:
            self.strip.takeItem(self.strip.count() - 1)

    def _open_flagged(self, item: QListWidgetItem) -> None:
        OutcomeDialog(item.data(Qt.ItemDataRole.UserRole), self).open()

    def _add_event(self, event: Event) -> None:
        self.events.insertItem(0, f"{event.at:%H:%M:%S}  {event.level.upper():7s} {event.message}")
        while self.events.count() > 200:
            self.events.takeItem(self.events.count() - 1)
        if event.level == "alarm":
            self.show_alarm(event.message)
        elif event.kind in ("reconnected",) or event.message.startswith("drift cleared"):
            self.banner.hide()
        elif event.kind == "output_up" and not self._an_output_is_down():
            self.banner.hide()

    def _an_output_is_down(self) -> bool:
        pipeline = self.controller.pipeline
        if pipeline is None:
            return False
        return any(health.state in (BUFFERING, FAILING) for _, health in pipeline.outputs.health())

    def _show_counters(self, snap: StatsSnapshot) -> None:
        base = self.base
        verdicts = dict(snap.verdicts)
        drops, overruns, entered = snap.dropped, snap.overruns, snap.entered
        if base is not None:
            verdicts = {k: v - base.verdicts.get(k, 0) for k, v in verdicts.items()}
            drops, overruns, entered = drops - base.dropped, overruns - base.overruns, entered - base.entered
        judged = sum(verdicts.get(v, 0) for v in ("OK", "NG", "UNSURE"))
        values = {
            "total": str(entered),
            "OK": str(verdicts.get("OK", 0)),
            "NG": str(verdicts.get("NG", 0)),
            "UNSURE": str(verdicts.get("UNSURE", 0)),
            "yield": f"{100 * verdicts.get('OK', 0) / judged:.1f}%" if judged else "–",
            "ppm": f"{60 * snap.fps:.0f}",
            "worst": f"{snap.worst_cycle_ms:.0f} ms",
            "overruns": str(overruns),
            "drops": str(drops),
        }
        for key, text in values.items():
            self.counter_labels[key].setText(text)
        for row, stage in enumerate(STAGES):
            numbers = snap.latency_ms.get(stage, {})
            for col, key in enumerate(("p50", "p95", "p99")):
                value = numbers.get(key)
                self.latency.setItem(row, col, QTableWidgetItem("–" if value is None else f"{value:.1f}"))


def _check_golden_offline(home, settings, model, ledger) -> GoldenReport:  # a worker thread
    report = check_model(home, settings, model)
    log_report(ledger, report, settings.station)
    return report
