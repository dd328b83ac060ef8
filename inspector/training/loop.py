"""The training recipe for small, imbalanced industrial sets on a 2-core CPU.

AdamW with linear warm-up and cosine decay, label smoothing, class-balanced sampling (weights
∝ count^-0.5: rare defects are seen more often without drowning the normal class), light default
augmentation plus any named presets, the optional Information Bottleneck term, model selection on
validation macro-F1, a resumable checkpoint after every epoch. The same loop serves ``train`` and
``finetune`` (which freezes all but the chosen parameters).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.augment import apply, apply_with_mask, build_augmentation, default_train_augmentation
from data.defect_crops import crop_windows, cut
from data.loading import LoadedImages
from inspector.errors import InspectorError
from inspector.training.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from inspector.training.metrics import Metrics, classification_report
from inspector.training.predict import predict_logits
from models.backbones import cnn_of
from models.convert import convert
from models.errors import ModelError
from models.ib_loss import InformationBottleneck, ib_weight
from models.keep_defects import keep_defects_loss
from models.ltm import LTMMerge
from models.network import InspectionNet
from models.preprocess import Preprocessing, masks_on_grid, preprocess

# One optimisation step: images, targets, their indices, learning rate, progress through the run,
# defect masks (or None); returns the loss.
Step = Callable[
    [list[np.ndarray], np.ndarray, np.ndarray, float, float, list[np.ndarray | None] | None], float
]

TRAINABLE = ("all", "merge", "merge+norm", "merge+head", "merge+norm+head")


@dataclass
class Recipe:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    balance: float = 0.5
    seed: int = 0
    augment: list[str] = field(default_factory=list)
    trainable: str = "all"
    ib: bool = False
    ib_weight: float = 0.1
    ib_start: float = 0.3
    # LTM only: train unmerged for this fraction of the epochs, then convert (None: LTM throughout)
    convert_at: float | None = None
    convert_to: str = "ltm"
    gmacs_ratio: float | None = None
    # The merge modules' learning rate relative to ``lr``. Their few scalars (locality, similarity
    # gain) barely move at the backbone's rate: a demo model trained at 1x ended with gain 0.004.
    merge_lr_scale: float = 1.0
    # The pretrained convolution trunk's learning rate relative to ``lr`` (a hybrid's stem, a CNN's
    # stages; never its classifier). 1.0: at 0.1 the small-defect default lost 20 points of
    # magnetic_tile macro-F1 (seed 0, BENCHMARKS.md "A token budget at 224 px"); the stem must adapt.
    stem_lr_scale: float = 1.0
    # Fine-tuning only: re-estimate the frozen stem's BatchNorm statistics on the station's training
    # images (no labels) before training, kept only when validation does not get worse.
    recalibrate_norms: bool = False
    # Fine-tuning only, so the old station is not forgotten (issue 26): mix the base's reference
    # sample into the training images (``replay``); pull the trained weights toward the base's with
    # an L2 term of this weight (``l2sp``, L2-SP); interpolate between the base and the fine-tuned
    # weights, the blend chosen on both stations' validation images (``wise``, WiSE-FT).
    replay: bool = False
    l2sp: float = 0.0
    wise: bool = False
    # Fine-tuning only: judge each epoch (and the base, which competes) on the new station's
    # validation images and the old stations' reference validation images together, so the kept
    # weights are the best on both and the choice rests on more images than the new station's alone.
    judge_both: bool = False
    # Share of the croppable training images shown as a crop that keeps the defect, per epoch
    # (issue 24): needs the station's masks, planned into the training set by ``train_model``.
    defect_crops: float | None = None  # None: on (``AUTO_CROPS``) where the station has masks
    # Weight of the keep-defects term (``models.keep_defects``, issue 24): with the station's masks,
    # LTM is asked to merge the background and keep defect tokens apart.
    keep_defects: float = 0.0


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_macro_f1: float
    val_accuracy: float
    seconds: float
    merge_mode: str


@dataclass
class TrainOutcome:
    net: InspectionNet
    history: list[EpochRecord]
    best_epoch: int
    best_val: dict[str, Any]
    seconds: float
    # ``start_as_candidate``: the starting weights' validation scores (the bar every epoch had to beat).
    start_val: dict[str, Any] | None = None


def merge_parameters(net: InspectionNet) -> list[torch.nn.Parameter]:
    """The merge modules' trainable parameters (none for the frozen-at-pooling ablation)."""
    return [p for m in net.mergers if isinstance(m, LTMMerge) for p in m.trainable()]


