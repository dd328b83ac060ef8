"""The inspection network: a timm backbone whose transformer blocks can merge tokens.

The backbone module is kept whole and its state-dict keys unchanged; this module walks it block by
block so that, after each block's attention, a merger (LTM, ToMe or none) can shrink the patch
token set before the MLP (DESIGN §5). Mergers live beside the backbone (``mergers.<i>``), one per
transformer block, so converting a trained unmerged model only adds merger weights.

In MobileViT the tokens of each transformer are the unfolded patches of a feature map; they are
merged inside the transformer and unmerged with the composed mask before the fold back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.mobilevit import MobileVitBlock
from torch import nn

from models.attention import attention_forward, size_bias
from models.backbones import BackboneSpec, create_backbone, family_of
from models.errors import ModelError
from models.ltm import MASKS, LTMMerge
from models.tome import ToMeMerge

MERGE_MODES = ("none", "ltm", "tome")


@dataclass
class TokenState:
    """What travels with the patch tokens through the blocks of one transformer."""

    grid: tuple[int, int] | None
    sizes: torch.Tensor | None = None
    assignment: torch.Tensor | None = None
    track: bool = False

    def record(self, mask: torch.Tensor) -> None:
        """Compose this merge's mask into the patch→token assignment when someone needs it."""
        if self.track:
            self.assignment = mask if self.assignment is None else self.assignment @ mask


@dataclass
class MergeMap:
    """For every input patch of one transformer: its share in each final token (rows sum to 1)."""

    grid: tuple[int, int]
    assignment: torch.Tensor  # (B, h*w, N_final)
    sizes: torch.Tensor  # (B, N_final)

    def importance(self) -> torch.Tensor:
        """(B, h, w) in (0, 1]: how finely the model kept each patch (1 = never merged away).

        A patch that ends in a token standing for s patches scores 1/s; soft shares average it.
        """
        score = (self.assignment / self.sizes.clamp_min(1e-6).unsqueeze(1)).sum(-1)
        return score.reshape(-1, *self.grid)


def image_importance(maps: list[MergeMap], batch: int) -> torch.Tensor | None:
    """(B, h, w) per image: the first (finest) transformer's :meth:`MergeMap.importance`.

    What the app overlays on a part. The live engine's PyTorch path and the ONNX graph's
    ``merge_map`` output both come from here, so the two runtimes show the same map. A MobileViT
    transformer merges each of its ``patch_area`` pixel positions as a sequence of its own: its
    map has B × patch_area rows, averaged back to one per image.
    """
    if not maps:
        return None
    score = maps[0].importance()
    return score.reshape(batch, -1, *score.shape[-2:]).mean(1)


@dataclass
class NetOutput:
    logits: torch.Tensor
    features: torch.Tensor
    merge_maps: list[MergeMap] = field(default_factory=list)


def _make_merger(mode: str, dim: int, rank: int, mask: str) -> nn.Module:
    if mode == "ltm":
        return LTMMerge(dim, rank, mask)
    if mode == "tome":
        return ToMeMerge()
    return nn.Identity()


