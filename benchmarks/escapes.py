"""What a plant pays for: defects passed as good (escapes) and good parts rejected, per bundle.

Macro-F1 counts a frayed tile called "break" as a miss; on the line both are NG and the part is
pushed off. This scores each bundle's test-split verdicts as the line's OK / NG (the normal class
against every defect class): the escape rate per defect class and overall, and the false-reject
rate on good parts — at the model's own decision (the most likely class) and with the reject
threshold moved to the plant's usual trade: a part is NG when its normal-class probability is under
the threshold that rejects at most ``--reject-budget`` (5 %) of the good parts *of the validation
split*, then scored on the test split.

    python -m benchmarks.escapes benchmarks/runs/pretrained/magnetic_tile-lite0-224px-dc-s0 ... \\
        --data ../shared/datasets/magnetic_tile
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "pretrained" / "escapes.json"


def escapes(labels: np.ndarray, predicted: np.ndarray, normal: str) -> dict:
    """Escape and false-reject rates of class-name arrays, the line's OK/NG view of them."""
    defect, called = labels != normal, predicted != normal
    return {
        "defects": int(defect.sum()),
        "good": int((~defect).sum()),
        "escape": float((~called[defect]).mean()) if defect.any() else 0.0,
        "false_reject": float(called[~defect].mean()) if (~defect).any() else 0.0,
        "escape_per_class": {
            c: round(float((~called[labels == c]).mean()), 3) for c in sorted(set(labels)) if c != normal
        },
    }


def budget_threshold(normal_probability: np.ndarray, good: np.ndarray, budget: float) -> float:
    """The normal-probability threshold under which at most ``budget`` of the good parts fall."""
    return float(np.quantile(normal_probability[good], budget)) if good.any() else 0.5


def _scores(bundle, samples) -> tuple[np.ndarray, np.ndarray]:
    """Class-name labels and softmax probabilities of ``samples`` under ``bundle``."""
    import torch

    from data.loading import load_pixels
    from inspector.training.predict import predict_logits

    loaded = load_pixels(samples, bundle.meta.preprocessing.channels, None, progress=False)
    logits = predict_logits(bundle.net, bundle.meta.preprocessing, loaded.images)
    return np.array(loaded.labels), torch.softmax(torch.as_tensor(logits), 1).numpy()


def main(argv: list[str] | None = None) -> dict:
    from data.station import load_station
    from models.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--reject-budget", type=float, default=0.05, help="good parts rejected, at most")
    args = parser.parse_args(argv)
    station = load_station(args.data)
    found = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    for path in args.bundles:
        bundle = load_bundle(path)
        classes, normal = bundle.meta.classes, bundle.meta.normal_class or "free"
        k = classes.index(normal)
        val_labels, val_probs = _scores(bundle, station.split("val"))
        labels, probs = _scores(bundle, station.split("test"))
        row = escapes(labels, np.array([classes[i] for i in probs.argmax(1)]), normal)
        threshold = budget_threshold(val_probs[:, k], val_labels == normal, args.reject_budget)
        moved = np.where(probs[:, k] < threshold, "NG", normal)
        budget = {"reject_budget": args.reject_budget, "threshold": round(threshold, 4)}
        row["at_budget"] = {**budget, **escapes(labels, moved, normal)}
        found[path.name] = row
        print(
            f"{path.name}: escapes {row['escape']:.1%} of {row['defects']} defects "
            f"({', '.join(f'{c} {v:.0%}' for c, v in row['escape_per_class'].items())}), "
            f"false rejects {row['false_reject']:.1%}; at a {args.reject_budget:.0%} reject budget on val: "
            f"escapes {row['at_budget']['escape']:.1%}, false rejects {row['at_budget']['false_reject']:.1%}",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return found


if __name__ == "__main__":
    main()
