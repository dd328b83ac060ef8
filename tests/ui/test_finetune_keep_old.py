"""The wizard and the old station (issue 26): page 3 offers replay and the blend only for a base
that keeps a reference sample of its station; page 5 shows that station before and after."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from data.station import load_station
from inspector.registry import Registry
from inspector.training import reference_sample
from inspector.training.finetune import FINETUNE_L2SP, FinetuneSummary, OldScore
from inspector.training.reference_sample import OldStation
from inspector.training.weight_blend import BlendChoice
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.finetune import FinetuneWizard
from ui.finetune.common import ERROR_COLOUR, GOOD_COLOUR

WAIT_MS = 180_000
CLASSES = ["ok", "scratch", "spot"]


def _wizard(qtbot, tmp_path: Path, tiny_vit_spec, station: Path, provenance: dict) -> FinetuneWizard:
    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    net.set_schedule([None, [3, 3], None, [2, 2]])
    meta = meta_for(net, CLASSES, normal_class="ok", provenance=provenance)
    home = tmp_path / "home"
    Registry(home).deploy(str(save_bundle(net, meta, tmp_path / "base")))
    context = AppContext(home)
    wizard = FinetuneWizard(context)
    qtbot.addWidget(wizard)
    page = wizard.station_page
    page.path.setText(str(station))
    page.check()
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    wizard.recipe_page.initializePage()
    return wizard


def _metrics(macro_f1: float, n: int) -> dict:
    per_class = {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": n // 3} for c in CLASSES}
    confusion = [[n // 3 if i == j else 0 for j in range(3)] for i in range(3)]
    return {"accuracy": macro_f1, "macro_f1": macro_f1, "per_class": per_class, "confusion": confusion,
            "classes": CLASSES, "n": n}  # fmt: skip


def test_page_three_offers_replay_only_for_a_base_with_a_reference_sample(qtbot, tmp_path, tiny_vit_spec):
    from conftest import make_station

    old, new = make_station(tmp_path / "old"), make_station(tmp_path / "new", seed=3)
    kept = reference_sample.draw(load_station(str(old)), str(old), 0)
    with_sample = _wizard(qtbot, tmp_path / "a", tiny_vit_spec, new, {"reference_sample": kept})
    page = with_sample.recipe_page
    assert all(box.isEnabled() for box in page.keeping.values())
    assert f"keeps {len(kept['images'])} images of its station (old)" in page.keep_note.text()
    assert page.keeping["replay"].isChecked() and page.keeping["judge_both"].isChecked()  # the default
    page.keeping["judge_both"].setChecked(False)
    page.keeping["wise"].setChecked(False)
    recipe = page.recipe()
    assert recipe.replay and not recipe.judge_both and not recipe.wise
    assert recipe.l2sp == 0.0  # the pull is offered, not the default
    page.keeping["l2sp"].setChecked(True)
    assert page.recipe().l2sp == FINETUNE_L2SP

    without = _wizard(qtbot, tmp_path / "b", tiny_vit_spec, new, {})
    page = without.recipe_page
    assert [key for key, box in page.keeping.items() if box.isEnabled()] == ["l2sp"]  # needs no sample
    assert "cannot be replayed, judged, blended toward or checked" in page.keep_note.text()
    page.keeping["replay"].setChecked(True)
    assert not page.recipe().replay and not page.recipe().judge_both  # what cannot run is not asked for
    for wizard in (with_sample, without):
        wizard.reject()
        wizard.context.close()


def test_page_five_shows_the_old_station_beside_the_new_one(qtbot, tmp_path, tiny_vit_spec, tiny_station):
    wizard = _wizard(qtbot, tmp_path, tiny_vit_spec, tiny_station, {})
    page = wizard.compare_page
    old = [OldScore(OldStation("lamp1", Path(), {}, 0), _metrics(0.9, 60), _metrics(0.85, 60))]
    blend = BlendChoice(0.75, {0.75: (0.8, 0.85)})
    lost = FinetuneSummary(Path("x"), _metrics(0.6, 30), _metrics(0.8, 30), 1.0, None, old, blend)
    rows = page._say_old_station(lost)
    assert [r[0] for r in rows] == [
        "Old station macro-F1 (n=60)",
        "Old station accuracy",
    ]
    text = page.old_line.text()
    assert "Old station (lamp1): macro-F1 0.900 → 0.850 (-0.050, lost)" in text and "0.75 of the new" in text
    old.append(OldScore(OldStation("lamp2", Path(), {}, 0), _metrics(0.7, 40), _metrics(0.72, 40)))
    twice = FinetuneSummary(Path("x"), _metrics(0.6, 30), _metrics(0.8, 30), 1.0, None, old)
    assert [r[0] for r in page._say_old_station(twice)] == [
        "Old lamp1 macro-F1",
        "Old lamp1 accuracy",
        "Old lamp2 macro-F1",
        "Old lamp2 accuracy",
    ]
    text = page.old_line.text()  # each station in its own colour: one lost, one kept
    assert f'color: {ERROR_COLOUR};">Old station (lamp1): macro-F1 0.900 → 0.850 (-0.050, lost)' in text
    assert f'color: {GOOD_COLOUR};">Old station (lamp2): macro-F1 0.700 → 0.720 (+0.020, kept)' in text
    unchecked = FinetuneSummary(Path("x"), _metrics(0.6, 30), _metrics(0.8, 30), 1.0, None)
    assert page._say_old_station(unchecked) == []
    assert "Old station: not checked" in page.old_line.text()
    wizard.reject()
    wizard.context.close()


def test_a_better_macro_f1_that_catches_fewer_defects_is_said():
    from ui.finetune.compare import fewer_defects_caught

    def metrics(ok: float, scratch: float, spot: float) -> dict:
        recalls = {"ok": ok, "scratch": scratch, "spot": spot}
        return {"per_class": {c: {"recall": r, "support": 10} for c, r in recalls.items()}}

    before, after = metrics(0.72, 0.78, 0.90), metrics(0.92, 0.67, 0.89)
    assert fewer_defects_caught(before, after, "ok") == "fewer defects caught (scratch recall 0.780 → 0.670)"
    assert fewer_defects_caught(before, metrics(0.5, 0.77, 0.95), "ok") == ""  # within 2 points, or up
    assert fewer_defects_caught(before, after, None) == ""  # no class is "good": nothing to call an escape
