"""Defect-preserving crops: the crop keeps the defect, masks stay inside the station, no crop lies."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.dataset import Sample
from data.defect_crops import (
    SIDE,
    CropPlan,
    box_of,
    crop_window,
    crop_windows,
    cut,
    defect_masks,
    mask_path,
    plan_crops,
)


def _mask(path: Path, size=(60, 80), rect=(50, 10, 58, 16)) -> Path:
    mask = np.zeros(size, np.uint8)
    x0, y0, x1, y1 = rect
    mask[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask)
    return path


def test_box_of_a_mask_is_its_non_zero_pixels_as_fractions_and_none_when_empty():
    mask = np.zeros((50, 100), np.uint8)
    mask[10:20, 30:40] = 1
    assert box_of(mask) == (0.3, 0.2, 0.4, 0.4)
    assert box_of(np.zeros((5, 5), np.uint8)) is None


def test_every_crop_keeps_the_defects_centre_and_a_third_to_three_quarters_of_each_side():
    rng = np.random.default_rng(0)
    box = (0.9, 0.05, 0.98, 0.1)  # a small defect near a corner: the hard case for a random crop
    for _ in range(500):
        x0, y0, x1, y1 = crop_window(300, 200, box, rng)
        assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 200
        assert x0 <= 0.94 * 300 <= x1 and y0 <= 0.075 * 200 <= y1
        assert SIDE[0] - 0.01 <= (x1 - x0) / 300 <= SIDE[1] + 0.01
        assert abs((x1 - x0) / 300 - (y1 - y0) / 200) < 0.01  # the part's aspect is kept


def test_a_mask_path_that_leaves_the_station_or_does_not_exist_is_ignored(tmp_path):
    root = tmp_path / "station"
    _mask(root / "masks" / "a.png")
    _mask(tmp_path / "outside.png")
    inside = Sample(root / "a.png", "spot", meta=(("mask", "masks/a.png"),))
    assert mask_path(inside, root) == (root / "masks" / "a.png").resolve()
    for raw in ("../outside.png", str(tmp_path / "outside.png"), "masks/missing.png", "", "masks"):
        assert mask_path(Sample(root / "a.png", "spot", meta=(("mask", raw),)), root) is None


def test_the_plan_crops_normal_parts_and_boxed_defects_never_a_defect_without_a_box(tmp_path):
    root = tmp_path / "station"
    _mask(root / "m" / "good.png")
    cv2.imwrite(str(root / "m" / "empty.png"), np.zeros((8, 8), np.uint8))
    (root / "m" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    samples = [
        Sample(root / "1.png", "ok", meta=(("mask", ""),)),
        Sample(root / "2.png", "spot", meta=(("mask", "m/good.png"),)),
        Sample(root / "3.png", "spot", meta=(("mask", "m/empty.png"),)),
        Sample(root / "4.png", "spot", meta=(("mask", "m/broken.png"),)),
        Sample(root / "5.png", "spot"),
    ]
    masks, problems = defect_masks(samples, [(30, 40)] * 5, root, {"ok"})  # images kept at half size
    assert [m is None for m in masks] == [True, False, True, True, True]
    assert masks[1].shape == (30, 40) and masks[1][5:8, 25:29].all() and masks[1].sum() == 12
    assert len(problems) == 2 and "empty mask" in problems[0] and "broken.png" in problems[1]
    plan = plan_crops(masks, [s.label for s in samples], {"ok"}, 1.0)
    assert plan.croppable == [True, True, False, False, False]
    assert plan.boxes[1] == (50 / 80, 10 / 60, 58 / 80, 16 / 60) and plan.with_box == 1

    images = [np.full((60, 80), i, np.uint8) for i in range(5)]
    windows = crop_windows(images, range(5), plan, np.random.default_rng(0))
    out = [cut(image, window) for image, window in zip(images, windows, strict=True)]
    assert [o.shape for o in out[2:]] == [(60, 80)] * 3  # never cropped: the defect could be cut out
    assert all(o.shape != (60, 80) for o in out[:2])
    never = CropPlan(plan.boxes, plan.croppable, 0.0)
    assert crop_windows(images, range(5), never, np.random.default_rng(0)) == [None] * 5
    assert cut(images[0], None) is images[0]
