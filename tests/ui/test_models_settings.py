"""Models screen: deploy / roll back through the registry; Settings screen: validate, then save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QInputDialog

from inspector.registry import Registry
from inspector.rollout import audit_trail
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.models_view import ModelsView
from ui.settings_view import SettingsView

WAIT_MS = 180_000  # a job's own process starts slowly on a busy 2-core machine


@pytest.fixture
def home(tmp_path, tiny_vit_spec) -> Path:
    """Two registered versions, v1 deployed."""
    home = tmp_path / "home"
    registry = Registry(home)
    for name, merge in (("a", "ltm"), ("b", "none")):
        net = InspectionNet(tiny_vit_spec, 2, merge)
        if merge == "ltm":
            net.set_schedule([None, [3, 3], None, None])
        moved = (
            [{"block": 1, "grid": "4x4→3x3", "mask": "content", "moved": 0.25}] if merge == "ltm" else None
        )
        meta = meta_for(net, ["ok", "ng"], provenance={"merge_movement": moved} if moved else {})
        registry.add(save_bundle(net, meta, tmp_path / name), note=f"model {name}")
    registry.deploy("v1")
    return home


@pytest.fixture
def yes(monkeypatch) -> list[str]:
    """Every audited change is asked for a reason: answer with one."""
    asked: list[str] = []

    def answer(_parent, _title, text, *_args, **_kwargs):
        asked.append(text)
        return "line trial", True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    return asked


def _loaded(qtbot, view: ModelsView, before: int) -> None:
    qtbot.waitUntil(lambda: view.reloads > before, timeout=WAIT_MS)


def test_models_view_lists_deploys_and_rolls_back(qtbot, home, yes):
    view = ModelsView(AppContext(home))
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    assert view.table.rowCount() == 2
    ids = [view.table.item(row, 1).text() for row in range(2)]
    assert ids == ["v2", "v1"]  # newest first
    deployed_row = ids.index("v1")
    assert view.table.item(deployed_row, 0).text() == "● deployed"
    assert view.table.item(deployed_row, 1).font().bold()
    assert not view.table.item(1 - deployed_row, 1).font().bold()
    assert view.table.item(ids.index("v2"), 5).text() == "none"
    assert view.table.item(ids.index("v1"), 5).text().endswith("· 25% moved")
    assert view.selected_id() is None
    view.table.selectRow(ids.index("v1"))
    assert "merges moved from local pooling: block 1 4x4→3x3 25%" in view.details.text()

    view.table.selectRow(ids.index("v2"))
    count = view.reloads
    with qtbot.waitSignal(view.deployed_changed, timeout=WAIT_MS):
        view.deploy_button.click()
    assert "Deploy v2?" in yes[-1]
    assert Registry(home).deployed().id == "v2"
    _loaded(qtbot, view, count)
    assert view.deployed_id == "v2" and "v2 deployed" in view.message.text()

    count = view.reloads
    with qtbot.waitSignal(view.deployed_changed, timeout=WAIT_MS):
        view.rollback_button.click()
    assert Registry(home).deployed().id == "v1"
    _loaded(qtbot, view, count)
    assert view.deployed_id == "v1"
    trail = [event["message"] for event in audit_trail(view.context.db_url)]
    assert "rolled back from v2 to v1" in trail[0] and "line trial" in trail[0]
    assert "v2 deployed by" in trail[1] and "gate skipped (no held-out data)" in trail[1]

    # nothing earlier to roll back to: one line, no signal, deployment unchanged
    with qtbot.assertNotEmitted(view.deployed_changed, wait=200):
        view.rollback_button.click()
        qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert "nothing to roll back" in view.message.text()
    assert Registry(home).deployed().id == "v1"


def test_a_blocked_gate_asks_to_override_and_audits_it(qtbot, tmp_path, tiny_vit_spec, monkeypatch):
    from conftest import make_station
    from tests_support import always_bundle

    station = make_station(tmp_path / "station", classes=("ok", "ng"), per_class=10)
    home = tmp_path / "gated"
    registry = Registry(home)
    for name, favourite in (("good", "ok"), ("bad", "ng")):
        registry.add(always_bundle(tmp_path / name, tiny_vit_spec, ["ok", "ng"], favourite))
    registry.deploy("v1")
    context = AppContext(home)
    context.settings.gate_data = str(station)
    context.settings.gate_latency_ratio = 1000.0  # the gate's logic here, not this machine's noise
    asked: list[str] = []

    def answer(_parent, title, text, *_a, **_k):
        asked.append(title)
        return ("" if len(asked) == 1 else "trial on lane 2"), True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    view = ModelsView(context)
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    view.table.selectRow(0)  # v2, newest first
    with qtbot.waitSignal(view.deployed_changed, timeout=2 * WAIT_MS):
        view.deploy_button.click()
    assert asked == ["Deploy model", "Offline gate blocked the deploy"]
    assert Registry(home).deployed().id == "v2"
    trail = [event["message"] for event in audit_trail(context.db_url)]
    assert "overridden" in trail[0] and "trial on lane 2" in trail[0]
    assert "v2 blocked by the offline gate" in trail[1]


def test_declined_confirmation_changes_nothing(qtbot, home, monkeypatch):
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("", False))
    view = ModelsView(AppContext(home))
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    view.table.selectRow(0)
    with qtbot.assertNotEmitted(view.deployed_changed, wait=200):
        view.deploy_button.click()
    assert Registry(home).deployed().id == "v1"


def test_add_bundle_and_bad_bundle(qtbot, home, tmp_path):
    view = ModelsView(AppContext(home))
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    (tmp_path / "empty").mkdir()
    view.add_path(tmp_path / "empty")
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert "model.json: missing" in view.message.text() and "\n" not in view.message.text()
    count = view.reloads
    view.add_path(tmp_path / "a")
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT_MS)
    assert "Added v3" in view.message.text()
    _loaded(qtbot, view, count)
    assert view.table.rowCount() == 3


def test_settings_save_writes_json_and_rejects_bad_values(qtbot, tmp_path):
    context = AppContext(tmp_path / "home")
    context.home.mkdir(parents=True)
    view = SettingsView(context)
    qtbot.addWidget(view)
    path = context.home / "settings.json"

    view.unsure_below.setText("1.5")
    assert not view.save()
    assert "UNSURE below confidence must be between 0 and 1" in view.message.text()
    assert not path.exists()

    view.unsure_below.setText("abc")
    assert not view.save()
    assert "must be a number" in view.message.text()

    view.unsure_below.setText("0,62")  # a decimal comma is what many plants type
    view.cycle_ms.setText("-5")
    assert not view.save()
    assert "Cycle budget must be positive" in view.message.text()

    view.cycle_ms.setText("120")
    view.station.setText("press-7")
    view.operator.setText("Ana")
    view.ok_every.setValue(10)
    view.cap_gib.setValue(0.0)
    assert not view.save()
    assert "Size cap must be positive" in view.message.text()
    view.cap_gib.setValue(5.5)
    view.shift_starts.setText("6:00, 18:00")
    assert not view.save()
    assert "Shifts start at must be a list of 1 to 6 local times" in view.message.text()
    view.shift_starts.setText("06:00, 18:00")
    view.gate_data.setText(str(tmp_path / "station"))
    view.gate_recall.setValue(0.05)
    assert view.save(), view.message.text()
    saved = json.loads(path.read_text())
    assert saved["unsure_below"] == 0.62 and saved["cycle_budget_ms"] == 120.0
    assert saved["station"] == "press-7" and saved["operator"] == "Ana"
    assert saved["archive_ok_every"] == 10 and saved["archive_cap_gib"] == 5.5
    assert saved["ood_energy_above"] is None and saved["source"] == "sim"  # untouched fields kept
    assert saved["shift_starts"] == ["06:00", "18:00"] and saved["gate_recall_drop"] == 0.05
    assert saved["gate_data"] == str(tmp_path / "station") and saved["gate_latency_ratio"] == 1.25
    assert context.settings.station == "press-7"
    assert AppContext(context.home).settings.unsure_below == 0.62


def test_settings_test_connection(qtbot, tmp_path):
    context = AppContext(tmp_path / "home")
    context.home.mkdir(parents=True)
    view = SettingsView(context)
    qtbot.addWidget(view)
    view.test_connection()
    qtbot.waitUntil(lambda: not view.testing, timeout=WAIT_MS)
    assert "Connected" in view.db_message.text()
    view.db_url.setText("nosuchdriver://x")
    view.test_connection()
    qtbot.waitUntil(lambda: not view.testing, timeout=WAIT_MS)
    assert "Connected" not in view.db_message.text() and view.db_message.text()


def test_speed_on_this_pc_shows_each_runtime_of_the_selected_version(qtbot, home):
    """The Models screen's table is ``inspector models bench``'s (issue 25 item 4); the int8 row
    needs the station the version was trained on, and says so when it cannot be read."""
    view = ModelsView(AppContext(home))
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    view.speed_button.click()
    assert "Select a version" in view.message.text() and view.bench is None
    view.table.selectRow(1)  # v1: its bundle names no station
    view.speed_button.click()
    qtbot.waitUntil(lambda: view.bench is not None, timeout=WAIT_MS)
    shown = [view.speed_table.item(row, 0).text() for row in range(view.speed_table.rowCount())]
    assert shown[:2] == ["PyTorch", "ONNX Runtime"] and view.speed_table.isVisibleTo(view)
    assert view.speed_table.item(1, 3).text() == "1.00×"
    note = view.speed_note.text()
    assert "ONNX Runtime int8 not timed: int8 not used: int8 needs the station's images" in note


def test_models_view_shows_the_score_on_every_station_a_version_serves(qtbot, tmp_path, tiny_vit_spec):
    """Issue 26: a version fine-tuned for lamp2 still serves elpv; the screen showed one number."""
    from ui.models_view import COLUMNS

    entry = dict(name="elpv", data="elpv", fingerprint="1557858fcc3020af", split="val", n=466,
                 macro_f1=0.884, accuracy=0.9, role="trained")  # fmt: skip
    lamp2 = {**entry, "name": "lamp2", "data": "/plant/lamp2", "split": "test", "n": 40, "macro_f1": 0.818,
             "role": "adapted"}  # fmt: skip
    net = InspectionNet(tiny_vit_spec, 2, "none")
    meta = meta_for(net, ["ok", "ng"], provenance={"stations": [entry, lamp2]})
    home = tmp_path / "home"
    Registry(home).deploy(str(save_bundle(net, meta, tmp_path / "a")))
    view = ModelsView(AppContext(home))
    qtbot.addWidget(view)
    _loaded(qtbot, view, 0)
    cell = view.table.item(0, COLUMNS.index("Stations (macro-F1)"))
    assert cell.text() == "elpv 0.884 (val), lamp2 0.818 (test)"
    assert "lamp2: macro-F1 0.818, accuracy 0.900 on 40 test images (fine-tuned for" in cell.toolTip()
    assert "serves elpv 0.884 (val), lamp2 0.818 (test)" in view.deployed_label.text()
    view.table.selectRow(0)
    assert "validated on elpv: macro-F1 0.884" in view.details.text()
