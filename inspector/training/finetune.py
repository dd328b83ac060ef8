"""``inspector finetune``: adapt a bundle to a new station without forgetting the old one.

The base is never modified; the adapted model is a new bundle. Before training, the stem's BatchNorm
statistics may be re-estimated on the station's images (labels not needed); the reference samples
of every station the base served are replayed and scored (:mod:`inspector.training.station_memory`),
and the weights may be blended back toward the base (:mod:`inspector.training.weight_blend`), so the
wizard can show what adapting did to each station (BENCHMARKS.md, "Adaptation that keeps the old
station"). The adapted bundle remembers its new station too, for the next fine-tune.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from data.augment import check_presets
from data.image_stats import DEFAULT_SIDE as STATS_SIDE
from data.image_stats import reference_statistics
from data.loading import LoadedImages
from data.station import Station
from inspector.errors import StoppedBeforeFirstEpoch
from inspector.training.calibration import calibrate
from inspector.training.defaults import AUTO_TRAINABLE, default_trainable, pretrained_base
from inspector.training.hooks import Hooks, Log
from inspector.training.loop import EpochRecord, Recipe, TrainOutcome, train, validate
from inspector.training.metrics import Metrics
from inspector.training.predict import predict_logits
from inspector.training.reference_sample import OldStation, joined, station_score
from inspector.training.station_memory import bundle_thumbnails, load_old_stations, remember_station
from inspector.training.weight_blend import BlendChoice, choose_blend
from inspector.training.workflows import (
    TRAIN_MARGIN,
    check_classes,
    check_out,
    check_partial,
    check_target,
    evaluate_loaded,
    load_split,
    one_writer,
    open_station,
    partial_dir,
    remove_partial,
)
from models.bundle import Bundle, load_bundle, save_bundle
from models.network import InspectionNet
from models.norm_stats import batch_norms, recalibrate_norms
from models.preprocess import Preprocessing, preprocess


@dataclass
class OldScore:
    """A station the base already served, scored on its reference sample before and after."""

    station: OldStation
    before: Metrics | None
    after: Metrics | None

    @property
    def name(self) -> str:
        return self.station.name


@dataclass
class FinetuneSummary:
    bundle: Path
    before: Metrics
    after: Metrics
    seconds: float
    outcome: TrainOutcome
    # Every station the base served that is still at hand (trained station first); empty: none.
    old: list[OldScore] = field(default_factory=list)
    blend: BlendChoice | None = None


# "auto" trains what recovered the most for the base's kind (inspector/training/defaults.py).
# Replay of the old stations' reference samples, with every epoch judged on both stations, is the
# default since session 21: on 460 held-out ELPV cells per shift, 3 seeds (BENCHMARKS.md, "Which
# default keeps the old station"), it lost 1.8 / 5.5 points of the old station where plain `all`
# lost 4.2 / 23 (lamp change / camera moved), winning back as much or more of the new one (58 % vs
# 46 %, 61 % vs 65 %). On magnetic_tile's real lamp change it was not better (101 ± 72 % vs
# 129 ± 34 % back, old lamp −1.3 vs −2.0). Both need the base's reference sample; without it the
# fine-tune says so and trains and judges on the new station alone.
# L2-SP (``--l2sp``, the wizard's "Hold the weights near the base model's") is offered at 0.1 and
# off by default: over 3 seeds it won back more of the ELPV lamp change than plain `all` (86 ± 6 % vs
# 71 ± 16 % on 60 test cells) and less of magnetic_tile's (83 ± 33 % vs 101 ± 19 %), keeping the old
# station no better (BENCHMARKS.md, "Adaptation that keeps the old station").
FINETUNE_L2SP = 0.1
FINETUNE_RECIPE = Recipe(
    epochs=10,
    lr=5e-4,
    warmup_epochs=1.0,
    trainable=AUTO_TRAINABLE,
    recalibrate_norms=True,
    replay=True,
    judge_both=True,
)


def recalibrate_start(
    net: InspectionNet,
    prep: Preprocessing,
    train_set: LoadedImages,
    val_set: LoadedImages,
    classes: list[str],
) -> dict[str, Any] | None:
    """Put the station's own BatchNorm statistics into ``net`` when that does not hurt validation.

    A new lamp shifts what every convolution stage sees; the frozen stem keeps normalising with the
    old station's statistics unless they are re-estimated, and training the merges or the head on
    top cannot undo that. Validation decides, so a station that looks like the old one keeps the
    original statistics. None when the model has no BatchNorm (the from-scratch ViTs).
    """
    if not batch_norms(net):
        return None
    # The statistics use no labels, so the training images' labels judge them as fairly as the
    # validation ones: 60 validation images alone once threw away a re-estimate that recovered 109 %
    # of a camera shift on the test images (BENCHMARKS.md, "Adaptation on the pretrained hybrid").
    judge = joined(train_set, val_set)
    before = validate(net, prep, judge, classes)["macro_f1"]
    saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
    images = train_set.images
    moved = recalibrate_norms(net, (preprocess(images[i : i + 32], prep) for i in range(0, len(images), 32)))
    after = validate(net, prep, judge, classes)["macro_f1"]
    kept = after >= before
    if not kept:
        net.load_state_dict(saved)
    return {**moved, "val_macro_f1_before": before, "val_macro_f1_after": after, "kept": kept}


@dataclass
class _Inputs:
    """What a fine-tune reads before it changes anything: the base, its station's three splits and
    the stations the base already served (their reference samples; empty when none is at hand)."""

    bundle: Bundle
    station: Station
    recipe: Recipe
    train_set: LoadedImages
    val_set: LoadedImages
    test_set: LoadedImages
    old: list[OldStation]
    side: int  # the longer side training images are kept at (and the stations' thumbnails)
    source: str  # what the station was opened from (the registry's and the memory's name for it)
    thumbnails: dict[str, np.ndarray]  # the base's checked copy of its stations' images, by key


def finetune_model(
    model: Path,
    data: str | Station,
    out: Path,
    *,
    augment: Sequence[str] = ("lighting", "angle"),
    recipe: Recipe | None = None,
    force: bool = False,
    strict: bool = False,
    hooks: Hooks | None = None,
) -> FinetuneSummary:
    """``inspector finetune``: adapt a bundle to a station; before/after on its held-out split and
    on the base's own station (its reference sample), where that is still reachable.

    The source bundle is never modified; the adapted model is a new bundle at ``out``.
    ``hooks.on_epoch`` gets each epoch's record as well as the log line (the wizard's curves).
    """
    hooks = hooks or Hooks()
    recipe = replace(recipe or FINETUNE_RECIPE, augment=check_presets(list(augment)))
    check_target(out, force)
    with one_writer(out, hooks.log):
        partial = partial_dir(out)
        check_partial(partial)
        inputs = read_inputs(model, data, out, recipe, strict, hooks)
        bundle, log = inputs.bundle, hooks.log
        base_state = {k: v.detach().clone() for k, v in bundle.net.state_dict().items()}
        before = evaluate_loaded(bundle, inputs.test_set)
        log(
            f"before: test macro-F1 {before['macro_f1']:.3f}, "
            f"accuracy {before['accuracy']:.3f} (n={before['n']})"
        )
        old_before = [_score_old(bundle, station, "before", log) for station in inputs.old]
        tic = time.perf_counter()
        remove_partial(partial)
        judged = _judge(inputs.val_set, inputs.old, inputs.recipe, log)
        outcome, norms = adapt(inputs, judged, partial, hooks)
        blend = _blend(
            outcome.net, base_state, bundle.meta.preprocessing, inputs.val_set, inputs.old,
            bundle.meta.classes, inputs.recipe, log,
        )  # fmt: skip
        seconds = time.perf_counter() - tic
        adapted = Bundle(outcome.net, bundle.meta, out)
        after = evaluate_loaded(adapted, inputs.test_set)
        log(
            f"after:  test macro-F1 {after['macro_f1']:.3f}, "
            f"accuracy {after['accuracy']:.3f} ({seconds:.0f}s)"
        )
        old = [
            OldScore(station, was, _score_old(adapted, station, "after", log))
            for station, was in zip(inputs.old, old_before, strict=True)
        ]
        provenance = finetune_provenance(model, inputs, seconds, norms, blend, (before, after), old)
        provenance["finetune_epochs"] = epoch_trace(outcome, len(judged))
        memory, copy = remember_station(
            bundle.meta.provenance, inputs.thumbnails, inputs.station, inputs.source, inputs.recipe.seed,
            inputs.side, log,
        )  # fmt: skip
        provenance.update(memory)
        meta = replace(
            bundle.meta,
            thresholds=_thresholds(outcome.net, bundle, inputs.val_set),
            provenance=provenance,
            schedule=outcome.net.schedule(),
        )
        save_bundle(outcome.net, meta, out, overwrite=force, reference=copy)
        shutil.rmtree(partial, ignore_errors=True)
        return FinetuneSummary(out, before, after, seconds, outcome, old, blend)


def read_inputs(
    model: Path, data: str | Station, out: Path, recipe: Recipe, strict: bool, hooks: Hooks
) -> _Inputs:
    """The base and the station, checked against each other before any image is loaded."""
    log = hooks.log
    bundle = load_bundle(model)
    station = open_station(data, recipe.seed)
    check_out(out, station.root, model)
    check_classes(bundle, station)
    recipe = _resolved_recipe(recipe, bundle, model, log)
    prep = bundle.meta.preprocessing
    train_side = math.ceil(prep.size * TRAIN_MARGIN)
    splits = [
        load_split(station, split, prep.channels, side, strict, log, hooks.progress)
        for split, side in (("train", train_side), ("val", None), ("test", None))
    ]
    # Read once: the old stations' replay images now, the adapted bundle's copy at the end.
    pool = bundle_thumbnails(Path(model), bundle.meta.provenance)
    old = load_old_stations(bundle.meta.provenance, bundle.meta.classes, prep.channels, train_side, log, pool)
    source = str(station.root) if isinstance(data, Station) else str(data)
    return _Inputs(bundle, station, recipe, *splits, old, train_side, source, pool)


def adapt(
    inputs: _Inputs, judged: LoadedImages, partial: Path, hooks: Hooks
) -> tuple[TrainOutcome, dict[str, Any] | None]:
    """The station's BatchNorm statistics (when they help), then the recipe's epochs, each judged
    on ``judged`` (the station's validation images, with the old stations' where asked)."""
    net, prep, classes, recipe = (
        inputs.bundle.net,
        inputs.bundle.meta.preprocessing,
        inputs.bundle.meta.classes,
        inputs.recipe,
    )
    log = hooks.log
    # Replayed images take part in everything the station's own do: the statistics, so they
    # describe both lamps, and the training.
    train_data = _training_images(inputs.train_set, inputs.old, recipe, log)
    norms = None
    if recipe.recalibrate_norms:
        norms = recalibrate_start(net, prep, train_data, inputs.val_set, classes)
        if norms is not None:
            verdict = "kept" if norms["kept"] else "not kept: the original statistics score higher"
            log(
                f"BatchNorm statistics re-estimated on {norms['images']} training images: "
                f"train+val macro-F1 {norms['val_macro_f1_before']:.3f} -> {norms['val_macro_f1_after']:.3f} "
                f"({verdict})"
            )

    def epoch_done(record: EpochRecord) -> None:
        log(
            f"epoch {record.epoch + 1}/{recipe.epochs}: loss {record.loss:.3f}, "
            f"val macro-F1 {record.val_macro_f1:.3f}"
        )
        hooks.epoch(record)

    outcome = train(
        net,
        prep,
        train_data,
        judged,
        classes,
        recipe,
        partial,
        progress=hooks.progress,
        should_stop=hooks.should_stop,
        start_as_candidate=True,
        on_epoch=epoch_done,
    )
    if not outcome.history:
        shutil.rmtree(partial, ignore_errors=True)
        raise StoppedBeforeFirstEpoch(
            "fine-tuning was cancelled before the first epoch finished; nothing was written"
        )
    return outcome, norms


def _thresholds(net: InspectionNet, bundle: Bundle, val_set: LoadedImages) -> dict[str, Any]:
    """The verdict thresholds recalibrated for the adapted model on the station's validation split."""
    classes = bundle.meta.classes
    labels = np.array([classes.index(c) for c in val_set.labels])
    return calibrate(predict_logits(net, bundle.meta.preprocessing, val_set.images), labels)


