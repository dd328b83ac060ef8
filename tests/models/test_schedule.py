"""gmacs_ratio lands within ±3% of the target, as measured by the FLOP counter."""

from __future__ import annotations

import pytest

from models.backbones import BackboneSpec
from models.errors import ScheduleError
from models.flops import count_gmacs
from models.network import InspectionNet
from models.schedule import budget_grid, fit_schedule, fit_token_budget


@pytest.mark.parametrize(
    ("name", "size", "mode", "ratio"),
    [
        ("vit_tiny_patch16_224", 128, "ltm", 0.6),
        ("vit_tiny_patch16_224", 224, "ltm", 0.6),
        ("vit_tiny_patch16_224", 224, "tome", 0.6),
        ("mobilevit_xs", 224, "ltm", 0.8),
        ("mobilevit_xs", 224, "tome", 0.9),
    ],
)
def test_ratio_lands_within_three_percent(name, size, mode, ratio):
    spec = BackboneSpec(name, size, 3)
    net = InspectionNet(spec, 2, mode)
    fit = fit_schedule(net, ratio)
    unmerged = count_gmacs(InspectionNet(spec, 2, "none"), size, 3)
    measured = count_gmacs(net, size, 3)
    assert abs(measured / unmerged - ratio) <= 0.03
    assert fit.schedule == net.schedule()
    assert any(fit.schedule)


def test_unreachable_ratio_is_a_clear_error():
    net = InspectionNet(BackboneSpec("mobilevit_xs", 224, 3), 2, "ltm")
    with pytest.raises(ScheduleError, match="cannot reach gmacs_ratio 0.40"):
        fit_schedule(net, 0.4)
    assert not any(net.schedule())


def test_ltm_budget_can_be_spent_in_one_merge():
    spec = BackboneSpec("vit_tiny_patch16_224", 128, 3)
    net = InspectionNet(spec, 2, "ltm")
    fit = fit_schedule(net, 0.6, points=[2])
    assert [i for i, entry in enumerate(fit.schedule) if entry is not None] == [2]
    assert abs(fit.ratio - 0.6) <= 0.03
    with pytest.raises(ScheduleError, match="merge points \\[40\\] are not blocks"):
        fit_schedule(net, 0.6, points=[40])


@pytest.mark.parametrize(("grid", "tokens"), [((20, 20), 100), ((20, 14), 100), ((7, 3), 10), ((1, 50), 10)])
def test_a_budget_grid_fits_the_budget_and_the_grid(grid, tokens):
    h, w = budget_grid(grid, tokens)
    assert h * w <= tokens and h <= grid[0] and w <= grid[1]
    assert h * w >= 0.9 * max(a * min(grid[1], tokens // a) for a in range(1, grid[0] + 1))
    assert budget_grid(grid, grid[0] * grid[1]) == grid  # within the budget: nothing merged


def test_a_token_budget_caps_the_transformer_whatever_the_input_size():
    """Twice the input side, four times the tokens: the budget keeps every block after the first
    at the same token count, so the transformer's cost beyond block 0 stays flat."""
    costs = {}
    for size in (128, 256):
        net = InspectionNet(BackboneSpec("vit_tiny_patch16_224", size, 3), 2, "ltm")
        fit = fit_token_budget(net, 16)
        assert fit.schedule[0] == [4, 4] and all(e is None for e in fit.schedule[1:])
        assert fit.schedule == net.schedule() and fit.ratio < 1.0
        costs[size] = (fit.gmacs, fit.base_gmacs)
    # Unmerged, 4x the tokens cost > 4x; with the budget only the embedding and block 0 grow.
    assert costs[256][1] / costs[128][1] > 4.0
    assert costs[256][0] / costs[128][0] < costs[256][1] / costs[128][1]
    small = InspectionNet(BackboneSpec("vit_tiny_patch16_224", 128, 3), 2, "ltm")
    assert fit_token_budget(small, 64).schedule == [None] * len(small.mergers)  # 8x8 fits already


def test_a_token_budget_is_for_ltm_only():
    with pytest.raises(ScheduleError, match="token budget needs learnable merging"):
        fit_token_budget(InspectionNet(BackboneSpec("vit_tiny_patch16_224", 128, 3), 2, "tome"), 16)
