"""A tiny, learnable station generated on the spot: noise plus a class-specific mark.

Tests and the quick benchmark profile need a real folder-per-class dataset that trains in
seconds and needs nothing from ``../shared``; this is the one place that draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np


def write_synthetic_station(
    root: Path,
    classes: Sequence[str] = ("ok", "scratch", "spot"),
    per_class: int = 24,
    size: int = 40,
    seed: int = 0,
) -> Path:
    """PNG files in class folders: class 0 plain noise, class 1 a dark line, class 2 a bright spot."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.normal(140, 12, (size, size)).clip(0, 255).astype(np.uint8)
            if index == 1:
                row = int(rng.integers(6, size - 8))
                image[row : row + 3, 4 : size - 4] = 40
            elif index == 2:
                y, x = (int(v) for v in rng.integers(8, size - 8, 2))
                cv2.circle(image, (x, y), 5, 230, -1)
            cv2.imwrite(str(folder / f"{name}_{i:03d}.png"), image)
    return Path(root)
