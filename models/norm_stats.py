"""Re-estimating BatchNorm statistics on a station's own images: adaptation without labels.

A new lamp or camera shifts the mean and spread of the features every convolution stage sees.
The pretrained stem's BatchNorm layers normalise with statistics from the training images; putting
in the station's statistics instead (a cumulative average over a few hundred frames, weights
untouched) is the cheapest adaptation there is — no labels, no gradient, seconds on a CPU
(Li et al., "Revisiting Batch Normalization for Practical Domain Adaptation", 2016: AdaBN).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from models.errors import ModelError


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def recalibrate_norms(net: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
    """Replace every BatchNorm's running mean/var by those of ``batches``; weights stay as they are.

    Returns how far the statistics moved (mean absolute change of the running means, relative to
    their old spread), for the log and the bundle.
    """
    norms = batch_norms(net)
    if not norms:
        raise ModelError("this model has no BatchNorm statistics to re-estimate (only LayerNorm)")
    before = [m.running_mean.clone() for m in norms]
    momenta = [m.momentum for m in norms]
    was_training = net.training
    net.eval()
    seen = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over every batch, not an exponential one
            m.train()
        with torch.no_grad():
            for batch in batches:
                net(batch)
                seen += batch.shape[0]
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
            m.eval()
        net.train(was_training)
    if seen < 2:
        raise ModelError("re-estimating norm statistics needs at least 2 images")
    shift = [
        ((m.running_mean - old).abs().mean() / old.std().clamp_min(1e-6)).item()
        for m, old in zip(norms, before, strict=True)
    ]
    return {"layers": len(norms), "images": seen, "mean_shift": round(sum(shift) / len(shift), 4)}
