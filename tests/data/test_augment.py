"""Augmentation presets change pixels, never labels or shapes, and are reproducible by seed."""

from __future__ import annotations

import numpy as np
import pytest

from data.augment import PRESETS, apply, build_augmentation, preview_grid
from data.errors import DataError
from data.loading import load_pixels
from data.station import load_station


@pytest.fixture
def images(tiny_station):
    loaded = load_pixels(load_station(tiny_station).samples[:6], channels=1, max_side=None, progress=False)
    return loaded


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("severity", [None, 1, 2, 3])
def test_presets_change_pixels_not_shapes(images, preset, severity):
    transform = build_augmentation([preset], severity, seed=1)
    changed = 0
    for image in images.images:
        out = apply(transform, image)
        assert out.shape == image.shape and out.dtype == np.uint8
        changed += int(not np.array_equal(out, image))
    assert changed >= (1 if severity is None else len(images.images) - 1)


def test_labels_travel_untouched(images):
    """Presets see only pixels: the labels of a batch are the labels we started with."""
    transform = build_augmentation(list(PRESETS), 3, seed=0)
    before = list(images.labels)
    _ = [apply(transform, image) for image in images.images]
    assert images.labels == before


def test_same_seed_same_images(images):
    first = [apply(build_augmentation(["lighting", "optics"], 2, seed=7), im) for im in images.images]
    second = [apply(build_augmentation(["lighting", "optics"], 2, seed=7), im) for im in images.images]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_unknown_preset_and_severity_are_clear_errors():
    with pytest.raises(DataError, match="unknown augmentation preset"):
        build_augmentation(["fog"])
    with pytest.raises(DataError, match="severity"):
        build_augmentation(["angle"], severity=5)


def test_preview_grid(images):
    grid = preview_grid(images.images[:2], ["lighting"], per_image=3, tile=50)
    assert grid.shape == (2 * 54, 4 * 54, 3) and grid.dtype == np.uint8


def test_a_defect_mask_moves_with_its_image_through_flips_and_shifts():
    import numpy as np

    from data.augment import apply_with_mask, default_train_augmentation

    image = np.full((40, 60), 20, np.uint8)
    image[5:12, 40:55] = 250
    mask = image > 128
    transform = default_train_augmentation(seed=3)
    for _ in range(10):
        moved, moved_mask = apply_with_mask(transform, image, mask)
        assert moved_mask.dtype == bool and moved_mask.shape == moved.shape
        assert moved[moved_mask].mean() > 150 > moved[~moved_mask].mean()
    assert apply_with_mask(transform, image, None)[1] is None
