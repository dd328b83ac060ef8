"""The fine-tune wizard: adapt the deployed model to a new station's lighting and camera angle.

Six pages, in the order an engineer thinks: which images (checked before anything trains), how
to vary them (a live preview, so the choice is made by eye), what may change in the model and
for how long, the training itself (curves, log, stop or cancel), before/after on the station's
held-out images, and saving the result as a new registry version (optionally deployed).

Nothing touches the registry before the last page: the new bundle is written into a private
folder under ``<home>/staging/``, and Cancel at any step removes that folder, so the deployed
model stays exactly what it was (DESIGN §3, "a cancelled or failed run changes nothing").
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from data.augment import PRESETS, preview_grid
from data.images import fit_within, read_image, to_uint8
from data.station import SPLITS, Station, load_station
from inspector.errors import InspectorError
from inspector.line import resolve_model
from inspector.registry import Registry, Version
from inspector.training import EpochRecord, Recipe
from inspector.workflows import FINETUNE_RECIPE, FinetuneSummary, finetune_model
from models.bundle import BundleMeta, read_meta
from ui.context import AppContext
from ui.qt_images import to_pixmap
from ui.workers import Task, run_task

MIN_TRAIN_PER_CLASS = 10  # below this a class's result after fine-tuning is mostly noise
PREVIEW_IMAGES = 3
PREVIEW_DRAWS = 4
PREVIEW_TILE = 132
LATENCY_RUNS = 30
PREFIX = "finetune-"  # the wizard's folders under <home>/staging/
OWNER = "owner.pid"
ERROR_COLOUR, WARN_COLOUR, GOOD_COLOUR = "#c62828", "#8a6d00", "#1b873f"
ERROR_STYLE = f"color: {ERROR_COLOUR};"
WARN_STYLE = f"color: {WARN_COLOUR};"
GOOD_STYLE = f"color: {GOOD_COLOUR};"

PRESET_TEXT = {
    "lighting": ("Lighting", "brightness, contrast, gamma, uneven illumination and shadows"),
    "angle": ("Camera angle", "small rotations, perspective tilt, scale and shift"),
    "optics": ("Optics", "defocus, motion blur, sensor noise and JPEG compression"),
}
TRAINABLE_TEXT = [
    (
        "merge",
        "Merge modules only (recommended)",
        "Re-learns which image regions the model keeps in detail and which it merges. Few "
        "parameters: fast, and the model cannot forget its classes.",
    ),
    (
        "merge+norm",
        "Merge modules + normalisation layers",
        "Also re-centres the features for the new lighting and sensor. A good second try "
        "when the station's images look clearly different.",
    ),
    (
        "merge+head",
        "Merge modules + classifier head",
        "Also re-weighs the final decision between classes. Needs more images per class; "
        "the only choice for a model without merge modules.",
    ),
]


# ---------------------------------------------------------------------------------------------
# work done off the UI thread (plain functions: no Qt in them)


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
        except Exception:  # noqa: BLE001 - an unreadable file only costs one preview tile
            continue
        if len(images) == PREVIEW_IMAGES:
            break
    return images


def run_finetune(
    base: Path,
    station: Station,
    staging: Staging,
    presets: list[str],
    recipe: Recipe,
    budget_s: float | None,
    stop_early: threading.Event,
    *,
    task: Task,
) -> FinetuneSummary:
    """The training job: reports ("log", line) and ("epoch", EpochRecord) as it goes.

    Cancel (the task's flag) and "stop now" (``stop_early``) both stop between steps; the budget
    stops the same way when it runs out. In every case training hands back its best epoch so far;
    a cancel then discards everything through the staging folder.
    """
    deadline = time.monotonic() + budget_s if budget_s else None
    ran_out = threading.Event()

    def should_stop() -> bool:
        if task.cancelled.is_set() or stop_early.is_set():
            return True
        if deadline is not None and time.monotonic() > deadline:
            ran_out.set()
            return True
        return False

    with staging.in_use():
        try:
            summary = finetune_model(
                base,
                station,
                staging.bundle,
                augment=presets,
                recipe=recipe,
                progress=False,
                log=lambda line: task.report(("log", line)),
                should_stop=should_stop,
                on_epoch=lambda record: task.report(("epoch", record)),
            )
        except InspectorError as exc:
            if "before the first epoch" in str(exc) and ran_out.is_set():
                minutes = (budget_s or 0) / 60
                raise InspectorError(
                    f"the time budget ({minutes:g} min) ran out before the first epoch finished; "
                    "nothing was trained — raise the budget"
                ) from exc
            if "before the first epoch" in str(exc) and stop_early.is_set():
                raise InspectorError("stopped before the first epoch finished; nothing was trained") from exc
            raise
        if ran_out.is_set():
            task.report(
                ("log", f"time budget reached: kept the best of {len(summary.outcome.history)} epoch(s)")
            )
    return summary


def measure_speed(base: Path, staging: Staging, runs: int = LATENCY_RUNS) -> dict[str, dict[str, float]]:
    """GMACs, parameters and batch-1 latency of the base and the new model, in one process.

    The two models are timed in alternating rounds, so a busy moment of the machine (the line,
    another job) falls on both alike and the ratio stays honest (DESIGN §6).
    """
    import torch

    from models.bundle import load_bundle
    from models.flops import count_gmacs, count_params
    from models.latency import sample_calls, summarise

    rounds = 3
    with staging.in_use():
        nets = {"before": load_bundle(base).net, "after": load_bundle(staging.bundle).net}
    figures: dict[str, dict[str, float]] = {}
    calls = {}
    for key, net in nets.items():
        net.eval()
        spec = net.spec
        sample = torch.randn(1, spec.in_chans, spec.img_size, spec.img_size)

        def call(net: Any = net, sample: torch.Tensor = sample) -> None:
            with torch.inference_mode():
                net(sample)

        calls[key] = call
        figures[key] = {"gmacs": count_gmacs(net, spec.img_size, spec.in_chans), "params": count_params(net)}
        sample_calls(call, runs=0, warmup=5)
    samples: dict[str, list[float]] = {key: [] for key in nets}
    for _ in range(rounds):
        for key, call in calls.items():
            samples[key] += sample_calls(call, runs=max(1, runs // rounds), warmup=1)
    for key, values in samples.items():
        stats = summarise(values)
        figures[key].update(p50=stats.p50_ms, p95=stats.p95_ms)
    return figures


def save_version(home: Path, staging: Staging, note: str, deploy: bool) -> tuple[Version, str]:
    """Register the staged bundle (a copy: the staging folder may go right after), then deploy it.

    Returns the version and, when deploying failed after the version was saved, why (the version
    stays: it can be deployed from the Models screen).
    """
    registry = Registry(home)
    with staging.in_use():
        version = registry.add(staging.bundle, note)
    if deploy:
        try:
            registry.deploy(version.id)
        except InspectorError as exc:
            return version, str(exc)
    return version, ""


def base_model_choices(home: Path) -> tuple[list[tuple[str, Path]], str]:
    """(label, bundle) for the base-model picker, the default first; plus a problem, if any."""
    from inspector.demo import demo_model_path

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


# ---------------------------------------------------------------------------------------------
# small widgets


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def _status(label: QLabel, text: str, style: str = "") -> None:
    label.setText(text)
    label.setStyleSheet(style)


def _canvas(width: float, height: float) -> FigureCanvasQTAgg:
    canvas = FigureCanvasQTAgg(Figure(figsize=(width, height), layout="constrained"))
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    canvas.setMinimumHeight(200)
    return canvas


class FittedImage(QLabel):
    """A picture that grows and shrinks with the space it gets (the preview on any screen size)."""

    def __init__(self, max_scale: float = 2.5) -> None:
        super().__init__()
        self.source: QPixmap | None = None
        self.max_scale = max_scale
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Ignored: the pixmap must not push the layout (which would resize it again, and so on).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, pixmap: QPixmap) -> None:
        self.source = pixmap
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.source is None or self.source.isNull():
            return
        width = min(self.width(), int(self.source.width() * self.max_scale))
        height = min(self.height(), int(self.source.height() * self.max_scale))
        self.setPixmap(
            self.source.scaled(
                max(1, width),
                max(1, height),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )


def draw_confusion(ax: Any, confusion: list[list[int]], classes: list[str], title: str) -> None:
    """Counts with row-normalised shading, like the eval report's PNG (QA reads rows as recall)."""
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{int(count)}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black"
        )


