"""Settings screen: the line outputs (PLC, MES) are checked on Save and kept in settings.json."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")

from ui.context import AppContext
from ui.settings_view import SettingsView


def test_settings_line_outputs_are_checked_and_saved(qtbot, tmp_path):
    context = AppContext(tmp_path / "home")
    context.home.mkdir(parents=True)
    view = SettingsView(context)
    qtbot.addWidget(view)
    path = context.home / "settings.json"
    view.outputs.setPlainText("mqtt://ana:secret@broker:99999/plant\n")
    assert not view.save()
    message = view.message.text()
    assert "port" in message and "secret" not in message and "\n" not in message and not path.exists()
    view.outputs.setPlainText("mqtt://broker/plant\n\n  modbus://127.0.0.1:5020?reject=NG  \n")
    assert view.save(), view.message.text()
    assert json.loads(path.read_text())["outputs"] == [
        "mqtt://broker/plant",
        "modbus://127.0.0.1:5020?reject=NG",
    ]
    assert AppContext(context.home).settings.outputs == context.settings.outputs
    view.load()
    assert view.outputs.toPlainText() == "mqtt://broker/plant\nmodbus://127.0.0.1:5020?reject=NG"
