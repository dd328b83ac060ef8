"""``inspector finetune --unlabelled``: a new lamp or camera re-calibrated in seconds, without labels.

Only the stem's BatchNorm statistics are re-estimated on the station's own frames; weights, classes
and thresholds stay the base's. This recovered 29-109 % of a station shift on its own (BENCHMARKS.md,
"Adaptation that keeps the old station"), the first thing to try where nobody has labelled anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from data.image_stats import DEFAULT_SIDE as STATS_SIDE
from data.image_stats import reference_statistics
from data.images import IMAGE_SUFFIXES
from data.loading import load_pixels
from data.station import Sample
from inspector.errors import InspectorError
from inspector.training.hooks import Log
from inspector.training.station_memory import shared_copy
from inspector.training.workflows import check_out, check_target, one_writer
from models.bundle import load_bundle, save_bundle
from models.errors import ModelError
from models.norm_stats import recalibrate_norms
from models.preprocess import preprocess

UNLABELLED_LIMIT = 500  # a few hundred frames pin the statistics; more only costs time


def recalibrate_model(
    model: Path,
    images: Path,
    out: Path,
    *,
    limit: int = UNLABELLED_LIMIT,
    force: bool = False,
    progress: bool = True,
    log: Log = print,
) -> dict[str, Any]:
    """``inspector finetune --unlabelled``: the bundle with its BatchNorm statistics re-estimated on
    a folder of the station's images (any layout; labels are not needed and not read).

    Re-calibrates to a new lamp or camera in seconds; weights, classes and thresholds are kept.
    """
    check_target(out, force)
    with one_writer(out, log):
        folder = Path(images)
        if not folder.is_dir():
            raise InspectorError(f"{folder}: not a folder of images")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InspectorError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
        check_out(out, folder, model)
        bundle = load_bundle(model)
        prep = bundle.meta.preprocessing
        step = max(1, len(files) // limit)
        chosen = [Sample(p, "") for p in files[::step][:limit]]
        loaded = load_pixels(chosen, prep.channels, None, desc="loading frames", progress=progress)
        if loaded.skipped:
            log(f"skipped {len(loaded.skipped)} unreadable file(s); first: {loaded.skipped[0]}")
        batches = (preprocess(loaded.images[i : i + 32], prep) for i in range(0, len(loaded.images), 32))
        try:
            moved = recalibrate_norms(bundle.net, batches)
        except ModelError as exc:
            raise InspectorError(f"{model}: {exc}") from None
        log(
            f"re-estimated {moved['layers']} BatchNorm layers on {moved['images']} images "
            f"(running means moved {moved['mean_shift']:.2f} of their spread on average)"
        )
        provenance = dict(bundle.meta.provenance)
        provenance.update(
            recalibrated_from=str(model),
            recalibration={**moved, "images_folder": str(folder)},
            # The new lamp's frames are what the line will look like now: the drift watch's reference.
            input_reference=reference_statistics(loaded.images, min(STATS_SIDE, prep.size)).to_json(),
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        copy = shared_copy(Path(model), provenance)
        save_bundle(
            bundle.net, replace(bundle.meta, provenance=provenance), out, overwrite=force, reference=copy
        )
        return moved
