"""Compute and size: GMACs at batch 1 with attention counted, and parameter counts.

We count with PyTorch's own dispatcher-level ``FlopCounterMode`` rather than fvcore (unmaintained
since 2022 and based on ``torch.jit.trace``): it sees every matmul and convolution that actually
runs, including the merge matmuls and the mask module, so merge overhead is charged honestly.
Attention runs unfused while counting (DESIGN §6) so its two products are visible as matmuls.
Elementwise work (softmax, norms, activations) is not counted, as with fvcore's defaults.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.attention import unfused_attention


def count_gmacs(model: nn.Module, img_size: int, in_chans: int) -> float:
    """Multiply-accumulates (in 10^9) of one forward pass at batch 1."""
    was_training = model.training
    model.eval()
    sample = torch.zeros(1, in_chans, img_size, img_size)
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), unfused_attention(), counter:
            model(sample)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2e9


def count_params(model: nn.Module) -> int:
    """Every parameter, trainable or not (DESIGN §6: params exclude nothing)."""
    return sum(p.numel() for p in model.parameters())
