"""Page 4 of the fine-tune wizard: the training itself (curves, log, stop or cancel), and what
it says about its place behind a running line."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from inspector.jobs import finetune as jobs_finetune
from inspector.training.finetune import FinetuneSummary
from inspector.training.loop import EpochRecord
from ui.finetune.common import ERROR_STYLE, GOOD_STYLE, WARN_STYLE, new_canvas, set_status
from ui.finetune.state import FinetuneState
from ui.workers import JobTask, YieldState


class TrainPage(QWizardPage):
    """4 · Training: progress, live curves, the log; stop early (keep best) or Cancel (discard)."""

    def __init__(self, state: FinetuneState) -> None:
        super().__init__()
        self.state = state
        self.setTitle("Training")
        self.setSubTitle(
            "Runs on this computer, behind the line: the line keeps running on the deployed model "
            "and comes first. Cancel discards this run; Back stops it so you can change the settings."
        )
        self.task: JobTask | None = None
        self.history: list[EpochRecord] = []
        self.base_val: float | None = None  # the bar every epoch had to beat (known when training ends)
        self.failed = ""
        self._run = 0
        self._started = 0.0
        self._budget: float | None = None

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.line_note = QLabel("")
        self.line_note.setWordWrap(True)
        self.line_note.setMinimumHeight(2 * self.line_note.fontMetrics().lineSpacing() + 14)
        self.line_note.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("epoch %v of %m")
        self.clock = QLabel("")
        self.stop_button = QPushButton("Stop now — keep the best epoch")
        self.stop_button.setToolTip("Ends training after the current step; the best epoch so far is kept")
        self.stop_button.clicked.connect(self._stop_now)
        self.canvas = new_canvas(7.0, 2.6)
        self.loss_ax, self.f1_ax = self.canvas.figure.subplots(1, 2)
        self.log = QListWidget()
        self.log.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.log.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log.setMinimumHeight(90)
        self.log.setMaximumHeight(160)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.clock)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.line_note)
        layout.addWidget(self.canvas, 3)
        layout.addWidget(self.log, 1)
        self._draw()

    @property
    def summary(self) -> FinetuneSummary | None:
        """The current run's summary once it has finished (``None`` until then)."""
        return self.state.summary

    @property
    def running(self) -> bool:
        return (
            self.task is not None
            and not self.task.finished.is_set()
            and self.summary is None
            and not self.failed
        )

    def initializePage(self) -> None:  # Qt's name
        self.start()

    def cleanupPage(self) -> None:  # Qt's name
        """Back: stop this run and throw its files away (Next starts a fresh one)."""
        self.cancel()
        self.state.discard_staging()

    def start(self) -> None:
        state = self.state
        check = state.check
        assert check is not None
        recipe = state.recipe
        self.cancel()  # a run still going stops before its folder goes
        staging = state.new_staging()
        self._run += 1
        state.summary, self.history, self.failed, self.base_val = None, [], "", None
        self._budget = state.budget_seconds
        self._started = time.monotonic()
        self.log.clear()
        self.progress.setRange(0, recipe.epochs)
        self.progress.setValue(0)
        self.stop_button.setEnabled(True)
        presets = state.presets
        set_status(
            self.status,
            f"Loading the station's images and measuring the base model … then {recipe.epochs} epoch(s), "
            f"training {recipe.trainable}, augmentation: {', '.join(presets) or 'default only'}.",
        )
        self._draw()
        self.task = state.run_job(
            jobs_finetune.run_finetune,
            check.base,
            check.station,
            staging.bundle,
            presets,
            recipe,
            self._budget,
            hold=staging.in_use(),
            # A run abandoned by Back may still answer: only the current run's answers count.
            on_done=lambda summary, run=self._run: self._done(summary) if run == self._run else None,
            on_failed=lambda message, run=self._run: self._failed(message) if run == self._run else None,
            on_progress=lambda item, run=self._run: self._progress(item) if run == self._run else None,
        )
        self._timer.start()
        self._tick()
        self.completeChanged.emit()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._timer.stop()

    def _stop_now(self) -> None:
        if self.task is not None:
            self.task.stop()
        self.stop_button.setEnabled(False)
        set_status(self.status, "Stopping after the current step; the best epoch so far will be kept …")

    def _progress(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "log":
            self.log.addItem(str(value))
            self.log.scrollToBottom()
        elif kind == "epoch":
            self.history.append(value)
            self.progress.setValue(min(self.progress.maximum(), value.epoch + 1))
            best = max(self.history, key=lambda r: r.val_macro_f1)
            set_status(
                self.status,
                f"Epoch {value.epoch + 1}: loss {value.loss:.3f}, "
                f"validation macro-F1 {value.val_macro_f1:.3f} "
                f"(best so far {best.val_macro_f1:.3f}, epoch {best.epoch + 1}).",
            )
            self._draw()

    def _done(self, summary: FinetuneSummary) -> None:
        self._timer.stop()
        self._tick()
        self.state.summary = summary
        self.stop_button.setEnabled(False)
        outcome = summary.outcome
        self.base_val = None if outcome.start_val is None else float(outcome.start_val["macro_f1"])
        against = "" if self.base_val is None else f"; the base model {self.base_val:.3f}"
        self._draw()
        if outcome.best_epoch < 0:
            text = (
                f"Finished in {summary.seconds:.0f} s: no epoch beat the base model on validation, so the "
                "new version keeps the base weights (with thresholds recalibrated for this station)."
            )
            style = WARN_STYLE
        else:
            text = (
                f"Finished in {summary.seconds:.0f} s: kept epoch {outcome.best_epoch + 1} of "
                f"{len(outcome.history)} (validation macro-F1 {outcome.best_val['macro_f1']:.3f}{against}). "
                "Next: before and after on the held-out images."
            )
            style = GOOD_STYLE
        set_status(self.status, text, style)
        self.completeChanged.emit()

    def _failed(self, message: str) -> None:
        self._timer.stop()
        self.failed = message
        self.stop_button.setEnabled(False)
        set_status(
            self.status, f"Training failed: {message}. Back to change the settings, or Cancel.", ERROR_STYLE
        )
        self.completeChanged.emit()

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        text = f"{_clock(elapsed)} elapsed"
        state = self.task.state() if self.task is not None else None
        if self._budget and self.running:
            held = state.paused_s if state is not None else 0.0
            text += f" · {_clock(max(0.0, self._budget - elapsed + held))} left of the budget"
        self.clock.setText(text)
        text = yield_text(state, self.running) if state is not None else ""
        self.line_note.setText(text)
        self.line_note.setVisible(bool(text))
        if state is not None:
            self.line_note.setStyleSheet(PAUSED_STYLE if state.paused and self.running else YIELDING_STYLE)

    def _draw(self) -> None:
        epochs = [r.epoch + 1 for r in self.history]
        for ax, values, title, colour in (
            (self.loss_ax, [r.loss for r in self.history], "Training loss", "#1f77b4"),
            (self.f1_ax, [r.val_macro_f1 for r in self.history], "Validation macro-F1", "#1b873f"),
        ):
            ax.clear()
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if values:
                ax.plot(epochs, values, "o-", color=colour)
                ax.set_xlim(0.5, max(self.progress.maximum(), 1) + 0.5)
            else:
                ax.text(
                    0.5, 0.5, "waiting for the first epoch", ha="center", va="center", transform=ax.transAxes
                )
        if self.base_val is not None:
            self.f1_ax.axhline(self.base_val, ls="--", color="#6b6b6b", label="base model")
            self.f1_ax.legend(loc="lower right")
        self.f1_ax.set_ylim(0, 1.02)
        self.canvas.draw_idle()

    def isComplete(self) -> bool:  # Qt's name
        return self.summary is not None


def yield_text(state: YieldState, running: bool) -> str:
    """What the training page says about the training's place behind the line."""
    cores = f"{state.threads} core" + ("" if state.threads == 1 else "s")
    how = "low priority (starting up)" if state.priority == "starting" else state.priority
    held = f" Paused {state.pauses}× so far, {_clock(state.paused_s)} in all." if state.pauses else ""
    if not running:
        return f"The line held training {state.pauses}×, {_clock(state.paused_s)} in all." if held else ""
    if state.paused and state.line_overloaded:
        return (
            "Paused for the line: it overruns even while training waits (it is short of CPU, or its "
            "cycle budget is too tight). Training continues once the line keeps its cycle — it may "
            f"have to wait until the line stops.{held}"
        )
    if state.paused:
        return (
            "Paused for the line: it reported an overrun (a part judged later than its cycle). "
            f"Training continues in {_clock(state.resume_in_s)} if the line keeps its cycle.{held}"
        )
    if state.line_running:
        return (
            f"The line comes first: training runs in a background process at {how} on {cores}, "
            f"and pauses whenever the line reports an overrun.{held}"
        )
    return (
        f"Training runs in a background process on {cores}. If a line starts meanwhile, training drops "
        "below it and pauses at its overruns."
    )


NOTE_STYLE = "padding: 6px 10px; border-left: 4px solid {edge}; background: {fill}; color: {ink};"
YIELDING_STYLE = NOTE_STYLE.format(edge="#1f77b4", fill="#eef3f8", ink="#22313f")
PAUSED_STYLE = NOTE_STYLE.format(edge="#c79100", fill="#fff4ce", ink="#4d3900")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
