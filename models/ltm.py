"""Learnable token merging (LTM): a learned, soft, mass-preserving merge of a token grid.

DESIGN §5. A merge takes the N patch tokens of an h×w grid to the N' tokens of an h'×w' grid with
a row-stochastic mask G (N×N'): every input token hands all of its mass (its size, the number of
original patches it stands for) to the output tokens, so total size is conserved, and each output
token is the size-weighted average of what it received. Two matmuls and a softmax, with static
shapes, so it exports to ONNX unlike gather/scatter merging.

The mask module is nearly parameter-free: a rank-r projection shared by tokens and grid anchors
(r·C weights), a locality weight λ and a similarity gain γ. Its logits are

    λ · log(P + ε) + γ · <W x_i, W a_j> / sqrt(r)

where P is the constant area-overlap matrix of the two grids (the local average-pooling prior) and
a_j are the size-weighted local averages of the current tokens (the anchors). History enters
through the sizes left by the previous block's mask: anchors and outputs are size-weighted.
At initialisation γ = 0 and λ = 1, so G = P up to ε: merging starts as local average pooling and a
converted model starts where the unmerged model was, seen through a pooled grid.

That first mask (``v1``, still what older bundles load) never leaves its initialisation: with
γ = 0 the projection W gets no gradient, and γ's own gradient is tiny (a demo model ended at
γ = 0.004 — fixed pooling under another name). The ``content`` mask (the default for new models)
is built to move, in the spirit of DTEM's decoupled merge embedding:

    λ · log(P + ε_c) + γ · cos(W x_i, W a_j),   γ starts at CONTENT_GAIN, ε_c = CONTENT_EPS

Cosine similarity of the decoupled rank-r features is bounded, so γ is a temperature a user can
read; starting it at 4 means W is trained from the first step. The prior's floor ε_c = 0.01
(log ≈ −4.6 instead of −13.8) lets a token that is clearly more like a neighbouring anchor give it
part of its mass, while dissimilar far tokens stay out. At initialisation most mass still goes
where pooling sends it (BENCHMARKS.md reports how far each merge moves on real data), so the
conversion property holds approximately. ``pooling`` is the ablation: the same schedule with the
content term off and nothing in the mask trainable.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

LOG_EPS = 1e-6
MASKS = ("v1", "content", "pooling")
CONTENT_GAIN = 4.0
CONTENT_EPS = 1e-2


def overlap_1d(n_in: int, n_out: int) -> np.ndarray:
    """Share of each input cell of [0, 1] that falls in each output cell (rows sum to one)."""
    edges_in = np.linspace(0.0, 1.0, n_in + 1)
    edges_out = np.linspace(0.0, 1.0, n_out + 1)
    lo = np.maximum(edges_in[:-1, None], edges_out[None, :-1])
    hi = np.minimum(edges_in[1:, None], edges_out[None, 1:])
    return np.clip(hi - lo, 0.0, None) * n_in


@functools.lru_cache(maxsize=64)
def overlap_prior(h: int, w: int, h_out: int, w_out: int) -> np.ndarray:
    """Row-stochastic (h·w)×(h_out·w_out) area-overlap matrix of two grids over the same image."""
    return np.kron(overlap_1d(h, h_out), overlap_1d(w, w_out)).astype(np.float32)


@functools.lru_cache(maxsize=128)
def _log_prior(h: int, w: int, h_out: int, w_out: int, eps: float = LOG_EPS) -> np.ndarray:
    return np.log(overlap_prior(h, w, h_out, w_out) + eps).astype(np.float32)


def weighted_merge(
    x: torch.Tensor, sizes: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge tokens ``x`` (B,N,C) of ``sizes`` (B,N) with a row-stochastic ``mask`` (B,N,N').

    Returns the size-weighted averages (B,N',C) and the new sizes (B,N'), which sum to the old.
    """
    mass = mask * sizes.unsqueeze(-1)
    new_sizes = mass.sum(dim=1)
    merged = mass.transpose(1, 2) @ x / new_sizes.clamp_min(1e-6).unsqueeze(-1)
    return merged, new_sizes


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; written out (not F.normalize) so the ONNX graph stays plain."""
    return x / x.pow(2).sum(-1, keepdim=True).add(1e-12).sqrt()


def moved_mass(mask: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Share of each token's mass that the mask sends elsewhere than pooling would (total
    variation, 0 = pooling, 1 = all of it), averaged over tokens: (B,)."""
    return 0.5 * (mask - prior.unsqueeze(0)).abs().sum(-1).mean(-1)


class LTMMerge(nn.Module):
    """The mask module and merge of one LTM block; ``out_grid`` is set by the merge schedule."""

    def __init__(self, dim: int, rank: int = 16, mask: str = "v1") -> None:
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"LTM mask must be one of {MASKS}, got {mask!r}")
        self.rank = min(rank, dim)
        self.kind = mask
        self.proj = nn.Linear(dim, self.rank, bias=False)
        nn.init.normal_(self.proj.weight, std=dim**-0.5)
        self.locality = nn.Parameter(torch.ones(()))
        self.sim_gain = nn.Parameter(torch.full((), CONTENT_GAIN if mask == "content" else 0.0))
        if mask == "pooling":
            for p in self.parameters():
                p.requires_grad_(False)
        self.out_grid: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"rank={self.rank}, mask={self.kind}, out_grid={self.out_grid}"

    def trainable(self) -> list[nn.Parameter]:
        """What an optimiser may update (nothing in the frozen-at-pooling ablation)."""
        return [] if self.kind == "pooling" else list(self.parameters())

    def mask(self, x: torch.Tensor, sizes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """The merge mask G (B,N,N') for tokens ``x`` on ``grid``."""
        assert self.out_grid is not None
        # Fresh tensor views of cached numpy constants every call: a cached *tensor* would carry
        # the autograd/inference mode (or the export tracer) of whichever call created it.
        key = (*grid, *self.out_grid)
        prior = torch.from_numpy(overlap_prior(*key)).to(device=x.device, dtype=x.dtype)
        if self.kind == "pooling":
            return prior.unsqueeze(0).expand(x.shape[0], -1, -1)
        eps = CONTENT_EPS if self.kind == "content" else LOG_EPS
        log_prior = torch.from_numpy(_log_prior(*key, eps)).to(device=x.device, dtype=x.dtype)
        q = self.proj(x)
        weights = prior.unsqueeze(0) * sizes.unsqueeze(-1)
        anchors = weights.transpose(1, 2) @ q / weights.sum(dim=1).clamp_min(1e-6).unsqueeze(-1)
        if self.kind == "content":
            similarity = _unit(q) @ _unit(anchors).transpose(1, 2)
        else:
            similarity = q @ anchors.transpose(1, 2) / math.sqrt(self.rank)
        return torch.softmax(self.locality * log_prior + self.sim_gain * similarity, dim=-1)

    def forward(
        self, x: torch.Tensor, sizes: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
        mask = self.mask(x, sizes, grid)
        merged, new_sizes = weighted_merge(x, sizes, mask)
        return merged, new_sizes, mask, self.out_grid
