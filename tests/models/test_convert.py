"""Conversion keeps the trained weights; the block walker reproduces timm exactly when unmerged."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from models.backbones import BackboneSpec
from models.convert import convert
from models.network import InspectionNet


@pytest.mark.parametrize("pool", ["token", "avg", "max", "avgmax"])
def test_unmerged_walk_equals_timm(tiny_vit_spec, pool):
    spec = replace(tiny_vit_spec, overrides={**tiny_vit_spec.overrides, "global_pool": pool})
    net = InspectionNet(spec, 3, "none").eval()
    images = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(images), net.backbone(images))


def test_unmerged_mobilevit_walk_equals_timm():
    net = InspectionNet(BackboneSpec("mobilevit_xxs", 96, 1), 3, "none").eval()
    images = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(net(images), net.backbone(images))


def test_converted_models_keep_unmerged_weights():
    spec = BackboneSpec("vit_tiny_patch16_224", 128, 3)
    trained = InspectionNet(spec, 4, "none")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    for mode in ("ltm", "tome"):
        converted, fit = convert(trained, mode, 0.7)
        source = trained.backbone.state_dict()
        for key, value in converted.backbone.state_dict().items():
            assert torch.equal(value, source[key]), key
        assert abs(fit.ratio - 0.7) <= 0.03
        if mode == "ltm":
            extra = set(converted.state_dict()) - set(trained.state_dict())
            assert extra and all(k.startswith("mergers.") for k in extra)
            merger_params = sum(p.numel() for p in converted.mergers.parameters())
            assert merger_params < 0.01 * sum(p.numel() for p in trained.parameters())
