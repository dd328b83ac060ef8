"""Batched inference on in-memory images with the bundle's exact preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.network import InspectionNet
from models.preprocess import Preprocessing, preprocess


def predict_logits(
    net: InspectionNet,
    prep: Preprocessing,
    images: Sequence[np.ndarray],
    batch_size: int = 64,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Logits (N, K) for ``images``; ``transform`` (e.g. a robustness corruption) runs first."""
    net.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            if transform is not None:
                batch = [transform(image) for image in batch]
            chunks.append(net(preprocess(batch, prep)).float().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, net.backbone.num_classes), np.float32)
