"""Can a moved camera be undone instead of learned? (issue 26, the camera shift)

``adaptation_shifts --shift camera`` moves the camera once: every image of the new station sees the
same perspective map. This study estimates that map without labels, from the station's *mean*
training image against the old station's (OpenCV's ECC, affine then homography, coarse to fine),
compares it with the true map, and scores the base model on the shifted test images warped back.
What is left after alignment is the part of the view the move pushed out of the frame.

    python -m benchmarks.adaptation_shifts --base inspector/demo_model --data elpv --shift camera \
        --images 300 --extra-test 400 --only recalibrate     # writes the two stations
    python -m benchmarks.camera_alignment --base inspector/demo_model \
        --stations benchmarks/runs/adaptation_shifts/demo_model-camera-300+test400
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from benchmarks.adaptation_shifts import _test_images, camera_move_matrix
from data.images import read_image
from data.loading import LoadedImages
from data.station import load_station
from inspector.training.workflows import evaluate_loaded
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parent
SIDE = 160  # the mean images' side: the moves are estimated at this size, then scaled
STEPS = (
    (32, cv2.MOTION_AFFINE),
    (64, cv2.MOTION_AFFINE),
    (64, cv2.MOTION_HOMOGRAPHY),
    (160, cv2.MOTION_HOMOGRAPHY),
)


def mean_image(station: Path, split: str) -> np.ndarray:
    """The station's mean gray image of one split at SIDE x SIDE (the parts differ; the fixture not)."""
    images = [read_image(s.path) for s in load_station(str(station)).samples if s.split == split]
    gray = [i if i.ndim == 2 else cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in images]
    return np.mean([cv2.resize(g, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for g in gray], 0, np.float32)


def _standardised(image: np.ndarray, side: int) -> np.ndarray:
    small = cv2.GaussianBlur(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    return (small - small.mean()) / (small.std() + 1e-6)


def estimate_move(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, float]:
    """The 3x3 map from the old view to the new one (at SIDE px), and ECC's final correlation."""
    warp, correlation = np.eye(3, dtype=np.float32), 0.0
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 500, 1e-6)
    for side, motion in STEPS:
        scale = np.diag([side / SIDE, side / SIDE, 1.0]).astype(np.float32)
        start = scale @ warp @ np.linalg.inv(scale)
        start = start[:2] if motion == cv2.MOTION_AFFINE else start
        correlation, found = cv2.findTransformECC(
            _standardised(old, side),
            _standardised(new, side),
            start.astype(np.float32),
            motion,
            criteria,
            None,
            1,
        )
        found = np.vstack([found, [0, 0, 1]]) if found.shape[0] == 2 else found
        warp = (np.linalg.inv(scale) @ found @ scale).astype(np.float32)
    return warp / warp[2, 2], float(correlation)


def undo(image: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """``image`` (any size) warped back to the old view by ``warp`` (estimated at SIDE px)."""
    height, width = image.shape[:2]
    scale = np.diag([width / SIDE, height / SIDE, 1.0])
    matrix = scale @ warp @ np.linalg.inv(scale)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(image, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT_101)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--stations", type=Path, required=True, help="adaptation_shifts' camera folder.")
    parser.add_argument("--seed", type=int, default=0, help="The move's seed (adaptation_shifts uses 0).")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "camera_alignment.json")
    args = parser.parse_args()
    if not (args.stations / "done").is_file():
        sys.exit(f"{args.stations}: no stations there; run adaptation_shifts --shift camera first")
    old, new = (mean_image(args.stations / kind, "train") for kind in ("unshifted", "shifted"))
    try:
        warp, correlation = estimate_move(old, new)
    except cv2.error:
        sys.exit("the move could not be estimated: ECC did not converge on the two mean images")
    truth = camera_move_matrix(args.seed, SIDE)
    corners = np.float32([[0, 0], [SIDE, 0], [SIDE, SIDE], [0, SIDE]]).reshape(-1, 1, 2)
    error = np.abs(cv2.perspectiveTransform(corners, warp) - cv2.perspectiveTransform(corners, truth)).max()
    bundle = load_bundle(args.base)
    channels = bundle.meta.preprocessing.channels
    shifted, unshifted = (_test_images(args.stations / kind, channels) for kind in ("shifted", "unshifted"))
    aligned = LoadedImages([undo(i, warp) for i in shifted.images], shifted.labels, shifted.samples)
    scores = {
        name: evaluate_loaded(bundle, images)["macro_f1"]
        for name, images in (("unshifted", unshifted), ("shifted", shifted), ("aligned", aligned))
    }
    cost = scores["unshifted"] - scores["shifted"]
    result = {
        "command": " ".join(["python -m benchmarks.camera_alignment", *sys.argv[1:]]),
        "ecc_correlation": round(correlation, 4),
        "corner_error_px": round(float(error), 2),
        "side_px": SIDE,
        "n_test": len(shifted.images),
        **{k: round(v, 4) for k, v in scores.items()},
        "recovered": round((scores["aligned"] - scores["shifted"]) / cost, 3) if cost > 0 else None,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
