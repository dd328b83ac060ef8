"""The base station's reference sample: what a fine-tune replays and scores so the old station is not
forgotten (issue 26).

A bundle keeps a small, stratified list of its training station's images (path relative to the
station, label, split, SHA-256) in ``provenance["reference_sample"]``. A fine-tune mixes the ``train``
entries into its training images (replay) and scores the model before and after on the ``val`` and
``test`` entries, so the wizard shows the old station beside the new one. Where the station's folder
is still reachable the originals are used; for when it is not, ``inspector train`` also keeps a copy
of the sample as thumbnails at the training size in the bundle (``reference.safetensors``, about
2–8 MB: the plant's own images). A named public dataset (``elpv``) gets no copy: its licence does not
allow shipping its images, and it is installed wherever the product is. An image that moved or
changed and has no copy is left out; when none is left the fine-tune says the old station cannot be
checked and runs as before.

The bundle is untrusted: the list is capped, every path must stay inside the station's folder, a
file is read only when its hash matches what the bundle promised, and the copy is read only when its
size and hash match model.json (which the registry checksums) and holds nothing but small 8-bit images.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from data.errors import DataError
from data.images import fit_within, read_image, to_uint8
from data.loading import LoadedImages, convert_channels, is_gray, load_pixels
from data.station import NAMED_DATASETS, Sample, Station
from inspector.stations import station_name
from models.bundle import REFERENCE_FILE
from models.files import sha256_file

KEY = "reference_sample"
# Per split: replay needs enough of every class to anchor it; scoring needs a few dozen images.
CAPS = {"train": 120, "val": 60, "test": 60}
MIN_PER_CLASS = 3
MAX_ENTRIES = 1000  # what a hostile bundle may list before we stop reading
MAX_TEXT = 500
MAX_COPY_BYTES = 64 << 20  # 240 thumbnails of 184 px RGB are under 25 MB
MAX_COPY_SIDE = 1024

Log = Callable[[str], None]


@dataclass
class OldStation:
    """The reference sample as loaded: images per split that matched their hash."""

    data: str
    root: Path
    splits: dict[str, LoadedImages]
    missing: int
    fingerprint: str = ""

    def __getitem__(self, split: str) -> LoadedImages | None:
        loaded = self.splits.get(split)
        return loaded if loaded is not None and len(loaded) else None

    @property
    def name(self) -> str:
        return station_name(self.data)


def _stratified(samples: Sequence[Sample], cap: int, rng: random.Random) -> list[Sample]:
    """About ``cap`` samples in the classes' proportions, at least :data:`MIN_PER_CLASS` of each."""
    by_class: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: str(s.path)):
        by_class.setdefault(sample.label, []).append(sample)
    chosen: list[Sample] = []
    for label in sorted(by_class):
        group = by_class[label]
        share = max(MIN_PER_CLASS, round(cap * len(group) / max(1, len(samples))))
        chosen += rng.sample(group, min(share, len(group)))
    return chosen


def draw(station: Station, data: str, seed: int) -> dict[str, Any]:
    """The reference sample of ``station`` (its splits as trained), for ``model.json``."""
    rng = random.Random(seed)
    entries = []
    for split, cap in CAPS.items():
        for sample in _stratified(station.split(split), cap, rng):
            try:
                digest = sha256_file(sample.path)
                relative = sample.path.resolve().relative_to(station.root.resolve()).as_posix()
            except (OSError, ValueError):
                continue  # unreadable, or outside the station folder: not something to point back to
            entries.append({"path": relative, "label": sample.label, "split": split, "sha256": digest})
    return {"data": data, "root": str(station.root), "fingerprint": station.fingerprint(), "images": entries}


def thumbnails(reference: dict[str, Any], root: Path, side: int, prefix: str = "r") -> dict[str, np.ndarray]:
    """Thumbnails (longer side ``side``) of the sample's images, keyed ``<prefix>NNNN``; each entry
    that got one records its key (``reference`` is updated)."""
    tensors: dict[str, np.ndarray] = {}
    for number, entry in enumerate(reference["images"]):
        try:
            image = fit_within(to_uint8(read_image(root / entry["path"])), side)
        except DataError:
            continue
        if image.ndim == 3 and is_gray(image):
            image = image[..., 0]  # a gray part saved as RGB: a third of the bytes, the same pixels
        key = f"{prefix}{number:04d}"
        tensors[key] = np.ascontiguousarray(image)
        entry["copy"] = key
    return tensors


def pack(tensors: dict[str, np.ndarray], side: int) -> tuple[bytes, dict[str, Any]]:
    """The copy file's bytes and the record model.json keeps of them (what a reader checks)."""
    data = save_tensors(tensors)
    return data, {"side": side, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def make_copy(reference: dict[str, Any], root: Path, side: int) -> bytes | None:
    """The sample's thumbnails as one safetensors file's bytes (``reference`` records them)."""
    tensors = thumbnails(reference, root, side)
    if not tensors:
        return None
    data, reference["copy"] = pack(tensors, side)
    return data


def copy_bytes(folder: Path | None, reference: Any, limit: int = MAX_COPY_BYTES) -> bytes | None:
    """The bundle's copy of its reference sample, when it is the one model.json promises."""
    promised = reference.get("copy") if isinstance(reference, dict) else None
    if folder is None or not isinstance(promised, dict):
        return None
    path = folder / REFERENCE_FILE
    try:
        if not path.is_file() or path.stat().st_size != promised.get("bytes"):
            return None
        if path.stat().st_size > limit:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == promised.get("sha256") else None


def copied_images(data: bytes | None) -> dict[str, np.ndarray]:
    """The copy's thumbnails that are small 8-bit gray or RGB images (anything else is ignored);
    ``data`` must already be the file model.json promised (:func:`copy_bytes`)."""
    if data is None:
        return {}
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError):
        return {}
    return {
        key: image
        for key, image in tensors.items()
        if image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3)))
        and 0 < min(image.shape[:2])
        and max(image.shape[:2]) <= MAX_COPY_SIDE
    }


