"""Verdict thresholds calibrated on validation images and stored in the bundle.

Two numbers decide when the line should not trust the top class:

- ``unsure_below``: top-class probability under which a part is UNSURE. Chosen on validation as
  the smallest threshold at which the parts still judged automatically are wrong at most
  ``target_error`` of the time, without sending more than ``max_unsure`` of them to UNSURE.
- ``ood_energy_above``: free energy (−logsumexp of the logits) above which a part looks unlike
  anything seen in training; set at the 99th percentile of validation energies, so about 1% of
  familiar parts are flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.scoring import energy, softmax


def calibrate(
    logits: np.ndarray, labels: np.ndarray, target_error: float = 0.02, max_unsure: float = 0.25
) -> dict[str, Any]:
    if len(labels) == 0:
        return {"unsure_below": 0.5, "ood_energy_above": None, "calibrated_on": "none"}
    probs = softmax(logits)
    confidence, wrong = probs.max(1), probs.argmax(1) != labels
    order = np.argsort(confidence)
    chosen = float(np.quantile(confidence, max_unsure))
    for cut in range(len(order) + 1):
        if cut / len(order) > max_unsure:
            break
        kept = order[cut:]
        if len(kept) == 0 or wrong[kept].mean() <= target_error:
            chosen = float(confidence[order[cut]]) if cut < len(order) else 1.0
            break
    confident = confidence >= chosen
    return {
        "unsure_below": round(chosen, 4),
        "ood_energy_above": round(float(np.quantile(energy(logits), 0.99)), 4),
        "calibrated_on": "val",
        "val_unsure_rate": round(float(1 - confident.mean()), 4),
        "val_error_rate_confident": round(float(wrong[confident].mean()) if confident.any() else 0.0, 4),
        # What the drift watch holds the line's rolling mean confidence against.
        "val_mean_confidence": round(float(confidence.mean()), 4),
    }
