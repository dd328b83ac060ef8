"""The content-aware LTM mask (issue 14): it can learn, it stays mass-preserving and exportable,
and the frozen-at-pooling ablation really is fixed pooling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from inspector.training.loop import trainable_parameters
from models.bundle import load_bundle, meta_for, save_bundle
from models.ltm import LTMMerge, overlap_prior
from models.merge_stats import merge_movement
from models.network import InspectionNet
from models.onnx_export import PARITY_TOLERANCE, export_onnx


def _merge(kind: str) -> tuple[LTMMerge, torch.Tensor, torch.Tensor]:
    merger = LTMMerge(24, rank=8, mask=kind)
    merger.out_grid = (3, 3)
    return merger, torch.randn(2, 36, 24), torch.rand(2, 36) + 0.5


@pytest.mark.parametrize("kind", ["v1", "content", "pooling"])
def test_every_mask_is_row_stochastic_and_conserves_size(kind):
    merger, x, sizes = _merge(kind)
    merged, new_sizes, mask, _ = merger(x, sizes, (6, 6))
    torch.testing.assert_close(mask.sum(-1), torch.ones(2, 36))
    torch.testing.assert_close(new_sizes.sum(1), sizes.sum(1))
    assert merged.shape == (2, 9, 24)


def test_content_mask_trains_its_projection_from_the_first_step_v1_does_not():
    """v1 starts at gain 0: its projection gets no gradient at all — the reason it never learned."""
    grads = {}
    for kind in ("v1", "content"):
        merger, x, sizes = _merge(kind)
        merged, *_ = merger(x, sizes, (6, 6))
        merged.pow(2).sum().backward()
        grads[kind] = merger.proj.weight.grad.abs().sum().item()
    assert grads["v1"] == 0.0
    assert grads["content"] > 1e-4


def test_pooling_ablation_is_exactly_pooling_and_never_trains(tiny_vit_spec):
    merger, x, sizes = _merge("pooling")
    _, _, mask, _ = merger(x, sizes, (6, 6))
    np.testing.assert_allclose(mask[0].numpy(), overlap_prior(6, 6, 3, 3), atol=1e-7)
    net = InspectionNet(tiny_vit_spec, 3, "ltm", mask="pooling")
    merger_ids = {id(p) for p in net.mergers.parameters()}
    assert not merger_ids & {id(p) for p in trainable_parameters(net, "all")}


def test_movement_is_zero_for_pooling_and_positive_for_content(tiny_vit_spec):
    batch = [torch.randn(3, 1, 64, 64)]
    moved = {}
    for kind in ("pooling", "content"):
        net = InspectionNet(tiny_vit_spec, 3, "ltm", mask=kind)
        net.set_schedule([None, [3, 3], None, [2, 2]])
        rows = merge_movement(net, batch)
        assert [r["block"] for r in rows] == [1, 3] and rows[0]["grid"] == "4x4→3x3"
        moved[kind] = [r["moved"] for r in rows]
    assert moved["pooling"] == [0.0, 0.0]
    assert all(0.0 < m < 0.5 for m in moved["content"])  # content-aware, yet near pooling at init


def test_content_mask_bundle_round_trip_and_onnx_parity(tmp_path, tiny_vit_spec):
    spec = replace(tiny_vit_spec, overrides={**tiny_vit_spec.overrides, "global_pool": "avg"})
    net = InspectionNet(spec, 3, "ltm", mask="content").eval()
    net.set_schedule([None, [3, 3], None, [2, 1]])
    back = load_bundle(save_bundle(net, meta_for(net, ["a", "b", "c"]), tmp_path / "b"))
    assert back.meta.mask == "content" and back.net.mask == "content"
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(back.net(x), net(x))
    assert export_onnx(net, tmp_path / "c.onnx", samples=2).max_abs_diff <= PARITY_TOLERANCE
