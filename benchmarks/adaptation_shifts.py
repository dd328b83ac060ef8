"""What the wizard's choices win back on a station shift, for any base bundle (issue 14 item 4).

A base model trained on a station (a suite cell's bundle) meets that station's *held-out* images
(its val and test split: never trained on) under a fixed shift at severity 3 — ``lighting`` (a
lamp change: brightness, contrast, gamma, vignetting) or ``angle`` (rotation, perspective, scale or
shift) — each image drawing its own transform and magnitude, so ``angle`` is a camera that jitters
from part to part, not one that was moved — or ``camera``: one move, drawn once (the ``angle``
preset's severity-2 ranges, all four at once), the same for every image, as when a camera is
knocked or remounted — or ``lamp-swap``, its lighting twin: one new lamp for every image.
``--images`` of them, stratified, become a small station with an explicit 60/20/20
split, written twice: shifted (the new station) and unshifted (the same parts under the old
conditions). Every variant then adapts the base on the shifted train split and is scored on the
shifted test split; the shift's cost is the base model's drop from unshifted to shifted on those
same test images, and "recovered" is the share of that drop the variant wins back. "Kept" scores
the adapted model on the unshifted test images (what adapting cost on the old station).

Variants: ``recalibrate`` (BatchNorm statistics re-estimated on the shifted train images, no
labels: ``inspector finetune --unlabelled``) and the wizard's trainable sets through
``finetune_model`` (the code behind ``inspector finetune`` and the wizard), each of which first
re-estimates those statistics as the fine-tune now does (``recalibrate+merge@10`` …), or, with
``--without-recalibration``, trains from the old statistics as it did before (``merge@10`` …).
Results are written after every variant and skipped on the next run, so an interrupted study
resumes.

``--shift lamp`` is a *real* lamp change instead of a simulated one: on a dataset whose manifest
records each image's ``lighting`` (magnetic_tile: exp1…exp6), the base is trained (when ``--base``
does not exist yet, with the pretrained suite's recipe) on the ``--first`` lightings only; the new
station is the other lightings — up to ``--images`` of their train split to adapt on, their val and
test splits as they are — and "kept" scores the first lightings' test images.

    python -m benchmarks.adaptation_shifts --base BUNDLE --data DATASET --shift angle [--images 300]
    python -m benchmarks.adaptation_shifts --base benchmarks/runs/lamp/magnetic_tile-exp1-3 \
        --data ../shared/datasets/magnetic_tile --shift lamp
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import albumentations as A
import cv2
import numpy as np

from data.augment import apply, build_augmentation
from data.images import read_image
from data.station import load_station
from inspector.training.finetune import FINETUNE_RECIPE, finetune_model
from inspector.training.hooks import Hooks
from inspector.training.loop import trainable_parameters
from inspector.training.recalibrate import recalibrate_model
from inspector.training.workflows import evaluate_loaded, load_split, split_seed
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "adaptation_shifts.json"
RUNS = ROOT / "runs" / "adaptation_shifts"
TRAINABLE = ("merge", "merge+norm", "merge+head", "merge+norm+head", "all")
# Ways to keep the old station (issue 26), each on top of training the whole network: replay of the
# base's reference sample, the WiSE-FT blend picked on both stations, the L2-SP pull to the base,
# and the epoch judged on both stations.
KEEPING = {
    "all+replay": {"replay": True},
    "all+wise": {"wise": True},
    "all+l2sp": {"l2sp": 0.1},
    "all+replay+wise": {"replay": True, "wise": True},
    "all+replay+l2sp": {"replay": True, "l2sp": 0.1},
    # epochs judged on both stations' validation images (the new station's and the reference sample's)
    "all+judge": {"judge_both": True},
    "all+replay+judge": {"replay": True, "judge_both": True},
}
PLAIN = {"replay": False, "wise": False, "l2sp": 0.0, "judge_both": False}
VARIANTS = ("recalibrate", *TRAINABLE, *KEEPING)
# Simulated (each image its own draw; one draw for the station) and, on magnetic_tile, real lamps.
SHIFTS = ("lighting", "angle", "camera", "lamp-swap", "lamp")
SHARES = (("train", 0.6), ("val", 0.2), ("test", 0.2))


def _by_class(samples: list) -> list[list]:
    """The samples of each class, classes in name order (so a seed always draws the same)."""
    by_class: dict[str, list] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    return [by_class[label] for label in sorted(by_class)]


def stratified_sample(samples: list, images: int, seed: int) -> list:
    """About ``images`` of ``samples``, each class in its own share and at least 3 of it, so that a
    rare defect class still has images to split 60/20/20."""
    rng = random.Random(seed)
    chosen = []
    for group in _by_class(samples):
        share = max(3, round(images * len(group) / len(samples)))
        chosen += rng.sample(group, min(share, len(group)))
    return chosen


def _split_of(samples: list, seed: int) -> list[tuple[object, str]]:
    """Per class: 60 % train, 20 % val, the rest test (at least one each where the class allows)."""
    rng = random.Random(seed)
    out = []
    for group in _by_class(samples):
        rng.shuffle(group)
        n_train = max(1, round(len(group) * SHARES[0][1]))
        n_val = max(1, round(len(group) * SHARES[1][1])) if len(group) > 2 else 0
        for index, sample in enumerate(group):
            split = "train" if index < n_train else "val" if index < n_train + n_val else "test"
            out.append((sample, split))
    return out


def camera_move_matrix(seed: int, side: int) -> np.ndarray:
    """One draw of the ``angle`` preset's severity-2 ranges, all four at once (perspective 4-8 % of
    the side at each corner, rotation up to 16 degrees, scale 0.84-1.16, shift up to 10 %): the 3x3
    map of a camera that was moved once, so every image of the station sees the same move."""
    rng = np.random.default_rng(seed)
    centre = side / 2
    corners = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    signs = rng.choice([-1.0, 1.0], size=(4, 2))
    tilted = corners + signs * rng.uniform(0.04, 0.08, size=(4, 2)) * side
    perspective = cv2.getPerspectiveTransform(corners, tilted.astype(np.float32))
    turn = cv2.getRotationMatrix2D((centre, centre), rng.uniform(-16, 16), rng.uniform(0.84, 1.16))
    turn[:, 2] += rng.uniform(-0.10, 0.10, size=2) * side
    return np.vstack([turn, [0, 0, 1]]) @ perspective


def fixed_camera_move(seed: int):
    """``shift="camera"``: the same move for every image, whatever its size."""

    def moved(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        matrix = camera_move_matrix(seed, max(height, width))
        return cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)

    return moved


def fixed_lamp_swap(seed: int):
    """``shift="lamp-swap"``: one lamp for every image — a single draw of the ``lighting`` preset's
    severity-2 ranges for brightness, contrast, gamma and a linear illumination gradient, all four
    at once, where ``lighting`` gives each image its own transform and magnitude."""
    rng = np.random.default_rng(seed)
    brightness, contrast = (float(v) for v in rng.uniform(-0.5, 0.5, size=2))
    gamma, gradient, angle = rng.uniform(50, 170), rng.uniform(0.08, 0.132), rng.uniform(0, 360)
    effect = str(rng.choice(["brighten", "darken"]))
    return partial(
        apply,
        A.Compose(
            [
                A.RandomBrightnessContrast((brightness, brightness), (contrast, contrast), p=1),
                A.RandomGamma((gamma, gamma), p=1),
                A.Illumination("linear", (gradient, gradient), effect, (angle, angle), p=1),
            ],
            seed=seed,
        ),
    )


def build_stations(
    base: Path, data: str, shift: str, images: int, folder: Path, seed: int = 0, extra_test: int = 0
) -> Path:
    """``folder``/shifted and ``folder``/unshifted, each a manifest station (rebuilt when missing).
    ``extra_test``: about that many more held-out images in the test split only, so the shift's
    cost and what a method wins back are measured on more than the station's 20 % (nothing that
    adapts or selects sees them)."""
    if (folder / "done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    bundle = load_bundle(base)
    held_out = [s for s in load_station(data, split_seed(bundle)).samples if s.split in ("val", "test")]
    chosen = stratified_sample(held_out, images, seed)
    placed = _split_of(sorted(chosen, key=lambda s: str(s.path)), seed)
    if extra_test:  # after the station's own images, so those are shifted exactly as before
        taken = {id(s) for s in chosen}
        rest = stratified_sample([s for s in held_out if id(s) not in taken], extra_test, seed)
        placed += [(s, "test") for s in sorted(rest, key=lambda s: str(s.path))]
    if shift == "camera":
        shifted = fixed_camera_move(seed)
    elif shift == "lamp-swap":
        shifted = fixed_lamp_swap(seed)
    else:
        shifted = partial(apply, build_augmentation([shift], severity=3, seed=seed))
    rows = []
    for number, (sample, split) in enumerate(placed):
        name = f"{split}/{sample.label}/{number:05d}.png"
        image = read_image(sample.path)
        for kind, pixels in (("unshifted", image), ("shifted", shifted(image))):
            target = folder / kind / name
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), pixels)
        rows.append((name, sample.label, split))
    for kind in ("unshifted", "shifted"):
        with (folder / kind / "manifest.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("path", "label", "split"))
            writer.writerows(rows)
    (folder / "done").write_text("ok\n")
    return folder


def _write_station(folder: Path, rows: list[tuple[object, str]]) -> None:
    """A manifest station of copies of ``rows`` (sample, split): the shared dataset stays untouched."""
    written = []
    for number, (sample, split) in enumerate(rows):
        name = f"{split}/{sample.label}/{number:05d}{sample.path.suffix.lower()}"
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample.path, target)
        written.append((name, sample.label, split))
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("path", "label", "split"))
        writer.writerows(written)


def build_lamp_stations(data: str, first: list[str], images: int, folder: Path, seed: int = 0) -> Path:
    """``folder``/shifted (the other lightings) and ``folder``/unshifted (the first lightings' test)."""
    if (folder / "done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    station = load_station(data)
    if not station.samples or not station.samples[0].get("lighting"):
        sys.exit(f"{data}: its manifest has no 'lighting' column; --shift lamp needs one")
    others = sorted({s.get("lighting") for s in station.samples} - set(first))
    shifted = station.where(lighting=others)
    train = shifted.split("train")
    chosen = stratified_sample(train, images, seed)
    rows = [(s, "train") for s in sorted(chosen, key=lambda s: str(s.path))]
    rows += [(s, s.split) for s in shifted.samples if s.split in ("val", "test")]
    _write_station(folder / "shifted", rows)
    _write_station(folder / "unshifted", [(s, "test") for s in station.where(lighting=first).split("test")])
    (folder / "done").write_text("ok\n")
    return folder


def train_lamp_base(base: Path, data: str, first: list[str], normalize: str = "dataset") -> None:
    """The base model of a real lamp change: the pretrained suite's recipe on the first lightings
    (``normalize``: ``image`` for a base that divides each image's own brightness out)."""
    from benchmarks.pretrained_suite import EPOCHS, HYBRID, HYBRID_RATIO, IMG_SIZE
    from inspector.training.loop import Recipe
    from inspector.training.train_station import train_model

    train_model(
        load_station(data).where(lighting=first),
        base,
        backbone=HYBRID,
        merge="ltm",
        gmacs_ratio=HYBRID_RATIO,
        img_size=IMG_SIZE,
        normalize=normalize,
        pretrained="imagenet-lite0",
        home=base.parent / "home",
        # No defect crops: the first base (2026-12) was trained before they existed; bases compare.
        recipe=Recipe(epochs=EPOCHS, seed=0, defect_crops=0.0),
        resume=base.with_name(base.name + ".partial").is_dir(),
        hooks=Hooks(log=lambda line: print(f"  base: {line}", flush=True), progress=False),
    )


def _test_images(station: Path, channels: int):
    return load_split(load_station(station), "test", channels, None, False, print, False)


def _score(bundle_path: Path, shifted, unshifted) -> tuple[float, float]:
    bundle = load_bundle(bundle_path)
    return evaluate_loaded(bundle, shifted)["macro_f1"], evaluate_loaded(bundle, unshifted)["macro_f1"]


DEFAULT_AUGMENT = ("lighting", "angle")  # the wizard's and ``inspector finetune``'s


def variant_key(
    which: str,
    epochs: int,
    recalibrate_first: bool,
    seed: int = 0,
    lr: float = FINETUNE_RECIPE.lr,
    augment: tuple[str, ...] = DEFAULT_AUGMENT,
) -> str:
    """The variant's name in the results; a rate or presets other than the default's are part of it."""
    if which == "recalibrate":
        return which
    tuned = "" if lr == FINETUNE_RECIPE.lr else f"/lr{lr:g}"
    tuned += "" if tuple(augment) == DEFAULT_AUGMENT else f"/aug={'+'.join(augment) or 'none'}"
    return (
        f"{'recalibrate+' if recalibrate_first else ''}{which}@{epochs}{tuned}{f'/s{seed}' if seed else ''}"
    )


def run_variant(
    which: str,
    base: Path,
    stations: Path,
    out: Path,
    epochs: int,
    recalibrate_first: bool = True,
    seed: int = 0,
    lr: float = FINETUNE_RECIPE.lr,
    augment: tuple[str, ...] = DEFAULT_AUGMENT,
) -> tuple[Path, float]:
    """Adapt ``base`` to the shifted station one way; the adapted bundle and the seconds it took."""
    tic = time.perf_counter()
    if which == "recalibrate":
        recalibrate_model(base, stations / "shifted" / "train", out, force=True, progress=False)
    else:
        trainable, options = ("all", KEEPING[which]) if which in KEEPING else (which, {})
        recipe = replace(
            FINETUNE_RECIPE,
            epochs=epochs,
            lr=lr,
            trainable=trainable,
            recalibrate_norms=recalibrate_first,
            seed=seed,
            **{**PLAIN, **options},  # each variant names all it uses: the default recipe may differ
        )
        finetune_model(
            base,
            str(stations / "shifted"),
            out,
            augment=augment,
            recipe=recipe,
            force=True,
            hooks=Hooks(log=lambda _m: None, progress=False),
        )
    return out, time.perf_counter() - tic


def _fine_tune_notes(bundle: Path) -> dict:
    """What the fine-tune itself saw: its old-station check on the reference sample, its blend."""
    provenance = load_bundle(bundle).meta.provenance
    old = provenance.get("old_station") or {}
    blend = provenance.get("finetune_blend") or {}
    norms = provenance.get("finetune_norm_statistics") or {}
    return {
        "reference_before": (old.get("before") or {}).get("macro_f1"),
        "reference_after": (old.get("after") or {}).get("macro_f1"),
        "blend_alpha": blend.get("alpha"),
        "statistics_kept": norms.get("kept"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="The station's trained bundle.")
    parser.add_argument("--data", required=True, help="The dataset it was trained on (folder or elpv).")
    parser.add_argument("--shift", choices=SHIFTS, required=True)
    parser.add_argument(
        "--first", nargs="+", default=["exp1", "exp2", "exp3"], help="--shift lamp: the base's lightings."
    )
    parser.add_argument(
        "--normalize",
        choices=("dataset", "image"),
        default="dataset",
        help="--shift lamp: how the base (when trained here) normalises its input.",
    )
    parser.add_argument("--images", type=int, default=300, help="Shifted station size (60/20/20 split).")
    parser.add_argument(
        "--extra-test",
        type=int,
        default=0,
        help="More held-out images in the test split only (lighting/angle): a finer measure, same station.",
    )
    parser.add_argument("--epochs", type=int, default=FINETUNE_RECIPE.epochs)
    parser.add_argument("--lr", type=float, default=FINETUNE_RECIPE.lr, help="The fine-tunes' peak rate.")
    parser.add_argument(
        "--augment",
        nargs="*",
        default=list(DEFAULT_AUGMENT),
        help="The fine-tunes' augmentation presets (none: the basic flips only).",
    )
    parser.add_argument("--only", nargs="*", choices=VARIANTS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="The JSON file results go to.")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0], help="Fine-tune seeds (the station stays)."
    )
    parser.add_argument(
        "--without-recalibration",
        action="store_true",
        help="Fine-tune from the base's own BatchNorm statistics (how the fine-tune worked before).",
    )
    args = parser.parse_args()
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    case = f"{args.base.name}/{args.shift}/{args.images}" + (
        f"+test{args.extra_test}" if args.extra_test else ""
    )
    if args.shift == "lamp":
        if not args.base.exists():
            train_lamp_base(args.base, args.data, args.first, args.normalize)
        stations = build_lamp_stations(args.data, args.first, args.images, RUNS / case.replace("/", "-"))
    else:
        stations = build_stations(
            args.base, args.data, args.shift, args.images, RUNS / case.replace("/", "-"), 0, args.extra_test
        )
    channels = load_bundle(args.base).meta.preprocessing.channels
    shifted, unshifted = (_test_images(stations / kind, channels) for kind in ("shifted", "unshifted"))
    entry = results.setdefault(case, {"command": "", "variants": {}})
    entry["command"] = " ".join(["python -m benchmarks.adaptation_shifts", *sys.argv[1:]])
    if "base" not in entry:
        on_shifted, on_unshifted = _score(args.base, shifted, unshifted)
        entry["base"] = {"shifted": on_shifted, "unshifted": on_unshifted, "n_test": len(shifted.images)}
    base, cost = entry["base"], entry["base"]["unshifted"] - entry["base"]["shifted"]
    print(
        f"{case}: base macro-F1 {base['unshifted']:.3f} unshifted -> {base['shifted']:.3f} shifted "
        f"(n={base['n_test']}); the shift costs {cost:+.3f}",
        flush=True,
    )
    net = load_bundle(args.base).net
    runs = [(which, seed) for seed in args.seeds for which in args.only or VARIANTS]
    for which, seed in runs:
        first = not args.without_recalibration
        augment = tuple(args.augment)
        key = variant_key(which, args.epochs, first, seed, args.lr, augment)
        if key in entry["variants"] or (which == "recalibrate" and seed):
            print(f"  {key}: cached")
            continue
        folder = RUNS / case.replace("/", "-") / key.replace("/", "-")
        out, seconds = run_variant(
            which, args.base, stations, folder, args.epochs, first, seed, args.lr, augment
        )
        after, kept = _score(out, shifted, unshifted)
        trainable = "all" if which in KEEPING else which
        entry["variants"][key] = {
            "trainable_params": 0
            if which == "recalibrate"
            else sum(p.numel() for p in trainable_parameters(net, trainable)),
            "after": after,
            "kept_on_unshifted": kept,
            "recovered": None if cost <= 0 else (after - base["shifted"]) / cost,
            "seconds": round(seconds, 1),
            **_fine_tune_notes(out),
        }
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
        row = entry["variants"][key]
        recovered = "–" if row["recovered"] is None else f"{100 * row['recovered']:.0f} %"
        print(
            f"  {key}: {base['shifted']:.3f} -> {after:.3f} (recovered {recovered}), unshifted "
            f"{base['unshifted']:.3f} -> {kept:.3f}, {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
