"""What the wizard's choices win back on a station shift, for any base bundle (issue 14 item 4).

A base model trained on a station (a suite cell's bundle) meets that station's *held-out* images
(its val and test split: never trained on) under a fixed shift at severity 3 — ``lighting`` (a
lamp change: brightness, contrast, gamma, vignetting) or ``angle`` (a camera moved: rotation,
perspective). ``--images`` of them, stratified, become a small station with an explicit 60/20/20
split, written twice: shifted (the new station) and unshifted (the same parts under the old
conditions). Every variant then adapts the base on the shifted train split and is scored on the
shifted test split; the shift's cost is the base model's drop from unshifted to shifted on those
same test images, and "recovered" is the share of that drop the variant wins back. "Kept" scores
the adapted model on the unshifted test images (what adapting cost on the old station).

Variants: ``recalibrate`` (BatchNorm statistics re-estimated on the shifted train images, no
labels: ``inspector finetune --unlabelled``) and the wizard's trainable sets through
``finetune_model`` (the code behind ``inspector finetune`` and the wizard). Results are written
after every variant and skipped on the next run, so an interrupted study resumes.

    python -m benchmarks.adaptation_shifts --base BUNDLE --data DATASET --shift angle [--images 300]
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
from pathlib import Path

import cv2

from data.augment import apply, build_augmentation
from data.images import read_image
from data.station import load_station
from inspector.training.loop import trainable_parameters
from inspector.training.workflows import (
    FINETUNE_RECIPE,
    evaluate_loaded,
    finetune_model,
    load_split,
    recalibrate_model,
    split_seed,
)
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "adaptation_shifts.json"
RUNS = ROOT / "runs" / "adaptation_shifts"
TRAINABLE = ("merge", "merge+norm", "merge+head", "all")
VARIANTS = ("recalibrate", *TRAINABLE)
SHARES = (("train", 0.6), ("val", 0.2), ("test", 0.2))


def _split_of(samples: list, seed: int) -> list[tuple[object, str]]:
    """Per class: 60 % train, 20 % val, the rest test (at least one each where the class allows)."""
    rng = random.Random(seed)
    by_class: dict[str, list] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    out = []
    for _label, group in sorted(by_class.items()):
        rng.shuffle(group)
        n_train = max(1, round(len(group) * SHARES[0][1]))
        n_val = max(1, round(len(group) * SHARES[1][1])) if len(group) > 2 else 0
        for index, sample in enumerate(group):
            split = "train" if index < n_train else "val" if index < n_train + n_val else "test"
            out.append((sample, split))
    return out


def build_stations(base: Path, data: str, shift: str, images: int, folder: Path, seed: int = 0) -> Path:
    """``folder``/shifted and ``folder``/unshifted, each a manifest station (rebuilt when missing)."""
    if (folder / "done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    bundle = load_bundle(base)
    held_out = [s for s in load_station(data, split_seed(bundle)).samples if s.split in ("val", "test")]
    rng = random.Random(seed)
    by_class: dict[str, list] = {}
    for sample in held_out:
        by_class.setdefault(sample.label, []).append(sample)
    chosen = []
    for _label, group in sorted(by_class.items()):
        share = max(3, round(images * len(group) / len(held_out)))
        chosen += rng.sample(group, min(share, len(group)))
    augment = build_augmentation([shift], severity=3, seed=seed)
    rows = []
    for number, (sample, split) in enumerate(_split_of(sorted(chosen, key=lambda s: str(s.path)), seed)):
        name = f"{split}/{sample.label}/{number:05d}.png"
        image = read_image(sample.path)
        for kind, pixels in (("unshifted", image), ("shifted", apply(augment, image))):
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


def _test_images(station: Path, channels: int):
    return load_split(load_station(station), "test", channels, None, False, print, False)


def _score(bundle_path: Path, shifted, unshifted) -> tuple[float, float]:
    bundle = load_bundle(bundle_path)
    return evaluate_loaded(bundle, shifted)["macro_f1"], evaluate_loaded(bundle, unshifted)["macro_f1"]


def run_variant(which: str, base: Path, stations: Path, out: Path, epochs: int) -> tuple[Path, float]:
    """Adapt ``base`` to the shifted station one way; the adapted bundle and the seconds it took."""
    tic = time.perf_counter()
    if which == "recalibrate":
        recalibrate_model(base, stations / "shifted" / "train", out, force=True, progress=False)
    else:
        recipe = replace(FINETUNE_RECIPE, epochs=epochs, trainable=which)
        finetune_model(
            base,
            str(stations / "shifted"),
            out,
            recipe=recipe,
            force=True,
            progress=False,
            log=lambda _m: None,
        )
    return out, time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="The station's trained bundle.")
    parser.add_argument("--data", required=True, help="The dataset it was trained on (folder or elpv).")
    parser.add_argument("--shift", choices=("lighting", "angle"), required=True)
    parser.add_argument("--images", type=int, default=300, help="Shifted station size (60/20/20 split).")
    parser.add_argument("--epochs", type=int, default=FINETUNE_RECIPE.epochs)
    parser.add_argument("--only", nargs="*", choices=VARIANTS)
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    case = f"{args.base.name}/{args.shift}/{args.images}"
    stations = build_stations(args.base, args.data, args.shift, args.images, RUNS / case.replace("/", "-"))
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
    for which in args.only or VARIANTS:
        key = f"{which}@{args.epochs}" if which != "recalibrate" else which
        if key in entry["variants"]:
            print(f"  {key}: cached")
            continue
        out, seconds = run_variant(
            which, args.base, stations, RUNS / case.replace("/", "-") / key, args.epochs
        )
        after, kept = _score(out, shifted, unshifted)
        entry["variants"][key] = {
            "trainable_params": 0
            if which == "recalibrate"
            else sum(p.numel() for p in trainable_parameters(net, which)),
            "after": after,
            "kept_on_unshifted": kept,
            "recovered": None if cost <= 0 else (after - base["shifted"]) / cost,
            "seconds": round(seconds, 1),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        row = entry["variants"][key]
        recovered = "–" if row["recovered"] is None else f"{100 * row['recovered']:.0f} %"
        print(
            f"  {key}: {base['shifted']:.3f} -> {after:.3f} (recovered {recovered}), unshifted "
            f"{base['unshifted']:.3f} -> {kept:.3f}, {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