def trainable_parameters(net: InspectionNet, which: str) -> list[torch.nn.Parameter]:
    """The parameters a run updates; the rest are frozen (station adaptation trains few)."""
    if which not in TRAINABLE:
        raise InspectorError(f"--trainable must be one of {', '.join(TRAINABLE)}")
    merge = merge_parameters(net)
    if which == "all":
        fixed = {id(p) for p in net.mergers.parameters()} - {id(p) for p in merge}
        return [p for p in net.parameters() if id(p) not in fixed]
    chosen = list(merge)
    if not chosen:
        raise InspectorError(
            f"this model has no merge modules to train (merge mode {net.merge_mode}); "
            "use --trainable merge+head or all"
        )
    if which in ("merge+norm", "merge+norm+head"):
        chosen += [
            p for m in net.backbone.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()
        ]
    if which in ("merge+head", "merge+norm+head"):
        backbone = net.backbone
        for name in ("head", "fc_norm", "norm"):
            module = getattr(backbone, name, None)
            if module is not None:
                chosen += list(module.parameters())
    return chosen


def _learning_rate(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    warmup = min(recipe.warmup_epochs, 0.2 * recipe.epochs) * steps_per_epoch
    total = recipe.epochs * steps_per_epoch
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _epoch_order(labels: np.ndarray, recipe: Recipe, epoch: int) -> np.ndarray:
    """One epoch's sample indices, drawn with class-balancing weights, seeded by epoch."""
    rng = np.random.default_rng(recipe.seed * 1000 + epoch)
    counts = np.bincount(labels)
    weights = counts[labels].astype(float) ** -recipe.balance
    return rng.choice(len(labels), size=len(labels), replace=True, p=weights / weights.sum())


def _input_clusters(images: list[np.ndarray], k: int, seed: int) -> np.ndarray:
    """k-means ids of 16×16 thumbnails: the discretised X of the IB term."""
    import cv2
    from sklearn.cluster import KMeans

    thumbs = np.stack([cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) for img in images])
    return KMeans(n_clusters=min(k, len(images)), n_init=3, random_state=seed).fit_predict(
        thumbs.astype(np.float32)
    )


def _optimizer(net: InspectionNet, recipe: Recipe, extra: list[torch.nn.Parameter]) -> torch.optim.AdamW:
    params = trainable_parameters(net, recipe.trainable)
    chosen = {id(p) for p in params}
    for p in net.parameters():
        p.requires_grad_(id(p) in chosen)
    merge_ids = {id(p) for p in net.mergers.parameters()}
    stem_ids = _stem_ids(net)
    groups = []
    for scale, members in (
        (1.0, [p for p in params if id(p) not in merge_ids | stem_ids] + extra),
        (recipe.merge_lr_scale, [p for p in params if id(p) in merge_ids]),
        (recipe.stem_lr_scale, [p for p in params if id(p) in stem_ids]),
    ):
        decay = [p for p in members if p.ndim > 1]
        no_decay = [p for p in members if p.ndim <= 1]
        groups += [
            {"params": decay, "weight_decay": recipe.weight_decay, "lr_scale": scale},
            {"params": no_decay, "weight_decay": 0.0, "lr_scale": scale},
        ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=recipe.lr)


def _stem_ids(net: InspectionNet) -> set[int]:
    """The pretrainable convolution trunk's parameters, without a CNN's classifier (which starts
    from random weights like a hybrid's head)."""
    trunk = cnn_of(net.backbone)
    if trunk is None:
        return set()
    head = {id(p) for p in net.backbone.get_classifier().parameters()}
    return {id(p) for p in trunk.parameters()} - head


