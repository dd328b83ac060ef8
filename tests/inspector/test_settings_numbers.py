"""Which settings are checked as numbers, and which of them may be left empty (None)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inspector.errors import InspectorError
from inspector.settings import Settings

MAY_BE_EMPTY = ("unsure_below", "ood_energy_above", "cycle_budget_ms")
MUST_BE_SET = (
    "archive_cap_gib",
    "gate_recall_drop",
    "gate_unsure_rise",
    "gate_latency_ratio",
    "golden_every_min",
    "drift_input_k",
    "drift_ood_rate",
    "drift_confidence_drop",
)


@pytest.mark.parametrize("name", MAY_BE_EMPTY + MUST_BE_SET)
@pytest.mark.parametrize("bad", ["0.5", float("nan"), float("inf"), True])
def test_every_number_must_be_a_finite_number(name, bad):
    with pytest.raises(InspectorError, match=f"{name} must be a finite number"):
        replace(Settings(), **{name: bad}).validate()


@pytest.mark.parametrize("name", MAY_BE_EMPTY)
def test_a_threshold_override_or_budget_may_be_left_empty(name):
    replace(Settings(), **{name: None}).validate()


@pytest.mark.parametrize("name", MUST_BE_SET)
def test_the_other_numbers_may_not_be_left_empty(name):
    with pytest.raises(InspectorError, match=f"{name} must be a finite number, got None"):
        replace(Settings(), **{name: None}).validate()
