"""Every station a model has served, remembered for its next fine-tune (issue 26).

A trained bundle keeps a reference sample of its own station (:mod:`.reference_sample`). Until now a
fine-tune carried that one sample on unchanged, so a model adapted twice (station A, then B, then C)
replayed and re-checked A but forgot B without a word. A fine-tune now adds the station it adapted
to, and the next one replays and scores every station the model already served.

In ``model.json``: ``provenance["reference_sample"]`` stays the station the model was trained on
(older readers find it where it always was); ``provenance["reference_samples"]`` lists the stations
it was adapted to since, oldest first, at most :data:`MAX_ADDED` (a plant that re-adapts weekly
keeps the latest). All stations' thumbnails share the bundle's one ``reference.safetensors``; every
sample with thumbnails records that file's size and hash, so any of them checks it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.station import NAMED_DATASETS, Station
from inspector.stations import station_name
from inspector.training.reference_sample import (
    KEY,
    MAX_COPY_BYTES,
    Log,
    OldStation,
    copied_images,
    copy_bytes,
    draw,
    load_sample,
    pack,
    station_source,
    thumbnails,
)

ADDED_KEY = "reference_samples"
MAX_ADDED = 3  # the trained station and the three latest adaptations
# The shared copy may hold every remembered station's thumbnails, each at most one station's cap.
MAX_SHARED_COPY_BYTES = MAX_COPY_BYTES * (1 + MAX_ADDED)


def samples_of(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference samples a bundle keeps: its trained station first, then its adaptations."""
    first = provenance.get(KEY)
    added = provenance.get(ADDED_KEY)
    out = [first] if isinstance(first, dict) else []
    if isinstance(added, list):
        out += [sample for sample in added[:MAX_ADDED] if isinstance(sample, dict)]
    return out


def shared_copy(folder: Path | None, provenance: dict[str, Any]) -> bytes | None:
    """The bundle's thumbnail file when it is the one its samples promise (any of them may vouch)."""
    for reference in samples_of(provenance):
        data = copy_bytes(folder, reference, MAX_SHARED_COPY_BYTES)
        if data is not None:
            return data
    return None


def bundle_thumbnails(folder: Path | None, provenance: dict[str, Any]) -> dict[str, np.ndarray]:
    """The bundle's copied thumbnails by key, when its file is the one its samples promise."""
    return copied_images(shared_copy(folder, provenance))


def load_old_stations(
    provenance: dict[str, Any],
    classes: Sequence[str],
    channels: int,
    max_side: int | None,
    log: Log,
    copies: dict[str, np.ndarray] | None = None,
) -> list[OldStation]:
    """Every remembered station whose reference images are still at hand (in its folder, unchanged,
    or among ``copies``, the bundle's :func:`bundle_thumbnails`); empty for a bundle from before
    reference samples."""
    samples = samples_of(provenance)
    if not samples:
        log(
            "old station: this base keeps no reference sample (trained before they were kept); not re-checked"
        )
        return []
    copies = copies or {}
    loaded = (load_sample(reference, copies, classes, channels, max_side, log) for reference in samples)
    return [station for station in loaded if station is not None]


def remember_station(
    provenance: dict[str, Any],
    pool: dict[str, np.ndarray],
    station: Station,
    data: str,
    seed: int,
    side: int,
    log: Log,
) -> tuple[dict[str, Any], bytes | None]:
    """The reference-sample keys of the adapted bundle's provenance (the base's stations and this
    one), and its thumbnail file: the base's checked thumbnails (``pool``, its
    :func:`bundle_thumbnails`), and this station's.

    Adapting to a station the model already remembers replaces that station's sample (its folder
    may have grown); a named public dataset gets no thumbnails (its licence).
    """
    source = station_source(data)
    new = draw(station, source, seed)
    samples = copy.deepcopy(samples_of(provenance))
    if samples and samples[0].get("data") == source:
        samples[0] = new
    else:
        samples = [s for s in samples if s.get("data") != source or s is samples[0]] + [new]
        samples = samples[:1] + samples[1:][-MAX_ADDED:]
    tensors = _rekeyed(samples, pool, keep=new)
    if source not in NAMED_DATASETS:
        place = next(i for i, sample in enumerate(samples) if sample is new)
        fresh = thumbnails(new, station.root, side, prefix=f"s{place}r")
        if sum(t.nbytes for t in (*tensors.values(), *fresh.values())) > MAX_SHARED_COPY_BYTES:
            log(f"reference sample: no thumbnails of {station.root.name} (the bundle's copy is full)")
            _forget_copies(new)
        else:
            tensors.update(fresh)
    blob = None
    if tensors:
        blob, record = pack(tensors, side)
        for sample in samples:
            if any("copy" in entry for entry in _entries(sample)):
                sample["copy"] = record
    names = ", ".join(station_name(str(s.get("data", ""))) for s in samples)
    log(f"reference samples kept for the next fine-tune: {len(samples)} station(s) ({names})")
    return {KEY: samples[0], ADDED_KEY: samples[1:]}, blob


def _rekeyed(samples: list[dict[str, Any]], pool: dict[str, np.ndarray], keep: dict) -> dict[str, np.ndarray]:
    """The base's checked thumbnails under keys unique to each sample's place (``s<i>rNNNN``); an
    entry whose thumbnail is missing or failed the check loses its ``copy`` key."""
    tensors: dict[str, np.ndarray] = {}
    for place, sample in enumerate(samples):
        sample.pop("copy", None)
        if sample is keep:
            continue
        for number, entry in enumerate(_entries(sample)):
            key = entry.pop("copy", None)
            if isinstance(key, str) and key in pool:
                entry["copy"] = f"s{place}r{number:04d}"
                tensors[entry["copy"]] = pool[key]
    return tensors


def _forget_copies(sample: dict[str, Any]) -> None:
    for entry in _entries(sample):
        entry.pop("copy", None)


def _entries(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """A sample's image entries that are objects (a careless or hostile bundle may hold anything)."""
    images = sample.get("images")
    return [entry for entry in images if isinstance(entry, dict)] if isinstance(images, list) else []
