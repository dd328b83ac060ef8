"""ViT/DeiT, and the hybrid whose patch embedding is a pretrained CNN trunk.

The forward is timm's ``VisionTransformer.forward_features`` + ``forward_head`` (timm 1.0.x),
spelled out block by block so that merging can happen inside the blocks. It calls timm's private
``_pos_embed`` (position embedding plus prefix tokens: no public method does that alone); the
version range is pinned in pyproject.toml and ``tests/models/test_timm_internals.py`` fails when
timm's own forward stops matching this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.backbones import BackboneSpec
from models.families.base import Family, NetOutput, TokenState, finish_map, merging_block


class ViTFamily(Family):
    name = "vit"

    def transformers(self, backbone: nn.Module) -> list[Sequence[nn.Module]]:
        return [list(backbone.blocks)]

    def input_grids(self, backbone: nn.Module, spec: BackboneSpec) -> list[tuple[int, int]]:
        return [tuple(backbone.patch_embed.grid_size)]

    def ltm_merge_points(self, stages: list[list[int]]) -> list[int]:
        """One long transformer: merge at a quarter, half and three quarters of its depth."""
        depth = len(stages[0])
        return sorted({min(depth - 1, max(1, round(depth * f))) for f in (0.25, 0.5, 0.75)})

    def run(
        self, backbone: nn.Module, mergers: nn.ModuleList, images: torch.Tensor, track_maps: bool
    ) -> NetOutput:
        vit = backbone
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        prefix = vit.num_prefix_tokens
        grid = tuple(vit.patch_embed.grid_size)
        state = TokenState(grid=grid, track=track_maps)
        for block, merger in zip(vit.blocks, mergers, strict=True):
            x = merging_block(block, merger, x, state, prefix)
        x = vit.norm(x)
        pooled = pool_tokens(vit.global_pool, x[:, 0] if prefix else None, x[:, prefix:], state.sizes)
        features = vit.fc_norm(pooled)
        logits = vit.head(vit.head_drop(features))
        maps = [finish_map(state, grid, images.shape[0], x)] if track_maps else []
        return NetOutput(logits, features, maps)


class HybridFamily(ViTFamily):
    """A ViT whose patch embedding is a CNN trunk (``backbones.CnnStemEmbed``): past the stem its
    tokens are a ViT's, so it walks exactly like one; the name tells the two apart where a person
    reads it (``inspector models info``)."""

    name = "hybrid"


def pool_tokens(
    pool: str, cls: torch.Tensor | None, patches: torch.Tensor, sizes: torch.Tensor | None
) -> torch.Tensor:
    """timm's ViT pooling, with the mean weighted by how many patches each merged token stands for.

    The max needs no weights: a merged token is a convex mix of patches, so the max over
    tokens is what a patch-level max sees after the merges' averaging.
    """
    if pool == "token":  # timm refuses token pooling without a class token
        return cls
    if sizes is None:
        mean = patches.mean(dim=1)
    else:
        mean = (patches * sizes.unsqueeze(-1)).sum(1) / sizes.sum(1, keepdim=True)
    if pool == "avg":
        return mean
    peak = patches.amax(dim=1)
    return peak if pool == "max" else 0.5 * (peak + mean)
