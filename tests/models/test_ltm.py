"""LTM merging math: mass conservation, fixed points, pooling at init, merge maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.backbones import BackboneSpec
from models.ltm import LTMMerge, overlap_prior, weighted_merge
from models.network import InspectionNet


@pytest.mark.parametrize("grid", [(14, 14, 7, 7), (14, 14, 10, 9), (5, 7, 3, 2), (8, 8, 1, 1)])
def test_overlap_prior_is_row_stochastic(grid):
    prior = overlap_prior(*grid)
    assert prior.shape == (grid[0] * grid[1], grid[2] * grid[3])
    np.testing.assert_allclose(prior.sum(1), 1.0, atol=1e-6)
    assert (prior >= 0).all()


def _trained_like(merger: LTMMerge) -> LTMMerge:
    """A merger whose mask is far from pooling, so the tests see real learned masks."""
    with torch.no_grad():
        merger.sim_gain.fill_(3.0)
        merger.locality.fill_(0.2)
    return merger


def test_merging_conserves_total_size():
    merger = _trained_like(LTMMerge(32, rank=8))
    merger.out_grid = (3, 4)
    x, sizes = torch.randn(2, 42, 32), torch.rand(2, 42) * 3 + 0.5
    merged, new_sizes, mask, _ = merger(x, sizes, (6, 7))
    assert merged.shape == (2, 12, 32)
    torch.testing.assert_close(new_sizes.sum(1), sizes.sum(1))
    torch.testing.assert_close(mask.sum(-1), torch.ones(2, 42))
    # and the size-weighted sum of features ("mass") is conserved too
    torch.testing.assert_close(
        (merged * new_sizes[..., None]).sum(1), (x * sizes[..., None]).sum(1), atol=1e-4, rtol=1e-4
    )


def test_identical_tokens_merge_to_themselves():
    merger = _trained_like(LTMMerge(16, rank=4))
    merger.out_grid = (2, 3)
    token = torch.randn(16)
    x = token.expand(1, 20, 16).clone()
    merged, _, _, _ = merger(x, torch.rand(1, 20) + 0.5, (4, 5))
    torch.testing.assert_close(merged, token.expand(1, 6, 16), atol=1e-5, rtol=1e-5)


def test_weighted_merge_with_identity_mask_is_identity():
    x, sizes = torch.randn(1, 9, 4), torch.rand(1, 9) + 1
    merged, new_sizes = weighted_merge(x, sizes, torch.eye(9)[None])
    torch.testing.assert_close(merged, x)
    torch.testing.assert_close(new_sizes, sizes)


def test_ltm_block_at_init_is_local_average_pooling():
    spec = BackboneSpec("vit_tiny_patch16_224", 224, 3, {"depth": 2, "embed_dim": 64, "num_heads": 2})
    net = InspectionNet(spec, 3, "ltm").eval()
    net.set_schedule([[7, 7], None])
    block = net.backbone.blocks[0]
    x = torch.randn(2, 1 + 196, 64)

    # reference: timm's attention sub-layer, then 2x2 average pooling of the patch grid, then the MLP
    with torch.no_grad():
        y = x + block.attn(block.norm1(x))
        grid = y[:, 1:].reshape(2, 14, 14, 64).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)
        y = torch.cat([y[:, :1], pooled], 1)
        expected = y + block.mlp(block.norm2(y))

        from models.families import TokenState, merging_block

        state = TokenState(grid=(14, 14))
        got = merging_block(block, net.mergers[0], x, state, prefix=1)
    assert got.shape == (2, 1 + 49, 64)
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(state.sizes, torch.full((2, 49), 4.0), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("name", "mode", "schedule"),
    [
        ("vit", "ltm", [None, [3, 3], None, [2, 1]]),
        ("vit", "tome", [3, 2, 2, 1]),
        ("mobilevit", "ltm", None),
    ],
)
def test_merge_maps_sum_to_one_per_patch(tiny_vit_spec, name, mode, schedule):
    if name == "vit":
        net = InspectionNet(tiny_vit_spec, 2, mode)
        net.set_schedule(schedule)
        images = torch.randn(2, 1, 64, 64)
    else:
        net = InspectionNet(BackboneSpec("mobilevit_xxs", 96, 3), 2, mode)
        first = [stage[0] for stage in net.stages()]
        net.set_schedule(
            [[2, 2] if i == first[0] else [1, 1] if i in first else None for i in range(len(net.mergers))]
        )
        images = torch.randn(2, 3, 96, 96)
    for merger in net.mergers:
        if isinstance(merger, LTMMerge):
            _trained_like(merger)
    with torch.no_grad():
        out = net.eval().run(images, track_maps=True)
        plain = net(images)
    assert out.merge_maps
    for merge_map in out.merge_maps:
        torch.testing.assert_close(merge_map.assignment.sum(-1), torch.ones(merge_map.assignment.shape[:2]))
        importance = merge_map.importance()
        assert importance.shape[-2:] == merge_map.grid
        assert float(importance.min()) > 0 and float(importance.max()) <= 1 + 1e-5
    # maps are diagnostics only: asking for them does not change the prediction
    torch.testing.assert_close(out.logits, plain)


def test_mobilevit_merging_changes_output_but_keeps_shape():
    net = InspectionNet(BackboneSpec("mobilevit_xxs", 96, 3), 2, "ltm").eval()
    images = torch.randn(1, 3, 96, 96)
    before = net(images)
    net.set_schedule([[2, 2] if i == 0 else None for i in range(len(net.mergers))])
    after = net(images)
    assert after.shape == before.shape
    assert not torch.allclose(before, after)
