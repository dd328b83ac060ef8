"""Do merge maps keep defects finer than background? Checked against magnetic_tile's pixel masks.

The Live screen overlays a model's merge map (how finely each region was kept) as an explanation.
magnetic_tile ships a pixel mask per defect image (manifest column ``mask``), so the claim can be
tested: for every defective test image, the mean importance (1 / size of the final token a patch
ends in) inside the defect mask against outside it, and a pointing game — does the most finely
kept region (all cells tied at the maximum) touch the defect? Beside the hit rate stand the share
of the image those top cells cover and the defects' share of the image: a region that small,
placed at random, touches the defect about as often as the defect's share plus its own.

    python -m benchmarks.merge_maps_vs_masks BUNDLE [BUNDLE ...] [--figure docs/merge_maps.png] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.pretrained_suite import RESULTS, SHARED
from data.images import read_image
from data.loading import convert_channels, to_uint8
from data.station import load_station
from models.bundle import load_bundle
from models.preprocess import map_on_image, preprocess


def _importance(bundle, image: np.ndarray) -> np.ndarray:
    """The merge map of one image as an (H, W) array at the image's size."""
    with torch.no_grad():
        out = bundle.net.eval().run(preprocess([image], bundle.meta.preprocessing), track_maps=True)
    grid = out.merge_maps[0].importance()[0].numpy().astype(np.float32)
    framed = map_on_image(grid, image.shape[0], image.shape[1], bundle.meta.preprocessing.resize)
    return cv2.resize(framed, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


def score(bundle_path: Path, limit: int | None = None) -> tuple[dict, list]:
    bundle = load_bundle(bundle_path)
    station = load_station(SHARED / "magnetic_tile", 0)
    rows, examples = [], []
    for sample in station.split("test"):
        mask_name = sample.get("mask")
        if sample.label == "free" or not mask_name:
            continue
        image = convert_channels(to_uint8(read_image(sample.path)), bundle.meta.preprocessing.channels)
        mask = read_image(station.root / mask_name)
        mask = (mask if mask.ndim == 2 else mask[..., 0]) > 0
        if not mask.any() or mask.all():
            continue
        importance = _importance(bundle, image)
        flat = float(importance.max() - importance.min()) <= 1e-6 * float(importance.max())
        top = importance >= importance.max() * 0.999
        rows.append(
            {
                "inside": float(importance[mask].mean()),
                "outside": float(importance[~mask].mean()),
                "hit": None if flat else bool((top & mask).any()),  # a flat map points nowhere
                "top_share": float(top.mean()),
                "mask_share": float(mask.mean()),
                "label": sample.label,
            }
        )
        examples.append((image, mask, importance, sample.label))
        if limit and len(rows) >= limit:
            break
    inside = np.array([r["inside"] for r in rows])
    outside = np.array([r["outside"] for r in rows])
    summary = {
        "bundle": str(bundle_path),
        "merge": bundle.meta.merge_mode,
        "mask": bundle.meta.mask,
        "images": len(rows),
        "inside_over_outside": round(float(inside.mean() / outside.mean()), 3),
        "per_image_ratio_median": round(float(np.median(inside / outside)), 3),
        "flat_maps": sum(r["hit"] is None for r in rows),
        "pointing_hit_rate": _rate([r["hit"] for r in rows if r["hit"] is not None]),
        "top_cells_share": round(float(np.mean([r["top_share"] for r in rows])), 3),
        "defect_share": round(float(np.mean([r["mask_share"] for r in rows])), 3),
    }
    return summary, examples


def _rate(hits: list[bool]) -> float | None:
    return round(float(np.mean(hits)), 3) if hits else None


def figure(examples: list, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = examples[:: max(1, len(examples) // 12)][:12]
    fig, axes = plt.subplots(3, 4, figsize=(12, 9.5))
    for ax, (image, mask, importance, label) in zip(axes.flat, chosen, strict=False):
        ax.imshow(image if image.ndim == 3 else image, cmap="gray")
        # relative per image: which regions this image's merges kept finest
        ax.imshow(importance, cmap="inferno", alpha=0.5, vmin=importance.min(), vmax=importance.max() + 1e-9)
        ax.contour(mask, levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    for ax in axes.flat[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(title + "\nwarm: kept finest (small merged tokens), dark: merged most; cyan: defect mask")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--figure", type=Path, help="Save a dozen overlays of the first bundle here.")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "merge_maps_vs_masks.json", help="Where the JSON goes."
    )
    args = parser.parse_args()
    results = []
    for index, path in enumerate(args.bundles):
        summary, examples = score(path)
        results.append(summary)
        print(json.dumps(summary), flush=True)
        if index == 0 and args.figure:
            figure(examples, args.figure, f"{path.name}: merge map over magnetic_tile test defects")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
