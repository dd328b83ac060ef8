"""What the engineer's commands share, independent of how they are invoked (CLI or the wizard):
the ``.partial`` checkpoint folder, one writer per output, the station checks, loading a split,
and ``inspector eval``.

``train_model`` (:mod:`inspector.training.train_station`), ``finetune_model``
(:mod:`inspector.training.finetune`) and ``evaluate_model`` here write bundles and reports
atomically and raise :class:`InspectorError`, ``DataError`` or ``ModelError`` with one-line messages.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from data.augment import PRESETS, SEVERITIES, apply, build_augmentation
from data.loading import LoadedImages, load_pixels
from data.station import Station, load_station
from inspector.errors import InspectorError
from inspector.report_files import check_report_output
from inspector.training.checkpoint import FILE as CHECKPOINT_FILE
from inspector.training.hooks import Log
from inspector.training.loop import validate
from inspector.training.metrics import EvalReport, Latency, Metrics, Score, plot_confusion
from models.bundle import Bundle, absolute_path, bundle_target, load_bundle, split_seed
from models.errors import BundleError
from models.files import atomic_write_text
from models.flops import count_gmacs, count_params
from models.latency import torch_latency

TRAIN_MARGIN = 1.15  # training images are kept a little larger than the input for augmentation


def partial_dir(out: Path) -> Path:
    """Where an interrupted run keeps its checkpoint: beside the bundle, named after it."""
    target = absolute_path(out)
    return target.with_name(target.name + ".partial")


def check_partial(partial: Path) -> None:
    """Refuse to use (and later delete) a ``.partial`` folder that holds anything but our checkpoint."""
    if not os.path.lexists(partial):
        return
    ours = partial.is_dir() and not partial.is_symlink()
    if ours:
        ours = all(
            p.name == CHECKPOINT_FILE or p.name.startswith(f".{CHECKPOINT_FILE}.") for p in partial.iterdir()
        )
    if not ours:
        raise InspectorError(
            f"{partial}: exists and is not an interrupted training run (only {CHECKPOINT_FILE} expected); "
            "move it away or choose another --out"
        )


def remove_partial(partial: Path) -> None:
    check_partial(partial)
    shutil.rmtree(partial, ignore_errors=True)


@contextmanager
def one_writer(out: Path, log: Log) -> Iterator[None]:
    """Held while a run writes ``out`` (its ``.partial`` checkpoint, then the bundle): a second run
    for the same ``--out`` is refused in one line before it touches anything.

    Without it, the second run emptied the first one's ``.partial`` (its checkpoint gone mid-run)
    and trained beside it, to be refused only at the end with its own ``.partial`` left behind.
    An OS lock (``filelock``: flock / LockFileEx) dies with its process, so a ``kill -9`` never
    blocks the next run, and the ``.partial`` it leaves stays for ``--resume``. The hidden lock file
    is removed on release: ``filelock`` takes no lock on a file unlinked before it got it.
    """
    target = absolute_path(out)
    made = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InspectorError(f"--out {out}: cannot create its folder ({exc.strerror or exc})") from None
    path = target.with_name(f".{target.name}.lock")
    lock, held = FileLock(path, timeout=0, thread_local=False, fallback_to_soft=False), True
    try:
        lock.acquire()
    except Timeout:
        raise InspectorError(
            f"--out {out}: another training run is writing this bundle now; "
            "wait for it to finish or choose another --out"
        ) from None
    except OSError as exc:  # a file system without locks (some network shares): go on, as before
        log(f"note: cannot lock {path} ({exc.strerror or exc}); do not start a second run for this --out")
        held = False
    try:
        yield
    finally:
        if held:
            with suppress(OSError):
                path.unlink()
            lock.release()
        for folder in made:  # the folders made for --out, if nothing was written into them
            with suppress(OSError):
                folder.rmdir()


def resume_hint(out: Path) -> str:
    """What to tell a person whose training run for ``out`` stopped early. ``--resume`` only where a
    finished epoch's checkpoint is kept: a run stopped before its first epoch keeps none, and
    ``--resume`` would then answer that there is nothing to resume."""
    if (partial_dir(out) / CHECKPOINT_FILE).is_file():
        return "the last finished epoch is kept: resume with the same command and --resume"
    return "no epoch had finished, so there is nothing to resume: run the same command again"


def check_target(out: Path, force: bool) -> None:
    """``out`` is new, or (``--force``) an existing bundle: never any other folder. Checked first,
    before any data is read; an :class:`InspectorError` like every other refusal here."""
    try:
        bundle_target(out, force)
    except BundleError as exc:
        raise InspectorError(str(exc)) from None


def check_out(out: Path, data_root: Path, model: Path | None = None) -> None:
    """``--out`` may be neither the dataset, nor inside it, nor hold it (nor, for fine-tuning, the
    source model): a bundle written there would replace or pollute what the run reads."""
    target = absolute_path(out).resolve()
    for what, other in (("the dataset folder", data_root), ("the source model", model)):
        if other is None:
            continue
        other = Path(other).resolve()
        if target == other or other in target.parents or target in other.parents:
            relation = "is" if target == other else "is inside" if other in target.parents else "contains"
            raise InspectorError(f"--out {out} {relation} {what} {other}; write the bundle elsewhere")


def load_split(
    station: Station, split: str, channels: int, max_side: int | None, strict: bool, log: Log, progress: bool
) -> LoadedImages:
    loaded = load_pixels(
        station.split(split), channels, max_side, strict, desc=f"loading {split}", progress=progress
    )
    if loaded.skipped:
        log(f"skipped {len(loaded.skipped)} unreadable file(s) in {split}; first: {loaded.skipped[0]}")
    if not loaded.images:
        raise InspectorError(f"the {split} split has no readable images")
    return loaded


def open_station(data: str | Station, seed: int) -> Station:
    return data if isinstance(data, Station) else load_station(data, seed)


def check_classes(bundle: Bundle, station: Station) -> None:
    unknown = sorted(set(station.classes) - set(bundle.meta.classes))
    if unknown:
        raise InspectorError(
            f"the dataset has classes the model does not know: {', '.join(unknown)} "
            f"(model classes: {', '.join(bundle.meta.classes)})"
        )


def evaluate_loaded(bundle: Bundle, images: LoadedImages, transform: Callable | None = None) -> Metrics:
    """Metrics of ``bundle`` on already loaded images (optionally corrupted by ``transform``)."""
    return validate(bundle.net, bundle.meta.preprocessing, images, bundle.meta.classes, transform)


def evaluate_model(
    model: Path,
    data: str | Station,
    *,
    split: str = "test",
    json_path: Path | None = None,
    robustness: bool = False,
    strict: bool = False,
    latency_runs: int = 50,
    progress: bool = True,
    log: Log = print,
) -> EvalReport:
    """``inspector eval``: metrics on a split, cost figures, optional robustness table; JSON + PNG."""

    bundle = load_bundle(model)
    station = open_station(data, split_seed(bundle))
    if json_path is not None:  # before any work: never over an image, a bundle's file, or into the station
        check_report_output(json_path, "eval", judged=station.root, companions=(confusion_png(json_path),))
    check_classes(bundle, station)
    images = load_split(station, split, bundle.meta.preprocessing.channels, None, strict, log, progress)
    metrics = evaluate_loaded(bundle, images)
    spec = bundle.meta.backbone
    latency = torch_latency(bundle.net, runs=latency_runs, warmup=10)
    report = EvalReport(
        **metrics,
        model=str(model),
        data=str(data) if not isinstance(data, Station) else str(station.root),
        split=split,
        data_fingerprint=station.fingerprint(),
        skipped_files=len(images.skipped),
        gmacs=round(count_gmacs(bundle.net, spec.img_size, spec.in_chans), 4),
        params=count_params(bundle.net),
        merge=bundle.meta.merge_mode,
        gmacs_ratio=bundle.meta.gmacs_ratio,
        latency_ms=Latency(
            p50=round(latency.p50_ms, 3),
            p95=round(latency.p95_ms, 3),
            runs=latency.runs,
            batch=1,
            runtime="pytorch",
        ),
    )
    if robustness:
        table: dict[str, Score] = {"clean": Score(accuracy=report["accuracy"], macro_f1=report["macro_f1"])}
        for preset in PRESETS:
            for severity in SEVERITIES:
                transform = build_augmentation([preset], severity, seed=severity)
                result = evaluate_loaded(bundle, images, transform=lambda im, t=transform: apply(t, im))
                table[f"{preset}-{severity}"] = Score(
                    accuracy=result["accuracy"], macro_f1=result["macro_f1"]
                )
                log(f"robustness {preset} severity {severity}: macro-F1 {result['macro_f1']:.3f}")
        report["robustness"] = table
    if json_path is not None:
        write_report(report, json_path)
    return report


def write_report(report: EvalReport, json_path: Path) -> Path:
    """The JSON (atomically) and a confusion-matrix PNG beside it."""
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    name = Path(report["model"]).name
    title = f"{name} on {report['split']} (n={report['n']}, macro-F1 {report['macro_f1']:.3f})"
    return plot_confusion(report["confusion"], report["classes"], confusion_png(json_path), title)


def confusion_png(json_path: Path) -> Path:
    """The confusion-matrix PNG written beside an eval report."""
    return json_path.with_suffix(".confusion.png")
