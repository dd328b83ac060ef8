"""The idle lock's watch: input re-arms it, 0 minutes never fires, a pause holds it, expiry emits once."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit

from inspector.settings import Settings
from ui.context import AppContext
from ui.idle_lock import IdleWatch
from ui.settings_view import SettingsView


def _key(widget) -> None:
    QApplication.sendEvent(
        widget, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_A, Qt.KeyboardModifier.NoModifier)
    )


def test_input_re_arms_and_silence_emits_idle(qtbot):
    minutes = [1]
    watch = IdleWatch(lambda: minutes[0])
    watch.ms_per_minute = 30  # a "minute" of 30 ms: what is tested is the wiring, not the clock
    edit = QLineEdit()
    qtbot.addWidget(edit)
    watch.timer.stop()
    _key(edit)
    assert watch.inputs == 1 and watch.timer.isActive()
    with qtbot.waitSignal(watch.idle, timeout=5_000):
        pass
    assert not watch.timer.isActive()  # single shot: one lock, not one per interval
    watch.stop()
    _key(edit)
    assert watch.inputs == 1  # no longer watching


def test_zero_minutes_never_locks_and_a_pause_ignores_input(qtbot):
    minutes = [0]
    watch = IdleWatch(lambda: minutes[0])
    edit = QLineEdit()
    qtbot.addWidget(edit)
    _key(edit)  # 0 minutes (no accounts): no input passes through the watch at all
    assert watch.inputs == 0 and not watch.timer.isActive() and not watch.watching
    minutes[0] = 15
    watch.arm()  # Settings saved
    _key(edit)
    assert watch.inputs == 1 and watch.watching and watch.timer.isActive()
    watch.pause()
    _key(edit)  # the login's own typing while locked
    assert watch.inputs == 1 and not watch.timer.isActive() and not watch.watching
    watch.resume()
    assert watch.timer.isActive() and watch.timer.interval() == 15 * 60_000
    watch.stop()
    assert not watch.watching


def test_settings_screen_edits_the_idle_lock(qtbot, tmp_path):
    context = AppContext(tmp_path)
    view = SettingsView(context)
    qtbot.addWidget(view)
    assert view.idle_lock.value() == Settings().idle_lock_minutes == 15
    view.idle_lock.setValue(0)
    assert view.save()
    assert AppContext(tmp_path).settings.idle_lock_minutes == 0
    assert view.idle_lock.text() == "never"
