"""Adaptation that keeps the old station (issue 26): the reference sample a bundle keeps of its
training station, replay of it, scores on both stations, the WiSE-FT blend and the L2-SP pull."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from inspector.training.finetune import finetune_model
from inspector.training.hooks import QUIET as QUIET_HOOKS
from inspector.training.hooks import Hooks
from inspector.training.loop import Recipe
from inspector.training.reference_sample import CAPS, load_old_station
from inspector.training.train_station import train_model
from inspector.training.weight_blend import blended, choose_blend
from models.bundle import REFERENCE_FILE, load_bundle
from models.files import sha256_file

QUIET = {"progress": False, "log": lambda line: None}
CLASSES = ("ok", "scratch", "spot")


@pytest.fixture(scope="module")
def stations(tmp_path_factory):
    """The station the base learns (A) and a second one with other noise and marks (B)."""
    from conftest import make_station

    root = tmp_path_factory.mktemp("stations")
    return make_station(root / "a", CLASSES, seed=0), make_station(root / "b", CLASSES, seed=7)


@pytest.fixture(scope="module")
def base(stations, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "model"
    train_model(
        str(stations[0]),
        out,
        img_size=32,
        recipe=Recipe(epochs=3, batch_size=16, lr=2e-3, warmup_epochs=1),
        hooks=QUIET_HOOKS,
    )
    return out


def test_a_trained_bundle_keeps_a_stratified_reference_sample_by_path_and_hash(base, stations):
    provenance = load_bundle(base).meta.provenance
    reference = provenance["reference_sample"]
    assert (
        reference["data"] == str(stations[0]) and reference["fingerprint"] == provenance["data_fingerprint"]
    )
    entries = reference["images"]
    for split in CAPS:
        labels = {e["label"] for e in entries if e["split"] == split}
        assert labels == set(CLASSES), split  # every class in every split
    for entry in entries:
        assert not entry["path"].startswith(("/", ".."))
        assert sha256_file(stations[0] / entry["path"]) == entry["sha256"]
    assert (base / REFERENCE_FILE).stat().st_size == reference["copy"]["bytes"] > 0
    (trained,) = provenance["stations"]
    assert trained["role"] == "trained" and trained["split"] == "val" and trained["n"] > 0


def test_a_fine_tune_replays_and_scores_the_old_station(base, stations, tmp_path):
    lines: list[str] = []
    recipe = Recipe(
        epochs=2, batch_size=16, lr=1e-3, warmup_epochs=0.5, trainable="all", replay=True, wise=True
    )
    summary = finetune_model(
        base,
        str(stations[1]),
        tmp_path / "adapted",
        recipe=recipe,
        hooks=Hooks(log=lines.append, progress=False),
    )
    text = "\n".join(lines)
    assert "replay:" in text and "reference images of the old station train beside" in text
    assert summary.old_before is not None and summary.old_after is not None
    assert summary.old_before["n"] == summary.old_after["n"] > 0
    assert summary.blend is not None and summary.blend.alpha in summary.blend.scores
    provenance = load_bundle(summary.bundle).meta.provenance
    roles = {s["role"]: s for s in provenance["stations"]}
    assert set(roles) == {"adapted", "kept"}
    assert roles["kept"]["macro_f1"] == round(summary.old_after["macro_f1"], 4)
    assert provenance["old_station"]["before"]["macro_f1"] == summary.old_before["macro_f1"]
    # The adapted model remembers the same old station for the next fine-tune.
    assert provenance["reference_sample"] == load_bundle(base).meta.provenance["reference_sample"]


def test_a_moved_station_is_replayed_from_the_bundles_copy_and_a_tampered_copy_is_not(
    base, stations, tmp_path
):
    moved = tmp_path / "base"
    shutil.copytree(base, moved)
    meta = json.loads((moved / "model.json").read_text())
    reference = meta["provenance"]["reference_sample"]
    assert reference["copy"]["bytes"] == (moved / REFERENCE_FILE).stat().st_size
    assert all("copy" in entry for entry in reference["images"])
    reference["root"] = str(tmp_path / "gone")
    (moved / "model.json").write_text(json.dumps(meta))
    lines: list[str] = []
    recipe = Recipe(epochs=1, batch_size=16, lr=1e-3, warmup_epochs=0.5, replay=True)
    summary = finetune_model(
        moved,
        str(stations[1]),
        tmp_path / "adapted",
        recipe=recipe,
        hooks=Hooks(log=lines.append, progress=False),
    )
    assert summary.old_after is not None and summary.old_after["n"] > 0
    assert any(f"{len(reference['images'])} from the bundle's copy" in line for line in lines)
    # the adapted bundle carries the copy on, byte for byte
    assert (tmp_path / "adapted" / REFERENCE_FILE).read_bytes() == (moved / REFERENCE_FILE).read_bytes()

    data = bytearray((moved / REFERENCE_FILE).read_bytes())
    data[-1] ^= 0xFF
    (moved / REFERENCE_FILE).write_bytes(bytes(data))
    lines.clear()
    summary = finetune_model(
        moved,
        str(stations[1]),
        tmp_path / "again",
        recipe=recipe,
        hooks=Hooks(log=lines.append, progress=False),
    )
    assert summary.old_after is None
    assert any("not reachable on this PC and the base keeps no copy" in line for line in lines)
    assert any(
        line.startswith("replay: the old station's reference images are not at hand") for line in lines
    )
    assert not (tmp_path / "again" / REFERENCE_FILE).exists()


def test_a_hostile_or_stale_reference_sample_reads_nothing_outside_the_station(base, stations, tmp_path):
    provenance = json.loads(json.dumps(load_bundle(base).meta.provenance))
    reference = provenance["reference_sample"]
    outside = tmp_path / "secret.png"
    shutil.copyfile(stations[0] / reference["images"][0]["path"], outside)
    good = len(reference["images"])
    reference["images"] += [
        {
            "path": "../" * 8 + str(outside).lstrip("/"),
            "label": "ok",
            "split": "train",
            "sha256": sha256_file(outside),
        },
        {"path": str(outside), "label": "ok", "split": "train", "sha256": sha256_file(outside)},
        {"path": reference["images"][1]["path"], "label": "not-a-class", "split": "train", "sha256": "x"},
        {"path": 3, "label": None},
        "junk",
    ]
    reference["images"][2]["sha256"] = "0" * 64  # a file that changed since training
    old = load_old_station(provenance, list(CLASSES), 1, None, lambda line: None)
    assert old is not None and old.missing == 3  # the two outside the station and the changed one
    loaded = [s.path for split in old.splits.values() for s in split.samples]
    assert len(loaded) == good - 1 and outside not in loaded
    assert all(p.is_relative_to(stations[0].resolve()) for p in loaded)
    provenance["reference_sample"] = {"data": "x", "root": str(stations[0]), "images": "not a list"}
    assert load_old_station(provenance, list(CLASSES), 1, None, lambda line: None) is None


def test_blends_run_from_the_base_to_the_fine_tuned_weights():
    base = {"w": torch.zeros(3), "n": torch.tensor(5)}
    tuned = {"w": torch.ones(3), "n": torch.tensor(9)}
    assert torch.equal(blended(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(blended(base, tuned, 1.0)["w"], tuned["w"])
    assert torch.allclose(blended(base, tuned, 0.25)["w"], torch.full((3,), 0.25))
    assert int(blended(base, tuned, 0.5)["n"]) == 9  # counters are not averaged


def test_the_blend_with_the_best_mean_of_both_stations_is_loaded():
    net = torch.nn.Linear(1, 1, bias=False)
    base, tuned = {"weight": torch.zeros(1, 1)}, {"weight": torch.ones(1, 1)}

    def score(model):  # new station likes 1, old station likes 0; 0.5 is best for both together
        w = float(model.weight.detach())
        return 1 - abs(w - 1) ** 2, 1 - abs(w) ** 2 * 0.9

    choice = choose_blend(net, base, tuned, score)
    means = {a: sum(s) / 2 for a, s in choice.scores.items()}
    assert choice.alpha == max(means, key=means.get) and 0 < choice.alpha < 1
    assert float(net.weight.detach()) == pytest.approx(choice.alpha)


def test_l2sp_keeps_the_weights_near_where_the_fine_tune_started(base, stations, tmp_path):
    start = {k: v.clone() for k, v in load_bundle(base).net.state_dict().items()}

    def moved(l2sp: float) -> float:
        recipe = Recipe(epochs=2, batch_size=16, lr=2e-3, warmup_epochs=0.5, trainable="all", l2sp=l2sp)
        out = tmp_path / f"l2sp-{l2sp}"
        net = finetune_model(base, str(stations[1]), out, recipe=recipe, hooks=QUIET_HOOKS).outcome.net
        state = net.state_dict()
        return float(sum(((state[k] - start[k]) ** 2).sum() for k in start if start[k].is_floating_point()))

    free, pulled = moved(0.0), moved(50.0)
    assert np.isfinite(pulled) and pulled < 0.5 * free


def test_a_copy_holding_anything_but_small_8_bit_images_yields_only_those(tmp_path):
    import hashlib

    from safetensors.numpy import save

    from inspector.training.reference_sample import MAX_COPY_SIDE, _copied_images

    data = save(
        {
            "gray": np.zeros((8, 9), np.uint8),
            "rgb": np.zeros((8, 9, 3), np.uint8),
            "float": np.zeros((8, 9), np.float32),
            "wide": np.zeros((1, MAX_COPY_SIDE + 1), np.uint8),
            "cube": np.zeros((2, 2, 2, 2), np.uint8),
        }
    )
    (tmp_path / REFERENCE_FILE).write_bytes(data)
    promise = {"copy": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    assert set(_copied_images(tmp_path, promise)) == {"gray", "rgb"}
    assert _copied_images(tmp_path, {"copy": {**promise["copy"], "bytes": len(data) + 1}}) == {}
    assert _copied_images(tmp_path, {"copy": {**promise["copy"], "sha256": "0" * 64}}) == {}
    (tmp_path / REFERENCE_FILE).write_bytes(b"\xff" * len(data))  # not safetensors, right size
    assert (
        _copied_images(
            tmp_path,
            {"copy": {"bytes": len(data), "sha256": hashlib.sha256(b"\xff" * len(data)).hexdigest()}},
        )
        == {}
    )


def test_the_copy_keeps_a_gray_part_saved_as_rgb_in_one_plane_and_a_colour_one_in_three(tmp_path):
    import cv2
    from safetensors.numpy import load

    from inspector.training.reference_sample import make_copy

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (40, 60), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "gray_as_rgb.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(tmp_path / "colour.png"), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    reference = {"images": [{"path": "gray_as_rgb.png"}, {"path": "colour.png"}]}
    copied = load(make_copy(reference, tmp_path, side=30))
    assert copied[reference["images"][0]["copy"]].shape == (20, 30)
    assert copied[reference["images"][1]["copy"]].shape == (20, 30, 3)
