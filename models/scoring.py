"""What a verdict is made of, from a network's logits: class probabilities and the OOD energy.

Here, beside the network, so that the live line (``inspector.line``), calibration and the roll-out
gate score logits with the same two functions without the line importing the training package.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise class probabilities of (N, K) logits, shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def energy(logits: np.ndarray) -> np.ndarray:
    """Free energy −logsumexp(logits): higher means less like anything seen in training."""
    peak = logits.max(axis=1)
    return -(peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1)))
