"""Brightness, contrast and sharpness of generated images: each change moves the right statistic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from data.errors import DataError
from data.image_stats import STATISTICS, InputReference, image_statistics, reference_statistics


def _scene(size: int = 300, seed: int = 0) -> np.ndarray:
    """Texture with edges: noise, bars and a disc on a mid-gray ground."""
    rng = np.random.default_rng(seed)
    image = rng.normal(120, 10, (size, size)).astype(np.float32)
    for x in range(20, size, 40):
        image[:, x : x + 6] += 50
    cv2.circle(image, (size // 2, size // 2), size // 6, 200, -1)
    return image.clip(0, 255).astype(np.uint8)


def _stats(image: np.ndarray) -> dict[str, float]:
    return dict(zip(STATISTICS, image_statistics(image), strict=True))


def test_brighter_darker_lower_contrast_and_blurred_frames_move_the_right_statistic():
    base = _scene()
    ref = _stats(base)
    brighter = _stats(np.clip(base.astype(int) + 40, 0, 255).astype(np.uint8))
    darker = _stats(np.clip(base.astype(int) - 40, 0, 255).astype(np.uint8))
    flat = _stats((0.5 * (base.astype(np.float32) - base.mean()) + base.mean()).astype(np.uint8))
    blurred = _stats(cv2.GaussianBlur(base, (0, 0), 3))

    assert brighter["brightness"] > ref["brightness"] + 30
    assert darker["brightness"] < ref["brightness"] - 30
    # an offset leaves contrast and sharpness (almost) alone
    assert brighter["contrast"] == pytest.approx(ref["contrast"], rel=0.1)
    assert brighter["sharpness"] == pytest.approx(ref["sharpness"], rel=0.1)
    assert flat["contrast"] < 0.6 * ref["contrast"]
    assert flat["brightness"] == pytest.approx(ref["brightness"], abs=2)
    assert blurred["sharpness"] < 0.3 * ref["sharpness"]
    assert blurred["brightness"] == pytest.approx(ref["brightness"], abs=2)


def test_colour_16_bit_and_a_larger_frame_of_the_same_scene_read_alike():
    base = _scene(256)
    gray = _stats(base)
    colour = _stats(np.dstack([base] * 3))
    deep = _stats(base.astype(np.uint16) * 257)
    large = _stats(cv2.resize(base, (1024, 1024), interpolation=cv2.INTER_NEAREST))
    for name in STATISTICS:
        assert colour[name] == pytest.approx(gray[name], rel=0.01)
        assert deep[name] == pytest.approx(gray[name], rel=0.01)
    assert large["brightness"] == pytest.approx(gray["brightness"], rel=0.02)
    assert large["contrast"] == pytest.approx(gray["contrast"], rel=0.1)
    # downscaled to the same side first: a higher-resolution camera does not read as sharper
    assert 0.5 * gray["sharpness"] < large["sharpness"] < 2 * gray["sharpness"]


def test_reference_round_trips_through_json_and_refuses_what_is_not_one():
    images = [_scene(seed=i) for i in range(5)]
    reference = reference_statistics(images, side=96)
    assert reference.count == 5 and reference.side == 96 and reference.source == "training"
    again = InputReference.from_json(reference.to_json())
    for name in STATISTICS:
        assert again.mean[name] == pytest.approx(reference.mean[name], abs=1e-3)
        assert again.std[name] == pytest.approx(reference.std[name], abs=1e-3)
    for broken in (
        None,
        {},
        {"statistics": {}, "images": 3, "side": 96},
        {**reference.to_json(), "images": 0},
    ):
        with pytest.raises(DataError):
            InputReference.from_json(broken)