def validate(
    net: InspectionNet,
    prep: Preprocessing,
    images: LoadedImages,
    classes: list[str],
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Metrics:
    """Classification report of ``net`` on loaded images (optionally corrupted by ``transform``)."""
    logits = predict_logits(net, prep, images.images, transform=transform)
    labels = np.array([classes.index(c) for c in images.labels])
    return classification_report(labels, logits.argmax(1), classes)


def train(
    net: InspectionNet,
    prep: Preprocessing,
    train_set: LoadedImages,
    val_set: LoadedImages,
    classes: list[str],
    recipe: Recipe,
    checkpoint_dir: Path,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    start_as_candidate: bool = False,
) -> TrainOutcome:
    """Train ``net`` in place; returns it loaded with the best validation epoch's weights.

    ``start_as_candidate`` (fine-tuning): the starting weights compete too, as epoch -1, so a run
    that makes the model worse on validation hands back the model it started from.
    """
    torch.manual_seed(recipe.seed)
    labels = np.array([classes.index(c) for c in train_set.labels])
    ib = None
    if recipe.ib:
        ib = InformationBottleneck(
            int(net.backbone.num_features), num_clusters=2 * len(classes), seed=recipe.seed
        )
        clusters = torch.as_tensor(_input_clusters(train_set.images, 4 * len(classes), recipe.seed))
    start_epoch, history, best = 0, [], {"macro_f1": -1.0, "epoch": -1}
    best_state, start_val = None, None
    if resume:
        meta = read_checkpoint_meta(checkpoint_dir)
        if meta.get("merge_mode") != net.merge_mode:
            net = _converted(net, recipe)
        try:
            net.set_schedule(meta.get("schedule") or net.schedule())
        except ModelError as exc:
            raise InspectorError(f"{checkpoint_dir}: the checkpoint does not match this run ({exc})") from exc
        optimizer = _optimizer(net, recipe, list(ib.parameters()) if ib else [])
        meta, best_state = load_checkpoint(checkpoint_dir, net, optimizer)
        start_epoch = meta["epoch"] + 1
        history = [EpochRecord(**h) for h in meta["history"]]
        best = meta["best"]
    else:
        optimizer = _optimizer(net, recipe, list(ib.parameters()) if ib else [])
        if start_as_candidate:
            report = validate(net, prep, val_set, classes)
            best = {"macro_f1": report["macro_f1"], "accuracy": report["accuracy"], "epoch": -1}
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            start_val = dict(best)
    steps_per_epoch = max(1, math.ceil(len(labels) / recipe.batch_size))
    anchors = l2sp_anchors(net, recipe)
    began = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs):
        if recipe.convert_at is not None and net.merge_mode == "none" and epoch >= _convert_epoch(recipe):
            net = _converted(net, recipe)
            optimizer = _optimizer(net, recipe, list(ib.parameters()) if ib else [])
            best, best_state = {"macro_f1": -1.0, "epoch": -1}, None  # select among merged epochs only
        tic = time.perf_counter()
        step_fn = _make_step(
            net, prep, optimizer, recipe, ib, clusters if ib else None, len(classes), anchors
        )
        losses = _run_epoch(step_fn, train_set, labels, recipe, epoch, steps_per_epoch, progress, should_stop)
        if losses is None:
            break
        report = validate(net, prep, val_set, classes)
        record = EpochRecord(
            epoch,
            float(np.mean(losses)),
            report["macro_f1"],
            report["accuracy"],
            time.perf_counter() - tic,
            net.merge_mode,
        )
        history.append(record)
        if report["macro_f1"] > best["macro_f1"]:
            best = {"macro_f1": report["macro_f1"], "accuracy": report["accuracy"], "epoch": epoch}
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        save_checkpoint(
            checkpoint_dir,
            net,
            optimizer,
            best_state,
            {
                "epoch": epoch,
                "history": [asdict(h) for h in history],
                "best": best,
                "merge_mode": net.merge_mode,
                "schedule": net.schedule(),
                "recipe": asdict(recipe),
                "input_size": prep.size,  # a resumed run keeps the input it started with
            },
        )
        if on_epoch is not None:
            on_epoch(record)
    if best_state is not None:
        net.load_state_dict(best_state)
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return TrainOutcome(net, history, int(best["epoch"]), best, time.perf_counter() - began, start_val)


def l2sp_anchors(net: InspectionNet, recipe: Recipe) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """L2-SP's anchors: each trained parameter with the value this run started from, which the
    penalty pulls back to (a resumed run anchors to where it resumed: the base is not kept)."""
    if recipe.l2sp <= 0:
        return []
    return [(p, p.detach().clone()) for p in net.parameters() if p.requires_grad]


