"""Defect-preserving crops: more views of a rare defect at a larger scale (issue 24 item 5).

magnetic_tile's rare classes are a handful of physical tiles (fray: five to train on), and a blowhole
is 0.15 % of its tile: squashed to the model's input, the network can tell the tiles apart by their
overall look long before it learns the defect. A crop that is sure to hold the defect shows it
bigger, in a new context, every epoch. Where a station's manifest has a ``mask`` column (a pixel
mask per defect image, as magnetic_tile's), the mask's bounding box says where the defect is; a
crop is placed so the box's centre stays inside it. Normal parts are cropped the same way at random
(a crop must not be a class cue); a defect image without a usable mask is never cropped (the crop
could cut its defect out and keep its label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.dataset import Sample
from data.errors import DataError
from data.images import read_image

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image's width/height

# A crop keeps this share of each side: half the tile (4x the defect's share of the picture) on
# average, never less than a third (the pretrained features need some surface around a defect).
SIDE = (0.35, 0.75)


def mask_path(sample: Sample, root: Path) -> Path | None:
    """The sample's mask file, or None when there is none or it would leave the station's folder."""
    raw = sample.get("mask").strip()
    if not raw:
        return None
    try:
        path = (root / raw).resolve()
        return path if path.is_relative_to(root.resolve()) and path.is_file() else None
    except (OSError, RuntimeError, ValueError):  # an unreadable folder on the way is no mask
        return None


def plane_of(mask: np.ndarray) -> np.ndarray:
    """A mask as one plane of pixels: a mask saved in colour marks a defect in any channel."""
    return mask if mask.ndim == 2 else mask.max(axis=2)


def box_of(mask: np.ndarray) -> Box | None:
    """The bounding box of a mask's non-zero pixels, as fractions; None for an empty mask."""
    plane = plane_of(mask)
    rows, cols = np.nonzero(plane)
    if rows.size == 0:
        return None
    h, w = plane.shape
    return (cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h)


@dataclass(frozen=True)
class CropPlan:
    """Which training images may be cropped, around which box, and how often (``share``)."""

    boxes: list[Box | None]
    croppable: list[bool]
    share: float

    @property
    def with_box(self) -> int:
        return sum(box is not None for box in self.boxes)


def plan_crops(
    masks: Sequence[np.ndarray | None], labels: Sequence[str], normal: set[str], share: float
) -> CropPlan:
    """The crop plan for a training split: normal parts anywhere, defect images around their mask."""
    boxes = [None if mask is None else box_of(mask) for mask in masks]
    croppable = [box is not None or label in normal for label, box in zip(labels, boxes, strict=True)]
    return CropPlan(boxes, croppable, share)


def defect_masks(
    samples: Sequence[Sample], shapes: Sequence[tuple[int, ...]], root: Path, normal: set[str]
) -> tuple[list[np.ndarray | None], list[str]]:
    """Per sample, its defect's pixels as a bool array of the loaded image's ``shape`` (None for
    normal parts and where no usable mask says), plus the problems found: an unreadable or empty
    mask on a defect image (that image is then never cropped)."""
    masks: list[np.ndarray | None] = []
    problems: list[str] = []
    for sample, shape in zip(samples, shapes, strict=True):
        path = mask_path(sample, root)
        mask = None
        if path is not None and sample.label not in normal:
            try:
                pixels = read_image(path)
            except DataError as exc:
                problems.append(f"mask {exc}")
                pixels = None
            if pixels is not None:
                plane = (plane_of(pixels) > 0).astype(np.float32)
                height, width = shape[:2]
                # area, not nearest: a defect of a pixel or two must survive a smaller image
                mask = cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA) > 0
                if not mask.any():
                    problems.append(f"{path}: empty mask for a {sample.label} image")
                    mask = None
        masks.append(mask)
    return masks, problems


def crop_window(
    width: int, height: int, box: Box | None, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """A crop (x0, y0, x1, y1) in pixels: a random share of each side, placed at random, with the
    box's centre inside it when a box is given."""
    side = rng.uniform(*SIDE)
    cw, ch = max(1, round(width * side)), max(1, round(height * side))
    if box is None:
        x0, y0 = rng.integers(0, width - cw + 1), rng.integers(0, height - ch + 1)
    else:
        cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
        # the centre lands in the crop's middle 80 %: a defect is never only a sliver at its edge
        x0 = round(cx - cw * rng.uniform(0.1, 0.9))
        y0 = round(cy - ch * rng.uniform(0.1, 0.9))
        x0, y0 = min(max(0, x0), width - cw), min(max(0, y0), height - ch)
    return int(x0), int(y0), int(x0 + cw), int(y0 + ch)


Window = tuple[int, int, int, int]


def crop_windows(
    images: Sequence[np.ndarray], index: Sequence[int], plan: CropPlan, rng: np.random.Generator
) -> list[Window | None]:
    """For the images at ``index``, a crop window for each croppable one with probability
    ``plan.share`` (around its defect's box, or anywhere for a normal part), else None."""
    windows: list[Window | None] = []
    for j in index:
        window = None
        if plan.croppable[j] and rng.random() < plan.share:
            h, w = images[j].shape[:2]
            window = crop_window(w, h, plan.boxes[j], rng)
        windows.append(window)
    return windows


def cut(image: np.ndarray, window: Window | None) -> np.ndarray:
    """``image`` inside ``window`` (the whole image for None)."""
    if window is None:
        return image
    x0, y0, x1, y1 = window
    return np.ascontiguousarray(image[y0:y1, x0:x1])
