"""Tiles at native scale, judged before they are built into the line (issue 24 item 2).

A trained bundle scores each held-out part once as a whole (what the line does today) and again as
a grid of overlapping crops at the part's own resolution, pooled into one verdict. Pooling rules:

- ``whole``: the part alone (must equal ``inspector eval``);
- ``flips``: the part and its three flips, probabilities averaged (test-time flips, item 5);
- ``mean``: the class probabilities averaged over the part and its crops;
- ``worst``: the view least sure the part is normal decides: defect when its normal probability is
  under a threshold (chosen on the validation split), of the class that view ranks first among the
  defects. A few-pixel defect only has to show in one crop.

No training: minutes per bundle on 2 cores. Writes ``benchmarks/results/pretrained/tiled/<bundle>.json``.

    python -m benchmarks.tiled_eval benchmarks/runs/pretrained/magnetic_tile-lite0-224px-dc-s0 \\
        --data ../shared/datasets/magnetic_tile
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "pretrained" / "tiled"


def windows(width: int, height: int, grid: int, side: float) -> list[tuple[int, int, int, int]]:
    """``grid`` x ``grid`` crops of ``side`` of each side, evenly spread from edge to edge."""
    cw, ch = round(width * side), round(height * side)
    xs = np.linspace(0, width - cw, grid).round().astype(int)
    ys = np.linspace(0, height - ch, grid).round().astype(int)
    return [(int(x), int(y), int(x) + cw, int(y) + ch) for y in ys for x in xs]


FLIPS = 3  # left-right, up-down, both


def view_probabilities(bundle, images: list[np.ndarray], grid: int, side: float) -> np.ndarray:
    """(N, 1 + 3 + grid², K) softmax probabilities: the whole part, its three flips, its crops."""
    import torch

    from inspector.training.predict import predict_logits

    views = []
    for image in images:
        h, w = image.shape[:2]
        views += [image, image[:, ::-1], image[::-1], image[::-1, ::-1]]
        views += [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows(w, h, grid, side)]
    views = [np.ascontiguousarray(v) for v in views]
    logits = predict_logits(bundle.net, bundle.meta.preprocessing, views, batch_size=40)
    probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    return probs.reshape(len(images), 1 + FLIPS + grid * grid, -1)


def pooled(probs: np.ndarray, rule: str, normal: int, threshold: float = 0.5) -> np.ndarray:
    """Predicted class per part under ``rule`` (whole, flips, mean, worst)."""
    if rule == "whole":
        return probs[:, 0].argmax(1)
    if rule == "flips":
        return probs[:, : 1 + FLIPS].mean(1).argmax(1)
    probs = np.concatenate([probs[:, :1], probs[:, 1 + FLIPS :]], axis=1)  # the part and its crops
    if rule == "mean":
        return probs.mean(1).argmax(1)
    worst = probs[:, :, normal].argmin(1)  # the view least sure the part is normal
    chosen = probs[np.arange(len(probs)), worst]
    defect = chosen.copy()
    defect[:, normal] = -1
    return np.where(chosen[:, normal] < threshold, defect.argmax(1), normal)


def best_threshold(probs: np.ndarray, labels: np.ndarray, normal: int, classes: list[str]) -> float:
    """The ``worst`` rule's threshold with the highest macro-F1 on these (validation) parts."""
    from sklearn.metrics import f1_score

    grid = np.linspace(0.05, 0.95, 19)
    scores = [
        f1_score(labels, pooled(probs, "worst", normal, t), average="macro", labels=range(len(classes)))
        for t in grid
    ]
    return float(grid[int(np.argmax(scores))])


def main(argv: list[str] | None = None) -> dict:
    from sklearn.metrics import f1_score, recall_score

    from data.loading import load_pixels
    from data.station import load_station
    from models.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--grid", type=int, default=3, help="crops per side (3: nine crops)")
    parser.add_argument("--side", type=float, default=0.5, help="a crop's share of each side")
    args = parser.parse_args(argv)

    bundle = load_bundle(args.bundle)
    classes = list(bundle.meta.classes)
    normal = classes.index(bundle.meta.normal_class or "free")
    station = load_station(args.data)
    channels = bundle.meta.preprocessing.channels
    out: dict = {"bundle": args.bundle.name, "grid": args.grid, "side": args.side, "classes": classes}
    split_probs = {}
    for split in ("val", "test"):
        loaded = load_pixels(station.split(split), channels, None, desc=f"loading {split}", progress=False)
        labels = np.array([classes.index(label) for label in loaded.labels])
        split_probs[split] = (view_probabilities(bundle, loaded.images, args.grid, args.side), labels)
    threshold = best_threshold(*split_probs["val"], normal, classes)
    out["worst_threshold"] = threshold
    for rule in ("whole", "flips", "mean", "worst"):
        for split, (probs, labels) in split_probs.items():
            predicted = pooled(probs, rule, normal, threshold)
            out[f"{rule}_{split}_macro_f1"] = float(
                f1_score(labels, predicted, average="macro", labels=range(len(classes)))
            )
            if split == "test":
                recall = recall_score(
                    labels, predicted, average=None, labels=range(len(classes)), zero_division=0
                )
                out[f"{rule}_test_recall"] = {
                    c: round(float(r), 3) for c, r in zip(classes, recall, strict=True)
                }
        val, test = out[f"{rule}_val_macro_f1"], out[f"{rule}_test_macro_f1"]
        print(
            f"{rule:6s} val macro-F1 {val:.3f}  test {test:.3f}  "
            + " ".join(f"{c} {r:.2f}" for c, r in out[f"{rule}_test_recall"].items()),
            flush=True,
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.bundle.name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
