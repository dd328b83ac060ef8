"""Merges that keep defect tokens: a training term that asks LTM to merge background, not defects.

Learned merging was supposed to keep the few tokens that hold a defect and merge the uniform
surface around it; measured against magnetic_tile's masks it does not (pointing game 6.7–14.7 %,
inside/outside importance 0.98×, BENCHMARKS.md): classification alone gives the merge no reason to.
Where a station ships pixel masks, this term gives one. Importance is how finely a patch was kept
(1 / the size of the final token it ends in, :meth:`MergeMap.importance`); for every image with a
defect on the token grid the term is

    −log( I_in / (I_in + I_out) )

with I_in / I_out the mean importance inside / outside the defect (cells weighted by how much of
them the mask covers). It is log 2 when the merge ignores the defect, falls toward 0 as defect
patches end in smaller tokens than the background, and is bounded, so it cannot outweigh the
classification loss. Only the merge modules (and the tokens they read) get its gradient. The line
needs no masks: the merge learns *how* a defect looks when it must be kept apart.
"""

from __future__ import annotations

import torch

from models.families.base import MergeMap, image_importance


def keep_defects_loss(maps: list[MergeMap], cover: torch.Tensor) -> torch.Tensor | None:
    """The term averaged over the images whose defect ``cover`` (B, h, w: each cell's share of
    defect, on the first merge's grid) is neither empty nor the whole grid; None when no image
    qualifies or the network merges nothing."""
    importance = image_importance(maps, cover.shape[0])
    if importance is None:
        return None
    cover = cover.to(importance.dtype)
    if cover.shape[-2:] != importance.shape[-2:]:
        cover = torch.nn.functional.adaptive_avg_pool2d(cover[:, None], importance.shape[-2:])[:, 0]
    inside_weight, outside_weight = cover.sum((1, 2)), (1 - cover).sum((1, 2))
    valid = (inside_weight > 1e-3) & (outside_weight > 1e-3)
    if not bool(valid.any()):
        return None
    inside = (importance * cover).sum((1, 2)) / inside_weight.clamp_min(1e-6)
    outside = (importance * (1 - cover)).sum((1, 2)) / outside_weight.clamp_min(1e-6)
    share = inside / (inside + outside).clamp_min(1e-12)
    return -torch.log(share[valid].clamp_min(1e-6)).mean()
