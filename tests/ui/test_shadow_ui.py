"""Shadow mode in the app, offscreen: Review's "Disagreements (shadow)" filter with both answers in
the part's panel, the Models screen's side-by-side record with promote/discard, the Live line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from ledger_support import record
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QInputDialog

from inspector.registry import Registry
from inspector.store import Ledger, ResultFilter, ShadowRecord, ShadowUpdate
from models.bundle import meta_for, read_meta, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.models_view import ModelsView
from ui.review import PAGE, ReviewView

NOW = datetime.now(timezone.utc).replace(microsecond=0)
DISAGREED = {3: ("OK", "ok", 0.7, "NG", "scratch", 0.81), 7: ("NG", "scratch", 0.7, "OK", "ok", 0.66)}
WAIT_MS = 180_000


def _seed(url: str, candidate_sha: str = "b" * 64, candidate_name: str = "v2") -> None:
    """20 results of one run; a shadow candidate that judged 18 of them and disagreed on two."""
    with Ledger(url) as ledger:
        station = ledger.ensure_station("line-1")
        deployed = ledger.ensure_model_version("a" * 64, "v1", {}, {})
        candidate = ledger.ensure_model_version(candidate_sha, candidate_name, {}, {})
        run = ledger.start_run(station, deployed, "sim", lot="L1")
        records = []
        for i in range(20):
            verdict, label = ("NG", "scratch") if i == 7 else ("OK", "ok")
            rec = record(run, i, 0, verdict, label)
            rec.captured_at = NOW - timedelta(minutes=i + 1)
            records.append(rec)
        shadow = ledger.start_shadow(run, candidate)
        disagreements = [
            ShadowRecord(i, NOW - timedelta(minutes=i + 1), *answers) for i, answers in DISAGREED.items()
        ]
        ledger.add_results(
            records,
            ShadowUpdate(
                shadow,
                judged=18,
                agreed=16,
                shed=2,
                confusion={
                    "labels": {"ok": {"ok": 16, "scratch": 1}, "scratch": {"ok": 1}},
                    "verdicts": {"OK": {"OK": 16, "NG": 1}, "NG": {"OK": 1}},
                },
                disagreements=disagreements,
            ),
        )


def _settle(qtbot, view: ReviewView) -> None:
    qtbot.waitUntil(
        lambda: (
            view.model.total is not None
            and not view.model.loading
            and view.model.rowCount() == min(view.model.total, PAGE)
        ),
        timeout=20_000,
    )


def test_review_filters_disagreements_and_shows_both_answers(qtbot, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _seed(url)
    context = AppContext(tmp_path / "home")
    context.settings.db_url = url
    view = ReviewView(context)
    qtbot.addWidget(view)
    view.resize(1366, 768)
    view.show()
    try:
        _settle(qtbot, view)
        assert view.model.total == 1  # the QA queue: NG + UNSURE, not reviewed
        view.shadow_filter.setCurrentIndex(view.shadow_filter.findText("Disagreements (shadow)"))
        _settle(qtbot, view)
        # Every verdict: the deployed OK that the candidate calls NG is a disagreement too.
        assert view.verdict.currentText() == "All verdicts"
        assert view.model.total == len(DISAGREED)
        assert {view.model.row_at(i)["frame_index"] for i in range(2)} == set(DISAGREED)
        for number in range(2):
            view.select(number)
            row = view.selected_row()
            assert view.shadow_answer.isVisible()
            d_verdict, d_label, _, verdict, label, _ = DISAGREED[row["frame_index"]]
            text = view.shadow_answer.text()
            assert text.startswith(f"v2 said {verdict} · {label}")
            assert f"deployed said {d_verdict} · {d_label}" in text
            assert view.detail_verdict.text() == row["verdict"] == d_verdict  # the deployed verdict rules
        view.shadow_filter.setCurrentIndex(0)
        _settle(qtbot, view)
        assert view.model.total == 20
        plain = next(i for i in range(20) if view.model.row_at(i)["frame_index"] not in DISAGREED)
        view.select(plain)
        assert not view.shadow_answer.isVisible()
    finally:
        view.close()
        QThreadPool.globalInstance().waitForDone(30_000)
        context.close()


@pytest.fixture
def home(tmp_path, tiny_vit_spec) -> Path:
    home = tmp_path / "home"
    registry = Registry(home)
    for name in ("a", "b"):
        net = InspectionNet(tiny_vit_spec, 2, "none")
        registry.add(save_bundle(net, meta_for(net, ["ok", "scratch"]), tmp_path / name))
    registry.deploy("v1")
    return home


def _reason(monkeypatch, text: str) -> None:
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args, **_kw: (text, True))


def test_models_shows_the_shadow_record_and_discards_then_promotes(qtbot, home, monkeypatch):
    url = f"sqlite:///{home / 'inspector.db'}"
    _seed(url, read_meta(Registry(home).path_of("v2"))[1], "v2")
    context = AppContext(home)
    context.settings.shadow = "v2"
    view = ModelsView(context)
    qtbot.addWidget(view)
    view.show()
    try:
        qtbot.waitUntil(lambda: view.reloads > 0 and view.shadow_reloads > 0, timeout=WAIT_MS)
        assert set(view.shadows) == {"v2"}
        view._select("v1")
        assert not view.shadow_box.isVisible()  # the deployed model has no shadow record
        view._select("v2")
        assert view.shadow_box.isVisible()
        title = view.shadow_title.text()
        assert "Shadow: v2 — agreement 88.9 % of 18, 2 disagreements, 2 shed" in title
        assert "beside v1" in title
        assert view.confusion.rowCount() == 2
        assert view.confusion.item(0, 0).text() == "94.1 %"  # ok: 16 of 17 kept
        assert view.promote_button.isEnabled()

        _reason(monkeypatch, "")
        view.discard_shadow()
        assert "needs a reason" in view.message.text()
        _reason(monkeypatch, "too many false NG")
        before = view.shadow_reloads
        view.discard_shadow()
        qtbot.waitUntil(lambda: view.shadow_reloads > before and not view.busy, timeout=WAIT_MS)
        assert context.settings.shadow == ""
        assert "Decided: v2 discarded as shadow candidate" in view.shadow_note.text()
        with Ledger(url) as ledger:
            [event] = ledger.events(kinds=("shadow",))
            assert "too many false NG" in event["message"]

        _reason(monkeypatch, "agrees well enough after all")
        before = view.shadow_reloads
        view.promote_shadow()
        qtbot.waitUntil(lambda: view.shadow_reloads > before and not view.busy, timeout=WAIT_MS)
        assert Registry(home).deployed().id == "v2", view.message.text()
        assert not view.promote_button.isEnabled()  # it is the deployed model now
        with Ledger(url) as ledger:
            deploy = ledger.events(kinds=("deploy",))[0]["message"]
        assert "v2 deployed by" in deploy and "promoted from shadow (Shadow: v2 — agreement 88.9 %" in deploy
    finally:
        view.close()
        QThreadPool.globalInstance().waitForDone(60_000)
        context.close()


def test_live_shows_the_shadow_line_and_the_ledger_counts_every_part(qtbot, tmp_path, tiny_station):
    from inspector.line.demo import demo_model_path
    from ui.live_view import LiveView

    home = tmp_path / "home"
    Registry(home).add(demo_model_path())
    context = AppContext(home)
    context.settings.shadow = "v1"
    live = LiveView(context)
    qtbot.addWidget(live)
    live.resize(1366, 768)
    live.show()
    try:
        assert not live.shadow.isVisible()
        live.start(source=f"{tiny_station}?fps=20&loop=1", model="demo")
        qtbot.waitUntil(lambda: live.controller.running, timeout=60_000)
        qtbot.waitUntil(lambda: "agreement" in live.shadow.text(), timeout=60_000)
        assert live.shadow.isVisible() and live.shadow.text().startswith("Shadow: v1 — agreement")
        with qtbot.waitSignal(live.controller.stopped, timeout=60_000) as stopped:
            live.toggle()
        snapshot = stopped.args[0]
        pipeline = live.controller.pipeline
        shadow = pipeline.shadow.snapshot()
        assert shadow.judged + shadow.shed == snapshot.judged  # each part: shadow-judged or shed
        ledger = context.ledger()
        totals = ledger.shadow_totals(ledger.model_version_id(pipeline.shadow.engine.sha256))
        assert (totals["judged"], totals["shed"]) == (shadow.judged, shadow.shed)
        assert ledger.count_results(ResultFilter(run_id=pipeline.run_id)) == snapshot.written
    finally:
        live.controller.stop_and_wait()
        context.close()
