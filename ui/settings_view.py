"""Settings: what a plant engineer sets once per installation, kept in ``<home>/settings.json``.

The form edits a copy; Save checks it with ``Settings.validate`` and writes it through the app
context, so a bad value is reported on one line next to the button and nothing half-valid is
ever stored. Optional numbers are plain text fields: empty means "use the default" (for the
thresholds: the value the bundle was calibrated with), which a spin box cannot express.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.errors import InspectorError
from inspector.settings import FILE, Settings
from inspector.settings_change import change_settings
from inspector.store import Ledger, default_url
from ui.context import AppContext
from ui.workers import run_task

ERROR_STYLE = "color: #c62828;"
GOOD_STYLE = "color: #1b873f;"


def check_connection(url: str) -> str:
    """Open (and migrate) the ledger at ``url`` and close it again: the same path the line takes."""
    with Ledger(url) as ledger:
        return repr(ledger)


def _optional_float(text: str, name: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InspectorError(f"{name} must be a number (or empty), got {text!r}") from None


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def _form(box: QGroupBox) -> QFormLayout:
    form = QFormLayout(box)
    form.setVerticalSpacing(10)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _with_hint(field: QWidget | QHBoxLayout, text: str, *extra: QWidget) -> QWidget:
    """A field with its explanation right under it (a form row of its own leaves a wide gap)."""
    holder = QWidget()
    column = QVBoxLayout(holder)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    if isinstance(field, QHBoxLayout):
        column.addLayout(field)
    else:
        column.addWidget(field)
    column.addWidget(_hint(text))
    for widget in extra:
        column.addWidget(widget)
    return holder


def _scrolling_columns(left: list[QGroupBox], right: list[QGroupBox]) -> QScrollArea:
    """Two columns of groups, top-aligned, in a frameless scroll area."""
    columns = QHBoxLayout()
    for groups in (left, right):
        column = QVBoxLayout()
        for group in groups:
            column.addWidget(group)
        column.addStretch(1)
        columns.addLayout(column, 1)
    content = QWidget()
    content.setMaximumWidth(1400)  # on a wide screen, fields a metre long read worse, not better
    inner = QVBoxLayout(content)
    inner.setContentsMargins(0, 0, 0, 0)
    inner.addLayout(columns)
    inner.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    return scroll


# Settings.validate speaks in field names; the form shows labels.
LABELS = {
    "archive_ok_every": "Keep OK images",
    "archive_cap_gib": "Size cap",
    "unsure_below": "UNSURE below confidence",
    "ood_energy_above": "UNSURE above energy score",
    "cycle_budget_ms": "Cycle budget",
    "golden_every_min": "Golden check every",
    "drift_window": "Rolling window",
    "drift_reference_frames": "Reference frames",
    "drift_input_k": "Input alarm at",
    "drift_ood_rate": "OOD rate alarm above",
    "drift_confidence_drop": "Confidence alarm at a drop of",
    "shift_starts": "Shifts start at",
    "gate_latency_ratio": "Block: latency over",
    "idle_lock_minutes": "Lock when idle after",
}
OUTPUTS_HINT = (
    "One URL per line; used by lines started after saving. "
    "mqtt://broker:1883/prefix (MES, one JSON message per part; mqtts:// for TLS), "
    "modbus://127.0.0.1:5020?reject=NG,UNSURE,ERROR (Modbus TCP server: the PLC's reject gate), "
    "opc.tcp://127.0.0.1:4840 (OPC UA server, read-only). Servers listen on 127.0.0.1 unless you "
    "name another interface. See the README for topics, registers and nodes."
)


def _readable(message: str) -> str:
    for name, label in LABELS.items():
        message = message.replace(name, label)
    return message[:1].upper() + message[1:]


class SettingsView(QWidget):
    """Home, database, archive policy, threshold overrides and station defaults; Save validates."""

    saved = Signal()  # settings were written (the idle lock re-reads its minutes)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.testing = False
        where, archive, verdicts = self._where_group(), self._archive_group(), self._verdicts_group()
        station, rollout = self._station_group(), self._rollout_group()
        outputs, drift = self._outputs_group(), self._drift_group()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        # The groups scroll on a 768-line screen; Save and Revert stay in view below them.
        layout.addWidget(
            _scrolling_columns([where, station, outputs, drift], [archive, verdicts, rollout]), 1
        )
        layout.addSpacing(6)
        layout.addLayout(self._buttons())
        self.load()

    def _where_group(self) -> QGroupBox:
        """Home folder and results database (with its connection test)."""
        self.home = QLineEdit(str(self.context.home))
        self.home.setReadOnly(True)
        self.home.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.home.setStyleSheet("background: #e6e8eb; color: #333;")
        self.db_url = QLineEdit()
        self.db_url.setPlaceholderText(f"empty: SQLite in the home folder ({default_url(self.context.home)})")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.db_message = QLabel("")
        self.db_message.setWordWrap(True)
        self.db_message.hide()
        db_row = QHBoxLayout()
        db_row.addWidget(self.db_url, 1)
        db_row.addWidget(self.test_button)

        where = QGroupBox("Where data lives")
        form = _form(where)
        form.addRow(
            "Home folder",
            _with_hint(
                self.home, "Set when the app starts: --home DIR or the INSPECTOR_HOME environment variable."
            ),
        )
        form.addRow(
            "Results database",
            _with_hint(
                db_row,
                "A SQLAlchemy URL, e.g. postgresql+psycopg://user@host/inspector for several stations "
                "sharing one ledger. Used by lines started after saving.",
                self.db_message,
            ),
        )
        return where

    def _archive_group(self) -> QGroupBox:
        """Which images the archive keeps, and its size cap."""
        self.ok_every = QSpinBox()
        self.ok_every.setRange(0, 1_000_000)
        self.ok_every.setSpecialValueText("no OK images")
        self.ok_every.setPrefix("1 in ")
        self.cap_gib = QDoubleSpinBox()
        self.cap_gib.setRange(0.0, 100_000.0)
        self.cap_gib.setDecimals(1)
        self.cap_gib.setSingleStep(0.5)
        self.cap_gib.setSuffix(" GiB")

        archive = QGroupBox("Image archive")
        form = _form(archive)
        form.addRow("Keep OK images", self.ok_every)
        form.addRow(
            "Size cap",
            _with_hint(
                self.cap_gib,
                "NG, UNSURE and ERROR images are always kept; at the cap the oldest OK images go first.",
            ),
        )
        return archive

    def _verdicts_group(self) -> QGroupBox:
        """Threshold overrides (empty: the deployed model's calibrated values)."""
        self.unsure_below = QLineEdit()
        self.unsure_below.setPlaceholderText("empty: the model's calibrated value")
        self.ood_above = QLineEdit()
        self.ood_above.setPlaceholderText("empty: the model's calibrated value")

        verdicts = QGroupBox("Verdict thresholds (overrides)")
        form = _form(verdicts)
        form.addRow("UNSURE below confidence", _with_hint(self.unsure_below, "A confidence between 0 and 1."))
        form.addRow(
            "UNSURE above energy score",
            _with_hint(self.ood_above, "Higher means a part less like the training images."),
        )
        form.addRow(_hint("Leave empty to use what the deployed model was calibrated with (recommended)."))
        return verdicts

    def _station_group(self) -> QGroupBox:
        """Station name, operator, cycle budget, idle lock and the shadow candidate."""
        self.station = QLineEdit()
        self.operator = QLineEdit()
        self.operator.setPlaceholderText("empty: asked on the Live screen")
        self.cycle_ms = QLineEdit()
        self.cycle_ms.setPlaceholderText("empty: no cycle budget")
        self.idle_lock = QSpinBox()
        self.idle_lock.setRange(0, 24 * 60)
        self.idle_lock.setSuffix(" min")
        self.idle_lock.setSpecialValueText("never")
        self.shadow = QLineEdit()
        self.shadow.setPlaceholderText("empty: none (a model version, e.g. v3)")

        station = QGroupBox("Station")
        form = _form(station)
        form.addRow("Station name", self.station)
        form.addRow("Default operator", self.operator)
        form.addRow(
            "Cycle budget (ms)",
            _with_hint(self.cycle_ms, "Slower parts are counted as overruns on the Live screen."),
        )
        form.addRow(
            "Lock when idle after",
            _with_hint(
                self.idle_lock,
                "With user accounts: no key or mouse input for this long covers the app with the "
                "login; the line keeps running.",
            ),
        )
        form.addRow(
            "Shadow candidate",
            _with_hint(
                self.shadow,
                "Judges the same parts beside the deployed model, never driving a verdict; shed first "
                "when the line falls behind. Compare, promote or discard it on the Models screen.",
            ),
        )
        return station

    def _rollout_group(self) -> QGroupBox:
        """The roll-out gate's data and limits, and the shift starts."""
        self.gate_data = QLineEdit()
        self.gate_data.setPlaceholderText("empty: no offline gate (a deploy then needs a reason)")
        self.gate_recall = QDoubleSpinBox()
        self.gate_recall.setRange(0.0, 1.0)
        self.gate_recall.setDecimals(3)
        self.gate_recall.setSingleStep(0.01)
        self.gate_unsure = QDoubleSpinBox()
        self.gate_unsure.setRange(0.0, 1.0)
        self.gate_unsure.setDecimals(3)
        self.gate_unsure.setSingleStep(0.01)
        self.gate_latency = QDoubleSpinBox()
        self.gate_latency.setRange(1.0, 100.0)
        self.gate_latency.setDecimals(2)
        self.gate_latency.setSingleStep(0.05)
        self.gate_latency.setSuffix(" ×")
        self.shift_starts = QLineEdit()
        self.shift_starts.setPlaceholderText("06:00, 14:00, 22:00")

        rollout = QGroupBox("Roll-out gate and shifts")
        form = _form(rollout)
        form.addRow(
            "Gate data",
            _with_hint(
                self.gate_data,
                "The station's dataset folder: before a version goes live it is scored beside the deployed "
                "one on its held-out split.",
            ),
        )
        form.addRow("Block: recall drop over", self.gate_recall)
        form.addRow("Block: UNSURE rise over", self.gate_unsure)
        form.addRow("Block: latency over", self.gate_latency)
        form.addRow(
            "Shifts start at",
            _with_hint(self.shift_starts, "Local times, comma-separated: the shift report's shifts."),
        )
        return rollout

    def _outputs_group(self) -> QGroupBox:
        """Where verdicts go besides the ledger (PLC, MES)."""
        self.outputs = QPlainTextEdit()
        self.outputs.setPlaceholderText("empty: verdicts stay in the ledger")
        self.outputs.setFixedHeight(84)
        self.outputs.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)

        outputs = QGroupBox("Line outputs (PLC, MES)")
        form = _form(outputs)
        form.addRow(_with_hint(self.outputs, OUTPUTS_HINT))
        return outputs

    def _drift_group(self) -> QGroupBox:
        """Golden parts and the rolling drift alarms."""
        self.golden_dir = QLineEdit()
        self.golden_dir.setPlaceholderText(f"empty: {self.context.home / 'golden'}")
        self.golden_every = QDoubleSpinBox()
        self.golden_every.setRange(0.0, 24 * 60.0)
        self.golden_every.setDecimals(1)
        self.golden_every.setSuffix(" min")
        self.golden_every.setSpecialValueText("only on request")
        self.drift_window = QSpinBox()
        self.drift_window.setRange(10, 100_000)
        self.drift_window.setSuffix(" parts")
        self.reference_frames = QSpinBox()
        self.reference_frames.setRange(10, 100_000)
        self.reference_frames.setSuffix(" frames")
        self.input_k = QDoubleSpinBox()
        self.input_k.setRange(0.05, 100.0)
        self.input_k.setDecimals(2)
        self.input_k.setSingleStep(0.1)
        self.input_k.setSuffix(" std")
        self.ood_rate = QDoubleSpinBox()
        self.ood_rate.setRange(1.0, 100.0)
        self.ood_rate.setDecimals(0)
        self.ood_rate.setSuffix(" %")
        self.confidence_drop = QDoubleSpinBox()
        self.confidence_drop.setRange(1.0, 100.0)
        self.confidence_drop.setDecimals(0)
        self.confidence_drop.setSuffix(" points")

        drift = QGroupBox("Drift watch")
        form = _form(drift)
        form.addRow(
            "Golden parts folder",
            _with_hint(
                self.golden_dir, "One sub-folder per class; each model version's first check is its baseline."
            ),
        )
        form.addRow(
            "Golden check every",
            _with_hint(self.golden_every, "While a line runs, between parts (never in a part's place)."),
        )
        form.addRow("Rolling window", self.drift_window)
        form.addRow(
            "Reference frames",
            _with_hint(
                self.reference_frames, "For a model without a training reference: the run's first frames."
            ),
        )
        form.addRow(
            "Input alarm at",
            _with_hint(
                self.input_k,
                "Rolling brightness, contrast or sharpness this many reference standard deviations away.",
            ),
        )
        form.addRow("OOD rate alarm above", self.ood_rate)
        form.addRow(
            "Confidence alarm at a drop of",
            _with_hint(
                self.confidence_drop, "Mean confidence this far below the validation (or first frames') mean."
            ),
        )
        return drift

    def _buttons(self) -> QHBoxLayout:
        """Save, Revert and the one-line message beside them."""
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(self.save)
        revert = QPushButton("Revert")
        revert.setToolTip("Discard unsaved changes")
        revert.clicked.connect(self.load)
        self.message = QLabel("")
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(revert)
        buttons.addWidget(self.message, 1)
        return buttons

    def load(self) -> None:
        """Fill the form from the context's current settings."""
        s = self.context.settings
        self.db_url.setText(s.db_url)
        self.ok_every.setValue(s.archive_ok_every)
        self.cap_gib.setValue(s.archive_cap_gib)
        self.unsure_below.setText("" if s.unsure_below is None else f"{s.unsure_below:g}")
        self.ood_above.setText("" if s.ood_energy_above is None else f"{s.ood_energy_above:g}")
        self.station.setText(s.station)
        self.operator.setText(s.operator)
        self.cycle_ms.setText("" if s.cycle_budget_ms is None else f"{s.cycle_budget_ms:g}")
        self.shadow.setText(s.shadow)
        self.idle_lock.setValue(s.idle_lock_minutes)
        self.outputs.setPlainText("\n".join(s.outputs))
        self.golden_dir.setText(s.golden_dir)
        self.golden_every.setValue(s.golden_every_min)
        self.drift_window.setValue(s.drift_window)
        self.reference_frames.setValue(s.drift_reference_frames)
        self.input_k.setValue(s.drift_input_k)
        self.ood_rate.setValue(round(100 * s.drift_ood_rate))
        self.confidence_drop.setValue(round(100 * s.drift_confidence_drop))
        self.gate_data.setText(s.gate_data)
        self.gate_recall.setValue(s.gate_recall_drop)
        self.gate_unsure.setValue(s.gate_unsure_rise)
        self.gate_latency.setValue(s.gate_latency_ratio)
        self.shift_starts.setText(", ".join(s.shift_starts))
        self._say("")

    def form_settings(self) -> Settings:
        """The form as settings (fields the form does not show are kept); raises on a bad value."""
        station = self.station.text().strip()
        if not station:
            raise InspectorError("the station name must not be empty")
        return replace(
            self.context.settings,
            db_url=self.db_url.text().strip(),
            archive_ok_every=self.ok_every.value(),
            archive_cap_gib=self.cap_gib.value(),
            unsure_below=_optional_float(self.unsure_below.text(), "UNSURE below confidence"),
            ood_energy_above=_optional_float(self.ood_above.text(), "UNSURE above energy score"),
            station=station,
            operator=self.operator.text().strip(),
            cycle_budget_ms=_optional_float(self.cycle_ms.text(), "cycle budget"),
            shadow=self.shadow.text().strip(),
            idle_lock_minutes=self.idle_lock.value(),
            outputs=[line.strip() for line in self.outputs.toPlainText().splitlines() if line.strip()],
            golden_dir=self.golden_dir.text().strip(),
            golden_every_min=self.golden_every.value(),
            drift_window=self.drift_window.value(),
            drift_reference_frames=self.reference_frames.value(),
            drift_input_k=self.input_k.value(),
            drift_ood_rate=self.ood_rate.value() / 100,
            drift_confidence_drop=self.confidence_drop.value() / 100,
            gate_data=self.gate_data.text().strip(),
            gate_recall_drop=self.gate_recall.value(),
            gate_unsure_rise=self.gate_unsure.value(),
            gate_latency_ratio=self.gate_latency.value(),
            shift_starts=[t.strip() for t in self.shift_starts.text().split(",") if t.strip()],
        ).validate()

    def save(self) -> bool:
        try:
            settings = self.form_settings()
            if self.context.accounts:
                # Who may change which field is decided below the screen, and audited there.
                change_settings(self.context.home, self.context.db_url, self.context.actor, settings)
                self.context.settings = settings
            else:
                self.context.save(settings)  # no accounts: as before (a wrong db_url can still be fixed)
        except InspectorError as exc:
            self._say(_readable(str(exc)), error=True)
            return False
        except OSError as exc:
            self._say(f"could not write {self.context.home / FILE}: {exc.strerror or exc}", error=True)
            return False
        self._say(
            f"Saved to {self.context.home / FILE}. Lines started from now on use these settings.", good=True
        )
        self.saved.emit()
        return True

    def test_connection(self) -> None:
        url = self.db_url.text().strip() or default_url(self.context.home)
        self.testing = True
        self.test_button.setEnabled(False)
        self.db_message.setStyleSheet("")
        self.db_message.setText(f"Connecting to {url} …")
        self.db_message.show()
        run_task(check_connection, url, on_done=self._connected, on_failed=self._not_connected)

    def _connected(self, description: str) -> None:
        self.testing = False
        self.test_button.setEnabled(True)
        self.db_message.setStyleSheet(GOOD_STYLE)
        self.db_message.setText(f"Connected, schema up to date: {description}")

    def _not_connected(self, message: str) -> None:
        self.testing = False
        self.test_button.setEnabled(True)
        self.db_message.setStyleSheet(ERROR_STYLE)
        self.db_message.setText(message)

    def _say(self, text: str, error: bool = False, good: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else GOOD_STYLE if good else "")
