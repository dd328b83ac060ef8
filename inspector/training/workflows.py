"""What the engineer's commands do, independent of how they are invoked (CLI or the wizard).

``train_model``, ``evaluate_model`` and ``finetune_model`` load a station, run the recipe, and
write bundles and reports atomically; they report through a ``log`` callable and raise
:class:`InspectorError`, ``DataError`` or ``ModelError`` with one-line messages.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout

from data.geometry import choose_geometry, survey_sizes
from data.image_stats import DEFAULT_SIDE as STATS_SIDE
from data.image_stats import reference_statistics
from data.loading import LoadedImages, guess_channels, load_pixels
from data.station import Station, load_station
from inspector.errors import InspectorError, StoppedBeforeFirstEpoch
from inspector.home import app_home
from inspector.report_files import check_report_output
from inspector.stations import NAMED_DATASETS
from inspector.training import reference_sample
from inspector.training.calibration import calibrate
from inspector.training.checkpoint import FILE as CHECKPOINT_FILE
from inspector.training.defaults import (
    defaults_for,
)
from inspector.training.loop import Recipe, TrainOutcome, train, validate
from inspector.training.metrics import EvalReport, Latency, Metrics, Score
from inspector.training.predict import predict_logits
from inspector.training.reference_sample import station_score, station_source
from models.backbones import resolve_backbone
from models.bundle import Bundle, absolute_path, bundle_target, load_bundle, meta_for, save_bundle, split_seed
from models.errors import BundleError
from models.merge_stats import describe_movement, merge_movement
from models.network import MERGE_MODES, InspectionNet
from models.preprocess import NORMALIZE_MODES, RESIZE_MODES, Preprocessing, preprocess
from models.pretrained import apply_pretrained
from models.schedule import describe_schedule, fit_schedule, fit_token_budget

Log = Callable[[str], None]
TRAIN_MARGIN = 1.15  # training images are kept a little larger than the input for augmentation
# "convert" start: the first 70% of the epochs train the unmerged model, then it becomes LTM/ToMe.
# The default is "scratch" (merging from the first epoch): on xsdd it scored 0.896 test macro-F1
# against 0.839 for "convert" and 0.853 unmerged, and trained 35% faster (BENCHMARKS.md).
CONVERT_AT = 0.7


@dataclass
class TrainSummary:
    bundle: Path
    outcome: TrainOutcome
    station: Station
    skipped: int
    thresholds: dict[str, Any]


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


def check_input_size(net: InspectionNet, backbone: str) -> None:
    """One forward pass at the chosen size: a size the backbone cannot tile is one line, not a
    shape error from deep inside timm (``--img-size 100`` on 8-pixel patches)."""
    spec = net.spec
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, spec.in_chans, spec.img_size, spec.img_size))
    except (RuntimeError, ValueError, AssertionError) as exc:
        patch = getattr(getattr(net.backbone, "patch_embed", None), "patch_size", None)
        hint = f" (use a multiple of its {patch[0]}-pixel patch)" if patch else ""
        raise InspectorError(
            f"--img-size {spec.img_size} does not fit the {backbone} backbone{hint}: "
            + str(exc).splitlines()[0][:160]
        ) from None
    finally:
        net.train(was_training)


def normalisation(images: Sequence[np.ndarray], channels: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training pixels in [0, 1] (rounded; stored in the bundle)."""
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for image in images:
        pixels = image.reshape(-1, channels).astype(np.float64) / 255.0
        total += pixels.sum(axis=0)
        squares += (pixels**2).sum(axis=0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1e-6))
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]


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


def collapsed(predictions: np.ndarray, num_classes: int, share: float = 0.95) -> bool:
    """True when one class takes ``share`` of the predictions: a majority-class collapse, which
    scores the majority level of macro-F1 and must never ship silently."""
    if num_classes < 2 or len(predictions) == 0:
        return False
    return np.bincount(predictions, minlength=num_classes).max() >= share * len(predictions)


def open_station(data: str | Station, seed: int) -> Station:
    return data if isinstance(data, Station) else load_station(data, seed)


