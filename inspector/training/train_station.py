"""``inspector train``: a new bundle from a station dataset, as a short orchestration of named steps.

Each step can fail with a one-line error before the next starts, and the cheap checks come first:
a wrong option or an unreachable merge ratio fails in seconds, not after loading every image. The
bundle is written only at the very end (atomically), and an interrupted run leaves an epoch
checkpoint in ``<out>.partial`` that ``resume=True`` continues.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.defect_crops import defect_masks, plan_crops
from data.geometry import choose_geometry, survey_sizes
from data.image_stats import DEFAULT_SIDE as STATS_SIDE
from data.image_stats import reference_statistics
from data.loading import LoadedImages, guess_channels
from data.station import NAMED_DATASETS, Station
from inspector.errors import InspectorError, StoppedBeforeFirstEpoch
from inspector.home import app_home
from inspector.training import reference_sample
from inspector.training.calibration import calibrate
from inspector.training.checkpoint import FILE as CHECKPOINT_FILE
from inspector.training.defaults import defaults_for
from inspector.training.hooks import Hooks, Log
from inspector.training.loop import Recipe, TrainOutcome, train
from inspector.training.predict import predict_logits
from inspector.training.reference_sample import station_score, station_source
from inspector.training.small_defects import SmallDefects, as_started, raise_for_small_defects
from inspector.training.workflows import (
    TRAIN_MARGIN,
    check_out,
    check_partial,
    check_target,
    load_split,
    one_writer,
    open_station,
    partial_dir,
    remove_partial,
    resume_hint,
)
from models.backbones import resolve_backbone
from models.bundle import meta_for, save_bundle
from models.merge_stats import describe_movement, merge_movement
from models.network import MERGE_MODES, InspectionNet
from models.preprocess import NORMALIZE_MODES, RESIZE_MODES, Preprocessing, preprocess
from models.pretrained import WeightsProvenance, apply_pretrained
from models.schedule import describe_schedule, fit_schedule, fit_token_budget

# "convert" start: the first 70% of the epochs train the unmerged model, then it becomes LTM/ToMe.
# The default is "scratch" (merging from the first epoch): on xsdd it scored 0.896 test macro-F1
# against 0.839 for "convert" and 0.853 unmerged, and trained 35% faster (BENCHMARKS.md).
CONVERT_AT = 0.7
# With defect-preserving crops the training images are kept at up to twice the input's side, so a
# crop of half the part is shown at its native scale rather than upsampled.
CROP_MARGIN = 2.0
# Defect-preserving crops where a station has masks. magnetic_tile test macro-F1 with / without:
# hybrid LTM 160 px 0.544 (2 seeds) / 0.524 +- 0.015; 224 px 0.599 +- 0.046 / 0.574 (seed 0); Lite0
# 224 px 0.626 +- 0.028 / 0.567 (seed 0); escapes fall from about half the defects to a quarter
# (BENCHMARKS.md, "Small defects").
AUTO_CROPS = 0.5


@dataclass
class TrainSummary:
    bundle: Path
    outcome: TrainOutcome
    station: Station
    skipped: int
    thresholds: dict[str, Any]


@dataclass(frozen=True)
class Architecture:
    """What ``inspector train`` was asked to build (the CLI's model options)."""

    backbone: str = "vit-cpu"
    merge: str = "ltm"
    gmacs_ratio: float | None = 0.6
    tokens: int | None = None
    ltm_start: str = "scratch"
    pretrained: str | None = None
    mask: str = "content"

    @property
    def convert_later(self) -> bool:
        return self.merge != "none" and self.ltm_start == "convert"


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
    small_defects: SmallDefects | None = None,
    home: Path | None = None,
    resume: bool = False,
    force: bool = False,
    strict: bool = False,
    hooks: Hooks | None = None,
) -> TrainSummary:
    """``inspector train``: a new bundle at ``out`` from a station dataset.

    ``img_size`` / ``resize`` None: picked from the station's image sizes (:mod:`data.geometry`),
    and said why. ``tokens``: LTM's token budget instead of ``gmacs_ratio`` (None: the backbone
    family's default ratio). ``small_defects``: ``img_size`` is a default that a station with small
    masked defects raises (``inspector train`` without ``--img-size``).

    ``pretrained``: ``imagenet-lite0``, ``hub`` or a weights file; the network then takes RGB
    input (gray is replicated) normalised as the weights expect, and the bundle records the source
    and hash of its starting weights. The Lite0 weights are cached as safetensors in ``home``.
    """
    recipe, hooks = recipe or Recipe(), hooks or Hooks()
    arch = Architecture(backbone, merge, gmacs_ratio, tokens, ltm_start, pretrained, mask)
    log = hooks.log
    check_target(out, force)
    with one_writer(out, log):
        partial = partial_dir(out)
        check_partial(partial)
        if resume and not partial.is_dir():
            raise InspectorError(f"{partial}: nothing to resume (no interrupted run for {out})")
        check_options(arch, normalize, resize)
        if recipe.keep_defects and (merge != "ltm" or mask == "pooling"):
            raise InspectorError(
                "--keep-defects trains the LTM merge: it needs --merge ltm with a learned mask"
            )
        if recipe.defect_crops is not None and not 0 <= recipe.defect_crops <= 1:
            raise InspectorError(
                f"--defect-crops is a share of the training images, 0 to 1; got {recipe.defect_crops}"
            )
        station = open_station(data, recipe.seed)
        check_out(out, station.root)
        for issue in station.issues:
            log(f"note: {issue}")
        # The masks were asked for (not offered by a default): a station without them is an error.
        asked = recipe.defect_crops is not None or bool(recipe.keep_defects)
        recipe = replace(recipe, defect_crops=crop_share(station, recipe.defect_crops, log))
        if small_defects is not None and img_size is not None and resize == "stretch":
            if resume:
                img_size, recipe = as_started(partial, img_size, recipe, log)
            else:
                learnable = merge == "ltm" and mask != "pooling"
                img_size, recipe = raise_for_small_defects(
                    station, img_size, recipe, backbone, learnable, small_defects, log
                )
        img_size, resize = input_geometry(station, img_size, resize, log)
        channels = 3 if pretrained else guess_channels(station.split("train"))
        net, ratio = build_network(arch, img_size, channels, len(station.classes), recipe.seed, log)
        weights = apply_pretrained(net, pretrained, app_home(home) / "weights") if pretrained else None
        if weights is not None:
            log(f"starting from {weights.source} weights (sha256 {str(weights.sha256)[:12]}…)")
        train_side = math.ceil(img_size * TRAIN_MARGIN)
        kept_side = math.ceil(img_size * CROP_MARGIN) if recipe.defect_crops else train_side
        train_set = load_split(station, "train", channels, kept_side, strict, log, hooks.progress)
        if recipe.defect_crops or recipe.keep_defects:
            use_defect_masks(station, train_set, recipe, log, asked)
        val_set = load_split(station, "val", channels, None, strict, log, hooks.progress)
        prep = input_preprocessing(train_set, img_size, channels, resize, normalize, weights)
        recipe = replace(
            recipe,
            gmacs_ratio=ratio,
            convert_at=CONVERT_AT if arch.convert_later else None,
            convert_to=merge,
        )
        if not resume:
            remove_partial(partial)
        log(
            f"training {backbone} ({net.spec.name}) {img_size}px {resize} {channels}ch, merge {merge}"
            f"{f' @ {ratio}' if ratio is not None else ''}, {len(station.classes)} classes, "
            f"{len(train_set)} train / {len(val_set)} val images, {recipe.epochs} epochs"
        )
        outcome = train_to_the_end(
            net, prep, train_set, val_set, station.classes, recipe, partial, out, resume, hooks
        )
        thresholds, movement = judge_on_validation(outcome, prep, val_set, station.classes, log)
        source = station_source(str(data if not isinstance(data, Station) else station.root))
        reference, copy = keep_reference_sample(station, source, recipe.seed, train_side, log)
        provenance = train_provenance(
            arch,
            recipe,
            station,
            source,
            outcome,
            train_set,
            val_set,
            weights,
            movement,
            reference,
            reference_statistics(train_set.images, min(STATS_SIDE, img_size)).to_json(),
        )
        normal = next(iter(sorted(station.normal_classes)), None)
        meta = meta_for(
            outcome.net,
            station.classes,
            preprocessing=prep,
            gmacs_ratio=ratio,
            tokens=tokens,
            normal_class=normal,
            thresholds=thresholds,
            provenance=provenance,
        )
        save_bundle(outcome.net, meta, out, overwrite=force, reference=copy)
        shutil.rmtree(partial, ignore_errors=True)
        skipped = len(train_set.skipped) + len(val_set.skipped)
        return TrainSummary(out, outcome, station, skipped, thresholds)


