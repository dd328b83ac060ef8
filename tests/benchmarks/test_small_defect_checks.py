"""The small-defect checks of the benchmarks: tile pooling rules (tiled_eval) and escapes (escapes)."""

from __future__ import annotations

import numpy as np

from benchmarks.tiled_eval import FLIPS, pooled, windows


def test_windows_cover_the_part_edge_to_edge():
    boxes = windows(100, 60, 3, 0.5)
    assert len(boxes) == 9 and boxes[0] == (0, 0, 50, 30) and boxes[-1] == (50, 30, 100, 60)


def test_one_crop_that_sees_a_defect_decides_under_worst_but_not_under_mean():
    normal, crops = 0, 9
    probs = np.zeros((1, 1 + FLIPS + crops, 3))
    probs[..., normal] = 0.9
    probs[..., 1] = 0.06
    probs[..., 2] = 0.04
    probs[0, 1 + FLIPS + 4] = (0.2, 0.1, 0.7)  # the middle crop sees class 2
    assert pooled(probs, "whole", normal) == [0]
    assert pooled(probs, "flips", normal) == [0]
    assert pooled(probs, "mean", normal) == [0]
    assert pooled(probs, "worst", normal, threshold=0.5) == [2]
    assert pooled(probs, "worst", normal, threshold=0.1) == [0]


def test_escapes_count_a_defect_called_another_defect_as_caught():
    from benchmarks.escapes import escapes

    labels = np.array(["free", "free", "fray", "fray", "crack"])
    predicted = np.array(["free", "crack", "break", "free", "crack"])
    row = escapes(labels, predicted, "free")
    assert row["escape"] == 1 / 3 and row["false_reject"] == 0.5
    assert row["escape_per_class"] == {"crack": 0.0, "fray": 0.5}


def test_the_budget_threshold_rejects_at_most_the_budget_of_good_parts():
    from benchmarks.escapes import budget_threshold

    normal_probability = np.linspace(0.01, 1.0, 100)
    good = np.ones(100, bool)
    threshold = budget_threshold(normal_probability, good, 0.05)
    assert (normal_probability[good] < threshold).mean() <= 0.05
