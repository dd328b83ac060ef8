"""The Live screen's drift watch panel, offscreen: series drawn from a real run, golden parts checked."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("pytestqt")

from conftest import make_station
from tests_support import always_bundle

from inspector.line.drift import Band, DriftSnapshot
from ui.context import AppContext
from ui.drift_panel import ROWS, DriftPanel
from ui.live_view import LiveView


@pytest.fixture
def live(qtbot, tmp_path):
    view = LiveView(AppContext(tmp_path / "home"))
    qtbot.addWidget(view)
    view.resize(1366, 768)
    view.show()
    yield view
    view.controller.stop_and_wait()
    view.context.close()


def test_the_panel_paints_series_bands_and_alarms(qtbot):
    panel = DriftPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 200)
    panel.show()
    series = {name: [(i, 100.0 + i) for i in range(1, 50)] for name, _, _ in ROWS}
    snapshot = DriftSnapshot(
        series,
        {"brightness": Band(100.0, 90.0, 110.0), "unsure_rate": Band(None, None, 0.3)},
        ["brightness"],
        "no training reference: watching against the run's first 200 frames",
        None,
        "idle",
        0.21,
        49,
    )
    panel.show_snapshot(snapshot)
    panel.grab()  # paints every row (band, centre line, series) without error
    assert panel.sparklines.latest("brightness") == 149.0
    assert "the run's first 200 frames" in panel.reference.text()
    assert "0.21 ms per frame" in panel.reference.text()
    assert panel.golden.text().startswith("Golden parts: not checked")


def test_a_live_run_fills_the_panel_and_the_button_checks_golden_parts_between_parts(
    qtbot, live, tmp_path, tiny_vit_spec
):
    golden = make_station(tmp_path / "golden", per_class=2, seed=5)
    model = always_bundle(tmp_path / "model", tiny_vit_spec, ["ok", "scratch", "spot"], "ok")
    station = make_station(tmp_path / "station", per_class=10)
    live.context.settings = replace(live.context.settings, golden_dir=str(golden), drift_reference_frames=20)
    live.start(source=f"sim:{station}?fps=40&split=all", model=str(model))
    qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
    qtbot.waitUntil(
        lambda: live.drift.sparklines.snapshot is not None
        and len(live.drift.sparklines.snapshot.series["brightness"]) >= 5,
        timeout=60_000,
    )
    assert "no training reference" in live.drift.reference.text()

    live.drift.golden_button.click()
    qtbot.waitUntil(lambda: "disagree with their folder label" in live.drift.golden.text(), timeout=60_000)
    assert "baseline recorded for 6 part(s)" in live.drift.golden.text()
    qtbot.waitUntil(lambda: live.banner.isVisible() and "golden parts" in live.banner.text(), timeout=30_000)


def test_without_a_running_line_the_button_checks_the_chosen_model(qtbot, live, tmp_path, tiny_vit_spec):
    golden = make_station(tmp_path / "golden", per_class=2, seed=5)
    model = always_bundle(tmp_path / "model", tiny_vit_spec, ["ok", "scratch", "spot"], "ok")
    live.context.settings = replace(live.context.settings, golden_dir=str(golden))
    live.model.addItem("test model", str(model))
    live.model.setCurrentIndex(live.model.count() - 1)
    live.drift.golden_button.click()
    qtbot.waitUntil(lambda: live.drift.golden_button.isEnabled(), timeout=60_000)
    assert "baseline recorded for 6 part(s)" in live.drift.golden.text()
    events = live.context.ledger().events(kinds=["drift_golden"])
    assert len(events) == 1 and events[0]["level"] == "alarm"
