"""How big a station's parts are, and the input geometry a model should see them at (issue 24).

Squashing every part to a small square is what made magnetic_tile's few-pixel defects vanish: a
330 px tile at 160 px loses half its resolution and a wide tile (fray, aspect 2.4) is bent out
of shape. The size survey reads only image headers (milliseconds for a thousand files); the choice keeps
each part's aspect (letterbox) when the station's shapes vary, and its native scale up to a cap.

Where a station's manifest gives its defects pixel masks, the masks say how small the defects are:
a defect that covers less than one stem token (16x16 px) at the default input is blurred into its
surroundings by the stem, so the default input is raised until the median defect fills one token.
That survey decodes the masks themselves (up to 400, a second or two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.defect_crops import mask_path, plane_of
from data.errors import DataError
from data.images import header_size, read_image
from data.station import Sample

# The pretrained stems have stride 16; 320 px (a 20x20 token grid) is the most a pretrained cell
# trains in under an hour on 2 cores, and 160 px is the measured default (BENCHMARKS.md,
# "Resolution that LTM pays for?").
STRIDE = 16
SMALLEST = 160
LARGEST = 320
# Shapes this close to square are stretched: letterboxing them would only add padding.
SQUARE = (0.83, 1.2)
# The small-defect rule's ceiling: at 224 px magnetic_tile scored 8 points over 160 px (3 seeds) and
# its line ran 76-125 fps on ONNX Runtime (24-32 on PyTorch); 320 px scored no better and its line
# missed 25 fps (BENCHMARKS.md, "Small defects" and "Resolution that LTM pays for?").
SMALL_DEFECT_LARGEST = 224
MAX_MASKS = 400  # the median of a few hundred masks is settled; reading more only costs time


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


@dataclass(frozen=True)
class DefectSurvey:
    """How much of its image a station's defects cover: a share, so it holds at any input size."""

    masks: int
    median_area: float  # the median mask's share of its image's pixels

    def pixels_at(self, size: int) -> float:
        """The median defect's area in pixels at a stretched ``size`` x ``size`` input (what the
        rule compares with a token's area)."""
        return self.median_area * size * size

    def describe(self, size: int, stride: int = STRIDE) -> str:
        """One line for ``data info`` and ``train``: the figures the rule decided from."""
        return (
            f"the median defect mask covers {100 * self.median_area:.2f} % of its image "
            f"({self.masks} masks), {self.pixels_at(size):.0f} px² at {size} px "
            f"(one {stride}x{stride} token is {stride * stride} px²)"
        )


def survey_defects(
    samples: Sequence[Sample], root: Path, normal: set[str], limit: int = MAX_MASKS
) -> DefectSurvey | None:
    """The defect images' mask areas (up to ``limit`` masks, evenly spread); None when the manifest
    has no readable, non-empty mask."""
    masked = [s for s in samples if s.label not in normal and s.get("mask").strip()]
    step = max(1, math.ceil(len(masked) / limit))
    areas = []
    for sample in masked[::step]:
        path = mask_path(sample, root)
        if path is None:
            continue
        try:
            pixels = read_image(path)
        except DataError:
            continue  # training reports unreadable masks; the survey only needs the rest
        plane = plane_of(pixels)
        area = float(np.count_nonzero(plane)) / plane.size
        if area > 0:
            areas.append(area)
    return DefectSurvey(len(areas), float(np.median(areas))) if areas else None


def small_defect_size(
    survey: DefectSurvey | None, default: int, stride: int = STRIDE, largest: int = SMALL_DEFECT_LARGEST
) -> int | None:
    """The input (to the stride, at most ``largest``) at which the median defect fills one stem
    token, when the ``default`` input leaves it smaller than that; else None."""
    if survey is None or survey.pixels_at(default) >= stride * stride or default >= largest:
        return None
    wanted = math.sqrt(stride * stride / survey.median_area)
    return min(largest, max(default + stride, int(round(wanted / stride)) * stride))
