"""WiSE-FT for station adaptation: a blend of the base's weights and the fine-tuned ones (issue 26).

Fine-tuning on a new lamp moves the weights toward it and away from the old station; a straight
line between the two sets of weights often keeps most of the new station's gain while giving back
the old station's accuracy (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022). The
blend is picked on validation images of both stations, each counting equally, so neither is given
up silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)  # 0: the base as it was, 1: the fine-tuned weights

State = dict[str, torch.Tensor]


@dataclass
class BlendChoice:
    alpha: float
    scores: dict[float, tuple[float, float]]  # alpha -> (new station val macro-F1, old station's)


def blended(base: State, tuned: State, alpha: float) -> State:
    """``(1 - alpha) * base + alpha * tuned`` for every floating tensor (BatchNorm statistics too);
    integer buffers (batch counters) come from ``tuned``."""
    out = {}
    for name, value in tuned.items():
        start = base.get(name)
        if start is None or not value.is_floating_point() or start.shape != value.shape:
            out[name] = value.clone()
        else:
            out[name] = torch.lerp(start.to(value.dtype), value, alpha)
    return out


def choose_blend(
    net: torch.nn.Module,
    base: State,
    tuned: State,
    score: Callable[[torch.nn.Module], tuple[float, float]],
) -> BlendChoice:
    """Load into ``net`` the blend whose mean validation macro-F1 over both stations is highest
    (ties go to the larger ``alpha``: more of the new station)."""
    scores: dict[float, tuple[float, float]] = {}
    for alpha in ALPHAS:
        net.load_state_dict(blended(base, tuned, alpha))
        scores[alpha] = score(net)
    best = max(ALPHAS, key=lambda a: (sum(scores[a]) / 2, a))
    net.load_state_dict(blended(base, tuned, best))
    return BlendChoice(best, scores)