def finetune_provenance(
    model: Path,
    inputs: _Inputs,
    seconds: float,
    norms: dict[str, Any] | None,
    blend: BlendChoice | None,
    new_station: tuple[Metrics, Metrics],
    old: list[OldScore],
) -> dict[str, Any]:
    """The base's provenance, plus where and how it was adapted and what that did to every station
    it served (``old_station``: the trained one, as before; ``old_stations``: all of them)."""
    bundle, station = inputs.bundle, inputs.station
    before, after = new_station
    keys = ("accuracy", "macro_f1", "per_class", "confusion", "n")
    size = bundle.meta.preprocessing.size
    provenance = dict(bundle.meta.provenance)
    provenance.update(
        finetuned_from=str(model),
        split_seed=inputs.recipe.seed,
        station_data=str(station.root),
        station_fingerprint=station.fingerprint(),
        finetune_recipe=asdict(inputs.recipe),
        finetune_seconds=round(seconds, 1),
        finetune_norm_statistics=norms,
        finetune_blend=None if blend is None else {"alpha": blend.alpha, "val": _blend_rows(blend)},
        input_reference=reference_statistics(inputs.train_set.images, min(STATS_SIDE, size)).to_json(),
        before={k: before[k] for k in keys},
        after={k: after[k] for k in keys},
        old_station=_old_scores(old[0]) if old else None,
        old_stations=[_old_scores(score) for score in old],
        stations=_stations(bundle.meta.provenance, inputs.source, station, after, old),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        command=" ".join(sys.argv) if sys.argv else "",
    )
    return provenance