def _make_step(
    net: InspectionNet,
    prep: Preprocessing,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    ib: InformationBottleneck | None,
    clusters: torch.Tensor | None,
    num_classes: int,
    anchors: list[tuple[torch.nn.Parameter, torch.Tensor]],
) -> Step:
    """One optimisation step on a batch of augmented images; returns the loss."""
    frozen_norms = [
        m
        for m in net.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and not any(p.requires_grad for p in m.parameters())
    ]

    def step(
        images: list[np.ndarray],
        target: np.ndarray,
        index: np.ndarray,
        lr: float,
        progress: float,
        masks: list[np.ndarray | None] | None = None,
    ) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        net.train()
        for module in frozen_norms:
            module.eval()  # a frozen stem keeps its running statistics
        keep = recipe.keep_defects > 0 and masks is not None and any(m is not None for m in masks)
        out = net.run(preprocess(images, prep), track_maps=keep)
        labels = torch.as_tensor(target)
        loss = F.cross_entropy(out.logits, labels, label_smoothing=recipe.label_smoothing)
        if keep and out.merge_maps:
            term = keep_defects_loss(out.merge_maps, masks_on_grid(masks, prep, out.merge_maps[0].grid))
            if term is not None:
                loss = loss + recipe.keep_defects * term
        weight = ib_weight(progress, recipe.ib_weight, recipe.ib_start)
        if ib is not None and clusters is not None and weight > 0:
            terms = ib(out.features, clusters[index], labels, 4 * num_classes, num_classes)
            loss = loss + weight * terms.loss
        if anchors:
            loss = loss + recipe.l2sp * sum(((p - start) ** 2).sum() for p, start in anchors)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        return float(loss.detach())

    return step


def _run_epoch(
    step: Step,
    train_set: LoadedImages,
    labels: np.ndarray,
    recipe: Recipe,
    epoch: int,
    steps_per_epoch: int,
    progress: bool,
    should_stop: Callable[[], bool] | None,
) -> list[float] | None:
    """Losses of one epoch, or None when asked to stop part-way (the epoch is then discarded)."""
    seed = recipe.seed * 1000 + epoch
    torch.manual_seed(seed)
    augment = default_train_augmentation(seed=seed)
    presets = build_augmentation(recipe.augment, seed=seed) if recipe.augment else None
    order = _epoch_order(labels, recipe, epoch)
    crop_rng = np.random.default_rng(seed)
    losses: list[float] = []
    bar = tqdm(
        range(steps_per_epoch), desc=f"epoch {epoch + 1}/{recipe.epochs}", leave=False, disable=not progress
    )
    for i in bar:
        if should_stop is not None and should_stop():
            return None
        index = order[i * recipe.batch_size : (i + 1) * recipe.batch_size]
        images, masks = _batch(train_set, index, augment, presets, crop_rng)
        lr = _learning_rate(recipe, epoch * steps_per_epoch + i, steps_per_epoch)
        progress_now = (epoch + i / steps_per_epoch) / recipe.epochs
        losses.append(step(images, labels[index], index, lr, progress_now, masks))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return losses


def _batch(
    train_set: LoadedImages,
    index: np.ndarray,
    augment: Any,
    presets: Any | None,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray | None] | None]:
    """One batch's augmented images (some cropped around their defect) and, where the training set
    carries defect masks, the masks moved with them (else None)."""
    crops = train_set.crops
    windows = crop_windows(train_set.images, index, crops, rng) if crops else [None] * len(index)
    images = [cut(train_set.images[j], w) for j, w in zip(index, windows, strict=True)]
    if train_set.masks is None:
        images = [apply(augment, image) for image in images]
        if presets is not None:
            images = [apply(presets, image) for image in images]
        return images, None
    masks = [
        None if train_set.masks[j] is None else cut(train_set.masks[j], w)
        for j, w in zip(index, windows, strict=True)
    ]
    for transform in (augment, presets):
        if transform is not None:
            pairs = [apply_with_mask(transform, im, m) for im, m in zip(images, masks, strict=True)]
            images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    return images, masks


def _convert_epoch(recipe: Recipe) -> int:
    """The epoch at which an unmerged run becomes a merged one (always inside the run)."""
    if recipe.convert_at is None:
        return 0
    return min(recipe.epochs - 1, int(recipe.convert_at * recipe.epochs))


def _converted(net: InspectionNet, recipe: Recipe) -> InspectionNet:
    converted, _ = convert(net, recipe.convert_to, recipe.gmacs_ratio or 0.6, rank=net.rank, mask=net.mask)
    return converted
