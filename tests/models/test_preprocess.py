"""The preprocessing contract: bit depths, channels and resize modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ModelError
from models.preprocess import Preprocessing, map_on_image, preprocess


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
def test_shapes_and_scaling(resize):
    prep = Preprocessing(size=32, channels=3, mean=[0.0] * 3, std=[1.0] * 3, resize=resize)
    white8 = np.full((40, 60), 255, np.uint8)
    white16 = np.full((40, 60, 3), 65535, np.uint16)
    batch = preprocess([white8, white16], prep)
    assert batch.shape == (2, 3, 32, 32)
    if resize != "letterbox":
        torch.testing.assert_close(batch, torch.ones_like(batch))
    else:
        assert float(batch.min()) == 0.0 and float(batch.max()) == pytest.approx(1.0)


def test_colour_to_gray_and_normalisation():
    prep = Preprocessing(size=16, channels=1, mean=[0.5], std=[0.5])
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    out = preprocess([red], prep)
    assert out.shape == (1, 1, 16, 16)
    torch.testing.assert_close(out, torch.full_like(out, (0.299 - 0.5) / 0.5))


def test_bad_arrays_and_records_are_clear_errors():
    with pytest.raises(ModelError, match="shape"):
        preprocess([np.zeros((4, 4, 2), np.uint8)], Preprocessing(size=32))
    with pytest.raises(ModelError, match="resize"):
        Preprocessing(resize="zoom").validate()


def test_image_normalisation_ignores_the_lamp():
    """A dimmer, flatter lamp (gain and offset) gives the same input; each image has mean 0, std 1."""
    prep = Preprocessing(size=32, channels=1, mean=[0.9], std=[0.01], normalize="image")
    rng = np.random.default_rng(0)
    part = rng.uniform(0.2, 0.8, (48, 48))
    bright = (part * 255).astype(np.float32) / 255
    dim = 0.5 * bright + 0.1
    out = preprocess([bright, dim], prep)
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=0)
    assert out.mean(dim=(1, 2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(out.std(dim=(1, 2, 3)), torch.ones(2))


def test_image_normalisation_keeps_a_blank_frame_finite():
    prep = Preprocessing(size=16, channels=1, normalize="image")
    out = preprocess([np.full((20, 20), 128, np.uint8)], prep)
    assert torch.isfinite(out).all() and float(out.abs().max()) < 1e-3


def test_normalize_mode_is_recorded_and_old_records_read_as_dataset():
    prep = Preprocessing(size=32, channels=1, mean=[0.5], std=[0.25], normalize="image")
    assert Preprocessing.from_json(prep.to_json()) == prep
    old = prep.to_json()
    del old["normalize"]
    assert Preprocessing.from_json(old).normalize == "dataset"
    with pytest.raises(ModelError, match="normalize"):
        Preprocessing.from_json({**old, "normalize": "histogram"})


def _smooth(height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return (127 + 100 * np.sin(rows / 9.0) * np.cos(cols / 13.0)).astype(np.uint8)


@pytest.mark.parametrize(("height", "width"), [(60, 150), (150, 60), (90, 90)])
def test_a_map_over_the_letterboxed_input_lands_on_the_part_not_the_padding(height, width):
    """The network's own input, read back as a map, lies on the original image: the padding is
    dropped and the rest lines up with the part (what the Live overlay relies on)."""
    image = _smooth(height, width)
    prep = Preprocessing(size=64, channels=1, mean=[0.0], std=[1.0], resize="letterbox")
    seen = preprocess([image], prep)[0, 0].numpy()
    back = map_on_image(seen, height, width, "letterbox", cells=1)
    assert abs(back.shape[1] / back.shape[0] - width / height) < 0.1
    original = torch.nn.functional.interpolate(
        torch.from_numpy(image / 255.0)[None, None].float(), size=back.shape, mode="area"
    )[0, 0].numpy()
    assert np.corrcoef(back.ravel(), original.ravel())[0, 1] > 0.95


def test_a_centre_crops_map_leaves_what_the_network_never_saw_unmapped():
    grid = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = map_on_image(grid, 50, 100, "center_crop", cells=2)
    assert out.shape == (8, 16)
    assert np.isnan(out[:, :4]).all() and np.isnan(out[:, -4:]).all()
    assert np.isfinite(out[:, 4:12]).all()
    np.testing.assert_array_equal(map_on_image(grid, 50, 100, "stretch"), grid)
