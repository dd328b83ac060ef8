"""The optimizer's parameter groups: merge modules can learn at their own rate."""

from __future__ import annotations

from inspector.training.loop import Recipe, _optimizer
from models.network import InspectionNet


def test_merge_modules_get_their_own_learning_rate(tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    optimizer = _optimizer(net, Recipe(lr=1e-3, merge_lr_scale=30.0), [])
    merge_ids = {id(p) for p in net.mergers.parameters()}
    scaled = [g for g in optimizer.param_groups if g["lr_scale"] == 30.0]
    assert {id(p) for g in scaled for p in g["params"]} == merge_ids
    rest = [g for g in optimizer.param_groups if g["lr_scale"] == 1.0]
    assert sum(len(g["params"]) for g in rest) == len(list(net.parameters())) - len(merge_ids)
    # Locality and gain are scalars: never weight-decayed towards zero.
    assert all(g["weight_decay"] == 0.0 for g in scaled if all(p.ndim <= 1 for p in g["params"]))
