"""MobileViT: the tokens of each transformer are the unfolded patches of a feature map.

They are merged inside the transformer and unmerged with the composed mask before the fold back,
so the convolutions after it see a full feature map. The forward is timm's ``ByobNet.forward`` and
``MobileVitBlock.forward`` (timm 1.0.x) copied with the merging blocks inside; the version range is
pinned in pyproject.toml and ``tests/models/test_timm_internals.py`` fails when timm's own forward
stops matching this copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.models.mobilevit import MobileVitBlock
from torch import nn

from models.backbones import BackboneSpec
from models.families.base import Family, MergeMap, NetOutput, TokenState, finish_map, merging_block


def mobilevit_blocks(backbone: nn.Module) -> list[MobileVitBlock]:
    return [m for m in backbone.modules() if isinstance(m, MobileVitBlock)]


class MobileViTFamily(Family):
    name = "mobilevit"

    def transformers(self, backbone: nn.Module) -> list[Sequence[nn.Module]]:
        return [list(block.transformer) for block in mobilevit_blocks(backbone)]

    def input_grids(self, backbone: nn.Module, spec: BackboneSpec) -> list[tuple[int, int]]:
        """Measured by one forward of timm's own model: the grids follow from its strides and the
        ceil of each feature map over the patch size."""
        seen: list[tuple[int, int]] = []

        def hook(module: MobileVitBlock, args: tuple[torch.Tensor]) -> None:
            height, width = args[0].shape[-2:]
            ph, pw = module.patch_size
            seen.append((math.ceil(height / ph), math.ceil(width / pw)))

        handles = [m.register_forward_pre_hook(hook) for m in mobilevit_blocks(backbone)]
        try:
            with torch.no_grad():
                backbone.eval()(torch.zeros(1, spec.in_chans, spec.img_size, spec.img_size))
        finally:
            for handle in handles:
                handle.remove()
        backbone.train()
        return seen

    def run(
        self, backbone: nn.Module, mergers: nn.ModuleList, images: torch.Tensor, track_maps: bool
    ) -> NetOutput:
        net = backbone
        maps: list[MergeMap] | None = [] if track_maps else None
        x = net.stem(images)
        first = 0
        for stage in net.stages:
            for block in stage:
                if isinstance(block, MobileVitBlock):
                    depth = len(block.transformer)
                    x = _mobilevit_block(block, mergers[first : first + depth], x, maps)
                    first += depth
                else:
                    x = block(x)
        x = net.final_conv(x)
        features = net.head.global_pool(x)
        logits = net.head(x)
        return NetOutput(logits, features, maps or [])


def _mobilevit_block(
    block: MobileVitBlock, mergers: Sequence[nn.Module], x: torch.Tensor, maps: list[MergeMap] | None
) -> torch.Tensor:
    """timm's MobileVitBlock.forward with merging inside and the unmerge before the fold.

    ``maps``: where this transformer's merge map goes, None when nobody asked for one. The
    assignment is tracked either way: the unmerge needs it.
    """
    shortcut = x
    x = block.conv_1x1(block.conv_kxk(x))
    ph, pw = block.patch_size
    batch, channels, height, width = x.shape
    nh, nw = math.ceil(height / ph), math.ceil(width / pw)
    tokens = nh * nw
    resized = (nh * ph, nw * pw) != (height, width)
    if resized:
        x = F.interpolate(x, size=(nh * ph, nw * pw), mode="bilinear", align_corners=False)
    x = x.reshape(batch * channels * nh, ph, nw, pw).transpose(1, 2)
    x = x.reshape(batch, channels, tokens, block.patch_area).transpose(1, 3)
    x = x.reshape(batch * block.patch_area, tokens, -1)

    state = TokenState(grid=(nh, nw), track=True)
    for transformer_block, merger in zip(block.transformer, mergers, strict=True):
        x = merging_block(transformer_block, merger, x, state, prefix=0)
    x = block.norm(x)
    if state.assignment is not None:
        x = state.assignment @ x
    if maps is not None:
        maps.append(finish_map(state, (nh, nw), x.shape[0], x))

    x = x.contiguous().view(batch, block.patch_area, tokens, -1)
    x = x.transpose(1, 3).reshape(batch * channels * nh, nw, ph, pw)
    x = x.transpose(1, 2).reshape(batch, channels, nh * ph, nw * pw)
    if resized:
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    x = block.conv_proj(x)
    if block.conv_fusion is not None:
        x = block.conv_fusion(torch.cat((shortcut, x), dim=1))
    return x
