"""The inspection network: a timm backbone whose transformer blocks can merge tokens.

The backbone module is kept whole and its state-dict keys unchanged; a family adapter
(:mod:`models.families`) walks it block by block so that, after each block's attention, a merger
(LTM, ToMe or none) can shrink the patch token set before the MLP (DESIGN §5). Mergers live beside
the backbone (``mergers.<i>``), one per transformer block, so converting a trained unmerged model
only adds merger weights. The adapter is a plain object, not a module: it adds no state-dict key.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.backbones import BackboneSpec, create_backbone
from models.errors import ModelError
from models.families import Family, family_for
from models.families.base import NetOutput
from models.ltm import MASKS, LTMMerge
from models.tome import ToMeMerge

MERGE_MODES = ("none", "ltm", "tome")

__all__ = ["MERGE_MODES", "InspectionNet"]


def _make_merger(mode: str, dim: int, rank: int, mask: str) -> nn.Module:
    if mode == "ltm":
        return LTMMerge(dim, rank, mask)
    if mode == "tome":
        return ToMeMerge()
    return nn.Identity()


class InspectionNet(nn.Module):
    """A classifier over a timm ViT/DeiT, hybrid, MobileViT or CNN backbone with per-block merging."""

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
        self.adapter: Family = family_for(self.backbone)
        if not self.adapter.has_tokens and merge != "none":
            raise ModelError(f"{spec.name} is a CNN: it has no tokens to merge (use --merge none)")
        self.mergers = nn.ModuleList(
            _make_merger(merge, b.norm1.normalized_shape[0], rank, mask) for b in self.transformer_blocks()
        )
        self.block_grids: list[tuple[int, int]] = self.adapter.input_grids(self.backbone, spec)

    # ----------------------------------------------------------------------------- structure
    @property
    def family(self) -> str:
        """``vit``, ``hybrid``, ``mobilevit`` or ``cnn``: what ``inspector models info`` shows."""
        return self.adapter.name

    def transformer_blocks(self) -> list[nn.Module]:
        """Every transformer block, in execution order (MobileViT: all stages' transformers)."""
        return self.adapter.transformer_blocks(self.backbone)

    def stages(self) -> list[list[int]]:
        """Block indices grouped by transformer (one group for ViT, one per MobileViT block)."""
        return self.adapter.stages(self.backbone)

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
        """Logits, pooled features (for the IB term) and, on request, the merge maps.

        Everything one call needs travels in values (the tokens' state, the maps), never on the
        module: two threads may run the same net (the line and a GMAC count in the app).
        """
        return self.adapter.run(self.backbone, self.mergers, images, track_maps)
