"""The optimizer's parameter groups: merge modules and the pretrained stem can learn at their own rate."""

from __future__ import annotations

import pytest

from inspector.training.loop import Recipe, _optimizer
from models.backbones import resolve_backbone
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


@pytest.mark.parametrize("backbone", ["hybrid-s16", "lite0"])
def test_the_pretrained_trunk_gets_its_own_learning_rate_and_the_head_does_not(backbone):
    net = InspectionNet(resolve_backbone(backbone, 64, 3), 3, "ltm" if backbone != "lite0" else "none")
    optimizer = _optimizer(net, Recipe(lr=1e-3, stem_lr_scale=0.1), [])
    slow = {id(p) for g in optimizer.param_groups if g["lr_scale"] == 0.1 for p in g["params"]}
    trunk = net.backbone.patch_embed.proj.cnn if backbone != "lite0" else net.backbone
    head = {id(p) for p in net.backbone.get_classifier().parameters()}
    assert slow == {id(p) for p in trunk.parameters()} - head and head and not slow & head
    # the hybrid's 1x1 projection, its transformer and the merges keep the full rate
    full = {id(p) for g in optimizer.param_groups if g["lr_scale"] == 1.0 for p in g["params"]}
    assert len(full) + len(slow) == len(list(net.parameters()))


def test_a_backbone_without_a_pretrainable_trunk_is_all_at_the_full_rate(tiny_vit_spec):
    net = InspectionNet(tiny_vit_spec, 3, "ltm")
    optimizer = _optimizer(net, Recipe(lr=1e-3, stem_lr_scale=0.1), [])
    assert all(g["lr_scale"] == 1.0 for g in optimizer.param_groups)