def epoch_trace(outcome: TrainOutcome, n_val: int) -> dict[str, Any]:
    """Each epoch's validation score beside the base's, kept in the bundle: when a fine-tune hands
    the base back, anyone can see afterwards whether every epoch fell short or one nearly made it."""
    start = outcome.start_val
    return {
        "n_val": n_val,
        "base_val_macro_f1": None if start is None else round(float(start["macro_f1"]), 4),
        "kept_epoch": outcome.best_epoch,  # -1: no epoch beat the base, its weights came back
        "epochs": [
            {"epoch": r.epoch, "loss": round(r.loss, 4), "val_macro_f1": round(r.val_macro_f1, 4)}
            for r in outcome.history
        ],
    }


def describe_epoch_trace(trace: Any) -> str | None:
    """One line on which weights a fine-tune kept and why, from its ``finetune_epochs`` record;
    None when there is none or it was edited into something else (the bundle is not trusted)."""
    try:
        scores = {int(e["epoch"]): float(e["val_macro_f1"]) for e in trace["epochs"]}
        kept, n_val, base = int(trace["kept_epoch"]), int(trace["n_val"]), trace["base_val_macro_f1"]
        base = None if base is None else float(base)
    except (KeyError, TypeError, ValueError):
        return None
    if not scores or (kept < 0 and base is None) or (kept >= 0 and kept not in scores):
        return None
    if kept < 0:
        return (
            f"the base's weights: none of {len(scores)} epochs beat its validation macro-F1 {base:.3f} "
            f"(best epoch {max(scores.values()):.3f}, {n_val} images)"
        )
    against = "" if base is None else f", the base's {base:.3f}"
    return (
        f"epoch {kept + 1} of {len(scores)}: validation macro-F1 {scores[kept]:.3f}{against} ({n_val} images)"
    )


