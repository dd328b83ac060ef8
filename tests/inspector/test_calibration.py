"""Threshold calibration on validation logits."""

from __future__ import annotations

import numpy as np

from inspector.training.calibration import calibrate


def test_confident_errors_bounded_and_unsure_capped():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    margin = rng.uniform(0, 6, 400)
    logits = np.zeros((400, 2))
    logits[np.arange(400), labels] = margin
    # low-margin parts are coin flips: make a third of them wrong
    flip = (margin < 1.0) & (rng.random(400) < 0.5)
    logits[flip] = logits[flip][:, ::-1]
    result = calibrate(logits, labels, target_error=0.02, max_unsure=0.25)
    assert result["val_error_rate_confident"] <= 0.02
    assert result["val_unsure_rate"] <= 0.25
    assert 0.5 <= result["unsure_below"] <= 1.0
    assert result["ood_energy_above"] is not None


def test_perfect_model_needs_no_unsure_band():
    labels = np.array([0, 1] * 50)
    logits = np.eye(2)[labels] * 8
    result = calibrate(logits, labels)
    assert result["val_unsure_rate"] == 0.0 and result["val_error_rate_confident"] == 0.0
