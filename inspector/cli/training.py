"""``inspector train / eval / finetune / export``: the engineer's model work from a terminal.

Each command imports torch only when it runs, so ``inspector --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from inspector.cli.common import HomeOption, choice, console, err, fail, user_errors
from inspector.cli.common import progress as _progress
from inspector.training.defaults import DEFAULT_BACKBONE, FINETUNE_TRAINABLE

# Fixed choices, spelled here so that `--help` imports no torch; tests/test_cli.py checks they are
# the library's own (models.network.MERGE_MODES, models.ltm.MASKS, inspector.training.loop.TRAINABLE…).
MERGE_CHOICES = ("ltm", "tome", "none")
NORMALIZE_CHOICES = ("dataset", "image")
LTM_START_CHOICES = ("scratch", "convert")
MASK_CHOICES = ("content", "pooling", "v1")
AUTO_RESIZE = "auto"
# models.preprocess.RESIZE_MODES (spelled here so that --help imports no torch), then auto.
RESIZE_CHOICES = ("stretch", "letterbox", "center_crop", AUTO_RESIZE)
SPLIT_CHOICES = ("train", "val", "test", "all")


def export(
    model: Annotated[Path, typer.Argument(help="Model bundle folder.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing ONNX file.")] = False,
) -> None:
    """Export a bundle to ONNX (static shapes) and check it against PyTorch."""
    from inspector.registry import refuse_registry_output
    from models.bundle import load_bundle
    from models.files import output_target
    from models.onnx_export import export_onnx

    with user_errors():
        output_target(onnx, overwrite=force)  # refuse before the bundle is even loaded
        refuse_registry_output(onnx, "--onnx")
        _outside_bundle(onnx, model)
        bundle = load_bundle(model)
        with err.status("exporting and checking parity..."):
            report = export_onnx(bundle.net, onnx, overwrite=force)
    console.print(
        f"wrote {report.path} (opset {report.opset}); max |Δprobability| vs PyTorch "
        f"{report.max_abs_diff:.2e} over {report.samples} inputs"
    )


def _outside_bundle(onnx: Path, model: Path) -> None:
    """Refuse an ``--onnx`` that is one of the bundle's own files (by name, symlink or hard link):
    with ``--force`` the export would replace the very weights or model.json it exports."""
    if not onnx.exists() or not model.is_dir():
        return
    if any(part.is_file() and onnx.samefile(part) for part in model.iterdir()):
        raise fail(f"{onnx}: is a file of the model bundle {model}; write the ONNX file elsewhere")


def _presets(values: list[str] | None) -> list[str]:
    """``--augment lighting --augment angle`` or ``--augment lighting,angle``."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def train(
    data: Annotated[str, typer.Argument(help="Dataset folder, manifest CSV, or 'elpv'.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write.")],
    backbone: Annotated[
        str,
        typer.Option(
            help="vit-cpu, vit-tiny, mobilevit-xs (from scratch), lite0, hybrid-s16, hybrid-s16-wide, "
            "hybrid-s8, hybrid-s16-slim, lite1, lite2, hybrid-l1-s16, hybrid-l2-s16 (ImageNet-pretrained) "
            "or a timm name."
        ),
    ] = DEFAULT_BACKBONE,
    merge: Annotated[
        str, choice("--merge", MERGE_CHOICES, "Token merging: learnable (ltm), ToMe (tome) or none.")
    ] = "ltm",
    gmacs_ratio: Annotated[
        float | None,
        typer.Option(
            help="Target compute relative to the unmerged model "
            "\\[default: 0.8 pretrained, 0.6 from scratch]."
        ),
    ] = None,
    tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="LTM token budget: one learned merge after the first block to at most this many tokens "
            "\\[default: 100 for a pretrained hybrid whose input gives more].",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Training epochs \\[default: 8 pretrained, 30 from scratch].")
    ] = None,
    img_size: Annotated[
        int | None,
        typer.Option(
            min=32,
            help="Square input size in pixels \\[default: 160 pretrained, 112 from scratch; a pretrained "
            "backbone on a station whose masks show defects under one 16 px token at 160 px: up to 224 px; "
            "with --resize auto, the station's median long side within 160..320 px].",
        ),
    ] = None,
    resize: Annotated[
        str,
        choice(
            "--resize",
            RESIZE_CHOICES,
            "How a part becomes a square: stretch, letterbox (aspect kept, padded), center_crop, or auto "
            "(letterbox when the station's shapes vary, else stretch; inspector data info shows the pick).",
        ),
    ] = "stretch",
    normalize: Annotated[
        str,
        choice(
            "--normalize",
            NORMALIZE_CHOICES,
            "dataset (the training set's mean/std) or image (each image by its own).",
        ),
    ] = "dataset",
    seed: Annotated[int, typer.Option(help="Seed of the split, weights, sampling and augmentation.")] = 0,
    batch_size: Annotated[int, typer.Option(min=2, help="Images per training step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up, cosine decay).")] = 1e-3,
    stem_lr: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Learning rate of the pretrained convolution stem relative to --lr (a hybrid's Lite stem, a "
            "CNN's stages; the transformer, merges and head keep --lr).",
        ),
    ] = 1.0,
    balance: Annotated[
        float,
        typer.Option(min=0, max=1, help="Class balancing: 0 = natural frequencies, 1 = all classes equally."),
    ] = 0.5,
    augment: Annotated[list[str] | None, typer.Option(help="Extra presets: lighting, angle, optics.")] = None,
    defect_crops: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="Share of training images shown as a crop that keeps the defect (needs a 'mask' column in "
            "the manifest: a pixel mask per defect image); normal parts are cropped at random alike "
            "\\[default: 0.5 where the manifest has masks, else 0].",
        ),
    ] = None,
    keep_defects: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Weight of a term that teaches LTM's merge to keep defect tokens apart from the background "
            "(needs the manifest's masks, as --defect-crops; the line needs none) \\[default: 0.5 where "
            "the masks show small defects and --img-size is not given, else 0, off].",
        ),
    ] = None,
    ib: Annotated[bool, typer.Option("--ib", help="Add the Information Bottleneck term.")] = False,
    ltm_start: Annotated[
        str,
        choice(
            "--ltm-start",
            LTM_START_CHOICES,
            "scratch (merge from epoch 1) or convert (train unmerged, then convert).",
        ),
    ] = "scratch",
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="Starting weights: imagenet-lite0 (shipped, offline; the default for lite0 and the "
            "hybrid-s16/-s8 presets; imagenet-lite1/-lite2 for lite1/lite2 and hybrid-l1-s16/hybrid-l2-s16), "
            "hub (timm's download, online), a .safetensors file, or none (from scratch)."
        ),
    ] = None,
    mask: Annotated[
        str,
        choice(
            "--mask",
            MASK_CHOICES,
            "LTM mask: content (learns where to merge), pooling (fixed local pooling, the ablation) or v1.",
        ),
    ] = "content",
    home: HomeOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable image.")] = False,
) -> None:
    """Train a model on a station dataset and write a bundle (atomically)."""
    from data.augment import check_presets
    from inspector.registry import refuse_registry_output
    from inspector.training.defaults import defaults_for, starting_weights
    from inspector.training.hooks import Hooks
    from inspector.training.loop import Recipe
    from inspector.training.small_defects import SMALL_DEFECT_KEEP, SmallDefects
    from inspector.training.train_station import train_model
    from inspector.training.workflows import resume_hint

    unset = defaults_for(backbone)
    weights = starting_weights(backbone, pretrained)
    # --resize auto: the station's image sizes pick the resize mode and, for a pretrained backbone
    # (whose stem has stride 16) without --img-size, the size too.
    auto = resize == AUTO_RESIZE
    # --resume is suggested only where a checkpoint was kept (none before the first epoch ends).
    with user_errors(interrupted=lambda: f"interrupted; {resume_hint(out)}"):
        from inspector.cli.login import actor_at

        actor_at(home, None, "train")  # with accounts in the home's ledger: an engineer's job
        refuse_registry_output(out)
        recipe = Recipe(
            epochs=epochs or unset.epochs,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            stem_lr_scale=stem_lr,
            balance=balance,
            ib=ib,
            augment=check_presets(_presets(augment)),
            defect_crops=defect_crops,
            keep_defects=keep_defects or 0.0,
        )
        # Without --img-size, a pretrained model's default input grows for a station with small
        # masked defects (and learns to keep them apart, unless --keep-defects was given).
        small_defects = (
            SmallDefects(SMALL_DEFECT_KEEP if keep_defects is None else None)
            if img_size is None and not auto and weights is not None
            else None
        )
        summary = train_model(
            data,
            out,
            backbone=backbone,
            merge=merge,
            gmacs_ratio=unset.gmacs_ratio if gmacs_ratio is None else gmacs_ratio,
            tokens=tokens,
            img_size=img_size or (None if auto and weights is not None else unset.img_size),
            resize=None if auto else resize,
            normalize=normalize,
            recipe=recipe,
            ltm_start=ltm_start,
            pretrained=weights,
            mask=mask,
            small_defects=small_defects,
            home=home,
            resume=resume,
            force=force,
            strict=strict,
            hooks=Hooks(log=_progress),
        )
    best = summary.outcome.best_val
    console.print(
        f"wrote {summary.bundle}: best val macro-F1 {best['macro_f1']:.3f} (epoch {best['epoch'] + 1}), "
        f"UNSURE below {summary.thresholds['unsure_below']}, {summary.skipped} file(s) skipped"
    )


