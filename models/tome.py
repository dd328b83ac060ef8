"""ToMe, the training-free baseline (Bolya et al., ICLR 2023), written here from its paper.

Bipartite soft matching: patch tokens alternate into sets A and B; each A token finds its most
similar B token by cosine similarity of the attention keys; the r most similar A tokens are merged
into their partners with size-weighted averages; sizes add up and feed proportional attention.
Prefix tokens are never merged (the paper protects the class token the same way).
Gather/scatter based: fast in PyTorch, but not the static-shape dense form LTM exports with.
"""

from __future__ import annotations

import torch
from torch import nn


def bipartite_matching(keys: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices (unmerged A, merged A, their B partners) for merging r tokens; keys is (B,N,C)."""
    keys = keys / keys.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    a, b = keys[:, ::2], keys[:, 1::2]
    scores = a @ b.transpose(1, 2)
    best, partner = scores.max(dim=-1)
    order = best.argsort(dim=-1, descending=True).unsqueeze(-1)
    unmerged, merged = order[:, r:], order[:, :r]
    dest = partner.unsqueeze(-1).gather(dim=1, index=merged)
    return unmerged, merged, dest


def apply_matching(
    x: torch.Tensor, unmerged: torch.Tensor, merged: torch.Tensor, dest: torch.Tensor
) -> torch.Tensor:
    """Sum-merge rows of ``x`` (B,N,C) by a matching: output is [unmerged A tokens, B tokens]."""
    channels = x.shape[-1]
    a, b = x[:, ::2], x[:, 1::2]
    keep = a.gather(1, unmerged.expand(-1, -1, channels))
    moved = a.gather(1, merged.expand(-1, -1, channels))
    b = b.scatter_reduce(1, dest.expand(-1, -1, channels), moved, reduce="sum")
    return torch.cat([keep, b], dim=1)


class ToMeMerge(nn.Module):
    """Parameter-free ToMe merge of ``r`` tokens, set by the merge schedule."""

    def __init__(self) -> None:
        super().__init__()
        self.r = 0

    def extra_repr(self) -> str:
        return f"r={self.r}"

    def forward(
        self, x: torch.Tensor, sizes: torch.Tensor, keys: torch.Tensor, want_mask: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        r = min(self.r, x.shape[1] // 2)
        unmerged, merged, dest = bipartite_matching(keys, r)
        mass = apply_matching(x * sizes.unsqueeze(-1), unmerged, merged, dest)
        new_sizes = apply_matching(sizes.unsqueeze(-1), unmerged, merged, dest).squeeze(-1)
        merged_x = mass / new_sizes.unsqueeze(-1)
        mask = None
        if want_mask:
            eye = torch.eye(x.shape[1], device=x.device, dtype=x.dtype).expand(x.shape[0], -1, -1)
            mask = apply_matching(eye, unmerged, merged, dest).transpose(1, 2)
        return merged_x, new_sizes, mask
