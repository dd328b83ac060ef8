"""Image reading: bit depths, formats, channels, and one clear error for every bad file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data.errors import DataError
from data.images import read_image, to_uint8
from data.loading import load_pixels
from data.station import Sample


@pytest.mark.parametrize(
    ("suffix", "dtype", "channels"),
    [
        (".png", np.uint8, 1),
        (".png", np.uint16, 1),
        (".tif", np.uint16, 3),
        (".bmp", np.uint8, 3),
        (".jpg", np.uint8, 1),
    ],
)
def test_reads_formats_depths_and_channels(tmp_path, suffix, dtype, channels):
    rng = np.random.default_rng(0)
    high = np.iinfo(dtype).max
    shape = (30, 20) if channels == 1 else (30, 20, 3)
    pixels = rng.integers(0, high, shape, dtype=dtype)
    path = tmp_path / f"img{suffix}"
    assert cv2.imwrite(str(path), pixels)
    image = read_image(path)
    assert image.shape == shape and image.dtype == dtype
    if suffix != ".jpg":
        expected = pixels if channels == 1 else pixels[:, :, ::-1]  # OpenCV writes BGR; we read RGB
        np.testing.assert_array_equal(image, expected)
    assert to_uint8(image).dtype == np.uint8


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_are_reported(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    cv2.imwrite(str(path), np.full((64, 64), 128, np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_image(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match="bad.png"):
        read_image(bad)
    with pytest.raises(DataError, match="cannot read"):
        read_image(tmp_path / "missing.png")


def test_load_pixels_counts_skips_or_stops_when_strict(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((50, 80), np.uint8))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 broken")
    samples = [Sample(good, "ok"), Sample(bad, "ok")]
    loaded = load_pixels(samples, channels=3, max_side=40, progress=False)
    assert len(loaded) == 1 and len(loaded.skipped) == 1
    assert loaded.images[0].shape == (25, 40, 3)
    with pytest.raises(DataError, match="--strict"):
        load_pixels(samples, channels=1, max_side=None, strict=True, progress=False)
