"""Station datasets (DESIGN §4): a folder per class, a manifest CSV, or a named dataset (``elpv``).

A station dataset is a list of samples (file, label, split, group) with a fingerprint for
provenance. Splits come from the manifest's ``split`` column when present; otherwise they are
seeded and stratified, by ``group`` where given, so the same physical part photographed twice
never sits in train and test. Problems that make a dataset unusable raise :class:`DataError`;
problems that only cost a few files are collected as ``issues`` for the caller to report (or to
refuse with ``--strict``).

This module opens them; what a station *is* (samples, splits, the checks every way of opening
one shares) lives in :mod:`data.dataset`, below the named datasets' loaders.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from data.dataset import SPLITS, Sample, Station, finish_station
from data.elpv import load_elpv
from data.errors import DataError
from data.images import IMAGE_SUFFIXES, read_image

# Datasets opened by name rather than by path: name -> loader(seed). The one list of them; the
# application asks it whether a station's ``data`` is a name or a folder.
NAMED_DATASETS: dict[str, Callable[[int], Station]] = {"elpv": load_elpv}


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` resolved, or None when it leaves ``root`` (a symlink out of the station) or cannot
    be resolved: a station is what its folder holds, as a manifest's paths may not escape theirs."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the OS refuses
        return None
    return resolved if resolved.is_relative_to(root) else None


def _from_folder(root: Path) -> tuple[list[Sample], list[str]]:
    samples, issues, escaping, base = [], [], 0, root.resolve()
    try:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{root}: cannot list the folder ({exc.strerror or exc})") from exc
    for class_dir in class_dirs:
        if _inside(class_dir, base) is None:
            issues.append(f"{class_dir}: class folder points outside the dataset folder (skipped)")
            continue
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            issues.append(f"{class_dir}: class folder has no images (skipped)")
        kept = [path for path in (_inside(f, base) for f in files) if path is not None]
        escaping += len(files) - len(kept)
        samples += [Sample(path, class_dir.name) for path in kept]
    if escaping:
        issues.append(f"{root}: {escaping} file(s) point outside the dataset folder (skipped)")
    if not samples:
        raise DataError(
            f"{root}: no class folders with images (expected {root}/<class>/*.png or a manifest CSV)"
        )
    return samples, issues


def _from_manifest(csv_path: Path) -> tuple[list[Sample], list[str]]:
    root = csv_path.parent.resolve()
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: not a readable CSV manifest ({exc})") from exc
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(f"{csv_path}: a manifest needs a header with at least 'path,label' columns")
    samples, issues, escaping, missing = [], [], 0, 0
    for line, row in enumerate(rows, start=2):
        raw, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not raw or not label:
            issues.append(f"{csv_path}:{line}: empty path or label (skipped)")
            continue
        try:
            path = (root / raw).resolve()
            inside = path.is_relative_to(root)
            exists = inside and path.is_file()
        except (ValueError, RuntimeError, OSError):  # a NUL byte, a symlink loop, a name too long
            issues.append(f"{csv_path}:{line}: path {raw!r} is not a usable file name (skipped)")
            continue
        if not inside:
            escaping += 1
            continue
        if not exists:
            missing += 1
            continue
        split = (row.get("split") or "").strip().lower()
        if split and split not in SPLITS:
            raise DataError(f"{csv_path}:{line}: split {split!r} is not one of train, val, test")
        extra = tuple(
            sorted(
                (k, (v or "").strip())
                for k, v in row.items()
                if k and k not in ("path", "label", "split", "group")
            )
        )
        samples.append(Sample(path, label, split, (row.get("group") or "").strip(), extra))
    if escaping:
        issues.append(f"{csv_path}: {escaping} path(s) point outside the dataset folder (skipped)")
    if missing:
        issues.append(f"{csv_path}: {missing} listed file(s) do not exist (skipped)")
    if not samples:
        raise DataError(f"{csv_path}: no usable rows")
    return samples, issues


def load_station(source: str | Path, seed: int = 0) -> Station:
    """Open a station dataset: a class-folder tree, a manifest CSV, a folder holding
    ``manifest.csv``, or the name of a bundled dataset (:data:`NAMED_DATASETS`)."""
    named = NAMED_DATASETS.get(str(source))
    if named is not None:
        return named(seed)
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such dataset folder or manifest")
    if path.is_dir() and (path / "manifest.csv").is_file():
        path = path / "manifest.csv"
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path}: a dataset is a folder of class folders or a .csv manifest")
        samples, issues = _from_manifest(path)
        root, kind = path.parent.resolve(), "manifest"
    else:
        samples, issues = _from_folder(path)
        root, kind = path.resolve(), "folder"
    return finish_station(root, samples, kind, issues, seed)


def verify_images(station: Station) -> Station:
    """The station without the files that do not decode, each one reported as an issue.

    Listing counts a file as an image by its name; this reads every one (as training will), so
    ``data info`` and the wizard count only what can be used. A class left with no images after
    this is a dataset problem like any other.
    """
    kept, bad = [], []
    for sample in station.samples:
        try:
            read_image(sample.path)
        except DataError as exc:
            bad.append(str(exc))
            continue
        kept.append(sample)
    if not bad:
        return station
    issues = [f"{len(bad)} file(s) are not readable images and are not counted", *bad[:10]]
    if len(bad) > 10:
        issues.append(f"... and {len(bad) - 10} more")
    return Station(station.root, kept, station.source, station.issues + issues, station.label_note)
