"""Adaptation that keeps the old station (issue 26): the reference sample a bundle keeps of its
training station, replay of it, scores on both stations, the WiSE-FT blend and the L2-SP pull."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from data.station import load_station
from inspector.training.finetune import finetune_model
from inspector.training.hooks import QUIET as QUIET_HOOKS
from inspector.training.hooks import Hooks
from inspector.training.loop import Recipe
from inspector.training.reference_sample import CAPS, load_sample
from inspector.training.station_memory import samples_of
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
        epochs=2,
        batch_size=16,
        lr=1e-3,
        warmup_epochs=0.5,
        trainable="all",
        replay=True,
        wise=True,
        judge_both=True,
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
    (old,) = summary.old
    assert old.before is not None and old.after is not None
    assert old.before["n"] == old.after["n"] > 0
    assert summary.blend is not None and summary.blend.alpha in summary.blend.scores
    provenance = load_bundle(summary.bundle).meta.provenance
    # Each epoch was judged on both stations' validation images, the base's reference sample's too.
    new_val = sum(1 for s in load_station(str(stations[1])).samples if s.split == "val")
    judged = new_val + len(old.station["val"])
    assert f"judge: each epoch on {new_val} new and {len(old.station['val'])} old-station" in text
    assert provenance["finetune_epochs"]["n_val"] == judged
    roles = {s["role"]: s for s in provenance["stations"]}
    assert set(roles) == {"adapted", "kept"}
    assert roles["kept"]["macro_f1"] == round(old.after["macro_f1"], 4)
    assert provenance["old_station"]["before"]["macro_f1"] == old.before["macro_f1"]
    assert [s["name"] for s in provenance["old_stations"]] == [provenance["old_station"]["name"]]
    # The adapted model remembers both stations for the next fine-tune: the old one as the base kept
    # it, and the new one (by path and hash, with thumbnails).
    first, added = samples_of(provenance)
    paths = [e["path"] for e in load_bundle(base).meta.provenance["reference_sample"]["images"]]
    assert first["data"] == str(stations[0]) and [e["path"] for e in first["images"]] == paths
    assert (
        added["data"] == str(stations[1].resolve())
        and added["fingerprint"] == roles["adapted"]["fingerprint"]
    )
    assert {e["split"] for e in added["images"]} == set(CAPS)
    assert all(sha256_file(stations[1] / e["path"]) == e["sha256"] for e in added["images"])


def test_a_second_fine_tune_replays_and_scores_every_station_the_model_served(base, stations, tmp_path):
    from conftest import make_station

    third = make_station(tmp_path / "c", CLASSES, seed=13)
    recipe = Recipe(epochs=1, batch_size=16, lr=1e-3, warmup_epochs=0.5, trainable="all", replay=True)
    first = finetune_model(base, str(stations[1]), tmp_path / "ab", recipe=recipe, hooks=QUIET_HOOKS)
    lines: list[str] = []
    second = finetune_model(
        first.bundle,
        str(third),
        tmp_path / "abc",
        recipe=recipe,
        hooks=Hooks(log=lines.append, progress=False),
    )
    # Before this, a chained fine-tune re-checked only the first station and forgot the second.
    assert [s.name for s in second.old] == [stations[0].name, stations[1].name]
    assert all(s.before is not None and s.after is not None and s.after["n"] > 0 for s in second.old)
    replayed = len(second.old[0].station["train"]) + len(second.old[1].station["train"])
    assert any(
        f"replay: {replayed} reference images of 2 old stations train beside" in line for line in lines
    )
    provenance = load_bundle(second.bundle).meta.provenance
    kept = {s["name"]: s["macro_f1"] for s in provenance["stations"] if s["role"] == "kept"}
    assert kept == {s.name: round(s.after["macro_f1"], 4) for s in second.old}
    assert [s["name"] for s in provenance["old_stations"]] == [stations[0].name, stations[1].name]
    assert [Path(s["data"]).name for s in samples_of(provenance)] == ["a", "b", "c"]


def test_the_bundle_remembers_its_trained_station_and_the_latest_adaptations(stations, tmp_path):
    from conftest import make_station

    from inspector.training.reference_sample import draw, make_copy
    from inspector.training.station_memory import MAX_ADDED, bundle_thumbnails, remember_station

    provenance = {"reference_sample": draw(load_station(stations[0]), str(stations[0]), 0)}
    folder, lines = tmp_path / "base", []
    folder.mkdir()
    (folder / REFERENCE_FILE).write_bytes(make_copy(provenance["reference_sample"], stations[0], 24))
    others = [make_station(tmp_path / f"s{n}", CLASSES, per_class=6, seed=n) for n in range(MAX_ADDED + 2)]
    for n, other in enumerate([*others, others[3]]):  # the last one adapts again to a station it knows
        pool = bundle_thumbnails(folder, provenance)
        keys, blob = remember_station(provenance, pool, load_station(other), str(other), 0, 24, lines.append)
        provenance.update(keys)
        folder = tmp_path / f"bundle{n}"
        folder.mkdir()
        (folder / REFERENCE_FILE).write_bytes(blob)
    names = [Path(s["data"]).name for s in samples_of(provenance)]
    assert names == ["a", "s2", "s4", "s3"] and len(names) == 1 + MAX_ADDED
    # every remembered station's thumbnails survive the re-packing, under keys of their own
    for sample in samples_of(provenance):
        assert len(_thumbnails(folder, sample)) == len(sample["images"]) > 0
    assert "4 station(s) (a, s2, s4, s3)" in lines[-1]


def test_a_careless_list_of_remembered_stations_is_carried_without_reading_anything(stations, tmp_path):
    from data.station import load_station
    from inspector.training.station_memory import bundle_thumbnails, load_old_stations, remember_station

    junk = [{"data": "x", "images": 5}, "junk", {"data": "y", "images": ["a", {"path": 1, "copy": "k"}]}]
    provenance = {"reference_samples": junk}
    lines: list[str] = []
    pool = bundle_thumbnails(tmp_path, provenance)
    assert pool == {} and load_old_stations(provenance, list(CLASSES), 1, None, lines.append, pool) == []
    keys, blob = remember_station(provenance, pool, load_station(stations[1]), str(stations[1]), 0, 24, print)
    *carried, new = [keys["reference_sample"], *keys["reference_samples"]]
    assert Path(new["data"]).name == "b" and len(_thumbnails_in(blob, new)) == len(new["images"]) > 0
    # what was carried keeps no thumbnail key it cannot back
    assert [e for s in carried if isinstance(s["images"], list) for e in s["images"] if "copy" in e] == []


def _thumbnails_in(blob: bytes, reference) -> list[np.ndarray]:
    """A sample's thumbnails in a copy file's bytes, in the sample's order."""
    from safetensors.numpy import load

    tensors = load(blob)
    return [tensors[e["copy"]] for e in reference["images"] if "copy" in e]


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
    assert summary.old and summary.old[0].after is not None and summary.old[0].after["n"] > 0
    assert any(f"{len(reference['images'])} from the bundle's copy" in line for line in lines)
    # the adapted bundle carries the old station's thumbnails on, pixel for pixel, beside the new one's
    kept = load_bundle(tmp_path / "adapted").meta.provenance
    before, after = _thumbnails(moved, reference), _thumbnails(tmp_path / "adapted", kept["reference_sample"])
    assert [a.tobytes() for a in after] == [b.tobytes() for b in before] and len(before) == len(
        reference["images"]
    )
    assert len(_thumbnails(tmp_path / "adapted", kept["reference_samples"][0])) > 0

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
    assert summary.old == []
    assert any("not reachable on this PC and the base keeps no copy" in line for line in lines)
    assert any(
        line.startswith("replay: the old station's reference images are not at hand") for line in lines
    )
    # the copy that failed its check is not carried on: only the new station's thumbnails are kept
    kept = load_bundle(tmp_path / "again").meta.provenance
    assert _thumbnails(tmp_path / "again", kept["reference_sample"]) == []
    assert "copy" not in kept["reference_sample"]
    assert len(_thumbnails(tmp_path / "again", kept["reference_samples"][0])) > 0


def _thumbnails(folder, reference) -> list[np.ndarray]:
    """A sample's thumbnails in the bundle at ``folder``, in the sample's order."""
    if "copy" not in reference:
        return []
    return _thumbnails_in((folder / REFERENCE_FILE).read_bytes(), reference)


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
    old = load_sample(reference, {}, list(CLASSES), 1, None, lambda line: None)
    assert old is not None and old.missing == 3  # the two outside the station and the changed one
    loaded = [s.path for split in old.splits.values() for s in split.samples]
    assert len(loaded) == good - 1 and outside not in loaded
    assert all(p.is_relative_to(stations[0].resolve()) for p in loaded)
    broken = {"data": "x", "root": str(stations[0]), "images": "not a list"}
    assert load_sample(broken, {}, list(CLASSES), 1, None, lambda line: None) is None


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

    from inspector.training.reference_sample import MAX_COPY_SIDE, copied_images, copy_bytes

    def _copied_images(folder, promise):
        return copied_images(copy_bytes(folder, promise))

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
