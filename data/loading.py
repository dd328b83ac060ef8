"""Station images in memory, ready for training and evaluation, with every skipped file counted.

Images are decoded once, converted to the model's channel count and to 8 bits. Training keeps them
at most ``max_side`` pixels on their longer side (a few thousand images in tens of megabytes);
evaluation keeps full size, so it preprocesses exactly as the line does.
Unreadable files are skipped and reported with a count, or stop the run under ``strict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from data.defect_crops import CropPlan
from data.errors import DataError
from data.images import fit_within, read_image, to_uint8
from data.station import Sample


@dataclass
class LoadedImages:
    images: list[np.ndarray]
    labels: list[str]
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)
    # training only: which images may be cropped around their defect (``data.defect_crops``)
    crops: CropPlan | None = None
    # training only: each image's defect pixels (None where unknown), for the keep-defects term
    masks: list[np.ndarray | None] | None = None

    def __len__(self) -> int:
        return len(self.images)


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1 and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channels == 3 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image


def is_gray(image: np.ndarray) -> bool:
    """A 2-D image, or a colour one whose three planes are the same (a gray JPEG saved as RGB)."""
    return image.ndim == 2 or (
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    )


def guess_channels(samples: Sequence[Sample], probe: int = 24) -> int:
    """1 when the station's images are gray, else 3 (decided on a few readable images)."""
    for sample in samples[:probe]:
        try:
            image = read_image(sample.path)
        except DataError:
            continue
        if not is_gray(image):
            return 3
    return 1


def load_pixels(
    samples: Sequence[Sample],
    channels: int,
    max_side: int | None,
    strict: bool = False,
    desc: str = "loading images",
    progress: bool = True,
) -> LoadedImages:
    """Decode ``samples``; unreadable ones are skipped with a reason (or raise under ``strict``)."""
    out = LoadedImages([], [], [])
    for sample in tqdm(samples, desc=desc, unit="img", leave=False, disable=not progress):
        try:
            image = read_image(sample.path)
        except DataError as exc:
            if strict:
                raise DataError(f"{exc} (--strict stops at the first unreadable file)") from exc
            out.skipped.append(str(exc))
            continue
        image = convert_channels(to_uint8(image), channels)
        if max_side:
            image = fit_within(image, max_side)
        out.images.append(image)
        out.labels.append(sample.label)
        out.samples.append(sample)
    return out
