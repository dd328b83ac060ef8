"""gmacs_ratio lands within ±3% of the target, as measured by the FLOP counter."""

from __future__ import annotations

import pytest

from models.backbones import BackboneSpec
from models.errors import ScheduleError
from models.flops import count_gmacs
from models.network import InspectionNet
from models.schedule import fit_schedule


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