def _root_of(reference: dict[str, Any]) -> Path | None:
    """Where the station's files are on this PC: the named dataset's folder, else the recorded one."""
    data = reference.get("data")
    if data in NAMED_DATASETS:
        from data.elpv import elpv_root

        try:
            return elpv_root()
        except DataError:
            return None
    root = reference.get("root")
    if not isinstance(root, str) or not root or len(root) > 4 * MAX_TEXT:
        return None
    return Path(root)


def _valid_entries(reference: dict[str, Any], classes: Sequence[str]) -> list[dict[str, str]]:
    """The entries that are well formed and name one of the model's classes (the rest is ignored)."""
    images = reference.get("images")
    if not isinstance(images, list):
        return []
    out = []
    for entry in images[:MAX_ENTRIES]:
        if not isinstance(entry, dict):
            continue
        fields = [entry.get(k) for k in ("path", "label", "split", "sha256")]
        if not all(isinstance(f, str) and 0 < len(f) <= MAX_TEXT for f in fields):
            continue
        if entry["label"] in classes and entry["split"] in CAPS:
            out.append(entry)
    return out


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it resolves inside ``root`` (no ``..`` or link out of the station)."""
    try:
        path = (root / relative).resolve()
        return path if path.is_relative_to(root.resolve()) and path.is_file() else None
    except (OSError, ValueError):
        return None


def load_sample(
    reference: Any,
    copies: dict[str, np.ndarray],
    classes: Sequence[str],
    channels: int,
    max_side: int | None,
    log: Log,
) -> OldStation | None:
    """One station's reference images that are still where the model saw them, unchanged, else their
    thumbnail in ``copies`` (the bundle's checked copy); None when there are none."""
    if not isinstance(reference, dict):
        return None
    entries = _valid_entries(reference, classes)
    root = _root_of(reference)
    data = str(reference.get("data", ""))[:MAX_TEXT]
    reachable = root is not None and root.is_dir()
    if not reachable and not any(entry.get("copy") in copies for entry in entries):
        log(f"old station: {data} is not reachable on this PC and the base keeps no copy; not re-checked")
        return None
    found: dict[str, list[Sample]] = {split: [] for split in CAPS}
    copied: dict[str, list[tuple[np.ndarray, str]]] = {split: [] for split in CAPS}
    for entry in entries:
        path = _inside(root, entry["path"]) if reachable and root is not None else None
        if path is not None and sha256_file(path) == entry["sha256"]:
            found[entry["split"]].append(Sample(path, entry["label"], entry["split"]))
        elif isinstance(entry.get("copy"), str) and entry["copy"] in copies:
            copied[entry["split"]].append((copies[entry["copy"]], entry["label"]))
    splits = {
        split: _with_copies(
            load_pixels(samples, channels, max_side if split == "train" else None, progress=False),
            copied[split],
            channels,
        )
        for split, samples in found.items()
    }
    loaded = sum(len(v) for v in splits.values())
    if not loaded:
        log(
            f"old station: none of the {len(entries)} reference images is unchanged in {root}; not re-checked"
        )
        return None
    missing = len(entries) - loaded
    from_copy = sum(len(v) for v in copied.values())
    note = f", {from_copy} from the bundle's copy" if from_copy else ""
    note += f", {missing} moved, changed or unreadable" if missing else ""
    log(
        f"old station {station_name(data)}: {len(splits['train'])} replay / {len(splits['val'])} val / "
        f"{len(splits['test'])} test reference images{note}"
    )
    fingerprint = str(reference.get("fingerprint", ""))[:MAX_TEXT]
    return OldStation(data, root if root is not None else Path(), splits, missing, fingerprint)


def _with_copies(loaded: LoadedImages, copies: list[tuple[np.ndarray, str]], channels: int) -> LoadedImages:
    """``loaded`` and the copied thumbnails of the images that were not found, as one set."""
    for image, label in copies:
        loaded.images.append(convert_channels(image, channels))
        loaded.labels.append(label)
        loaded.samples.append(Sample(Path(REFERENCE_FILE), label))
    return loaded


def joined(first: LoadedImages, *more: LoadedImages | None) -> LoadedImages:
    """Loaded sets as one (replay: the new station's images and the old stations'); None is skipped."""
    sets = [first, *(s for s in more if s is not None)]
    return LoadedImages(
        [image for s in sets for image in s.images],
        [label for s in sets for label in s.labels],
        [sample for s in sets for sample in s.samples],
        [skip for s in sets for skip in s.skipped],
    )


def station_source(data: str) -> str:
    """What a station was opened from, as another process finds it again: a named dataset as it
    is, a folder or manifest as an absolute path (the gate re-opens it from wherever it runs)."""
    return data if data in NAMED_DATASETS else str(Path(data).resolve())


def station_score(
    data: str, fingerprint: str, split: str, scores: dict[str, Any], role: str
) -> dict[str, Any]:
    """One entry of ``provenance["stations"]`` (read by :mod:`inspector.stations`)."""
    data = station_source(data)
    return {
        "name": station_name(data),
        "data": data,
        "fingerprint": fingerprint,
        "split": split,
        "n": int(scores["n"]),
        "macro_f1": round(float(scores["macro_f1"]), 4),
        "accuracy": round(float(scores["accuracy"]), 4),
        "role": role,
    }
