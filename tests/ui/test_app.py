"""`make demo` as a user sees it: the app opens already running the simulated station."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")


def test_demo_window_opens_running_and_closing_keeps_every_result(qtbot, tmp_path):
    try:
        from data.elpv import elpv_root

        elpv_root()
    except Exception:
        pytest.skip("elpv-dataset not installed")
    from inspector.store import ResultFilter
    from ui.app import open_window

    window = open_window(tmp_path / "home", demo=True)
    qtbot.addWidget(window)
    live = window.live
    qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
    qtbot.waitUntil(lambda: int(live.counter_labels["total"].text() or 0) >= 10, timeout=60_000)
    assert window.tabs.tabText(0) == "Live" and window.tabs.count() == 5
    run_id = live.controller.pipeline.run_id
    window.close()
    assert not live.controller.running
    snap = live.controller.pipeline.stats.snapshot()
    from inspector.store import Ledger

    with Ledger(f"sqlite:///{tmp_path / 'home' / 'inspector.db'}") as ledger:
        written = ledger.count_results(ResultFilter(run_id=run_id))
        assert written == snap.written == snap.entered - snap.dropped
        assert ledger.runs()[0]["status"] == "finished"