def _resolved_recipe(recipe: Recipe, bundle: Bundle, model: Path, log: Log) -> Recipe:
    """ "auto" made concrete for this base, and a merge-only choice for a base without merges."""
    if recipe.trainable == AUTO_TRAINABLE:
        pretrained = pretrained_base(bundle.meta.provenance)
        recipe = replace(recipe, trainable=default_trainable(pretrained))
        kind = "pretrained" if pretrained else "from-scratch"
        log(f"trains {recipe.trainable} (the default for a {kind} base)")
    has_merges = any(True for _ in bundle.net.mergers.parameters())
    if not has_merges and recipe.trainable in ("merge", "merge+norm", "merge+norm+head"):
        log(f"note: {model} has no merge modules; training the head and norms instead")
        recipe = replace(recipe, trainable="merge+head")
    return recipe


def _score_old(bundle: Bundle, old: OldStation, when: str, log: Log) -> Metrics | None:
    """The model on an old station's reference test images (None: there are none)."""
    images = old["test"]
    if images is None:
        return None
    scores = evaluate_loaded(bundle, images)
    log(
        f"{when}: old station {old.name} macro-F1 {scores['macro_f1']:.3f} "
        f"(n={scores['n']}, reference sample)"
    )
    return scores


def _old_images(old: list[OldStation], split: str) -> list[LoadedImages]:
    """The old stations' reference images of one split, where they are at hand."""
    return [station[split] for station in old if station[split] is not None]


