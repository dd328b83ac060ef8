"""The station survey (image sizes from headers) and the input geometry chosen from it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data.geometry import LARGEST, SMALLEST, choose_geometry, survey_sizes
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