def _print_report(report: dict) -> None:
    table = Table(title=f"{report['split']} split: {report['n']} images", title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in report["per_class"].items():
        table.add_row(
            name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    console.print(table)
    console.print(
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   "
        f"GMACs {report['gmacs']:.4f}   params {report['params']:,}   "
        f"latency p50 {report['latency_ms']['p50']:.2f} ms / "
        f"p95 {report['latency_ms']['p95']:.2f} ms (batch 1)",
        highlight=False,
    )
    if "robustness" in report:
        rob = Table(title="robustness (macro-F1)", title_justify="left")
        rob.add_column("preset")
        for severity in (1, 2, 3):
            rob.add_column(f"severity {severity}", justify="right")
        clean = report["robustness"]["clean"]["macro_f1"]
        rob.add_row("clean", f"{clean:.3f}", "", "")
        for preset in ("lighting", "angle", "optics"):
            rob.add_row(
                preset, *(f"{report['robustness'][f'{preset}-{s}']['macro_f1']:.3f}" for s in (1, 2, 3))
            )
        console.print(rob)


def evaluate(
    model: Annotated[Path, typer.Argument(help="Model bundle folder.")],
    data: Annotated[str, typer.Argument(help="Dataset folder, manifest CSV, or 'elpv'.")],
    split: Annotated[str, choice("--split", SPLIT_CHOICES, "The split to evaluate.")] = "test",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report here (+ confusion PNG).")
    ] = None,
    robustness: Annotated[
        bool, typer.Option("--robustness", help="Also under each preset at 3 severities.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable image.")] = False,
) -> None:
    """Evaluate a bundle on a dataset split (never augmented)."""
    from inspector.registry import refuse_registry_output
    from inspector.training.workflows import evaluate_model

    with user_errors():
        if json_path is not None:  # it could replace a registered version's model.json
            refuse_registry_output(json_path, "--json")
        report = evaluate_model(
            model,
            data,
            split=split,
            json_path=json_path,
            robustness=robustness,
            strict=strict,
            log=_progress,
        )
    _print_report(report)
    if json_path:
        console.print(f"wrote {json_path} and {json_path.with_suffix('.confusion.png')}")


def finetune(
    model: Annotated[Path, typer.Argument(help="Model bundle to adapt (left untouched).")],
    data: Annotated[str, typer.Argument(help="The station's images: folder, manifest CSV, or 'elpv'.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle folder for the adapted model.")],
    augment: Annotated[list[str] | None, typer.Option(help="Presets: lighting, angle, optics.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Fine-tuning epochs.")] = 10,
    trainable: Annotated[
        str,
        choice(
            "--trainable",
            FINETUNE_TRAINABLE,
            "What may change; auto: all for a pretrained base, merge+head for one trained from "
            "scratch (BENCHMARKS.md, adaptation).",
        ),
    ] = "auto",
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up, cosine decay).")] = 5e-4,
    seed: Annotated[int, typer.Option(help="Seed of the split, sampling and augmentation.")] = 0,
    replay: Annotated[
        bool | None,
        typer.Option(
            "--replay/--no-replay",
            help="Train on the base's reference sample of its own station too, so it is not forgotten "
            "(default: on, BENCHMARKS.md).",
        ),
    ] = None,
    blend: Annotated[
        bool | None,
        typer.Option(
            "--blend/--no-blend",
            help="Blend the fine-tuned weights back toward the base's, picked on both stations' "
            "validation images (WiSE-FT).",
        ),
    ] = None,
    judge_both: Annotated[
        bool | None,
        typer.Option(
            "--judge-both/--judge-new",
            help="Keep the epoch that scores best on the new station's validation images and the "
            "base's reference sample's together (default: on, BENCHMARKS.md).",
        ),
    ] = None,
    l2sp: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Pull toward the base's weights (L2-SP, e.g. 0.1; default 0: off, BENCHMARKS.md)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable image.")] = False,
    unlabelled: Annotated[
        bool,
        typer.Option(
            "--unlabelled",
            help="Re-calibrate to this lamp/camera without labels: DATA is any folder of the station's "
            "images; only the BatchNorm statistics are re-estimated (seconds, no training).",
        ),
    ] = False,
) -> None:
    """Adapt a model to a station's lighting and camera angle; before/after side by side."""
    from dataclasses import replace

    from inspector.registry import refuse_registry_output
    from inspector.training.finetune import FINETUNE_RECIPE, finetune_model
    from inspector.training.hooks import Hooks
    from inspector.training.recalibrate import recalibrate_model

    with user_errors():
        from inspector.cli.login import actor_at

        actor_at(None, None, "finetune")  # with accounts in the home's ledger: an engineer's job
        refuse_registry_output(out)
    if unlabelled:
        with user_errors():
            recalibrate_model(model, Path(data), out, force=force, log=_progress)
        console.print(f"wrote {out} (norm statistics re-estimated; weights, classes, thresholds unchanged)")
        return
    presets = _presets(augment) or ["lighting", "angle"]
    with user_errors(interrupted="interrupted; nothing was written and the source model is untouched"):
        recipe = replace(FINETUNE_RECIPE, epochs=epochs, trainable=trainable, lr=lr, seed=seed)
        keeping = {"replay": replay, "wise": blend, "l2sp": l2sp, "judge_both": judge_both}
        recipe = replace(recipe, **{k: v for k, v in keeping.items() if v is not None})
        summary = finetune_model(
            model,
            data,
            out,
            augment=presets,
            recipe=recipe,
            force=force,
            strict=strict,
            hooks=Hooks(log=_progress),
        )
    table = Table(title=f"held-out test split, {summary.after['n']} images", title_justify="left")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row("accuracy", f"{summary.before['accuracy']:.3f}", f"{summary.after['accuracy']:.3f}")
    table.add_row("macro-F1", f"{summary.before['macro_f1']:.3f}", f"{summary.after['macro_f1']:.3f}")
    for name in summary.after["per_class"]:
        before, after = summary.before["per_class"][name], summary.after["per_class"][name]
        if after["support"]:
            table.add_row(f"recall {name}", f"{before['recall']:.3f}", f"{after['recall']:.3f}")
    checked = [s for s in summary.old if s.before is not None and s.after is not None]
    if checked:
        table.add_section()
    for score in checked:
        table.add_row(
            f"old station {score.name}: macro-F1 (n={score.after['n']})",
            f"{score.before['macro_f1']:.3f}",
            f"{score.after['macro_f1']:.3f}",
        )
    console.print(table)
    console.print(f"wrote {summary.bundle} after {summary.seconds:.0f} s of fine-tuning")
