"""Image reading: bit depths, formats, channels, and one clear error for every bad file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from tests_support import png_claiming

from data.errors import DataError, ImageTooLarge
from data.images import MAX_PIXELS_ENV, image_size, read_image, to_uint8
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


def test_a_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 100000x100000 PNG header stopped the line (OpenCV raised) and gave tracebacks in train."""
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded despite the header"))
    with pytest.raises(ImageTooLarge, match="10000 MP, over the 50 MP limit"):
        read_image(path)
    loaded = load_pixels([Sample(path, "ok")], channels=1, max_side=None, progress=False)
    assert len(loaded) == 0 and "over the 50 MP limit" in loaded.skipped[0]


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((30, 20), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "599")
    with pytest.raises(ImageTooLarge, match=MAX_PIXELS_ENV):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "600")
    assert read_image(path).shape == (30, 20)
    assert read_image(path, limit=10_000).shape == (30, 20)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match="positive whole number"):
        read_image(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_header_sizes_match_the_decoded_image(suffix):
    ok, encoded = cv2.imencode(suffix, np.zeros((31, 47, 3), np.uint8))
    assert ok and image_size(encoded.tobytes()) == (47, 31)


def test_files_no_header_can_size_are_not_decoded(tmp_path):
    """Anything but PNG/JPEG/BMP/TIFF (whatever its name) is refused: its size cannot be bounded."""
    ok, webp = cv2.imencode(".webp", np.zeros((8, 8), np.uint8))
    path = tmp_path / "disguised.png"
    path.write_bytes(webp.tobytes())
    with pytest.raises(DataError, match="not a readable image"):
        read_image(path)
