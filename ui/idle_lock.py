"""The idle lock: after N minutes without keyboard or mouse input the app asks for the login again.

A signed-in person who walks away from the line PC must not leave their role (QA's overrides, an
engineer's deploys) to whoever comes next. Qt has no "user idle" signal, so an application-wide
event filter restarts one single-shot timer on every input event; when it fires, ``idle`` is
emitted and the main window covers itself with the login. Nothing here stops or slows the line:
it only watches input.

The minutes are read from a callable each time the timer is armed (at every input, and when
Settings are saved), so a changed value takes effect at once (0: never lock).

The filter is installed only while a countdown runs: with no accounts (0 minutes) or while locked,
no event of the application passes through Python. A Python event filter on every event is not
free, and it gives the garbage collector a chance to delete a Qt object in the middle of that
object's own event dispatch (a segfault seen once in the UI tests, collecting inside this filter).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.TabletPress,
    }
)
MS_PER_MINUTE = 60_000


class IdleWatch(QObject):
    """Emits ``idle`` once after ``minutes()`` without input; re-armed by the next input or ``arm``."""

    idle = Signal()

    def __init__(self, minutes: Callable[[], int], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._minutes = minutes
        self.paused = False  # while the login covers the window, its own typing must not re-arm
        self.inputs = 0  # input events seen (lets tests see that input re-arms the timer)
        self.ms_per_minute = MS_PER_MINUTE  # tests shorten a minute; nothing else changes it
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._expired)
        self.watching = False  # the application-wide input filter is installed
        self.arm()

    def arm(self) -> None:
        """(Re)start the countdown with the current minutes; 0 minutes: no countdown, no watching."""
        minutes = self._minutes()
        if self.paused or minutes <= 0:
            self.timer.stop()
            self._watch(False)
            return
        self._watch(True)
        self.timer.start(minutes * self.ms_per_minute)

    def _watch(self, on: bool) -> None:
        app = QApplication.instance()
        if app is None or on == self.watching:
            return
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
        self.watching = on

    def pause(self) -> None:
        self.paused = True
        self.timer.stop()
        self._watch(False)

    def resume(self) -> None:
        self.paused = False
        self.arm()

    def stop(self) -> None:
        """No more watching (the window closes)."""
        self.pause()

    def _expired(self) -> None:
        if not self.paused:
            self.idle.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt's name
        if event.type() in INPUT_EVENTS and not self.paused:
            self.inputs += 1
            self.arm()
        return False
