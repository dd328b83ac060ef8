"""The station survey (image sizes from headers, defect sizes from masks) and the input geometry
chosen from it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from data.geometry import (
    LARGEST,
    SMALL_DEFECT_LARGEST,
    SMALLEST,
    choose_geometry,
    small_defect_size,
    survey_defects,
    survey_sizes,
)
from data.station import Sample


def _station(folder: Path, sizes: list[tuple[int, int]]) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, (width, height) in enumerate(sizes):
        path = folder / f"p{i}.png"
        cv2.imwrite(str(path), np.full((height, width), 100, np.uint8))
        samples.append(Sample(path, "ok"))
    return samples


def test_varied_shapes_are_letterboxed_at_native_scale(tmp_path):
    samples = _station(tmp_path, [(100, 240), (300, 250), (600, 230), (256, 256), (220, 300)])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    survey = survey_sizes([*samples, Sample(tmp_path / "broken.png", "ok")])
    assert survey.images == 5 and survey.unreadable == 1
    assert "1 file(s) give no size" in survey.describe()
    assert survey.width[0] == 100 and survey.width[-1] == 600 and survey.height[2] == 250
    geometry = choose_geometry(survey)
    assert geometry.resize == "letterbox" and geometry.size == 256
    assert "letterboxed" in geometry.reason and "native scale" in geometry.reason


def test_square_parts_are_stretched_and_the_size_stays_within_its_bounds(tmp_path):
    small = choose_geometry(survey_sizes(_station(tmp_path / "a", [(40, 40)] * 3)))
    assert (small.size, small.resize) == (SMALLEST, "stretch") and "minimum" in small.reason
    large = choose_geometry(survey_sizes(_station(tmp_path / "b", [(1200, 1180)] * 3)))
    assert (large.size, large.resize) == (LARGEST, "stretch") and "capped" in large.reason
    assert choose_geometry(survey_sizes([Sample(tmp_path / "missing.png", "ok")])).size == SMALLEST


def _masked(folder: Path, radius: int, images: int = 6, side: int = 96) -> list[Sample]:
    """Defect images with a disc of ``radius`` px in their mask, and one normal image (no mask)."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = [Sample(folder / "ok.png", "ok")]
    for i in range(images):
        mask = np.zeros((side, side), np.uint8)
        cv2.circle(mask, (side // 2, side // 2), radius, 255, -1)
        cv2.imwrite(str(folder / f"m{i}.png"), mask)
        samples.append(Sample(folder / f"d{i}.png", "spot", meta=(("mask", f"m{i}.png"),)))
    return samples


def test_small_masked_defects_raise_the_input_until_one_fills_a_token(tmp_path):
    samples = _masked(tmp_path, radius=2)
    (tmp_path / "m0.png").write_bytes(b"not a png")  # unreadable: left out of the survey
    samples.append(Sample(tmp_path / "d9.png", "spot", meta=(("mask", "../outside.png"),)))
    survey = survey_defects(samples, tmp_path, {"ok"})
    assert survey is not None and survey.masks == 5
    assert survey.median_area == pytest.approx(13 / 96**2)  # a radius-2 disc is 13 pixels
    assert survey.pixels_at(160) < 16 * 16 and "16x16 token" in survey.describe(160)
    assert small_defect_size(survey, 160) == SMALL_DEFECT_LARGEST  # 426 px wanted, capped
    assert small_defect_size(survey, SMALL_DEFECT_LARGEST) is None


def test_defects_that_fill_a_token_or_no_masks_keep_the_default(tmp_path):
    large = survey_defects(_masked(tmp_path / "a", radius=12), tmp_path / "a", {"ok"})
    assert large is not None and large.pixels_at(160) >= 16 * 16
    assert small_defect_size(large, 160) is None
    assert small_defect_size(None, 160) is None
    unmasked = [Sample(tmp_path / "x.png", "spot")]
    assert survey_defects(unmasked, tmp_path, {"ok"}) is None
    # between: a 149-pixel disc fills a token at 210 px, which is 208 px to the stride of 16
    medium = survey_defects(_masked(tmp_path / "b", radius=7, side=160), tmp_path / "b", {"ok"})
    assert medium is not None and small_defect_size(medium, 160) == 208
