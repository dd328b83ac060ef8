"""Fine-tune screen: *Re-calibrate to a new lamp* — one folder of unlabelled frames, a new version,
the deployed model untouched (issue 14)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")

from inspector.registry import Registry
from models.backbones import resolve_backbone
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet
from ui.context import AppContext
from ui.finetune_view import FinetuneView

WAIT_MS = 180_000  # a job's own process starts slowly on a busy 2-core machine


def _frames(folder, count: int, low: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"f{i}.png"), rng.integers(low, 255, (40, 40), dtype=np.uint8))


def test_recalibrate_saves_a_new_version_and_deploys_nothing(qtbot, tmp_path):
    home = tmp_path / "home"
    net = InspectionNet(resolve_backbone("vit-cpu", 32, 1), 2).eval()
    registry = Registry(home)
    registry.deploy(str(save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "model")))
    _frames(tmp_path / "lamp2", 12, 150)
    view = FinetuneView(AppContext(home))
    qtbot.addWidget(view)
    view.recalibrate(tmp_path / "lamp2")
    assert not view.recalibrate_button.isEnabled()
    qtbot.waitUntil(view.recalibrate_button.isEnabled, timeout=WAIT_MS)
    assert "Saved as v2 (re-calibrated on 12 frames)" in view.message.text(), view.message.text()
    registry = Registry(home)
    assert registry.deployed().id == "v1"
    added = registry.versions()[-1]
    assert added.metrics["recalibration"]["images"] == 12 and "no labels" in added.note
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=WAIT_MS)
    assert view.table.item(0, 0).text() == "v2"


def test_recalibrate_says_why_it_cannot(qtbot, tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    view = FinetuneView(AppContext(tmp_path / "home"))
    qtbot.addWidget(view)
    view.recalibrate(empty)
    qtbot.waitUntil(view.recalibrate_button.isEnabled, timeout=WAIT_MS)
    assert view.message.text().startswith("Re-calibration failed:") and "no images" in view.message.text()
    assert Registry(tmp_path / "home").versions() == []