def crop_share(station: Station, asked: float | None, log: Log) -> float:
    """The share of defect-preserving crops: what was asked, else :data:`AUTO_CROPS` for a station
    whose manifest gives its defect images pixel masks and none for any other."""
    if asked is not None:
        return asked
    normal = station.normal_classes
    if not any(s.get("mask").strip() for s in station.split("train") if s.label not in normal):
        return 0.0
    log(
        f"defect masks in the manifest: defect-preserving crops on ({AUTO_CROPS:.0%}; "
        "--defect-crops 0 turns them off)"
    )
    return AUTO_CROPS


def use_defect_masks(
    station: Station, train_set: LoadedImages, recipe: Recipe, log: Log, asked: bool
) -> None:
    """Read the training images' defect masks once, for the crops (``train_set.crops``) and the
    keep-defects term (``train_set.masks``). A one-line error when either was ``asked`` for and no
    mask can be read; what the defaults turned on then just stays off, with a note."""
    normal = station.normal_classes
    shapes = [image.shape for image in train_set.images]
    masks, problems = defect_masks(train_set.samples, shapes, station.root, normal)
    found = sum(m is not None for m in masks)
    for problem in problems[:3]:
        log(f"note: {problem} (not cropped)")
    if not found:
        if asked:
            option = "--keep-defects" if recipe.keep_defects else "--defect-crops"
            raise InspectorError(
                f"{station.root}: {option} needs a pixel mask per defect image (a 'mask' column in "
                "the manifest); this station has none"
            )
        log("note: none of the manifest's defect masks can be read; training without crops or keep-defects")
        return
    defects = sum(label not in normal for label in train_set.labels)
    if recipe.defect_crops:
        train_set.crops = plan_crops(masks, train_set.labels, normal, recipe.defect_crops)
        log(
            f"defect-preserving crops: {recipe.defect_crops:.0%} of each epoch's croppable images; "
            f"{found} of {defects} defect images have a mask to crop around"
            + (f", {len(problems)} mask problem(s)" if problems else "")
        )
    if recipe.keep_defects:
        train_set.masks = masks
        log(f"keep-defects term: {found} training images with a defect mask teach the merge to keep it apart")


