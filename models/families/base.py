"""What every backbone family shares: the tokens' running state, the merge map, and one merging block.

A family adapter (:class:`Family`) knows how one timm layout is walked; the block it runs for every
transformer block is the same everywhere (:func:`merging_block`, DESIGN §5: attention, then the
merge, then the MLP on the merged set). Adapters hold no state of their own and no reference to a
network: the network hands them its backbone and mergers on every call, so a deep copy, a
``load_state_dict`` or a module swapped by quantization can never leave an adapter pointing at a
stale module, and nothing of one forward pass outlives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from models.attention import attention_forward, size_bias
from models.backbones import BackboneSpec
from models.ltm import LTMMerge
from models.tome import ToMeMerge


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


def merging_block(
    block: nn.Module, merger: nn.Module, x: torch.Tensor, state: TokenState, prefix: int
) -> torch.Tensor:
    """timm's ``Block.forward`` with the merge between attention and MLP (DESIGN §5).

    Attention goes through :func:`models.attention.attention_forward` for the size bias and ToMe's
    keys; the rest are the block's own sub-modules, called as timm's forward calls them
    (``tests/models/test_timm_internals.py`` fails if timm's block changes that order).
    """
    want_keys = isinstance(merger, ToMeMerge) and merger.r > 0
    out, keys = attention_forward(block.attn, block.norm1(x), size_bias(state.sizes, prefix), want_keys)
    x = x + block.drop_path1(block.ls1(out))
    x = _merge(merger, x, keys, state, prefix)
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def _merge(
    merger: nn.Module, x: torch.Tensor, keys: torch.Tensor | None, state: TokenState, prefix: int
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


def finish_map(state: TokenState, grid: tuple[int, int], batch: int, like: torch.Tensor) -> MergeMap:
    """The transformer's merge map once its blocks ran (the identity when nothing merged)."""
    tokens = grid[0] * grid[1]
    if state.assignment is None:
        eye = torch.eye(tokens, device=like.device, dtype=like.dtype).expand(batch, -1, -1)
        return MergeMap(grid, eye, like.new_ones(batch, tokens))
    sizes = state.sizes if state.sizes is not None else like.new_ones(batch, tokens)
    return MergeMap(grid, state.assignment, sizes)


class Family:
    """How the network walks one backbone layout; one stateless instance per family.

    The network asks a family for its transformers (the blocks that get a merger each, grouped by
    the token sequence they share), the token grid each transformer starts from, where LTM merges by
    default, and for the forward pass itself.
    """

    name: ClassVar[str]
    has_tokens: ClassVar[bool] = True  # False: nothing to merge, no merge map (a CNN)

    def transformers(self, backbone: nn.Module) -> list[Sequence[nn.Module]]:
        """The transformer blocks, one sequence per transformer, in execution order."""
        raise NotImplementedError

    def input_grids(self, backbone: nn.Module, spec: BackboneSpec) -> list[tuple[int, int]]:
        """The unmerged token grid each transformer starts from at ``spec``'s input size."""
        raise NotImplementedError

    def run(
        self, backbone: nn.Module, mergers: nn.ModuleList, images: torch.Tensor, track_maps: bool
    ) -> NetOutput:
        """Logits, pooled features and (``track_maps``) one merge map per transformer."""
        raise NotImplementedError

    def transformer_blocks(self, backbone: nn.Module) -> list[nn.Module]:
        return [block for blocks in self.transformers(backbone) for block in blocks]

    def stages(self, backbone: nn.Module) -> list[list[int]]:
        """Block indices (the mergers' indices) grouped by transformer."""
        groups, start = [], 0
        for blocks in self.transformers(backbone):
            groups.append(list(range(start, start + len(blocks))))
            start += len(blocks)
        return groups

    def ltm_merge_points(self, stages: list[list[int]]) -> list[int]:
        """Blocks an LTM schedule merges after: the first of each transformer (a short one)."""
        return [stage[0] for stage in stages]
