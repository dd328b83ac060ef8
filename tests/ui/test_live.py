"""The operator's Live screen, driven offscreen: a real run moves the counters, alarms show."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from inspector.store import ResultFilter
from ui.context import AppContext
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


def test_a_run_moves_the_counters_and_is_all_in_the_ledger(qtbot, live, tiny_station):
    live.overlay.setChecked(True)
    live.start(source=f"{tiny_station}?fps=40&loop=1", model="demo")
    qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
    qtbot.waitUntil(lambda: int(live.counter_labels["total"].text()) >= 15, timeout=60_000)
    assert live.verdict.text() in ("OK", "NG", "UNSURE")
    assert live.last_outcome is not None and live.last_outcome.merge_map is not None
    assert live.frame.pixmap() is not None and not live.frame.pixmap().isNull()
    with qtbot.waitSignal(live.controller.stopped, timeout=60_000) as stopped:
        live.toggle()
    snapshot = stopped.args[0]
    assert snapshot.entered == snapshot.written + snapshot.dropped
    ledger = live.context.ledger()
    assert ledger.count_results(ResultFilter(run_id=live.controller.pipeline.run_id)) == snapshot.written
    assert live.start_button.text() == "Start"


def test_the_overlay_shows_the_merge_map_with_the_line_on_onnx(qtbot, live, tiny_station):
    """The Live screen used to stay on PyTorch for the map; it now runs what ``inspector run``
    runs (``--backend auto``) and the map comes out of the ONNX graph (issue 25)."""
    import numpy as np

    live.overlay.setChecked(True)
    live.start(source=f"{tiny_station}?fps=40&loop=1", model="demo")
    qtbot.waitUntil(lambda: live.controller.running, timeout=90_000)
    assert live.controller.pipeline.engine.backend == "onnx"
    assert "inference: ONNX Runtime" in live.detail.text()  # the operator sees which runtime judges
    qtbot.waitUntil(lambda: live.last_outcome is not None, timeout=60_000)
    outcome = live.last_outcome
    assert outcome.merge_map is not None and np.isfinite(outcome.merge_map).all()
    assert outcome.merge_map.ndim == 2 and (outcome.merge_map > 0).all()
    assert not live.frame.pixmap().isNull()


def test_new_shift_resets_the_counters_not_the_ledger(qtbot, live, tiny_station):
    live.start(source=f"{tiny_station}?fps=40&loop=1", model="demo")
    qtbot.waitUntil(lambda: int(live.counter_labels["total"].text() or 0) >= 5, timeout=60_000)
    live.reset_counters()
    assert int(live.counter_labels["total"].text()) < 5


def test_a_source_that_cannot_open_shows_the_alarm_banner(qtbot, live, tmp_path):
    live.start(source=str(tmp_path / "no-such-folder"), model="demo")
    qtbot.waitUntil(lambda: live.banner.isVisible(), timeout=30_000)
    assert "no such folder" in live.banner.text()
    assert live.start_button.isEnabled() and live.start_button.text() == "Start"


def test_the_simulated_station_condition_switches_live(qtbot, live, tiny_station):
    live.start(source=f"sim:{tiny_station}?fps=40&split=all", model="demo")
    qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
    assert live.condition.isEnabled()
    live.condition.setCurrentIndex(1)
    assert live.controller.pipeline.source.profile == "lighting"
    qtbot.waitUntil(
        lambda: live.last_outcome is not None and live.last_outcome.frame.meta.get("profile") == "lighting",
        timeout=30_000,
    )


def test_an_output_whose_broker_is_away_shows_buffering_and_raises_the_alarm(qtbot, live, tiny_station):
    from dataclasses import replace

    from ledger_support import free_port

    port = free_port()  # nothing listens there: the broker is away
    live.context.settings = replace(live.context.settings, outputs=[f"mqtt://127.0.0.1:{port}/plant"])
    live.start(source=f"{tiny_station}?fps=40&loop=1", model="demo")
    qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
    qtbot.waitUntil(
        lambda: live.outputs.count() == 1 and "buffering" in live.outputs.item(0).text(), timeout=60_000
    )
    assert live.outputs.isVisible() and f"127.0.0.1:{port}/plant" in live.outputs.item(0).text()
    qtbot.waitUntil(lambda: live.banner.isVisible() and "buffering" in live.banner.text(), timeout=60_000)
    qtbot.waitUntil(lambda: int(live.counter_labels["total"].text()) >= 5, timeout=60_000)  # the line goes on
    with qtbot.waitSignal(live.controller.stopped, timeout=60_000):
        live.toggle()
    events = live.context.ledger().events(run_id=live.controller.pipeline.run_id)
    assert "output_down" in {e["kind"] for e in events}
