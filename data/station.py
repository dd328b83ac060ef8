"""Station datasets (DESIGN §4): a folder per class, a manifest CSV, or a named dataset (``elpv``).

A station dataset is a list of samples (file, label, split, group) with a fingerprint for
provenance. Splits come from the manifest's ``split`` column when present; otherwise they are
seeded and stratified, by ``group`` where given, so the same physical part photographed twice
never sits in train and test. Problems that make a dataset unusable raise :class:`DataError`;
problems that only cost a few files are collected as ``issues`` for the caller to report (or to
refuse with ``--strict``).
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from data.errors import DataError
from data.images import IMAGE_SUFFIXES, read_image

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    split: str = ""
    group: str = ""
    meta: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)


@dataclass
class Station:
    """A validated station dataset with its splits assigned."""

    root: Path
    samples: list[Sample]
    source: str
    issues: list[str] = field(default_factory=list)
    label_note: str = ""

    @property
    def classes(self) -> list[str]:
        return sorted({s.label for s in self.samples})

    def split(self, name: str) -> list[Sample]:
        if name in ("all", ""):
            return list(self.samples)
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r} (train, val, test or all)")
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, Counter]:
        """Images per class, per split (what the wizard and the CLI show)."""
        return {name: Counter(s.label for s in self.split(name)) for name in SPLITS}

    def fingerprint(self) -> str:
        """Hash of every file's bytes, label and split: the dataset's identity in provenance."""
        digest = hashlib.sha256()
        for sample in sorted(self.samples, key=lambda s: str(s.path)):
            digest.update(f"{_relative(sample.path, self.root)}|{sample.label}|{sample.split}|".encode())
            digest.update(_file_hash(sample.path).encode())
        return digest.hexdigest()[:16]

    def where(self, **conditions: Iterable[str]) -> Station:
        """A sub-station whose samples' meta fields (or label/split/group) take the given values."""

        def keep(sample: Sample) -> bool:
            for key, allowed in conditions.items():
                value = getattr(sample, key) if key in ("label", "split", "group") else sample.get(key)
                if value not in set(allowed):
                    return False
            return True

        return Station(self.root, [s for s in self.samples if keep(s)], self.source, list(self.issues))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{path}"


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


def assign_splits(samples: list[Sample], seed: int) -> tuple[list[Sample], list[str]]:
    """Seeded, stratified 60/20/20 split, by group where groups are given.

    A class too small to appear in every split keeps its images in train, with a note. (Identical
    files are dealt with afterwards, by :func:`_drop_cross_split_duplicates`.)
    """
    labels = np.array([s.label for s in samples])
    groups = np.array([s.group or f"__{i}" for i, s in enumerate(samples)])
    if len(set(groups)) < 5:
        # Five folds need five groups; with fewer, a held-out split would be empty or leak a group.
        note = f"only {len(set(groups))} group(s): too few to hold any out; all images kept in train"
        return [replace(s, split="train") for s in samples], [note]
    if max(Counter(labels.tolist()).values()) < 5:
        # Five folds need a class with five images (the splitter refuses otherwise): a tiny set such
        # as a golden-parts folder is all train.
        return [replace(s, split="train") for s in samples], [
            "every class has fewer than 5 images: too few to hold any out; all images kept in train"
        ]
    splitter = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    fold_of = np.zeros(len(samples), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only n members"
        for fold, (_, index) in enumerate(splitter.split(np.zeros(len(samples)), labels, groups)):
            fold_of[index] = fold
    names = {0: "test", 1: "val"}
    split = np.array([names.get(int(f), "train") for f in fold_of])
    notes = []
    for label in sorted(set(labels)):
        mine = labels == label
        if mine.sum() < 5 or not (split[mine] == "train").any():
            split[mine] = "train"
            count = int(mine.sum())
            notes.append(f"class {str(label)!r} has too few images ({count}) to split; all kept in train")
    return [replace(s, split=str(x)) for s, x in zip(samples, split, strict=True)], notes


def _drop_cross_split_duplicates(samples: list[Sample]) -> tuple[list[Sample], list[str]]:
    """Identical files in two splits would leak the test set: keep the copies of the earliest split."""
    by_hash: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        by_hash.setdefault(_file_hash(sample.path), []).append(index)
    order = {"train": 0, "val": 1, "test": 2, "": 3}
    dropped: set[int] = set()
    for copies in by_hash.values():
        first = min(order[samples[i].split] for i in copies)
        dropped |= {i for i in copies if order[samples[i].split] != first}
    issues = [f"{len(dropped)} file(s) duplicated across splits were removed from val/test"]
    return [s for i, s in enumerate(samples) if i not in dropped], issues if dropped else []


def load_station(source: str | Path, seed: int = 0) -> Station:
    """Open a station dataset: a class-folder tree, a manifest CSV, a folder holding
    ``manifest.csv``, or the name of a bundled dataset (``elpv``)."""
    if str(source) == "elpv":
        from data.elpv import load_elpv

        return load_elpv(seed)
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


def _one_entry_per_file(root: Path, samples: list[Sample]) -> tuple[list[Sample], list[str]]:
    """A file listed twice counts once; a file listed under two labels is an error.

    A manifest row pasted twice would otherwise weigh double in training and in the counts, and
    one image labelled both ``ok`` and ``crack`` would teach the model both.
    """
    first: dict[Path, Sample] = {}
    kept, repeated = [], 0
    for sample in samples:
        seen = first.get(sample.path)
        if seen is None:
            first[sample.path] = sample
            kept.append(sample)
        elif seen.label != sample.label:
            raise DataError(
                f"{_relative(sample.path, root)}: listed under two labels ({seen.label!r} and "
                f"{sample.label!r}); give each file one label"
            )
        else:
            repeated += 1
    issues = [f"{repeated} repeated entr{'y' if repeated == 1 else 'ies'} of the same file counted once"]
    return kept, issues if repeated else []


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


def finish_station(root: Path, samples: list[Sample], kind: str, issues: list[str], seed: int) -> Station:
    """Validate classes, assign missing splits and remove cross-split duplicates."""
    samples, repeated = _one_entry_per_file(root, samples)
    issues = issues + repeated
    classes = Counter(s.label for s in samples)
    if len(classes) < 2:
        raise DataError(f"{root}: only one class ({next(iter(classes))}); a classifier needs at least two")
    if not all(s.split for s in samples):
        if any(s.split for s in samples):
            raise DataError(f"{root}: the manifest's split column is filled for some rows only")
        samples, notes = assign_splits(samples, seed)
        issues = issues + notes
    samples, more = _drop_cross_split_duplicates(samples)
    station = Station(root, samples, kind, issues + more)
    for name in ("train", "test"):
        absent = sorted(set(classes) - {s.label for s in station.split(name)})
        if absent:
            station.issues.append(f"{name} split has no images of: {', '.join(absent)}")
    return station
