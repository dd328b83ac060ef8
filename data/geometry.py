"""How big a station's parts are, and the input geometry a model should see them at (issue 24).

Squashing every part to a small square is what made magnetic_tile's few-pixel defects vanish: a
330 px tile at 160 px loses half its resolution and a wide tile (fray, aspect 2.4) is bent out
of shape. The survey reads only image headers (milliseconds for a thousand files); the choice keeps
each part's aspect (letterbox) when the station's shapes vary, and its native scale up to a cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from data.images import header_size
from data.station import Sample

# The pretrained stems have stride 16; 320 px (a 20x20 token grid) is the most a pretrained cell
# trains in under an hour on 2 cores, and 160 px is the measured default (BENCHMARKS.md,
# "Resolution that LTM pays for?").
STRIDE = 16
SMALLEST = 160
LARGEST = 320
# Shapes this close to square are stretched: letterboxing them would only add padding.
SQUARE = (0.83, 1.2)


@dataclass(frozen=True)
class SizeSurvey:
    """Width, height and aspect (width / height) quantiles (0, 10, 50, 90, 100 %) of a station."""

    images: int
    unreadable: int
    width: tuple[int, ...]
    height: tuple[int, ...]
    aspect: tuple[float, ...]

    @property
    def long_side(self) -> int:
        """The median image's longer side."""
        return max(self.width[2], self.height[2])

    def describe(self) -> str:
        w, h, a = self.width, self.height, self.aspect
        return (
            f"{self.images} images, width {w[0]}–{w[-1]} px (median {w[2]}), height {h[0]}–{h[-1]} px "
            f"(median {h[2]}), aspect w/h {a[0]:.2f}–{a[-1]:.2f} (10–90 %: {a[1]:.2f}–{a[3]:.2f})"
            + (f"; {self.unreadable} file(s) give no size in their header" if self.unreadable else "")
        )


@dataclass(frozen=True)
class Geometry:
    """The input a model is trained at, and why (printed by ``inspector train``)."""

    size: int
    resize: str
    size_reason: str
    resize_reason: str

    @property
    def reason(self) -> str:
        return f"{self.size_reason}; {self.resize_reason}"


def survey_sizes(samples: Sequence[Sample]) -> SizeSurvey | None:
    """Image-size quantiles from the files' headers; None when no header gives a size."""
    sizes = [s for s in (header_size(sample.path) for sample in samples) if s is not None]
    if not sizes:
        return None
    wh = np.array(sizes, dtype=float)
    quantiles = (0, 10, 50, 90, 100)
    width = tuple(int(round(v)) for v in np.percentile(wh[:, 0], quantiles))
    height = tuple(int(round(v)) for v in np.percentile(wh[:, 1], quantiles))
    aspect = tuple(float(v) for v in np.percentile(wh[:, 0] / wh[:, 1], quantiles))
    return SizeSurvey(len(sizes), len(samples) - len(sizes), width, height, aspect)


def choose_geometry(
    survey: SizeSurvey | None, stride: int = STRIDE, smallest: int = SMALLEST, largest: int = LARGEST
) -> Geometry:
    """Native scale (the median long side, to the stem's stride) within [smallest, largest];
    letterboxed when the station's shapes are not all near square."""
    if survey is None:
        return Geometry(smallest, "stretch", "no image header gave a size", "the default input")
    native = max(stride, int(round(survey.long_side / stride)) * stride)
    size = min(largest, max(smallest, native))
    low, high = survey.aspect[1], survey.aspect[3]
    square = SQUARE[0] <= low and high <= SQUARE[1]
    resize = "stretch" if square else "letterbox"
    if size == native:
        scale = f"{size} px: the median part's long side ({survey.long_side} px) at native scale"
    elif size == largest:
        scale = f"{size} px: the median long side {survey.long_side} px, capped at {largest} px"
    else:
        scale = f"{size} px: the median long side {survey.long_side} px, raised to the {smallest} px minimum"
    shape = (
        "parts are near square, stretched"
        if square
        else f"part shapes vary (aspect {low:.2f}–{high:.2f}), letterboxed to keep each part's shape"
    )
    return Geometry(size, resize, scale, shape)
