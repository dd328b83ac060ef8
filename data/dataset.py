"""What a station dataset is, however it was opened (DESIGN §4): samples with their splits.

Every way of opening one (a class-folder tree, a manifest, a named dataset such as ELPV) ends in
:func:`finish_station`, so all of them get the same checks: one entry per file, at least two
classes, seeded splits stratified by group where none are given, and no file in two splits. It
sits below :mod:`data.station` (which opens folders and manifests and keeps the table of named
datasets) so that a named dataset's loader can build on it without importing the table it is
listed in.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from data.errors import DataError

SPLITS = ("train", "val", "test")
# Class names that mean a good part (the OK verdict's class, never cropped around a defect).
NORMAL_NAMES = ("ok", "free", "good", "normal")


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

    @property
    def normal_classes(self) -> set[str]:
        """The classes that mean a good part (:data:`NORMAL_NAMES`)."""
        return {c for c in self.classes if c in NORMAL_NAMES}

    def group_counts(self) -> dict[str, Counter]:
        """Physical parts (distinct ``group``s) per class, per split; empty where no group is given.

        A split's score for a class is only as broad as its parts: magnetic_tile's test split holds
        one frayed tile, photographed six times, so its fray recall is that one tile's verdict."""
        return {
            name: Counter(label for label, _ in {(s.label, s.group) for s in self.split(name) if s.group})
            for name in SPLITS
        }

    def masked(self) -> Counter:
        """Defect images per class whose manifest row names a pixel mask (``mask`` column)."""
        normal = self.normal_classes
        return Counter(s.label for s in self.samples if s.label not in normal and s.get("mask").strip())

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
    # Imported here, not above: scikit-learn takes seconds to import and only a split needs it,
    # while the model registry and the CLI read data.station's table of named datasets.
    from sklearn.model_selection import StratifiedGroupKFold

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