# ---------------------------------------------------------------------------------------------
# pages


class StationPage(QWizardPage):
    """1 · Which images: checked in a worker, with counts per class and split, before Next."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Station data")
        self.setSubTitle(
            "Point to the new station's images: a folder with one sub-folder per class, a manifest "
            "CSV (path,label[,split][,group]), or a folder exported from the Review screen "
            "(QA-confirmed parts from the results ledger — it is a station folder like any other)."
        )
        self.result: StationCheck | None = None
        self.busy = False
        self._request = 0

        self.base = QComboBox()
        choices, problem = base_model_choices(wiz.context.home)
        for label, path in choices:
            self.base.addItem(label, str(path))
            self.base.setItemData(self.base.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        self.base.currentIndexChanged.connect(lambda _i: self.check())
        self.path = QLineEdit()
        self.path.setPlaceholderText("Folder of class folders, or manifest .csv")
        self.path.textChanged.connect(lambda _t: self._debounce.start())
        self.path.returnPressed.connect(self.check)
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._browse_folder)
        manifest = QPushButton("Manifest…")
        manifest.clicked.connect(self._browse_manifest)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(600)
        self._debounce.timeout.connect(self.check)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Class", "Train", "Val", "Test", "Total", "Base model"])
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.notes = QListWidget()
        self.notes.setWordWrap(True)
        self.notes.setSpacing(4)
        self.notes.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.notes.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

        source = QHBoxLayout()
        source.addWidget(self.path, 1)
        source.addWidget(folder)
        source.addWidget(manifest)
        form = QFormLayout()
        form.addRow("Base model", self.base)
        form.addRow("Station images", source)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        notes = QVBoxLayout()
        notes.addWidget(QLabel("Checks"))
        notes.addWidget(self.notes, 1)
        body.addLayout(notes, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(body, 1)
        if problem:
            _status(self.status, f"Model registry: {problem}", ERROR_STYLE)
        else:
            _status(self.status, "Choose the station's images to check them.", "")

    @property
    def base_model(self) -> Path:
        return Path(self.base.currentData())

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Station folder (one sub-folder per class)")
        if path:
            self.path.setText(path)
            self.check()

    def _browse_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Station manifest", "", "Manifest (*.csv)")
        if path:
            self.path.setText(path)
            self.check()

    def check(self) -> None:
        """Validate the current choice in a worker; a later request makes earlier answers stale."""
        self._debounce.stop()
        self._request += 1
        request, path = self._request, self.path.text().strip()
        self.result = None
        self.table.setRowCount(0)
        self.notes.clear()
        if not path:
            self.busy = False
            _status(self.status, "Choose the station's images to check them.")
            self.completeChanged.emit()
            return
        self.busy = True
        _status(self.status, f"Checking {path} …")
        self.completeChanged.emit()
        self.wiz.run(
            check_station,
            path,
            self.base_model,
            on_done=lambda result: self._checked(request, result),
            on_failed=lambda message: self._check_failed(request, message),
        )

    def _checked(self, request: int, result: StationCheck) -> None:
        if request != self._request:
            return
        self.busy, self.result = False, result
        counts, station = result.counts, result.station
        classes = station.classes + sorted(set(result.meta.classes) - set(station.classes))
        self.table.setRowCount(len(classes))
        for row, name in enumerate(classes):
            values = [counts[split][name] for split in SPLITS]
            if name not in result.meta.classes:
                known, colour = "unknown to the model", ERROR_COLOUR
            elif name not in station.classes:
                known, colour = "known, no images here", WARN_COLOUR
            else:
                known, colour = "known", ""
            cells = [name, *map(str, values), str(sum(values)), known]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if 1 <= column <= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 1 and values[0] < MIN_TRAIN_PER_CLASS and name in station.classes:
                    item.setForeground(QColor(WARN_COLOUR))
                if column == 5 and colour:
                    item.setForeground(QColor(colour))
                self.table.setItem(row, column, item)
        for text in result.errors:
            self._note(text, ERROR_COLOUR, "✖")
        for text in result.warnings:
            self._note(text, WARN_COLOUR, "⚠")
        total = len(station.samples)
        where = f"{len(station.classes)} classes, {total} images ({station.source})"
        if result.errors:
            _status(self.status, f"{where} — cannot fine-tune on this data, see the checks.", ERROR_STYLE)
        elif result.warnings:
            _status(self.status, f"{where} — usable, with the warnings listed.", WARN_STYLE)
        else:
            _status(self.status, f"{where} — ready.", GOOD_STYLE)
            self._note("No problems found.", GOOD_COLOUR, "✔")
        self.completeChanged.emit()

    def _note(self, text: str, colour: str, mark: str) -> None:
        item = QListWidgetItem(f"{mark} {text}")
        item.setForeground(QColor(colour))
        self.notes.addItem(item)

    def _check_failed(self, request: int, message: str) -> None:
        if request != self._request:
            return
        self.busy, self.result = False, None
        _status(self.status, message, ERROR_STYLE)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return (
            not self.busy
            and self.result is not None
            and not self.result.errors
            and self.result.path == self.path.text().strip()
            and self.result.base == self.base_model
        )


class AugmentPage(QWizardPage):
    """2 · How to vary the images: presets with a live preview on three station images."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Augmentation")
        self.setSubTitle(
            "Training shows the model each image changed at random, so it stops relying on this "
            "station's exact lighting and angle. Pick what varies on the line; the preview shows real "
            "draws on three of the station's images (first column: the original)."
        )
        self.boxes: dict[str, QCheckBox] = {}
        self._seed = 0
        self._request = 0
        self.rendered = False
        choices = QVBoxLayout()
        for name in PRESETS:
            title, text = PRESET_TEXT.get(name, (name.title(), ""))
            box = QCheckBox(title)
            box.setChecked(name in ("lighting", "angle"))
            box.toggled.connect(lambda _on: self.render())
            self.boxes[name] = box
            choices.addWidget(box)
            choices.addWidget(_hint(text))
            choices.addSpacing(6)
        again = QPushButton("New random draws")
        again.clicked.connect(self._redraw)
        choices.addWidget(again)
        choices.addWidget(
            _hint(
                "Every image also gets light flips, small pose and exposure changes (always on). "
                "With nothing ticked the preview shows those."
            )
        )
        choices.addStretch(1)
        self.preview = FittedImage()
        self.preview.setMinimumSize(400, 260)
        self.status = QLabel("")
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(choices, 1)
        layout.addLayout(right, 3)

    @property
    def presets(self) -> list[str]:
        return [name for name, box in self.boxes.items() if box.isChecked()]

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.render()

    def _redraw(self) -> None:
        self._seed += 1
        self.render()

    def render(self) -> None:
        check = self.wiz.station_page.result
        if check is None or not check.samples:
            self.preview.setText("No readable images to preview.")
            return
        self._request += 1
        request = self._request
        self.rendered = False
        _status(self.status, "Rendering the preview …")
        self.wiz.run(
            preview_grid,
            check.samples,
            self.presets,
            PREVIEW_DRAWS,
            self._seed,
            PREVIEW_TILE,
            on_done=lambda grid: self._show(request, grid),
            on_failed=lambda message: self._show_failed(request, message),
        )

    def _show(self, request: int, grid: np.ndarray) -> None:
        if request != self._request:
            return
        self.preview.set_image(to_pixmap(grid))
        names = ", ".join(PRESET_TEXT[n][0].lower() for n in self.presets) or "the default variation only"
        _status(self.status, f"Preview: {names}.", "")
        self.rendered = True

    def _show_failed(self, request: int, message: str) -> None:
        if request == self._request:
            _status(self.status, f"No preview: {message}", ERROR_STYLE)
            self.rendered = True


