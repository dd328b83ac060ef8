"""The fine-tune wizard's quick work, with no Qt in it: checking a station against the base
model, the staging folder, the base-model choices. The screens run it in a worker thread.

The wizard's heavy work (training, measuring speed, saving a version) runs in a background
process below the line: those jobs are in :mod:`inspector.jobs`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.images import fit_within, read_image, to_uint8
from data.station import SPLITS, Station, load_station
from inspector.errors import InspectorError
from inspector.line.resolve import resolve_model
from inspector.registry import Registry, Version
from inspector.training.finetune import FINETUNE_RECIPE
from models.bundle import BundleMeta, read_meta

MIN_TRAIN_PER_CLASS = 10  # below this a class's result after fine-tuning is mostly noise
PREVIEW_IMAGES = 3
PREFIX = "finetune-"  # the wizard's folders under <home>/staging/
OWNER = "owner.pid"


class Staging:
    """The wizard's private folder under ``<home>/staging/``: whoever finishes last removes it.

    Workers hold it with :meth:`in_use` while they read or write it; the wizard calls
    :meth:`discard` on cancel or after saving. The folder goes when both have happened, so a
    cancel during training never races the trainer still writing its files.
    """

    def __init__(self, home: Path) -> None:
        root = home / "staging"
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        (self.path / OWNER).write_text(str(os.getpid()), encoding="utf-8")
        self._lock = threading.Lock()
        self._users = 0
        self._discarded = False

    @staticmethod
    def sweep(home: Path) -> list[Path]:
        """Remove wizard folders whose app died mid-run (killed, power cut): nobody else will."""
        removed = []
        for folder in (home / "staging").glob(f"{PREFIX}*"):
            try:
                pid: int | None = int((folder / OWNER).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pid = None
            try:
                age = time.time() - folder.stat().st_mtime
            except OSError:
                continue  # gone already
            alive = _alive(pid)
            if alive or (alive is None and age < 24 * 3600):
                continue  # running, or cannot tell and recent: not ours to remove
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        return removed

    @property
    def bundle(self) -> Path:
        return self.path / "model"

    @contextmanager
    def in_use(self) -> Iterator[Path]:
        with self._lock:
            if self._discarded:
                raise InspectorError("the fine-tune run was cancelled")
            self._users += 1
        try:
            yield self.path
        finally:
            with self._lock:
                self._users -= 1
                remove = self._discarded and self._users == 0
            if remove:
                self._remove()

    def discard(self) -> None:
        with self._lock:
            self._discarded = True
            remove = self._users == 0
        if remove:
            self._remove()

    @property
    def discarded(self) -> bool:
        return self._discarded

    def _remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.parent.rmdir()  # only when empty: another run may be using it
        except OSError:
            pass


def _alive(pid: int | None) -> bool | None:
    """Whether process ``pid`` runs; None when that cannot be told safely (on Windows, signal 0
    would terminate the process instead of probing it)."""
    if pid is None or os.name == "nt":
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@dataclass
class StationCheck:
    """What page 1 found: the station, its counts, and what blocks or endangers a fine-tune."""

    path: str
    base: Path
    station: Station
    meta: BundleMeta
    counts: dict[str, Counter]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)


def check_station(path: str, base: Path, seed: int = FINETUNE_RECIPE.seed) -> StationCheck:
    """Open the station and compare it with the base model, as ``finetune_model`` will.

    Everything that would make the run fail later (classes the model does not know, an empty
    held-out split) is an error now, before minutes of training are spent.
    """
    meta, _ = read_meta(base)
    station = load_station(path, seed)
    counts = station.counts()
    result = StationCheck(path, base, station, meta, counts)
    unknown = sorted(set(station.classes) - set(meta.classes))
    if unknown:
        result.errors.append(
            f"The base model does not know {', '.join(unknown)} (its classes: {', '.join(meta.classes)}). "
            "Fine-tuning adapts a model to new imaging conditions, not to new classes: train a new "
            "model with `inspector train`, or choose another base model."
        )
    for split in SPLITS:
        if not sum(counts[split].values()):
            result.errors.append(
                f"The {split} split is empty: the wizard needs train, val and test images "
                "(add images, or fill the manifest's split column for every row)."
            )
    few = [f"{c} ({counts['train'][c]})" for c in station.classes if counts["train"][c] < MIN_TRAIN_PER_CLASS]
    if few:
        result.warnings.append(
            f"Fewer than {MIN_TRAIN_PER_CLASS} training images for: {', '.join(few)}. "
            "The result for these classes will be unreliable."
        )
    absent = sorted(set(meta.classes) - set(station.classes))
    if absent:
        result.warnings.append(
            f"No images of {', '.join(absent)} at this station: the model's accuracy on them is not "
            "checked here."
        )
    result.warnings += station.issues
    result.samples = _preview_samples(station)
    return result


def _preview_samples(station: Station) -> list[np.ndarray]:
    """Up to three readable training images, one per class first (the preview shows variety)."""
    by_class: dict[str, list[Path]] = {}
    for sample in station.split("train") or station.samples:
        by_class.setdefault(sample.label, []).append(sample.path)
    order = [
        paths[i]
        for i in range(max(map(len, by_class.values())))
        for paths in by_class.values()
        if i < len(paths)
    ]
    images: list[np.ndarray] = []
    for path in order[: 4 * PREVIEW_IMAGES]:
        try:
            images.append(fit_within(to_uint8(read_image(path)), 256))
        except Exception:  # an unreadable file only costs one preview tile
            continue
        if len(images) == PREVIEW_IMAGES:
            break
    return images


def base_model_choices(home: Path) -> tuple[list[tuple[str, Path]], str]:
    """(label, bundle) for the base-model picker, the default first; plus a problem, if any."""
    from inspector.line.demo import demo_model_path

    choices: list[tuple[str, Path]] = []
    problem = ""
    try:
        default = resolve_model(None, home)
        registry = Registry(home)
        deployed = registry.deployed()
        versions = registry.versions()
    except InspectorError as exc:
        problem, deployed, versions = str(exc), None, []
        default = demo_model_path()
    if deployed is not None:
        choices.append((f"{deployed.id}: the deployed model — {_version_text(deployed)}", default))
    else:
        choices.append(("The bundled demo model (nothing is deployed yet)", default))
    for version in reversed(versions):
        if deployed is None or version.id != deployed.id:
            choices.append((f"{version.id} — {_version_text(version)}", Registry(home).root / version.id))
    if deployed is not None:
        choices.append(("The bundled demo model (ELPV solar cells)", demo_model_path()))
    return choices, problem


def _version_text(version: Version) -> str:
    text = f"{version.merge.upper()}, classes {', '.join(version.classes)}"
    return f"{text} — {version.note}" if version.note else text