def train_model(
    data: str | Station,
    out: Path,
    *,
    backbone: str = "vit-cpu",
    merge: str = "ltm",
    gmacs_ratio: float | None = 0.6,
    img_size: int | None = 112,
    resize: str | None = "stretch",
    tokens: int | None = None,
    normalize: str = "dataset",
    recipe: Recipe | None = None,
    ltm_start: str = "scratch",
    pretrained: str | None = None,
    mask: str = "content",
    home: Path | None = None,
    resume: bool = False,
    force: bool = False,
    strict: bool = False,
    progress: bool = True,
    log: Log = print,
    should_stop: Callable[[], bool] | None = None,
) -> TrainSummary:
    """``inspector train``: a new bundle at ``out`` from a station dataset.

    ``img_size`` / ``resize`` None: picked from the station's image sizes (:mod:`data.geometry`),
    and said why. ``tokens``: LTM's token budget instead of ``gmacs_ratio`` (None: the backbone
    family's default ratio).

    ``pretrained``: ``imagenet-lite0``, ``hub`` or a weights file; the network then takes RGB
    input (gray is replicated) normalised as the weights expect, and the bundle records the source
    and hash of its starting weights. The Lite0 weights are cached as safetensors in ``home``.
    """
    recipe = recipe or Recipe()
    check_target(out, force)
    with one_writer(out, log):
        partial = partial_dir(out)
        check_partial(partial)
        if resume and not partial.is_dir():
            raise InspectorError(f"{partial}: nothing to resume (no interrupted run for {out})")
        if merge not in MERGE_MODES:
            raise InspectorError(f"--merge must be one of {', '.join(MERGE_MODES)}, got {merge!r}")
        if normalize not in NORMALIZE_MODES:
            raise InspectorError(
                f"--normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}"
            )
        if ltm_start not in ("convert", "scratch"):
            raise InspectorError(f"--ltm-start must be convert or scratch, got {ltm_start!r}")
        if resize is not None and resize not in RESIZE_MODES:
            raise InspectorError(f"--resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        if tokens is not None and (merge != "ltm" or ltm_start != "scratch"):
            raise InspectorError(
                "--tokens caps learnable merging from the first epoch: use it with --merge ltm"
            )
        station = open_station(data, recipe.seed)
        check_out(out, station.root)
        for issue in station.issues:
            log(f"note: {issue}")
        if img_size is None or resize is None:
            geometry = choose_geometry(survey_sizes(station.split("train")))
            why = [geometry.size_reason] if img_size is None else []
            why += [geometry.resize_reason] if resize is None else []
            img_size, resize = img_size or geometry.size, resize or geometry.resize
            log(f"input {img_size} px, {resize}, picked from the station's image sizes: {'; '.join(why)}")
        channels = 3 if pretrained else guess_channels(station.split("train"))
        spec = resolve_backbone(backbone, img_size, channels)
        classes = station.classes
        convert_later = merge != "none" and ltm_start == "convert"
        # Build the network and fit its schedule before loading any pixels: a wrong backbone or an
        # unreachable ratio fails in seconds, not after loading, and not at the conversion epoch.
        torch.manual_seed(recipe.seed)  # the initial weights are part of the recipe's seed
        net = InspectionNet(spec, len(classes), "none" if convert_later else merge, mask=mask)
        check_input_size(net, backbone)
        gmacs_ratio = gmacs_ratio if gmacs_ratio is not None else defaults_for(backbone).gmacs_ratio
        if tokens is not None:
            fit = fit_token_budget(net, tokens)
            where = describe_schedule(net).replace("\n", "; ")
            log(f"token budget {tokens}: {where} ({fit.ratio:.2f} of the unmerged model's GMACs)")
            gmacs_ratio = round(fit.ratio, 3)
        elif merge != "none":
            fit_schedule(
                net if not convert_later else InspectionNet(spec, len(classes), merge, mask=mask), gmacs_ratio
            )
        weights = None
        if pretrained:
            weights = apply_pretrained(net, pretrained, app_home(home) / "weights")
            log(f"starting from {weights.source} weights (sha256 {str(weights.sha256)[:12]}…)")
        train_set = load_split(
            station, "train", channels, math.ceil(img_size * TRAIN_MARGIN), strict, log, progress
        )
        val_set = load_split(station, "val", channels, None, strict, log, progress)
        # What the drift watch holds the line's frames against (inspector.line.drift).
        input_reference = reference_statistics(train_set.images, min(STATS_SIDE, img_size))
        if weights is not None and normalize == "dataset":
            mean, std = list(weights.mean), list(weights.std)  # what the pretrained features expect
        else:
            mean, std = normalisation(train_set.images, channels)
        prep = Preprocessing(
            size=img_size, channels=channels, mean=mean, std=std, resize=resize, normalize=normalize
        )
        recipe = replace(
            recipe,
            gmacs_ratio=gmacs_ratio if merge != "none" else None,
            convert_at=CONVERT_AT if convert_later else None,
            convert_to=merge,
        )
        if not resume:
            remove_partial(partial)
        log(
            f"training {backbone} ({spec.name}) {img_size}px {resize} {channels}ch, merge {merge}"
            f"{f' @ {gmacs_ratio}' if merge != 'none' else ''}, {len(classes)} classes, "
            f"{len(train_set)} train / {len(val_set)} val images, {recipe.epochs} epochs"
        )
        outcome = train(
            net,
            prep,
            train_set,
            val_set,
            classes,
            recipe,
            partial,
            resume=resume,
            progress=progress,
            should_stop=should_stop,
            on_epoch=lambda r: log(
                f"epoch {r.epoch + 1}/{recipe.epochs}: loss {r.loss:.3f}, val macro-F1 {r.val_macro_f1:.3f}, "
                f"acc {r.val_accuracy:.3f} ({r.seconds:.0f}s, {r.merge_mode})"
            ),
        )
        finished = len(outcome.history) and outcome.history[-1].epoch == recipe.epochs - 1
        if not finished:
            done = outcome.history[-1].epoch + 1 if outcome.history else 0
            stopped = f"training stopped after {done} of {recipe.epochs} epochs"
            if not (partial / CHECKPOINT_FILE).is_file():
                raise StoppedBeforeFirstEpoch(f"{stopped}; {resume_hint(out)}")
            raise InspectorError(f"{stopped}; resume with --resume")
        net = outcome.net
        labels = np.array([classes.index(c) for c in val_set.labels])
        val_logits = predict_logits(net, prep, val_set.images)
        if collapsed(val_logits.argmax(1), len(classes)):
            log(
                f"warning: the model predicts one class for nearly every validation image (val macro-F1 "
                f"{outcome.best_val['macro_f1']:.3f}, the majority-class level): it has not learned this "
                "station; try --pretrained imagenet-lite0, more epochs or more images per defect class"
            )
        thresholds = calibrate(val_logits, labels)
        sample = val_set.images[:64]
        movement = merge_movement(
            net, (preprocess(sample[i : i + 32], prep) for i in range(0, len(sample), 32))
        )
        if movement:
            log(f"merges vs pooling on validation images: {describe_movement(movement)}")
        normal = next((c for c in classes if c in ("ok", "free", "good", "normal")), None)
        source = station_source(str(data if not isinstance(data, Station) else station.root))
        reference, copy = _reference_sample(
            station, source, recipe.seed, math.ceil(img_size * TRAIN_MARGIN), log
        )
        meta = meta_for(
            net,
            classes,
            preprocessing=prep,
            gmacs_ratio=gmacs_ratio if merge != "none" else None,
            tokens=tokens,
            normal_class=normal,
            thresholds=thresholds,
            provenance={
                "data": source,
                "data_fingerprint": station.fingerprint(),
                "label_note": station.label_note,
                "backbone_preset": backbone,
                "epochs": recipe.epochs,
                "best_epoch": outcome.best_epoch,
                "seed": recipe.seed,
                "split_seed": recipe.seed,
                "recipe": asdict(recipe),
                "ltm_start": ltm_start if merge != "none" else None,
                "weights": weights.to_json() if weights is not None else {"source": "scratch"},
                "merge_movement": movement,
                "input_reference": input_reference.to_json(),
                "val": outcome.best_val,
                # What a fine-tune replays and re-checks so this station is not forgotten (issue 26).
                "reference_sample": reference,
                "stations": [
                    station_score(
                        source,
                        station.fingerprint(),
                        "val",
                        {**outcome.best_val, "n": len(val_set)},
                        "trained",
                    )
                ],
                "train_images": len(train_set),
                "val_images": len(val_set),
                "skipped_files": len(train_set.skipped) + len(val_set.skipped),
                "train_seconds": round(outcome.seconds, 1),
                "history": [asdict(h) for h in outcome.history],
                "command": " ".join(sys.argv) if sys.argv else "",
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            },
        )
        save_bundle(net, meta, out, overwrite=force, reference=copy)
        shutil.rmtree(partial, ignore_errors=True)
        return TrainSummary(out, outcome, station, len(train_set.skipped) + len(val_set.skipped), thresholds)


def _reference_sample(
    station: Station, source: str, seed: int, side: int, log: Log
) -> tuple[dict[str, Any], bytes | None]:
    """The sample of this station a fine-tune will replay and re-check, and its thumbnail copy for
    when the station's folder is gone (none for a named public dataset: its licence)."""
    reference = reference_sample.draw(station, source, seed)
    copy = None if source in NAMED_DATASETS else reference_sample.make_copy(reference, station.root, side)
    size = f", and as {side} px thumbnails in the bundle ({len(copy) / 1e6:.1f} MB)" if copy else ""
    log(f"reference sample: {len(reference['images'])} images of this station kept by path{size}")
    return reference, copy


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
    from data.augment import PRESETS, SEVERITIES, apply, build_augmentation
    from models.flops import count_gmacs, count_params
    from models.latency import torch_latency

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
    import json

    from inspector.training.metrics import plot_confusion
    from models.files import atomic_write_text

    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    name = Path(report["model"]).name
    title = f"{name} on {report['split']} (n={report['n']}, macro-F1 {report['macro_f1']:.3f})"
    return plot_confusion(report["confusion"], report["classes"], confusion_png(json_path), title)


def confusion_png(json_path: Path) -> Path:
    """The confusion-matrix PNG written beside an eval report."""
    return json_path.with_suffix(".confusion.png")
