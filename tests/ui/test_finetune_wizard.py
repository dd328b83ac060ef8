"""The fine-tune wizard end to end on a tiny station, and Cancel leaving the deployed model alone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from inspector.registry import Registry
from inspector.rollout import audit_trail
from models.bundle import load_bundle, meta_for, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.finetune import FinetuneWizard
from ui.finetune_view import FinetuneView

pytestmark = pytest.mark.slow  # every test runs training jobs in their own processes
WAIT_MS = 180_000  # a job's own process starts slowly on a busy 2-core machine


@pytest.fixture
def home(tmp_path, tiny_vit_spec) -> Path:
    """A home whose registry has one deployed LTM model for the tiny station's three classes."""
    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    net.set_schedule([None, [3, 3], None, [2, 2]])
    meta = meta_for(net, ["ok", "scratch", "spot"], normal_class="ok", gmacs_ratio=0.6)
    bundle = save_bundle(net, meta, tmp_path / "base")
    home = tmp_path / "home"
    Registry(home).deploy(str(bundle))
    return home


def _station_page_ready(qtbot, wizard: FinetuneWizard, station: Path) -> None:
    page = wizard.station_page
    page.path.setText(str(station))
    page.check()
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    assert page.isComplete(), page.status.text()


def _staging_left(home: Path) -> list[Path]:
    root = home / "staging"
    return list(root.iterdir()) if root.exists() else []


def test_wizard_end_to_end_adds_a_version(qtbot, home, tiny_station):
    context = AppContext(home)
    view = FinetuneView(context)
    qtbot.addWidget(view)
    added: list[str] = []
    view.model_added.connect(added.append)
    wizard = view.open_wizard()
    assert wizard.station_page.base_model == Registry(home).path_of("v1")

    # 1 · a bad folder cannot go on; the station can
    wizard.station_page.path.setText(str(tiny_station / "missing"))
    wizard.station_page.check()
    qtbot.waitUntil(lambda: not wizard.station_page.busy, timeout=WAIT_MS)
    assert not wizard.station_page.isComplete()
    assert "no such dataset" in wizard.station_page.status.text()
    _station_page_ready(qtbot, wizard, tiny_station)
    assert wizard.station_page.table.rowCount() == 3
    wizard.next()

    # 2 · augmentation preview re-renders when the choice changes
    page = wizard.augment_page
    qtbot.waitUntil(lambda: page.rendered, timeout=WAIT_MS)
    assert not page.preview.pixmap().isNull()
    page.boxes["optics"].setChecked(True)
    qtbot.waitUntil(lambda: page.rendered, timeout=WAIT_MS)
    assert page.presets == ["lighting", "angle", "optics"]
    page.boxes["optics"].setChecked(False)
    qtbot.waitUntil(lambda: page.rendered, timeout=WAIT_MS)
    wizard.next()

    # 3 · recipe
    wizard.recipe_page.radios["merge+norm"].setChecked(True)
    wizard.recipe_page.epochs.setValue(1)
    assert wizard.recipe_page.recipe().trainable == "merge+norm"
    wizard.next()

    # 4 · training, into a staging folder under home
    train = wizard.train_page
    qtbot.waitUntil(lambda: train.summary is not None or bool(train.failed), timeout=WAIT_MS)
    assert train.summary is not None, train.failed
    assert len(train.history) == 1 and train.log.count() > 0
    assert train.base_val == train.summary.outcome.start_val["macro_f1"]  # the bar, drawn dashed
    assert [line.get_label() for line in train.f1_ax.get_lines()][-1] == "base model"
    assert wizard.staging is not None and wizard.staging.path.parent == home / "staging"
    wizard.next()

    # 5 · before / after with speed
    compare = wizard.compare_page
    assert compare.table.rowCount() >= 2 + 3
    qtbot.waitUntil(lambda: compare.speed is not None, timeout=WAIT_MS)
    assert compare.speed and compare.speed["after"]["gmacs"] > 0
    assert compare.speed["after"]["backend"] != "PyTorch"  # timed as the line runs it (issue 25)
    assert "as the line runs it" in compare.speed_label.text()
    wizard.next()

    # 6 · save and deploy
    wizard.save_page.deploy.setChecked(True)
    with qtbot.waitSignal(view.model_added, timeout=WAIT_MS):
        wizard.accept()
    registry = Registry(home)
    assert [v.id for v in registry.versions()] == ["v1", "v2"]
    assert registry.deployed().id == "v2" and added == ["v2"]
    assert "fine-tuned from v1" in registry.versions()[1].note
    audit = audit_trail(view.context.db_url)[0]["message"]
    assert "v2 deployed by" in audit and "checked by the wizard's before/after" in audit
    assert load_bundle(registry.path_of("v2")).meta.provenance["finetune_recipe"]["trainable"] == "merge+norm"
    assert _staging_left(home) == []
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=WAIT_MS)  # the fine-tuned list