def _beside_old(
    images: LoadedImages, old: list[OldStation], split: str, log: Log, missing: str, found: str
) -> LoadedImages:
    """``images`` with the old stations' reference images of ``split`` beside them; says ``missing``
    when there are none, else ``found`` (formatted with ``count``, ``stations`` and ``new``)."""
    extra = _old_images(old, split)
    if not extra:
        log(missing)
        return images
    stations = "the old station" if len(old) == 1 else f"{len(old)} old stations"
    log(found.format(count=sum(len(i) for i in extra), stations=stations, new=len(images)))
    return joined(images, *extra)


def _training_images(
    train_set: LoadedImages, old: list[OldStation], recipe: Recipe, log: Log
) -> LoadedImages:
    """The station's training images, with every old station's reference images when replaying."""
    if not recipe.replay:
        return train_set
    return _beside_old(
        train_set, old, "train", log,
        "replay: the old station's reference images are not at hand; training on the new station only",
        "replay: {count} reference images of {stations} train beside {new} new ones",
    )  # fmt: skip


def _judge(val_set: LoadedImages, old: list[OldStation], recipe: Recipe, log: Log) -> LoadedImages:
    """The images every epoch is judged on: the station's validation split, and with ``judge_both``
    the old stations' reference validation images beside it."""
    if not recipe.judge_both:
        return val_set
    return _beside_old(
        val_set, old, "val", log,
        "judge: no old-station validation images; epochs are judged on the new station only",
        "judge: each epoch on {new} new and {count} old-station validation images together",
    )  # fmt: skip


def _blend(
    net: InspectionNet,
    base_state: dict[str, Any],
    prep: Preprocessing,
    val_set: LoadedImages,
    old: list[OldStation],
    classes: list[str],
    recipe: Recipe,
    log: Log,
) -> BlendChoice | None:
    """WiSE-FT: the blend of base and fine-tuned weights that scores best on both stations (the old
    stations' validation images judged as one)."""
    if not recipe.wise:
        return None
    old_vals = _old_images(old, "val")
    if not old_vals:
        log("blend: no old-station validation images; the fine-tuned weights are kept as they are")
        return None
    old_val = joined(*old_vals)
    tuned = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def score(candidate: Any) -> tuple[float, float]:
        return (
            validate(candidate, prep, val_set, classes)["macro_f1"],
            validate(candidate, prep, old_val, classes)["macro_f1"],
        )

    choice = choose_blend(net, base_state, tuned, score)
    new, kept = choice.scores[choice.alpha]
    log(
        f"blend: {choice.alpha:.2f} of the fine-tuned weights (val macro-F1 new station {new:.3f}, "
        f"old station {kept:.3f}; tried {', '.join(f'{a:.2f}' for a in choice.scores)})"
    )
    return choice


def _blend_rows(blend: BlendChoice) -> list[dict[str, float]]:
    return [{"alpha": a, "new": round(n, 4), "old": round(o, 4)} for a, (n, o) in blend.scores.items()]


def _old_scores(score: OldScore) -> dict[str, Any]:
    """What the provenance keeps of an old station's check."""
    keep = ("accuracy", "macro_f1", "per_class", "n")
    before, after = score.before, score.after
    return {
        "name": score.name,
        "data": score.station.data,
        "missing": score.station.missing,
        "before": None if before is None else {k: before[k] for k in keep},
        "after": None if after is None else {k: after[k] for k in keep},
    }


def _stations(
    base: dict[str, Any],
    source: str,
    station: Station,
    after: Metrics,
    old: list[OldScore],
) -> list[dict[str, Any]]:
    """Every station this model was validated on: the new one, the old ones re-scored on their
    reference samples, and the base's other stations carried over (not re-scored)."""
    rows = [station_score(source, station.fingerprint(), "test", after, "adapted")]
    for score in old:
        if score.after is not None:
            rows.append(
                station_score(score.station.data, score.station.fingerprint, "reference", score.after, "kept")
            )
    seen = {(r["data"], r["fingerprint"]) for r in rows}
    for entry in base.get("stations") or []:
        if isinstance(entry, dict) and (entry.get("data"), entry.get("fingerprint")) not in seen:
            rows.append({**entry, "role": "carried"})
    return rows[:32]
