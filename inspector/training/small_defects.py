"""The default input for a station whose defects are small (issue 24): measured from its masks.

A defect that covers less than one stem token at the default input is blurred into its surroundings
by the stem (magnetic_tile's median defect: 0.51 % of the tile, 130 px² at 160 px, half a 16x16
token). Where a station's manifest gives pixel masks, ``inspector train`` without ``--img-size``
raises the input until the median defect fills about one token (:func:`data.geometry.small_defect_size`)
and turns on the keep-defects term, so the merge learns to keep those tokens apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from data.geometry import small_defect_size, survey_defects
from data.station import Station
from inspector.training.checkpoint import read_checkpoint_meta
from inspector.training.hooks import Log
from inspector.training.loop import Recipe
from models.backbones import token_side

# The small-defect rule's keep-defects weight: at 224 px with crops on magnetic_tile, 0.626 +- 0.033
# test macro-F1 with it against 0.599 +- 0.046 without (3 seeds; per seed +0.9, 0, +7.3 points), and
# a merge map that points at the defect (pointing game 37 % against 13 %). BENCHMARKS.md "Small defects".
SMALL_DEFECT_KEEP = 0.5


@dataclass(frozen=True)
class SmallDefects:
    """The default recipe's answer to a station whose masks show defects smaller than a stem token
    at the default input: a larger input (:func:`data.geometry.small_defect_size`) and the
    keep-defects term at ``keep_defects`` (None: the recipe's own weight stands, as set)."""

    keep_defects: float | None = SMALL_DEFECT_KEEP


def raise_for_small_defects(
    station: Station,
    img_size: int,
    recipe: Recipe,
    backbone: str,
    learnable: bool,
    rule: SmallDefects,
    log: Log,
) -> tuple[int, Recipe]:
    """The default input, raised for a station whose masks show defects under one stem token, with
    the keep-defects term turned on where the merge can learn it (``learnable``: an LTM merge with
    a learned mask); said why, and how to undo it."""
    stride = token_side(backbone)
    survey = survey_defects(station.split("train"), station.root, station.normal_classes)
    size = small_defect_size(survey, img_size, stride)
    if size is None or survey is None:
        return img_size, recipe
    log(
        f"small defects: {survey.describe(img_size, stride)}; training at {size} px so it fills about one "
        f"token ({(size / img_size) ** 2:.1f}x the pixels, and about that much more latency; "
        f"--img-size {img_size} keeps the default and the term off)"
    )
    if rule.keep_defects is not None and learnable and not recipe.keep_defects:
        recipe = replace(recipe, keep_defects=rule.keep_defects)
        log(f"small defects: keep-defects term on ({rule.keep_defects}; --keep-defects 0 turns it off)")
    return size, recipe


def as_started(partial: Path, img_size: int, recipe: Recipe, log: Log) -> tuple[int, Recipe]:
    """A resumed run's input size and keep-defects weight as its checkpoint recorded them (a run
    from before the small-defect rule recorded no size: it started at ``img_size``)."""
    meta = read_checkpoint_meta(partial)
    size = meta.get("input_size")
    started = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    keep = started.get("keep_defects", 0.0)
    if isinstance(size, int) and 32 <= size <= 1024:
        img_size = size
    if isinstance(keep, (int, float)) and 0 <= keep <= 10 and not recipe.keep_defects:
        recipe = replace(recipe, keep_defects=float(keep))
    log(f"resuming at {img_size} px with keep-defects {recipe.keep_defects or 'off'}, as the run started")
    return img_size, recipe
