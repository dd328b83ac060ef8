"""The shipped demo model: present, an LTM model, small, and loadable like any bundle."""

from __future__ import annotations

import json

import torch

from inspector.line.demo import demo_model_path
from models.bundle import load_bundle


def test_demo_model_is_a_small_ltm_bundle():
    path = demo_model_path()
    assert (path / "model.safetensors").stat().st_size <= 8 * 1024 * 1024
    bundle = load_bundle(path)
    assert bundle.meta.merge_mode == "ltm" and any(bundle.meta.schedule)
    assert bundle.meta.classes == ["defect", "ok"] and bundle.meta.normal_class == "ok"
    assert bundle.meta.thresholds["unsure_below"] > 0.5
    size, channels = bundle.meta.preprocessing.size, bundle.meta.preprocessing.channels
    with torch.no_grad():
        probs = torch.softmax(bundle.net(torch.zeros(1, channels, size, size)), -1)
    assert probs.shape == (1, 2)
    report = json.loads((path / "eval.json").read_text())
    assert report["split"] == "test" and report["n"] > 400
    assert (path / "MODEL_CARD.md").read_text().count("inspector train elpv") == 1