def check_options(arch: Architecture, normalize: str, resize: str | None) -> None:
    """Every option that can be refused without reading the station, refused first."""
    if arch.merge not in MERGE_MODES:
        raise InspectorError(f"--merge must be one of {', '.join(MERGE_MODES)}, got {arch.merge!r}")
    if normalize not in NORMALIZE_MODES:
        raise InspectorError(f"--normalize must be one of {', '.join(NORMALIZE_MODES)}, got {normalize!r}")
    if arch.ltm_start not in ("convert", "scratch"):
        raise InspectorError(f"--ltm-start must be convert or scratch, got {arch.ltm_start!r}")
    if resize is not None and resize not in RESIZE_MODES:
        raise InspectorError(f"--resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if arch.tokens is not None and (arch.merge != "ltm" or arch.ltm_start != "scratch"):
        raise InspectorError("--tokens caps learnable merging from the first epoch: use it with --merge ltm")


def input_geometry(station: Station, img_size: int | None, resize: str | None, log: Log) -> tuple[int, str]:
    """The input size and resize mode: as given, or picked from the station's image sizes (and
    the reason said, so an engineer can disagree with it)."""
    if img_size is not None and resize is not None:
        return img_size, resize
    geometry = choose_geometry(survey_sizes(station.split("train")))
    why = [geometry.size_reason] if img_size is None else []
    why += [geometry.resize_reason] if resize is None else []
    img_size, resize = img_size or geometry.size, resize or geometry.resize
    log(f"input {img_size} px, {resize}, picked from the station's image sizes: {'; '.join(why)}")
    return img_size, resize


def build_network(
    arch: Architecture, img_size: int, channels: int, num_classes: int, seed: int, log: Log
) -> tuple[InspectionNet, float | None]:
    """The network with its merge schedule fitted, before any pixel is loaded: a wrong backbone or
    an unreachable ratio fails in seconds, not after loading, and not at the conversion epoch.
    Returns the GMACs ratio the recipe targets (None unmerged)."""
    spec = resolve_backbone(arch.backbone, img_size, channels)
    torch.manual_seed(seed)  # the initial weights are part of the recipe's seed
    net = InspectionNet(spec, num_classes, "none" if arch.convert_later else arch.merge, mask=arch.mask)
    check_input_size(net, arch.backbone)
    if arch.merge == "none":
        return net, None
    ratio = arch.gmacs_ratio if arch.gmacs_ratio is not None else defaults_for(arch.backbone).gmacs_ratio
    if arch.tokens is not None:
        fit = fit_token_budget(net, arch.tokens)
        where = describe_schedule(net).replace("\n", "; ")
        log(f"token budget {arch.tokens}: {where} ({fit.ratio:.2f} of the unmerged model's GMACs)")
        return net, round(fit.ratio, 3)
    # A model that converts later is fitted on its merged twin now, so a bad ratio fails here.
    fit_schedule(
        net if not arch.convert_later else InspectionNet(spec, num_classes, arch.merge, mask=arch.mask), ratio
    )
    return net, ratio


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


def collapsed(predictions: np.ndarray, num_classes: int, share: float = 0.95) -> bool:
    """True when one class takes ``share`` of the predictions: a majority-class collapse, which
    scores the majority level of macro-F1 and must never ship silently."""
    if num_classes < 2 or len(predictions) == 0:
        return False
    return np.bincount(predictions, minlength=num_classes).max() >= share * len(predictions)


def input_preprocessing(
    train_set: LoadedImages,
    img_size: int,
    channels: int,
    resize: str,
    normalize: str,
    weights: WeightsProvenance | None,
) -> Preprocessing:
    """The one preprocessing spec training, eval, ONNX Runtime and the line all follow: the
    pretrained features' own mean/std when starting from them, else the station's."""
    if weights is not None and normalize == "dataset":
        mean, std = list(weights.mean), list(weights.std)  # what the pretrained features expect
    else:
        mean, std = normalisation(train_set.images, channels)
    return Preprocessing(
        size=img_size, channels=channels, mean=mean, std=std, resize=resize, normalize=normalize
    )


def train_to_the_end(
    net: InspectionNet,
    prep: Preprocessing,
    train_set: LoadedImages,
    val_set: LoadedImages,
    classes: list[str],
    recipe: Recipe,
    partial: Path,
    out: Path,
    resume: bool,
    hooks: Hooks,
) -> TrainOutcome:
    """The epochs, or a one-line error that says how to go on when they were stopped."""

    def on_epoch(r: Any) -> None:
        hooks.log(
            f"epoch {r.epoch + 1}/{recipe.epochs}: loss {r.loss:.3f}, val macro-F1 {r.val_macro_f1:.3f}, "
            f"acc {r.val_accuracy:.3f} ({r.seconds:.0f}s, {r.merge_mode})"
        )
        hooks.epoch(r)

    outcome = train(
        net,
        prep,
        train_set,
        val_set,
        classes,
        recipe,
        partial,
        resume=resume,
        progress=hooks.progress,
        should_stop=hooks.should_stop,
        on_epoch=on_epoch,
    )
    finished = len(outcome.history) and outcome.history[-1].epoch == recipe.epochs - 1
    if not finished:
        done = outcome.history[-1].epoch + 1 if outcome.history else 0
        stopped = f"training stopped after {done} of {recipe.epochs} epochs"
        if not (partial / CHECKPOINT_FILE).is_file():
            raise StoppedBeforeFirstEpoch(f"{stopped}; {resume_hint(out)}")
        raise InspectorError(f"{stopped}; resume with --resume")
    return outcome


def judge_on_validation(
    outcome: TrainOutcome, prep: Preprocessing, val_set: LoadedImages, classes: list[str], log: Log
) -> tuple[dict[str, Any], list[dict]]:
    """The verdict thresholds calibrated on validation, a warning when the model learned nothing,
    and how far each learned merge moved from pooling (what ``models info`` shows)."""
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
    movement = merge_movement(net, (preprocess(sample[i : i + 32], prep) for i in range(0, len(sample), 32)))
    if movement:
        log(f"merges vs pooling on validation images: {describe_movement(movement)}")
    return thresholds, movement


def keep_reference_sample(
    station: Station, source: str, seed: int, side: int, log: Log
) -> tuple[dict[str, Any], bytes | None]:
    """The sample of this station a fine-tune will replay and re-check, and its thumbnail copy for
    when the station's folder is gone (none for a named public dataset: its licence)."""
    reference = reference_sample.draw(station, source, seed)
    copy = None if source in NAMED_DATASETS else reference_sample.make_copy(reference, station.root, side)
    size = f", and as {side} px thumbnails in the bundle ({len(copy) / 1e6:.1f} MB)" if copy else ""
    log(f"reference sample: {len(reference['images'])} images of this station kept by path{size}")
    return reference, copy


def train_provenance(
    arch: Architecture,
    recipe: Recipe,
    station: Station,
    source: str,
    outcome: TrainOutcome,
    train_set: LoadedImages,
    val_set: LoadedImages,
    weights: WeightsProvenance | None,
    movement: list[dict],
    reference: dict[str, Any],
    input_reference: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to know where the bundle came from and to redo it (``model.json``)."""
    return {
        "data": source,
        "data_fingerprint": station.fingerprint(),
        "label_note": station.label_note,
        "backbone_preset": arch.backbone,
        "epochs": recipe.epochs,
        "best_epoch": outcome.best_epoch,
        "seed": recipe.seed,
        "split_seed": recipe.seed,
        "recipe": asdict(recipe),
        "ltm_start": arch.ltm_start if arch.merge != "none" else None,
        "weights": weights.to_json() if weights is not None else {"source": "scratch"},
        "merge_movement": movement,
        # What the drift watch holds the line's frames against (inspector.line.drift).
        "input_reference": input_reference,
        "val": outcome.best_val,
        # What a fine-tune replays and re-checks so this station is not forgotten (issue 26).
        "reference_sample": reference,
        "stations": [
            station_score(
                source, station.fingerprint(), "val", {**outcome.best_val, "n": len(val_set)}, "trained"
            )
        ],
        "train_images": len(train_set),
        "val_images": len(val_set),
        "skipped_files": len(train_set.skipped) + len(val_set.skipped),
        "train_seconds": round(outcome.seconds, 1),
        "history": [asdict(h) for h in outcome.history],
        "command": " ".join(sys.argv) if sys.argv else "",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
