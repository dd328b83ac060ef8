"""``inspector train --defect-crops``: trains on a station with masks, refuses one without, one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from inspector.cli import app

runner = CliRunner()


def _station_with_masks(root: Path, per_class: int = 16, size: int = 48) -> Path:
    """ok (noise) and spot (a bright disc) with a pixel mask per spot, listed in a manifest."""
    rng = np.random.default_rng(0)
    rows = []
    for label in ("ok", "spot"):
        (root / label).mkdir(parents=True)
        (root / "masks").mkdir(exist_ok=True)
        for i in range(per_class):
            image = rng.normal(140, 12, (size, size)).clip(0, 255).astype(np.uint8)
            mask = ""
            if label == "spot":
                x, y = (int(v) for v in rng.integers(6, size - 6, 2))
                cv2.circle(image, (x, y), 3, 230, -1)
                drawn = np.zeros_like(image)
                cv2.circle(drawn, (x, y), 3, 255, -1)
                mask = f"masks/{i:03d}.png"
                cv2.imwrite(str(root / mask), drawn)
            cv2.imwrite(str(root / label / f"{i:03d}.png"), image)
            rows.append({"path": f"{label}/{i:03d}.png", "label": label, "mask": mask})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _train(data: Path, out: Path, *extra: str):
    args = ["train", str(data), "--out", str(out), "--epochs", "1", "--backbone", "vit-cpu"]
    return runner.invoke(app, [*args, "--img-size", "32", "--batch-size", "8", *extra])


def test_train_with_defect_crops_says_what_it_crops_and_records_the_share(tmp_path):
    station = _station_with_masks(tmp_path / "station")
    result = _train(station, tmp_path / "m", "--defect-crops", "0.5")
    assert result.exit_code == 0, result.output
    assert "defect-preserving crops: 50%" in result.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["provenance"]["recipe"]["defect_crops"] == 0.5


def test_defect_crops_without_masks_or_out_of_range_is_one_line_and_writes_nothing(tiny_station, tmp_path):
    result = _train(tiny_station, tmp_path / "m", "--defect-crops", "0.5")
    assert result.exit_code != 0 and "needs a pixel mask per defect image" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("m*")) and not list(tmp_path.glob(".m*"))
    result = _train(tiny_station, tmp_path / "m", "--defect-crops", "1.5")
    assert result.exit_code == 2 and not (tmp_path / "m").exists()


def test_keep_defects_trains_the_merge_with_the_masks_and_refuses_a_model_without_merges(tmp_path):
    station = _station_with_masks(tmp_path / "station")
    result = _train(
        station, tmp_path / "m", "--img-size", "64", "--defect-crops", "0.5", "--keep-defects", "0.5"
    )
    assert result.exit_code == 0, result.output
    assert "keep-defects term:" in result.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["provenance"]["recipe"]["keep_defects"] == 0.5

    refused = _train(station, tmp_path / "n", "--merge", "none", "--keep-defects", "0.5")
    assert refused.exit_code != 0 and "--keep-defects trains the LTM merge" in refused.output
    assert not list(tmp_path.glob("n*"))


def test_crops_are_on_by_default_where_the_manifest_has_masks_and_off_elsewhere(tmp_path, tiny_station):
    station = _station_with_masks(tmp_path / "masked")
    result = _train(station, tmp_path / "auto")
    assert result.exit_code == 0, result.output
    assert "defect-preserving crops on (50%" in result.output
    recipe = json.loads((tmp_path / "auto" / "model.json").read_text())["provenance"]["recipe"]
    assert recipe["defect_crops"] == 0.5

    off = _train(station, tmp_path / "off", "--defect-crops", "0")
    assert off.exit_code == 0 and "defect-preserving crops" not in off.output
    assert (
        json.loads((tmp_path / "off" / "model.json").read_text())["provenance"]["recipe"]["defect_crops"] == 0
    )

    plain = _train(tiny_station, tmp_path / "plain")
    assert plain.exit_code == 0 and "defect-preserving crops" not in plain.output
    assert (
        json.loads((tmp_path / "plain" / "model.json").read_text())["provenance"]["recipe"]["defect_crops"]
        == 0
    )


def test_data_info_names_the_masked_defects_and_what_their_size_makes_train_pick(tmp_path):
    station = _station_with_masks(tmp_path / "masked")
    result = runner.invoke(app, ["data", "info", str(station)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "defect masks: spot 16 images" in said
    assert "covers 1.26 % of its image" in said and "train keeps the 160 px default" in said
    small = runner.invoke(app, ["data", "info", str(_station_with_masks(tmp_path / "small", size=96))])
    assert "would use 224 px and the keep-defects term" in " ".join(small.output.split())


def test_the_default_recipe_raises_the_input_for_a_station_whose_masked_defects_are_small(tmp_path):
    """A 3 px spot on a 96 px part is under one 16 px token at 160 px: ``inspector train`` without
    --img-size trains the pretrained default at 224 px with the keep-defects term, and says why."""
    station = _station_with_masks(tmp_path / "station", size=96)
    home = ["--home", str(tmp_path / "home")]
    args = ["train", str(station), "--out", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "16"]
    result = runner.invoke(app, [*args, *home])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "small defects: the median defect mask covers 0.31 %" in said
    assert "training at 224 px" in said and "--img-size 160 keeps the default and the term off" in said
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["preprocessing"]["size"] == 224
    assert meta["provenance"]["recipe"]["keep_defects"] == 0.5

    def trained(name: str, *options: str) -> tuple[str, dict]:
        args = ["train", str(station), "--out", str(tmp_path / name), "--epochs", "1", "--batch-size", "16"]
        result = runner.invoke(app, [*args, *options, *home])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split()), json.loads((tmp_path / name / "model.json").read_text())

    said, meta = trained("no-term", "--keep-defects", "0")  # the larger input, without the term
    assert "training at 224 px" in said and "keep-defects term on" not in said
    assert (meta["preprocessing"]["size"], meta["provenance"]["recipe"]["keep_defects"]) == (224, 0.0)
    said, meta = trained("by-hand", "--img-size", "160")  # a size given by hand: no rule at all
    assert "small defects" not in said and meta["preprocessing"]["size"] == 160
    assert meta["provenance"]["recipe"]["keep_defects"] == 0.0


def test_the_small_defect_rule_keeps_what_the_engineer_set_and_what_the_merge_cannot_learn(tmp_path):
    from data.station import load_station
    from inspector.training.loop import Recipe
    from inspector.training.small_defects import SmallDefects, raise_for_small_defects

    small = load_station(str(_station_with_masks(tmp_path / "small", size=96)))
    large = load_station(str(_station_with_masks(tmp_path / "large", size=48, per_class=4)))
    said: list[str] = []

    def rule(station, recipe=None, backbone="hybrid-s16", learnable=True, keep=0.5):
        recipe, wanted = recipe or Recipe(), SmallDefects(keep)
        return raise_for_small_defects(station, 160, recipe, backbone, learnable, wanted, said.append)

    size, recipe = rule(small)
    assert (size, recipe.keep_defects) == (224, 0.5) and len(said) == 2
    assert rule(small, keep=None)[1].keep_defects == 0.0  # --keep-defects 0 given: the term stays off
    by_hand = Recipe(keep_defects=0.2)
    assert rule(small, by_hand)[1] == by_hand
    assert rule(small, learnable=False) == (224, Recipe())  # a frozen merge has nothing to learn
    said.clear()
    assert rule(large) == (160, Recipe()) and said == []  # a 3 px spot on 48 px fills a 16 px token
    assert rule(small, backbone="hybrid-s8") == (160, Recipe())  # ... and on 96 px an 8 px one


def test_a_resumed_run_keeps_the_input_it_started_with(tmp_path):
    import torch
    from safetensors.torch import save_file

    from inspector.training.checkpoint import FILE
    from inspector.training.loop import Recipe
    from inspector.training.small_defects import as_started

    def checkpoint(record: dict) -> Path:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        save_file({"x": torch.zeros(1)}, str(folder / FILE), metadata={"run": json.dumps(record)})
        return folder

    said: list[str] = []
    raised = checkpoint({"input_size": 224, "recipe": {"keep_defects": 0.5}})
    assert as_started(raised, 160, Recipe(), said.append) == (224, Recipe(keep_defects=0.5))
    before_the_rule = checkpoint({"recipe": {"keep_defects": 0.0}})
    assert as_started(before_the_rule, 160, Recipe(), said.append) == (160, Recipe())
    hostile = checkpoint({"input_size": 10**9, "recipe": {"keep_defects": "lots"}})
    assert as_started(hostile, 160, Recipe(), said.append) == (160, Recipe())
    assert said[0] == "resuming at 224 px with keep-defects 0.5, as the run started"
