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


def test_data_info_names_the_masked_defects(tmp_path):
    station = _station_with_masks(tmp_path / "masked")
    result = runner.invoke(app, ["data", "info", str(station)])
    assert result.exit_code == 0, result.output
    assert "defect masks: spot 16 images" in " ".join(result.output.split())
