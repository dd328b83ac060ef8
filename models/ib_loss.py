"""Information Bottleneck regulariser: I(Z;X) - beta * I(Z;Y) through a separable clustering surrogate.

The exact mutual informations of continuous features are intractable, so both are estimated on a
discretisation: pooled features Z are soft-assigned to K learnable centroids, the input X is
represented by the trainer's cluster id per image (k-means on thumbnails) and Y by the class label.
Every term is then the MI of a small K x A contingency table built from one batch, so it is
separable (one table per variable, no pairwise kernels), cheap at batch level and differentiable
w.r.t. features and centroids. The authors add it with weight ~0.1 after ~30% of the epochs; here
it is an option, kept on only where the benchmark ablation shows it helps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class IBTerms:
    loss: torch.Tensor
    i_zx: torch.Tensor
    i_zy: torch.Tensor


def mutual_information(joint: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """MI in nats of a 2-D joint table, normalised here so callers may pass counts.

    ``eps`` keeps empty cells finite (0 * log 0 -> 0) and the gradient defined.
    """
    if joint.dim() != 2:
        raise ValueError(f"joint must be 2-D, got shape {tuple(joint.shape)}")
    p = joint / joint.sum().clamp_min(eps)
    outer = p.sum(dim=1, keepdim=True) * p.sum(dim=0, keepdim=True)
    return (p * (torch.log(p + eps) - torch.log(outer + eps))).sum()


def soft_joint(assign: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """(K x num_labels) joint p(c, a) = mean_b q(c|z_b) onehot(a_b): the batch estimate the MI needs."""
    if assign.dim() != 2 or labels.dim() != 1 or assign.shape[0] != labels.shape[0]:
        raise ValueError(
            f"assign must be (B, K) and labels (B,), got {tuple(assign.shape)} and {tuple(labels.shape)}"
        )
    onehot = F.one_hot(labels.long(), num_labels).to(assign.dtype)
    return assign.t() @ onehot / assign.shape[0]


class InformationBottleneck(torch.nn.Module):
    """Owns the centroids that discretise Z, so they train together with the network."""

    def __init__(
        self, dim: int, num_clusters: int, beta: float = 1.0, temperature: float = 0.25, seed: int = 0
    ) -> None:
        super().__init__()
        if dim < 1 or num_clusters < 2 or temperature <= 0:
            raise ValueError("need dim >= 1, num_clusters >= 2 and temperature > 0")
        self.beta = beta
        self.temperature = temperature
        gen = torch.Generator().manual_seed(seed)
        init = F.normalize(torch.randn(num_clusters, dim, generator=gen), dim=1)
        self.centroids = torch.nn.Parameter(init)

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        """q(c|z) on the unit sphere, so the fixed temperature means the same thing for any backbone."""
        if features.dim() != 2 or features.shape[1] != self.centroids.shape[1]:
            raise ValueError(f"features must be (B, {self.centroids.shape[1]}), got {tuple(features.shape)}")
        z = F.normalize(features.to(self.centroids.dtype), dim=1)
        mu = F.normalize(self.centroids, dim=1)
        sq_dist = (2.0 - 2.0 * z @ mu.t()).clamp_min(0.0)
        return torch.softmax(-sq_dist / self.temperature, dim=1)

    def forward(
        self,
        features: torch.Tensor,
        input_clusters: torch.Tensor,
        labels: torch.Tensor,
        num_input_clusters: int,
        num_classes: int,
    ) -> IBTerms:
        q = self.assign(features)
        i_zx = mutual_information(soft_joint(q, input_clusters, num_input_clusters))
        i_zy = mutual_information(soft_joint(q, labels, num_classes))
        return IBTerms(loss=i_zx - self.beta * i_zy, i_zx=i_zx, i_zy=i_zy)


def ib_weight(progress: float, weight: float = 0.1, start: float = 0.3) -> float:
    """Off early: the term only makes sense once features carry class information worth compressing."""
    if not (math.isfinite(progress) and 0.0 <= progress <= 1.0):
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    return weight if progress >= start else 0.0