def test_cancel_during_training_changes_nothing(qtbot, home, tiny_station):
    context = AppContext(home)
    wizard = FinetuneWizard(context)
    qtbot.addWidget(wizard)
    wizard.show()
    _station_page_ready(qtbot, wizard, tiny_station)
    wizard.next()
    wizard.next()
    wizard.recipe_page.epochs.setValue(200)  # far more than the test waits for
    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: len(train.history) >= 1 or bool(train.failed), timeout=WAIT_MS)
    assert train.running, train.failed
    staging = wizard.staging
    assert staging is not None and staging.path.is_dir()
    task = train.task
    wizard.reject()
    qtbot.waitUntil(lambda: task.finished.is_set(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not staging.path.exists(), timeout=WAIT_MS)
    registry = Registry(home)
    assert [v.id for v in registry.versions()] == ["v1"]
    assert registry.deployed().id == "v1"
    assert _staging_left(home) == []
    assert not (home / "staging").exists()


def test_cancel_after_the_first_page_and_unknown_classes(qtbot, home, tmp_path):
    from conftest import make_station

    station = make_station(tmp_path / "other", classes=("ok", "dent"), per_class=12)
    wizard = FinetuneWizard(AppContext(home))
    qtbot.addWidget(wizard)
    wizard.station_page.path.setText(str(station))
    wizard.station_page.check()
    qtbot.waitUntil(lambda: not wizard.station_page.busy, timeout=WAIT_MS)
    assert not wizard.station_page.isComplete()
    texts = [wizard.station_page.notes.item(i).text() for i in range(wizard.station_page.notes.count())]
    assert any("does not know dent" in t for t in texts)
    assert any("Fewer than 10 training images" in t for t in texts)
    wizard.reject()
    assert Registry(home).deployed().id == "v1" and _staging_left(home) == []


def test_time_budget_that_runs_out_at_once_is_reported(qtbot, home, tiny_station, monkeypatch):
    from ui.finetune import RecipePage

    monkeypatch.setattr(RecipePage, "budget_seconds", property(lambda self: 1e-6))
    wizard = FinetuneWizard(AppContext(home))
    qtbot.addWidget(wizard)
    wizard.show()
    _station_page_ready(qtbot, wizard, tiny_station)
    wizard.next()
    wizard.next()
    wizard.next()
    train = wizard.train_page
    qtbot.waitUntil(lambda: bool(train.failed) or train.summary is not None, timeout=WAIT_MS)
    assert "time budget" in train.failed and not train.isComplete()
    wizard.reject()
    assert _staging_left(home) == [] and Registry(home).deployed().id == "v1"


@pytest.mark.skipif(os.name == "nt", reason="process probing is POSIX-only")
def test_staging_left_by_a_dead_app_is_swept(qtbot, home):
    dead, live = home / "staging" / "finetune-dead", home / "staging" / "finetune-live"
    for folder, pid in ((dead, _ended_pid()), (live, os.getpid())):
        (folder / "model").mkdir(parents=True)
        (folder / "owner.pid").write_text(str(pid))
    wizard = FinetuneWizard(AppContext(home))
    qtbot.addWidget(wizard)
    assert not dead.exists() and live.exists()


def _ended_pid() -> int:
    import subprocess

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_training_beside_a_running_line_yields_to_it(qtbot, home, tiny_station, tmp_path, monkeypatch):
    """The wizard trains in a low-priority process; a line that overruns pauses it, and says so."""
    from functools import partial

    from inspector.jobs import runner
    from inspector.jobs.priority import background_threads
    from inspector.line.build import LineRequest
    from ui.line_controller import LineController

    # Every part will overrun below: after a second the page would say that the line is late even
    # while training waits (the next test covers that wording); here it says that training waits.
    monkeypatch.setattr(runner, "LineYield", partial(runner.LineYield, grace_s=1e9))

    context = AppContext(home)
    line = LineController(context)
    line.start(LineRequest(source=f"{tiny_station}?fps=20&loop=1", home=home, model="demo", archive=False))
    qtbot.waitUntil(lambda: line.running, timeout=WAIT_MS)
    try:
        wizard = FinetuneWizard(context)
        qtbot.addWidget(wizard)
        wizard.show()
        _station_page_ready(qtbot, wizard, tiny_station)
        wizard.next()
        wizard.next()
        wizard.recipe_page.epochs.setValue(200)
        wizard.next()
        train = wizard.train_page
        qtbot.waitUntil(lambda: train.task.state().priority != "starting", timeout=WAIT_MS)
        state = train.task.state()
        assert state.line_running and state.threads == background_threads(True)
        assert state.priority != "normal priority"
        qtbot.waitUntil(lambda: "The line comes first" in train.line_note.text(), timeout=WAIT_MS)
        # Every part now misses its cycle: the training waits for the line, and the page says so.
        line.pipeline.stats.cycle_budget_ms = 1e-6
        qtbot.waitUntil(lambda: train.task.state().paused, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "Paused for the line" in train.line_note.text(), timeout=WAIT_MS)
        wizard.grab().save(str(tmp_path / "wizard-paused-for-the-line.png"))
        task, staging = train.task, wizard.staging
        wizard.reject()  # Cancel while paused: the job resumes to notice, ends, and its files go
        qtbot.waitUntil(lambda: task.finished.is_set(), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not staging.path.exists(), timeout=WAIT_MS)
        assert Registry(home).deployed().id == "v1"
    finally:
        line.stop_and_wait()
        context.close()


def test_the_training_page_says_where_training_stands_behind_the_line():
    from inspector.jobs.line_yield import YieldState
    from ui.finetune import yield_text

    def state(**changes) -> YieldState:
        values = dict(
            priority="idle priority (SCHED_IDLE)",
            threads=1,
            line_running=True,
            paused=False,
            pauses=0,
            paused_s=0.0,
            resume_in_s=0.0,
        )
        return YieldState(**(values | changes))

    assert yield_text(state(), True).startswith("The line comes first: training runs in a background")
    assert "on 1 core," in yield_text(state(), True)
    paused = yield_text(state(paused=True, pauses=2, paused_s=75, resume_in_s=4), True)
    assert paused.startswith("Paused for the line") and "continues in 0:04" in paused
    assert "Paused 2× so far, 1:15 in all." in paused
    overloaded = yield_text(state(paused=True, line_overloaded=True, pauses=1), True)
    assert overloaded.startswith("Paused for the line: it overruns even while training waits")
    assert "If a line starts" in yield_text(state(line_running=False, threads=2), True)
    assert yield_text(state(pauses=3, paused_s=20), False) == "The line held training 3×, 0:20 in all."
    assert yield_text(state(), False) == ""


def test_page_three_recommends_by_where_the_base_came_from(qtbot, tmp_path, tiny_vit_spec, tiny_station):
    """A pretrained base recovered most with the whole network after re-calibration, a from-scratch
    one with merge+head: page 3 preselects and labels that choice, and explains re-calibration only
    for a base that started from ImageNet weights."""
    from ui.finetune.common import RECOMMENDED
    from ui.finetune.recipe import PRETRAINED_NOTE

    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    net.set_schedule([None, [3, 3], None, [2, 2]])
    notes, picked, labelled = {}, {}, {}
    for name, weights in (("scratch", {"source": "scratch"}), ("pretrained", {"source": "imagenet-lite0"})):
        meta = meta_for(net, ["ok", "scratch", "spot"], normal_class="ok", provenance={"weights": weights})
        home = tmp_path / f"home-{name}"
        Registry(home).deploy(str(save_bundle(net, meta, tmp_path / name)))
        context = AppContext(home)
        wizard = FinetuneWizard(context)
        qtbot.addWidget(wizard)
        _station_page_ready(qtbot, wizard, tiny_station)
        wizard.recipe_page.initializePage()
        page = wizard.recipe_page
        notes[name] = page.model_note.text()
        picked[name] = page.trainable
        labelled[name] = [key for key, radio in page.radios.items() if radio.text().endswith(RECOMMENDED)]
        page.radios["merge+norm"].setChecked(True)
        page.initializePage()  # back and forth through the wizard keeps the person's pick
        assert page.trainable == "merge+norm"
        wizard.reject()
        context.close()
    assert PRETRAINED_NOTE in notes["pretrained"] and PRETRAINED_NOTE not in notes["scratch"]
    assert picked == {"pretrained": "all", "scratch": "merge+head"}
    assert labelled == {"pretrained": ["all"], "scratch": ["merge+head"]}
