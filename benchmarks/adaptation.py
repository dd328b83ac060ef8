"""Station adaptation: the demo model on a lighting-shifted ELPV station, fine-tuned four ways.

The new station is the demo model's *held-out* ELPV cells (its val and test split: never trained
on), each passed through a fixed ``lighting`` shift at severity 3 (a lamp change: brightness,
contrast, gamma, vignetting), a few hundred of them, written as a folder-per-class station.
``finetune_model`` splits it 60/20/20 and reports macro-F1 on that station's test split before
and after. Each trainable set — merge modules only (the product default), + norms, + head, all —
gets the same epochs and data. Results are written after every variant and skipped on the next
run, so an interrupted study resumes.

    python -m benchmarks.adaptation [--images 500] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2

from data.augment import apply, build_augmentation
from data.elpv import load_elpv
from data.images import read_image
from inspector.line.demo import demo_model_path
from inspector.training.finetune import FINETUNE_RECIPE, finetune_model
from inspector.training.hooks import Hooks
from inspector.training.loop import trainable_parameters
from inspector.training.workflows import evaluate_model
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "adaptation.json"
RUNS = ROOT / "runs" / "adaptation"
VARIANTS = ("merge", "merge+norm", "merge+head", "all")


def build_station(out: Path, images: int, seed: int = 0) -> Path:
    """The shifted station (rebuilt only when missing): held-out cells, stratified, lamp changed."""
    if (out / "done").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    held_out = [s for s in load_elpv(0).samples if s.split in ("val", "test")]
    rng = random.Random(seed)
    by_class: dict[str, list] = {}
    for sample in held_out:
        by_class.setdefault(sample.label, []).append(sample)
    chosen = []
    for _label, samples in sorted(by_class.items()):
        share = round(images * len(samples) / len(held_out))
        chosen += rng.sample(samples, min(share, len(samples)))
    shift = build_augmentation(["lighting"], severity=3, seed=seed)
    for sample in sorted(chosen, key=lambda s: str(s.path)):
        folder = out / sample.label
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / sample.path.name), apply(shift, read_image(sample.path)))
    (out / "done").write_text("ok\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--only", nargs="*", choices=VARIANTS)
    parser.add_argument("--merge-lr-scale", type=float, default=1.0, help="merge modules' lr / backbone lr")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    station = build_station(RUNS / f"station-{args.images}", args.images)
    results.setdefault("commands", [])
    command = " ".join(["python -m benchmarks.adaptation", *sys.argv[1:]])
    if command not in results["commands"]:
        results["commands"].append(command)
    results.setdefault("stations", {})[str(args.images)] = {
        "shift": "lighting, severity 3",
        "path": str(station),
    }
    if "unshifted" not in results:
        elpv = evaluate_model(demo_model_path(), "elpv", split="test", progress=False, log=lambda _m: None)
        results["unshifted"] = {"macro_f1": elpv["macro_f1"], "accuracy": elpv["accuracy"], "n": elpv["n"]}
    base = load_bundle(demo_model_path())
    for which in args.only or VARIANTS:
        scale = args.merge_lr_scale
        key = f"{which}@{args.epochs}" + (f"x{scale:g}" if scale != 1.0 else "") + f"/{args.images}"
        if key in results.get("variants", {}):
            print(f"{key}: cached")
            continue
        out = RUNS / key.replace("@", "-").replace("/", "-n")
        recipe = replace(FINETUNE_RECIPE, epochs=args.epochs, trainable=which, merge_lr_scale=scale)
        tic = time.perf_counter()
        summary = finetune_model(
            demo_model_path(),
            str(station),
            out,
            recipe=recipe,
            force=True,
            hooks=Hooks(progress=False),
        )
        seconds = time.perf_counter() - tic
        params = sum(p.numel() for p in trainable_parameters(base.net, which))
        results.setdefault("variants", {})[key] = {
            "trainable": which,
            "trainable_params": params,
            "merge_lr_scale": scale,
            "epochs": args.epochs,
            "station_images": args.images,
            "before_macro_f1": summary.before["macro_f1"],
            "after_macro_f1": summary.after["macro_f1"],
            "before_accuracy": summary.before["accuracy"],
            "after_accuracy": summary.after["accuracy"],
            "per_class_recall_after": {c: v["recall"] for c, v in summary.after["per_class"].items()},
            "best_epoch": summary.outcome.best_epoch,
            "train_seconds": round(summary.seconds, 1),
            "total_seconds": round(seconds, 1),
            "n_test": summary.after["n"],
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        row = results["variants"][key]
        print(
            f"{key}: macro-F1 {row['before_macro_f1']:.3f} -> {row['after_macro_f1']:.3f} "
            f"in {row['train_seconds']:.0f} s ({params} trainable params)",
            flush=True,
        )
    print(f"unshifted held-out: macro-F1 {results['unshifted']['macro_f1']:.3f}; wrote {RESULTS}")


if __name__ == "__main__":
    main()