class RecipePage(QWizardPage):
    """3 · What may change in the model, and for how long."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("What trains")
        self.setSubTitle(
            "Everything else in the model stays frozen. The best epoch on the station's validation "
            "images is kept — and if no epoch beats the base model there, the base weights are kept."
        )
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        which = QGroupBox("Trainable parts")
        which_layout = QVBoxLayout(which)
        for key, title, text in TRAINABLE_TEXT:
            radio = QRadioButton(title)
            self.radios[key] = radio
            self.group.addButton(radio)
            which_layout.addWidget(radio)
            hint = _hint(text)
            hint.setContentsMargins(24, 0, 0, 6)
            which_layout.addWidget(hint)
        self.radios[FINETUNE_RECIPE.trainable].setChecked(True)
        self.model_note = _hint("")
        which_layout.addWidget(self.model_note)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(FINETUNE_RECIPE.epochs)
        self.epochs.setSuffix(" epochs")
        self.budget = QSpinBox()
        self.budget.setRange(0, 24 * 60)
        self.budget.setValue(30)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no limit")
        how = QGroupBox("How long")
        form = QFormLayout(how)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time budget", self.budget)
        form.addRow(
            _hint(
                "When the budget runs out, training stops after the current step and keeps its best "
                "epoch so far. One epoch is one pass over the station's training images."
            )
        )
        self.estimate = _hint("")
        form.addRow(self.estimate)
        layout = QHBoxLayout(self)
        layout.addWidget(which, 3)
        layout.addWidget(how, 2)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        check = self.wiz.station_page.result
        has_merge = check is not None and check.meta.merge_mode != "none"
        for key in ("merge", "merge+norm"):
            self.radios[key].setEnabled(has_merge)
        if not has_merge:
            self.radios["merge+head"].setChecked(True)
            self.model_note.setText(
                "This base model has no merge modules (merge mode none): only the head and norms can adapt."
            )
        else:
            self.model_note.setText(f"Base model: {check.meta.merge_mode.upper()} merging." if check else "")
        if check is not None:
            train = sum(check.counts["train"].values())
            self.estimate.setText(f"{train} training images, {check.meta.preprocessing.size} px input.")

    @property
    def trainable(self) -> str:
        return next(key for key, radio in self.radios.items() if radio.isChecked())

    @property
    def budget_seconds(self) -> float | None:
        return self.budget.value() * 60.0 or None

    def recipe(self) -> Recipe:
        return replace(FINETUNE_RECIPE, epochs=self.epochs.value(), trainable=self.trainable)


class TrainPage(QWizardPage):
    """4 · Training: progress, live curves, the log; stop early (keep best) or Cancel (discard)."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Training")
        self.setSubTitle(
            "Runs on this computer; the line keeps running on the deployed model meanwhile. "
            "Cancel discards this run; Back stops it so you can change the settings."
        )
        self.task: Task | None = None
        self.summary: FinetuneSummary | None = None
        self.history: list[EpochRecord] = []
        self.failed = ""
        self._run = 0
        self._stop_early = threading.Event()
        self._started = 0.0
        self._budget: float | None = None

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("epoch %v of %m")
        self.clock = QLabel("")
        self.stop_button = QPushButton("Stop now — keep the best epoch")
        self.stop_button.setToolTip("Ends training after the current step; the best epoch so far is kept")
        self.stop_button.clicked.connect(self._stop_now)
        self.canvas = _canvas(7.0, 2.6)
        self.loss_ax, self.f1_ax = self.canvas.figure.subplots(1, 2)
        self.log = QListWidget()
        self.log.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.log.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log.setMinimumHeight(90)
        self.log.setMaximumHeight(160)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.clock)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.canvas, 3)
        layout.addWidget(self.log, 1)
        self._draw()

    @property
    def running(self) -> bool:
        return (
            self.task is not None
            and not self.task.finished.is_set()
            and self.summary is None
            and not self.failed
        )

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 - Qt's name
        """Back: stop this run and throw its files away (Next starts a fresh one)."""
        self.wiz.discard_run()

    def start(self) -> None:
        wiz = self.wiz
        check = wiz.station_page.result
        assert check is not None
        recipe = wiz.recipe_page.recipe()
        staging = wiz.new_staging()
        self._run += 1
        self.summary, self.history, self.failed = None, [], ""
        self._stop_early = threading.Event()
        self._budget = wiz.recipe_page.budget_seconds
        self._started = time.monotonic()
        self.log.clear()
        self.progress.setRange(0, recipe.epochs)
        self.progress.setValue(0)
        self.stop_button.setEnabled(True)
        presets = wiz.augment_page.presets
        _status(
            self.status,
            f"Loading the station's images and measuring the base model … then {recipe.epochs} epoch(s), "
            f"training {recipe.trainable}, augmentation: {', '.join(presets) or 'default only'}.",
        )
        self._draw()
        self.task = self.wiz.run(
            run_finetune,
            check.base,
            check.station,
            staging,
            presets,
            recipe,
            self._budget,
            self._stop_early,
            wants_task=True,
            long_running=True,
            # A run abandoned by Back may still answer: only the current run's answers count.
            on_done=lambda summary, run=self._run: self._done(summary) if run == self._run else None,
            on_failed=lambda message, run=self._run: self._failed(message) if run == self._run else None,
            on_progress=lambda item, run=self._run: self._progress(item) if run == self._run else None,
        )
        self._timer.start()
        self._tick()
        self.completeChanged.emit()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self._timer.stop()

    def _stop_now(self) -> None:
        self._stop_early.set()
        self.stop_button.setEnabled(False)
        _status(self.status, "Stopping after the current step; the best epoch so far will be kept …")

    def _progress(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "log":
            self.log.addItem(str(value))
            self.log.scrollToBottom()
        elif kind == "epoch":
            self.history.append(value)
            self.progress.setValue(min(self.progress.maximum(), value.epoch + 1))
            best = max(self.history, key=lambda r: r.val_macro_f1)
            _status(
                self.status,
                f"Epoch {value.epoch + 1}: loss {value.loss:.3f}, "
                f"validation macro-F1 {value.val_macro_f1:.3f} "
                f"(best so far {best.val_macro_f1:.3f}, epoch {best.epoch + 1}).",
            )
            self._draw()

    def _done(self, summary: FinetuneSummary) -> None:
        self._timer.stop()
        self._tick()
        self.summary = summary
        self.stop_button.setEnabled(False)
        outcome = summary.outcome
        if outcome.best_epoch < 0:
            text = (
                f"Finished in {summary.seconds:.0f} s: no epoch beat the base model on validation, so the "
                "new version keeps the base weights (with thresholds recalibrated for this station)."
            )
            style = WARN_STYLE
        else:
            text = (
                f"Finished in {summary.seconds:.0f} s: kept epoch {outcome.best_epoch + 1} of "
                f"{len(outcome.history)} (validation macro-F1 {outcome.best_val['macro_f1']:.3f}). Next: "
                "before and after on the held-out images."
            )
            style = GOOD_STYLE
        _status(self.status, text, style)
        self.completeChanged.emit()

    def _failed(self, message: str) -> None:
        self._timer.stop()
        self.failed = message
        self.stop_button.setEnabled(False)
        _status(
            self.status, f"Training failed: {message}. Back to change the settings, or Cancel.", ERROR_STYLE
        )
        self.completeChanged.emit()

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        text = f"{_clock(elapsed)} elapsed"
        if self._budget and self.running:
            text += f" · {_clock(max(0.0, self._budget - elapsed))} left of the budget"
        self.clock.setText(text)

    def _draw(self) -> None:
        epochs = [r.epoch + 1 for r in self.history]
        for ax, values, title, colour in (
            (self.loss_ax, [r.loss for r in self.history], "Training loss", "#1f77b4"),
            (self.f1_ax, [r.val_macro_f1 for r in self.history], "Validation macro-F1", "#1b873f"),
        ):
            ax.clear()
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if values:
                ax.plot(epochs, values, "o-", color=colour)
                ax.set_xlim(0.5, max(self.progress.maximum(), 1) + 0.5)
            else:
                ax.text(
                    0.5, 0.5, "waiting for the first epoch", ha="center", va="center", transform=ax.transAxes
                )
        self.f1_ax.set_ylim(0, 1.02)
        self.canvas.draw_idle()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.summary is not None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class ComparePage(QWizardPage):
    """5 · Before / after on the station's held-out test images, and what the model costs."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Before and after")
        self.setSubTitle(
            "Both models judged the station's held-out test images, which training never saw. Recall: "
            "the share of each class's parts the model recognised."
        )
        self.speed: dict[str, dict[str, float]] | None = None
        self._request = 0
        self.headline = QLabel("")
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["", "Before", "After", "Change"])
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.speed_label = QLabel("Measuring speed …")
        self.speed_label.setWordWrap(True)
        self.canvas = _canvas(8.0, 3.0)
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.speed_label)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addWidget(self.canvas, 5)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addLayout(body, 1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        summary = self.wiz.train_page.summary
        assert summary is not None
        before, after = summary.before, summary.after
        delta = after["macro_f1"] - before["macro_f1"]
        verdict = "better" if delta > 0.005 else "worse" if delta < -0.005 else "about the same"
        self.headline.setText(
            f"Macro-F1 {before['macro_f1']:.3f} → {after['macro_f1']:.3f} ({delta:+.3f}, {verdict}) "
            f"on {after['n']} held-out images"
        )
        self.headline.setStyleSheet(GOOD_STYLE if delta > 0.005 else ERROR_STYLE if delta < -0.005 else "")
        rows = [
            ("Macro-F1", before["macro_f1"], after["macro_f1"]),
            ("Accuracy", before["accuracy"], after["accuracy"]),
        ]
        for name in after["classes"]:
            support = after["per_class"][name]["support"]
            if support:
                rows.append(
                    (
                        f"Recall {name} (n={support})",
                        before["per_class"][name]["recall"],
                        after["per_class"][name]["recall"],
                    )
                )
        self.table.setRowCount(len(rows))
        for row, (name, old, new) in enumerate(rows):
            change = new - old
            for column, text in enumerate((name, f"{old:.3f}", f"{new:.3f}", f"{change:+.3f}")):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 3 and abs(change) > 0.005:
                    item.setForeground(QColor(GOOD_COLOUR if change > 0 else ERROR_COLOUR))
                self.table.setItem(row, column, item)
        self._draw(before, after)
        self.speed = None
        self.speed_label.setText("Measuring GMACs and latency of both models …")
        self._request += 1
        request = self._request
        staging = self.wiz.staging
        assert staging is not None
        self.wiz.run(
            measure_speed,
            self.wiz.station_page.base_model,
            staging,
            long_running=True,
            on_done=lambda figures: self._speed_done(request, figures),
            on_failed=lambda message: self._speed_failed(request, message),
        )

    def _draw(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        figure = self.canvas.figure
        figure.clear()
        classes = after["classes"]
        bars, conf_before, conf_after = figure.subplots(1, 3, width_ratios=[1.3, 1, 1])
        x = np.arange(len(classes))
        width = 0.38
        old = [before["per_class"][c]["recall"] for c in classes]
        new = [after["per_class"][c]["recall"] for c in classes]
        bars.bar(x - width / 2, old, width, label="before", color="#9aa5b1")
        bars.bar(x + width / 2, new, width, label="after", color="#1f77b4")
        bars.set_xticks(x, classes, rotation=30, ha="right")
        bars.set_ylim(0, 1.18)
        bars.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        bars.set_title("Recall per class")
        bars.legend(loc="upper center", ncol=2, fontsize="small", frameon=False)
        bars.grid(True, axis="y", alpha=0.3)
        draw_confusion(conf_before, before["confusion"], classes, "Before (base)")
        draw_confusion(conf_after, after["confusion"], classes, "After (fine-tuned)")
        self.canvas.draw_idle()

    def _speed_done(self, request: int, figures: dict[str, dict[str, float]]) -> None:
        if request != self._request:
            return
        self.speed = figures
        old, new = figures["before"], figures["after"]
        ratio = new["p50"] / old["p50"] if old["p50"] else float("nan")
        self.speed_label.setText(
            f"<b>Speed</b> (batch 1, PyTorch, this computer)<br>"
            f"Compute: {old['gmacs']:.3f} → {new['gmacs']:.3f} GMACs<br>"
            f"Latency p50: {old['p50']:.1f} → {new['p50']:.1f} ms (×{ratio:.2f}), "
            f"p95 {new['p95']:.1f} ms<br>Parameters: {new['params'] / 1e6:.2f} M"
        )

    def _speed_failed(self, request: int, message: str) -> None:
        if request == self._request:
            self.speed = {}
            _status(self.speed_label, f"Speed not measured: {message}", ERROR_STYLE)


class SavePage(QWizardPage):
    """6 · Keep it: a new registry version, deployed now or later from the Models screen."""

    def __init__(self, wiz: FinetuneWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Save as a new model version")
        self.setSubTitle(
            "The model registry keeps every version; deploying one switches the line to it and Models › "
            "Roll back returns to the previous one. Cancel now discards the fine-tuned model."
        )
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.note = QLineEdit()
        self.note.setPlaceholderText("What this version is for (shown in the Models screen)")
        self.deploy = QCheckBox("Deploy it now")
        self.deploy_hint = _hint(
            "Lines started from now on use it. Leave unticked to compare it in the Models screen first."
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Note", self.note)
        form.addRow("", self.deploy)
        form.addRow("", self.deploy_hint)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        wiz = self.wiz
        summary, check = wiz.train_page.summary, wiz.station_page.result
        assert summary is not None and check is not None
        base = wiz.station_page.base_model
        base_name = (
            base.name if base.parent.name == "models" else "demo model" if "demo" in base.name else str(base)
        )
        station = check.station.root.name
        recipe = wiz.recipe_page.recipe()
        presets = wiz.augment_page.presets
        outcome = summary.outcome
        self.note.setText(
            f"fine-tuned from {base_name} on {station} ({recipe.trainable}, "
            f"{'+'.join(presets) or 'default aug'}, {len(outcome.history)} ep)"
        )
        kept = (
            "the base weights (no epoch beat them on validation)"
            if outcome.best_epoch < 0
            else f"epoch {outcome.best_epoch + 1} of {len(outcome.history)}"
        )
        trained = next(title for key, title, _text in TRAINABLE_TEXT if key == recipe.trainable)
        rows = [
            ("Base model", f"{base_name} <span style='color:#5f6b7a'>({html.escape(str(base))})</span>"),
            (
                "Station",
                f"{html.escape(str(check.station.root))} — {len(check.station.samples)} images, "
                f"{len(check.station.classes)} classes",
            ),
            (
                "Trained",
                f"{trained.replace(' (recommended)', '')}; augmentation: {', '.join(presets) or 'default'}",
            ),
            ("Kept", kept),
            (
                "Held-out macro-F1",
                f"{summary.before['macro_f1']:.3f} → <b>{summary.after['macro_f1']:.3f}</b> "
                f"(accuracy {summary.before['accuracy']:.3f} → {summary.after['accuracy']:.3f}, "
                f"n={summary.after['n']})",
            ),
        ]
        speed = wiz.compare_page.speed
        if speed:
            rows.append(
                (
                    "Speed",
                    f"{speed['after']['gmacs']:.3f} GMACs, {speed['after']['p50']:.1f} ms p50 at batch 1",
                )
            )
        rows.append(("Registry", html.escape(str(wiz.context.home / "models"))))
        cells = "".join(
            f"<tr><td style='padding:3px 16px 3px 0; color:#5f6b7a'>{name}</td>"
            f"<td style='padding:3px 0'>{value}</td></tr>"
            for name, value in rows
        )
        self.summary.setText(f"<table>{cells}</table>")
        self.status.setText("")


class FinetuneWizard(QWizard):
    """The whole flow; ``model_added`` carries the new version's id once it is in the registry."""

    model_added = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.staging: Staging | None = None
        self.saving: Task | None = None
        self.saved: Version | None = None
        self.tasks: list[Task] = []
        Staging.sweep(context.home)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.discard_run)  # quitting mid-run must not leave files behind
        self.setWindowTitle("Fine-tune the model for a station")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save version")
        self.station_page = StationPage(self)
        self.augment_page = AugmentPage(self)
        self.recipe_page = RecipePage(self)
        self.train_page = TrainPage(self)
        self.compare_page = ComparePage(self)
        self.save_page = SavePage(self)
        for page in (
            self.station_page,
            self.augment_page,
            self.recipe_page,
            self.train_page,
            self.compare_page,
            self.save_page,
        ):
            self.addPage(page)
        self.resize(1180, 740)

    # -- workers -------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
        """``run_task``, remembered: the wizard is only deleted once its workers have answered."""
        task = run_task(fn, *args, **kwargs)
        self.tasks = [t for t in self.tasks if not t.finished.is_set()] + [task]
        return task

    def idle(self) -> bool:
        return all(task.finished.is_set() for task in self.tasks)

    # -- the staging folder ------------------------------------------------------------------

    def new_staging(self) -> Staging:
        self.discard_run()
        self.staging = Staging(self.context.home)
        return self.staging

    def discard_run(self) -> None:
        """Stop any training and throw away its files (they go as soon as no worker holds them)."""
        self.train_page.cancel()
        if self.staging is not None:
            self.staging.discard()
            self.staging = None

    # -- finish / cancel ---------------------------------------------------------------------

    def accept(self) -> None:
        """Finish: register (and maybe deploy) in a worker; the dialog closes once it is saved."""
        if self.saved is not None:
            super().accept()
            return
        if self.saving is not None or self.staging is None:
            return
        page = self.save_page
        self._lock_buttons(True)
        _status(page.status, "Saving into the model registry (copying, measuring latency) …")
        self.saving = self.run(
            save_version,
            self.context.home,
            self.staging,
            page.note.text().strip(),
            page.deploy.isChecked(),
            on_done=self._saved,
            on_failed=self._save_failed,
        )

    def _saved(self, result: tuple[Version, str]) -> None:
        version, deploy_error = result
        self.saving, self.saved = None, version
        if self.staging is not None:
            self.staging.discard()
            self.staging = None
        self._lock_buttons(False)
        self.model_added.emit(version.id)
        if deploy_error:
            # Saved but not deployed: say so and let the engineer close the wizard themselves.
            self.setButtonText(QWizard.WizardButton.FinishButton, "Close")
            self.button(QWizard.WizardButton.CancelButton).setEnabled(False)
            _status(
                self.save_page.status, f"Saved as {version.id}, but not deployed: {deploy_error}", ERROR_STYLE
            )
            return
        super().accept()

    def _save_failed(self, message: str) -> None:
        self.saving = None
        self._lock_buttons(False)
        _status(self.save_page.status, f"Not saved: {message}", ERROR_STYLE)

    def _lock_buttons(self, locked: bool) -> None:
        for which in (
            QWizard.WizardButton.FinishButton,
            QWizard.WizardButton.CancelButton,
            QWizard.WizardButton.BackButton,
        ):
            self.button(which).setEnabled(not locked)

    def reject(self) -> None:
        """Cancel at any step: stop the work, remove the staging folder; the registry is untouched."""
        if self.saving is not None:
            return  # the copy into the registry is short and must not be cut in half
        self.discard_run()
        super().reject()
