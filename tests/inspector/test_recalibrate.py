"""``inspector finetune --unlabelled``: BatchNorm statistics re-estimated on a folder of frames,
weights untouched, the source bundle unchanged (issue 14)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from inspector.cli import app
from models.backbones import resolve_backbone
from models.bundle import load_bundle, meta_for, save_bundle
from models.errors import ModelError
from models.network import InspectionNet
from models.norm_stats import recalibrate_norms

runner = CliRunner()


def test_statistics_become_the_batches_and_weights_stay(tiny_vit_spec):
    net = InspectionNet(resolve_backbone("vit-cpu", 32, 1), 2)
    weights = {
        k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k
    }
    moved = recalibrate_norms(net, [torch.randn(8, 1, 32, 32) * 3 + 2 for _ in range(2)])
    assert moved["images"] == 16 and moved["layers"] >= 2 and moved["mean_shift"] > 0
    first = net.backbone.patch_embed.proj[1]  # the stem's first BatchNorm sees conv outputs of the batches
    assert first.running_mean.abs().sum() > 0 and first.momentum == 0.1
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    with pytest.raises(ModelError, match="no BatchNorm"):
        recalibrate_norms(InspectionNet(tiny_vit_spec, 2), [torch.randn(2, 1, 64, 64)])


def test_cli_writes_a_recalibrated_bundle(tmp_path):
    net = InspectionNet(resolve_backbone("vit-cpu", 32, 1), 2).eval()
    source = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "model")
    before = (source / "model.safetensors").read_bytes()
    frames = tmp_path / "frames" / "any" / "layout"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(frames / f"f{i}.png"), rng.integers(150, 255, (40, 40), dtype=np.uint8))
    (frames / "notes.txt").write_text("not an image")
    result = runner.invoke(
        app,
        ["finetune", str(source), str(tmp_path / "frames"), "--out", str(tmp_path / "lamp2"), "--unlabelled"],
    )
    assert result.exit_code == 0, result.output
    assert "12 images" in result.output
    assert (source / "model.safetensors").read_bytes() == before
    old, new = (
        load_file(str(source / "model.safetensors")),
        load_file(str(tmp_path / "lamp2" / "model.safetensors")),
    )
    stats = [k for k in old if k.endswith("running_mean")]
    assert stats and all(not torch.equal(old[k], new[k]) for k in stats)
    assert all(torch.equal(old[k], new[k]) for k in old if k.endswith("weight"))
    assert load_bundle(tmp_path / "lamp2").meta.provenance["recalibration"]["images"] == 12
    # the new lamp's frames become the drift watch's input reference
    assert load_bundle(tmp_path / "lamp2").meta.provenance["input_reference"]["images"] == 12


def test_cli_refuses_an_empty_folder_in_one_line(tmp_path):
    net = InspectionNet(resolve_backbone("vit-cpu", 32, 1), 2).eval()
    source = save_bundle(net, meta_for(net, ["ok", "ng"]), tmp_path / "model")
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["finetune", str(source), str(tmp_path / "empty"), "--out", str(tmp_path / "x"), "--unlabelled"]
    )
    assert result.exit_code == 2 and "no images" in result.output
    assert not (tmp_path / "x").exists()


def _loaded(n: int, seed: int):
    from data.loading import LoadedImages

    rng = np.random.default_rng(seed)
    images = [rng.integers(120, 255, (32, 32), dtype=np.uint8) for _ in range(n)]
    return LoadedImages(images, ["ok", "ng"] * (n // 2), [])


@pytest.mark.parametrize(("scores", "kept"), [((0.6, 0.8), True), ((0.8, 0.6), False), ((0.7, 0.7), True)])
def test_finetune_keeps_the_stations_statistics_only_when_validation_holds(monkeypatch, scores, kept):
    """The fine-tune's first step: the station's BatchNorm statistics replace the old ones only when
    the validation score does not drop; otherwise the model is exactly as it was."""
    from inspector.training import finetune

    net = InspectionNet(resolve_backbone("vit-cpu", 32, 1), 2).eval()
    prep = meta_for(net, ["ok", "ng"]).preprocessing
    original = {k: v.clone() for k, v in net.state_dict().items()}
    answers = iter(scores)
    monkeypatch.setattr(finetune, "validate", lambda *_a, **_k: {"macro_f1": next(answers)})
    result = finetune.recalibrate_start(net, prep, _loaded(10, 0), _loaded(4, 1), ["ok", "ng"])
    assert result is not None and result["kept"] is kept and result["images"] == 10
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, original[k])]
    assert (changed and all("running" in k or "num_batches" in k for k in changed)) if kept else not changed


def test_finetune_skips_the_statistics_step_for_a_model_without_batchnorm(tiny_vit_spec):
    from inspector.training.finetune import recalibrate_start

    net = InspectionNet(tiny_vit_spec, 2).eval()
    prep = meta_for(net, ["ok", "ng"]).preprocessing
    assert recalibrate_start(net, prep, _loaded(4, 0), _loaded(4, 1), ["ok", "ng"]) is None
