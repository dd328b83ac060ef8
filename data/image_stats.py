"""Cheap statistics of an image that move when a station changes: brightness, contrast, sharpness.

Each is read off one gray copy of the image, downscaled (never upscaled) so that its longer side is
at most ``side`` pixels: the mean (brightness, 0-255), the standard deviation (contrast, 0-255)
and the variance of the Laplacian (sharpness: falls when the optics blur, rises with noise).

The downscale is what makes the numbers comparable between the training images and a live camera
at another resolution, and what keeps the cost per frame small (measured in BENCHMARKS.md). A
*reference* is the mean and standard deviation of each statistic over a set of images (the
training set, recorded in the model bundle's provenance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from data.errors import DataError
from data.images import fit_within, to_uint8

STATISTICS = ("brightness", "contrast", "sharpness")
DEFAULT_SIDE = 128


def gray_small(image: np.ndarray, side: int = DEFAULT_SIDE) -> np.ndarray:
    """An 8-bit gray copy whose longer side is at most ``side``.

    Halved with a Gaussian pyramid down to under twice ``side``, then area-averaged: the same
    low-pass as area-averaging all the way (what a training image loaded at its model's size went
    through), for a fraction of the cost on a multi-megapixel frame (BENCHMARKS.md).
    """
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(
                np.ascontiguousarray(image), cv2.COLOR_RGBA2GRAY if channels == 4 else cv2.COLOR_RGB2GRAY
            )
    while max(image.shape[:2]) >= 2 * side:
        image = cv2.pyrDown(image)
    return to_uint8(fit_within(image, side))


def image_statistics(image: np.ndarray, side: int = DEFAULT_SIDE) -> tuple[float, float, float]:
    """(brightness, contrast, sharpness) of one image; see the module's docstring."""
    gray = gray_small(image, side)
    mean, std = cv2.meanStdDev(gray)
    laplacian = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    return float(mean[0, 0]), float(std[0, 0]), float(laplacian.var())


@dataclass(frozen=True)
class InputReference:
    """Mean and standard deviation of each statistic over a set of images.

    ``source``: ``training`` (recorded when the model was trained) or ``run`` (the first frames of
    a run, for a model that carries none).
    """

    mean: dict[str, float]
    std: dict[str, float]
    count: int
    side: int = DEFAULT_SIDE
    source: str = "training"

    def to_json(self) -> dict:
        return {
            "statistics": {
                name: {"mean": round(self.mean[name], 4), "std": round(self.std[name], 4)}
                for name in STATISTICS
            },
            "images": self.count,
            "side": self.side,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: object) -> InputReference:
        """The reference a bundle records; :class:`DataError` when it is not one."""
        try:
            stats = data["statistics"]  # type: ignore[index]
            mean = {name: float(stats[name]["mean"]) for name in STATISTICS}
            std = {name: float(stats[name]["std"]) for name in STATISTICS}
            count, side = int(data["images"]), int(data["side"])  # type: ignore[index]
            source = str(data.get("source", "training"))  # type: ignore[union-attr]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"not an input-statistics reference ({exc})") from None
        if count < 1 or side < 8 or not all(np.isfinite(v) for v in (*mean.values(), *std.values())):
            raise DataError("not an input-statistics reference (empty, or non-finite values)")
        return cls(mean, std, count, side, source)

    @classmethod
    def from_values(
        cls, values: np.ndarray, side: int = DEFAULT_SIDE, source: str = "training"
    ) -> InputReference:
        """From an (n, 3) array of :func:`image_statistics` rows."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(STATISTICS))
        if len(values) == 0:
            raise DataError("an input-statistics reference needs at least one image")
        mean, std = values.mean(axis=0), values.std(axis=0)
        return cls(
            {n: float(m) for n, m in zip(STATISTICS, mean, strict=True)},
            {n: float(s) for n, s in zip(STATISTICS, std, strict=True)},
            len(values),
            side,
            source,
        )


def reference_statistics(
    images: Iterable[np.ndarray], side: int = DEFAULT_SIDE, source: str = "training"
) -> InputReference:
    """The reference of a set of images (e.g. a training split already in memory)."""
    return InputReference.from_values(np.array([image_statistics(i, side) for i in images]), side, source)
