"""Starting the desktop app: ``inspector gui`` and ``inspector demo`` (``make demo``)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from inspector.errors import InspectorError
from inspector.line.build import DEMO_STATION
from ui.context import AppContext
from ui.main_window import MainWindow
from ui.session import sign_in_at_start

_KEEP: list[tuple[object, ...]] = []


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LTM Inspector")
    app.setOrganizationName("ltm-inspector")
    return app


def open_window(home: Path, demo: bool = False) -> MainWindow:
    try:
        context = AppContext(home)
        # Once accounts exist, nobody gets the window without a login; without them, nothing is asked.
        if sign_in_at_start(context) is None:
            context.close()
            raise SystemExit(0)
    except InspectorError as exc:
        QMessageBox.critical(None, "LTM Inspector", str(exc))
        raise SystemExit(2) from None
    window = MainWindow(context)
    window.resize(1600, 950)
    window.show()
    if demo:
        # The demo is already running when the window appears: the simulated ELPV station.
        QTimer.singleShot(0, lambda: window.live.start(source="sim", model="demo", station=DEMO_STATION))
    return window


def run_app(home: Path, demo: bool = False) -> int:
    app = _application()
    window = open_window(home, demo)
    quit_on_signals(app, window)
    return app.exec()


def quit_on_signals(app: QApplication, window: MainWindow) -> None:
    """SIGTERM and SIGINT (logout, shutdown, Ctrl-C in the terminal) end the app as its close
    button does, like ``inspector run``: the line stops, what is queued is judged and written, and
    the run is marked finished.

    Python runs its signal handlers only when the interpreter gets control, and Qt's event loop
    is C++: the handlers' wake-up byte goes to a socket that a ``QSocketNotifier`` watches, so a
    signal is acted on at once even when the app is idle.
    """
    receiver, sender = socket.socketpair()
    receiver.setblocking(False)
    sender.setblocking(False)
    try:
        signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main thread, or a platform without it
        receiver.close()
        sender.close()
        timer = QTimer(app)  # then a tick that lets the interpreter run now and then
        timer.timeout.connect(lambda: None)
        timer.start(250)
        keep: tuple[object, ...] = (timer,)
    else:
        notifier = QSocketNotifier(receiver.fileno(), QSocketNotifier.Type.Read, app)
        notifier.activated.connect(lambda *_: _drain(receiver))
        keep = (receiver, sender, notifier)
    _KEEP.append(keep)  # the sockets and the notifier live as long as the app

    def stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        window.statusBar().showMessage(f"{name}: stopping the line and writing what is queued …")
        QTimer.singleShot(0, lambda: _close(app, window))

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


def _drain(receiver: socket.socket) -> None:
    try:
        while receiver.recv(64):
            pass
    except OSError:
        pass


def _close(app: QApplication, window: MainWindow) -> None:
    for widget in app.topLevelWidgets():  # a wizard or a dialog first; the window's close stops the line
        if widget is not window and widget.isVisible():
            widget.close()
    window.close()
    app.quit()


def run_demo(home: Path) -> None:
    raise SystemExit(run_app(home, demo=True))