class InspectionNet(nn.Module):
    """A classifier over a timm ViT/DeiT or MobileViT backbone with per-block token merging."""

    def __init__(
        self, spec: BackboneSpec, num_classes: int, merge: str = "none", rank: int = 16, mask: str = "v1"
    ) -> None:
        """``mask``: which LTM mask module (``models.ltm``): ``content`` for new models, ``v1`` as
        bundles before it recorded, ``pooling`` for the frozen ablation."""
        super().__init__()
        if merge not in MERGE_MODES:
            raise ModelError(f"merge mode must be one of {MERGE_MODES}, got {merge!r}")
        if mask not in MASKS:
            raise ModelError(f"LTM mask must be one of {MASKS}, got {mask!r}")
        self.spec = spec
        self.merge_mode = merge
        self.rank = rank
        self.mask = mask
        self.backbone = create_backbone(spec, num_classes)
        self.family = family_of(self.backbone)
        if self.family == "cnn" and merge != "none":
            raise ModelError(f"{spec.name} is a CNN: it has no tokens to merge (use --merge none)")
        blocks = self.transformer_blocks()
        self.mergers = nn.ModuleList(
            _make_merger(merge, b.norm1.normalized_shape[0], rank, mask) for b in blocks
        )
        self.block_grids: list[tuple[int, int]] = self._input_grids()

    # ----------------------------------------------------------------------------- structure
    def transformer_blocks(self) -> list[nn.Module]:
        """Every transformer block, in execution order (MobileViT: all stages' transformers)."""
        if self.family == "vit":
            return list(self.backbone.blocks)
        if self.family == "cnn":
            return []
        return [blk for mvb in self._mobilevit_blocks() for blk in mvb.transformer]

    def _mobilevit_blocks(self) -> list[MobileVitBlock]:
        return [m for m in self.backbone.modules() if isinstance(m, MobileVitBlock)]

    def stages(self) -> list[list[int]]:
        """Block indices grouped by transformer (one group for ViT, one per MobileViT block)."""
        if self.family == "vit":
            return [list(range(len(self.backbone.blocks)))]
        if self.family == "cnn":
            return []
        groups, start = [], 0
        for mvb in self._mobilevit_blocks():
            groups.append(list(range(start, start + len(mvb.transformer))))
            start += len(mvb.transformer)
        return groups

    def _input_grids(self) -> list[tuple[int, int]]:
        """The unmerged token grid each transformer starts from at this input size."""
        if self.family == "vit":
            return [tuple(self.backbone.patch_embed.grid_size)]
        if self.family == "cnn":
            return []
        seen: list[tuple[int, int]] = []

        def hook(module: MobileVitBlock, args: tuple[torch.Tensor]) -> None:
            height, width = args[0].shape[-2:]
            ph, pw = module.patch_size
            seen.append((math.ceil(height / ph), math.ceil(width / pw)))

        handles = [m.register_forward_pre_hook(hook) for m in self._mobilevit_blocks()]
        try:
            with torch.no_grad():
                self.backbone.eval()(
                    torch.zeros(1, self.spec.in_chans, self.spec.img_size, self.spec.img_size)
                )
        finally:
            for handle in handles:
                handle.remove()
        self.backbone.train()
        return seen

    # ----------------------------------------------------------------------------- schedule
    def schedule(self) -> list[Any]:
        """Per block: LTM output grid ``[h, w]`` or None; ToMe tokens removed ``r``; none: None."""
        out: list[Any] = []
        for merger in self.mergers:
            if isinstance(merger, LTMMerge):
                out.append(list(merger.out_grid) if merger.out_grid else None)
            elif isinstance(merger, ToMeMerge):
                out.append(merger.r)
            else:
                out.append(None)
        return out

    def set_schedule(self, schedule: list[Any]) -> None:
        """Apply a schedule (as returned by :meth:`schedule`), validating it against the grids."""
        if len(schedule) != len(self.mergers):
            raise ModelError(f"schedule has {len(schedule)} entries for {len(self.mergers)} blocks")
        for stage, grid in zip(self.stages(), self.block_grids, strict=True):
            tokens = grid[0] * grid[1]
            for i in stage:
                merger, entry = self.mergers[i], schedule[i]
                if isinstance(merger, LTMMerge):
                    if entry is not None:
                        h, w = int(entry[0]), int(entry[1])
                        if not (1 <= h <= grid[0] and 1 <= w <= grid[1]):
                            raise ModelError(
                                f"block {i}: LTM grid {h}x{w} does not fit in {grid[0]}x{grid[1]}"
                            )
                        grid = (h, w)
                    merger.out_grid = None if entry is None else grid
                elif isinstance(merger, ToMeMerge):
                    r = int(entry or 0)
                    if r < 0 or r > tokens // 2:
                        raise ModelError(f"block {i}: ToMe r={r} is out of range for {tokens} tokens")
                    merger.r = r
                    tokens -= r
                elif entry not in (None, 0):
                    raise ModelError(f"block {i}: an unmerged model takes no schedule entry ({entry!r})")

    # ----------------------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images).logits

    def run(self, images: torch.Tensor, track_maps: bool = False) -> NetOutput:
        """Logits, pooled features (for the IB term) and, on request, the merge maps."""
        if self.family == "vit":
            return self._run_vit(images, track_maps)
        if self.family == "cnn":
            return self._run_cnn(images)
        return self._run_mobilevit(images, track_maps)

    def _run_cnn(self, images: torch.Tensor) -> NetOutput:
        net = self.backbone
        features = net.forward_head(net.forward_features(images), pre_logits=True)
        return NetOutput(net.classifier(features), features)

    def _block(self, index: int, x: torch.Tensor, state: TokenState, prefix: int) -> torch.Tensor:
        block, merger = self.transformer_blocks_cached[index], self.mergers[index]
        want_keys = isinstance(merger, ToMeMerge) and merger.r > 0
        out, keys = attention_forward(block.attn, block.norm1(x), size_bias(state.sizes, prefix), want_keys)
        x = x + block.drop_path1(block.ls1(out))
        x = self._merge(merger, x, keys, state, prefix)
        return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))

    def _merge(
        self, merger: nn.Module, x: torch.Tensor, keys: torch.Tensor | None, state: TokenState, prefix: int
    ) -> torch.Tensor:
        if isinstance(merger, LTMMerge) and merger.out_grid is not None and merger.out_grid != state.grid:
            patches = x[:, prefix:]
            sizes = state.sizes if state.sizes is not None else patches.new_ones(patches.shape[:2])
            merged, state.sizes, mask, state.grid = merger(patches, sizes, state.grid)
            state.record(mask)
            return torch.cat([x[:, :prefix], merged], dim=1)
        if isinstance(merger, ToMeMerge) and merger.r > 0 and keys is not None:
            patches = x[:, prefix:]
            sizes = state.sizes if state.sizes is not None else patches.new_ones(patches.shape[:2])
            merged, state.sizes, mask = merger(patches, sizes, keys[:, prefix:], want_mask=state.track)
            state.grid = None
            if mask is not None:
                state.record(mask)
            return torch.cat([x[:, :prefix], merged], dim=1)
        return x

    @property
    def transformer_blocks_cached(self) -> list[nn.Module]:
        cached = self.__dict__.get("_blocks")
        if cached is None:
            cached = self.__dict__["_blocks"] = self.transformer_blocks()
        return cached

    def _finish_map(
        self, state: TokenState, grid: tuple[int, int], batch: int, like: torch.Tensor
    ) -> MergeMap:
        tokens = grid[0] * grid[1]
        if state.assignment is None:
            eye = torch.eye(tokens, device=like.device, dtype=like.dtype).expand(batch, -1, -1)
            return MergeMap(grid, eye, like.new_ones(batch, tokens))
        sizes = state.sizes if state.sizes is not None else like.new_ones(batch, tokens)
        return MergeMap(grid, state.assignment, sizes)

    def _run_vit(self, images: torch.Tensor, track_maps: bool) -> NetOutput:
        vit = self.backbone
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        prefix = vit.num_prefix_tokens
        state = TokenState(grid=self.block_grids[0], track=track_maps)
        for index in range(len(self.mergers)):
            x = self._block(index, x, state, prefix)
        x = vit.norm(x)
        pooled = self._pool_vit(x[:, 0] if prefix else None, x[:, prefix:], state.sizes)
        features = vit.fc_norm(pooled)
        logits = vit.head(vit.head_drop(features))
        maps = [self._finish_map(state, self.block_grids[0], images.shape[0], x)] if track_maps else []
        return NetOutput(logits, features, maps)

    def _pool_vit(
        self, cls: torch.Tensor | None, patches: torch.Tensor, sizes: torch.Tensor | None
    ) -> torch.Tensor:
        """timm's pooling, with the mean weighted by how many patches each merged token stands for.

        The max needs no weights: a merged token is a convex mix of patches, so the max over
        tokens is what a patch-level max sees after the merges' averaging.
        """
        pool = self.backbone.global_pool
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

    def _run_mobilevit(self, images: torch.Tensor, track_maps: bool) -> NetOutput:
        net = self.backbone
        self._maps: list[MergeMap] = []
        self._track = track_maps
        x = net.stem(images)
        mobilevit_index = 0
        for stage in net.stages:
            for block in stage:
                if isinstance(block, MobileVitBlock):
                    x = self._mobilevit_block(block, mobilevit_index, x)
                    mobilevit_index += 1
                else:
                    x = block(x)
        x = net.final_conv(x)
        features = net.head.global_pool(x)
        logits = net.head(x)
        maps, self._maps = self._maps, []
        return NetOutput(logits, features, maps)

    def _mobilevit_block(self, block: MobileVitBlock, which: int, x: torch.Tensor) -> torch.Tensor:
        """timm's MobileVitBlock.forward with merging inside and the unmerge before the fold."""
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

        stage = self.stages()[which]
        state = TokenState(grid=(nh, nw), track=True)
        for index in stage:
            x = self._block(index, x, state, prefix=0)
        x = block.norm(x)
        if state.assignment is not None:
            x = state.assignment @ x
        if self._track:
            self._maps.append(self._finish_map(state, (nh, nw), x.shape[0], x))

        x = x.contiguous().view(batch, block.patch_area, tokens, -1)
        x = x.transpose(1, 3).reshape(batch * channels * nh, nw, ph, pw)
        x = x.transpose(1, 2).reshape(batch, channels, nh * ph, nw * pw)
        if resized:
            x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        x = block.conv_proj(x)
        if block.conv_fusion is not None:
            x = block.conv_fusion(torch.cat((shortcut, x), dim=1))
        return x
