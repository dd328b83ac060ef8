"""What a plant pays for: defects passed as good (escapes) and good parts rejected, per bundle.

Macro-F1 counts a frayed tile called "break" as a miss; on the line both are NG and the part is
pushed off. This scores each bundle's test-split verdicts as the line's OK / NG (the normal class
against every defect class): the escape rate per defect class and overall, and the false-reject
rate on good parts.

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


def main(argv: list[str] | None = None) -> dict:
    from data.loading import load_pixels
    from data.station import load_station
    from inspector.training.predict import predict_logits
    from models.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--data", required=True)
    args = parser.parse_args(argv)
    station = load_station(args.data)
    test = station.split("test")
    found = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    for path in args.bundles:
        bundle = load_bundle(path)
        classes = bundle.meta.classes
        loaded = load_pixels(test, bundle.meta.preprocessing.channels, None, progress=False)
        logits = predict_logits(bundle.net, bundle.meta.preprocessing, loaded.images)
        predicted = np.array([classes[i] for i in logits.argmax(1)])
        row = escapes(np.array(loaded.labels), predicted, bundle.meta.normal_class or "free")
        found[path.name] = row
        print(
            f"{path.name}: escapes {row['escape']:.1%} of {row['defects']} defects "
            f"({', '.join(f'{c} {v:.0%}' for c, v in row['escape_per_class'].items())}), "
            f"false rejects {row['false_reject']:.1%} of {row['good']} good parts",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return found


if __name__ == "__main__":
    main()
