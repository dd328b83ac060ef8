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
    assert "small defects: the median defect mask covers 0.31 %" in result.output
    assert "training at 224 px" in result.output and "--img-size 160 keeps the default" in result.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["preprocessing"]["size"] == 224
    assert meta["provenance"]["recipe"]["keep_defects"] == 0.5


def test_the_small_defect_rule_keeps_what_the_engineer_set_and_what_the_merge_cannot_learn(tmp_path):
    from data.station import load_station
    from inspector.training.loop import Recipe
    from inspector.training.train_station import Architecture, SmallDefects, raise_for_small_defects

    small = load_station(str(_station_with_masks(tmp_path / "small", size=96)))
    large = load_station(str(_station_with_masks(tmp_path / "large", size=48, per_class=4)))
    ltm, pooling = Architecture("hybrid-s16", "ltm"), Architecture("hybrid-s16", "ltm", mask="pooling")
    said: list[str] = []
    size, recipe = raise_for_small_defects(small, 160, Recipe(), ltm, SmallDefects(), said.append)
    assert (size, recipe.keep_defects) == (224, 0.5) and len(said) == 2
    size, recipe = raise_for_small_defects(small, 160, Recipe(), ltm, SmallDefects(None), said.append)
    assert (size, recipe.keep_defects) == (224, 0.0)  # --keep-defects 0 given: stays off
    by_hand = Recipe(keep_defects=0.2)
    assert raise_for_small_defects(small, 160, by_hand, ltm, SmallDefects(), said.append)[1] == by_hand
    size, recipe = raise_for_small_defects(small, 160, Recipe(), pooling, SmallDefects(), said.append)
    assert (size, recipe.keep_defects) == (224, 0.0)  # a frozen merge has nothing to learn
    said.clear()
    assert raise_for_small_defects(large, 160, Recipe(), ltm, SmallDefects(), said.append)[0] == 160
    assert said == []  # a 3 px spot on a 48 px part fills a token at 160 px: nothing to say
