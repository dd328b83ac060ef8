"""Starting the desktop app: ``inspector gui`` and ``inspector demo`` (``make demo``)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from inspector.errors import InspectorError
from inspector.line import DEMO_STATION
from ui.context import AppContext
from ui.main_window import MainWindow


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LTM Inspector")
    app.setOrganizationName("ltm-inspector")
    return app


def open_window(home: Path, demo: bool = False) -> MainWindow:
    try:
        context = AppContext(home)
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
    window = open_window(home, demo)  # noqa: F841 - keep a reference while the loop runs
    return app.exec()


def run_demo(home: Path) -> None:
    raise SystemExit(run_app(home, demo=True))
